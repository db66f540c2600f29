"""Recommendations inside messages (issue 16): a shop's catalog and history, a model trained from its event log, and
what the ready-made templates show at send time: the abandoned cart's lines then what is often bought with them
(in stock, not in the cart), personal picks in the win-back, products as Telegram buttons, names escaped in the
email's HTML, the recommender asked only by templates that read it, and the preview showing the same."""

from __future__ import annotations

import html
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from api_helpers import Api
from boomerang.bootstrap import open_workspace
from boomerang.catalog import service as catalog
from boomerang.catalog.schemas import ProductIn
from boomerang.config import GuardSettings, Settings
from boomerang.core.clock import FixedClock
from boomerang.customers.service import lookup
from boomerang.events.ingest import record
from boomerang.messaging import delivery
from boomerang.messaging import service as templates
from boomerang.messaging.compose import Composer
from boomerang.messaging.models import Message
from boomerang.orchestration import reco_training
from boomerang.orchestration.rounds import move_events
from messaging_data import add_template, queue
from reco_data import order

NOW = datetime(2026, 6, 1, 12, 0)
DAY = timedelta(days=1)
SHOP = "https://shop.example.com"


def _product(sku: str, name: str, category: str, price: float, **more) -> ProductIn:
    return ProductIn(
        sku=sku,
        name=name,
        category=category,
        brand=more.pop("brand", sku.split("-")[0]),
        price=price,
        currency="EUR",
        url=f"{SHOP}/p/{sku}",
        image_url=f"{SHOP}/i/{sku}.jpg",
        **more,
    )


PRODUCTS = [
    _product("BEAN-1", "Espresso beans", "Coffee > Beans", 11.0),
    _product("BEAN-2", "Filter beans", "Coffee > Beans", 12.0),
    _product("BEAN-3", "Decaf beans", "Coffee > Beans", 13.0, brand="DECAF"),
    _product("MUG-1", "Stoneware mug", "Coffee > Mugs", 9.0),
    _product("GRINDER-1", "Hand grinder", "Coffee > Tools", 40.0, in_stock=False),
    _product("FILTER-1", "Paper filters", "Coffee > Tools", 4.0),
    _product("TEA-1", "Green tea", "Tea", 7.0),
    _product("XSS-1", "<script>alert(1)</script>", "Tea", 5.0),
]


def _track(ws, messages: list[dict]) -> None:
    with ws.uow.session() as session:
        record(session, messages, now=NOW, limits=ws.settings.ingest, source="test")
    move_events(ws)


def _fill(ws) -> None:
    """30 customers: espresso beans bought with a mug and the (now out of stock) grinder, filter beans with paper
    filters and the mug (the best seller), green tea with the product whose name is markup; 'loyal' bought decaf
    beans every ten days until 70 days ago; 'ann' and 'tea' have carts open. The model is trained on that; then
    'fresh' buys a mug (29 days ago), which the model does not know."""
    with ws.uow.session() as s:
        catalog.upsert_products(s, PRODUCTS, now=NOW - 300 * DAY)
        templates.install(s, now=NOW)
    baskets = [["BEAN-1", "MUG-1", "GRINDER-1"], ["BEAN-2", "FILTER-1", "MUG-1"], ["TEA-1", "XSS-1"]]
    events = [order(c, f"u{c}", NOW - (200 - c) * DAY, baskets[c % 3]) for c in range(30)]
    events += [order(100 + k, "loyal", NOW - (270 - 10 * k) * DAY, ["BEAN-3"]) for k in range(21)]
    for user in ("ann", "tea", "loyal", "fresh"):
        traits = {"email": f"{user}@example.com", "firstName": user.title(), "consents": {"email": True}}
        events.append({"type": "identify", "userId": user, "traits": traits})
    for user, cart, sku in (("ann", "c-ann", "BEAN-1"), ("tea", "c-tea", "TEA-1")):
        events.append(
            {"type": "track", "userId": user, "event": "Product Added", "properties": {"cart_id": cart, "sku": sku}}
        )
    _track(ws, events)
    assert reco_training.train(ws.log, ws.settings.reco_model_path, now=NOW)["trained"]
    _track(ws, [order(200, "fresh", NOW - 29 * DAY, ["MUG-1"])])


@pytest.fixture(scope="module")
def shop_home(tmp_path_factory, migrated_home) -> Path:
    """The shop's workspace, tracked and trained once for the module; each test works on a copy."""
    home = tmp_path_factory.mktemp("reco_messages") / "ws"
    shutil.copytree(migrated_home, home)
    ws = open_workspace(Settings(home=home), clock=FixedClock(NOW))
    _fill(ws)
    ws.engine.dispose()
    return home


@pytest.fixture
def shop(settings, shop_home):
    shutil.copytree(shop_home, settings.home)
    ws = open_workspace(settings, clock=FixedClock(NOW))
    ws.settings.guards = GuardSettings(global_control_share=0)
    return ws


class Recording:
    """A network email channel that keeps what it was given."""

    name, in_store, concurrency = "recording", False, 1

    def __init__(self):
        self.sent = []

    def send(self, message):
        from boomerang.channels.base import SendResult

        self.sent.append(message)
        return SendResult.sent("prov-1")

    def close(self):
        pass


class Counting:
    """The workspace's recommender, counting how often messaging asks it."""

    def __init__(self, ws):
        self.ws, self.asked = ws, []

    def __call__(self, session, **kw):
        self.asked.append(kw["block"])
        return self.ws.recommend_in_messages(session, **kw)


def _id(ws, user: str) -> str:
    with ws.uow.session() as s:
        return lookup(s, user).id


def _cart_message(s, key: str, cid: str, cart: str, *, template="cart_reminder_1", channels=("email",)) -> Message:
    message = queue(s, key, cid, template=template, subject=cart, channels=channels)
    message.trigger = {"event": "Product Added", "key": "cart_id", "properties": {"cart_id": cart}}
    s.flush()
    return message


def _sections(html: str) -> tuple[str, str]:
    """The email's cart (before its call to action) and what follows it."""
    cart, _, after = html.partition("Back to my cart</a>")
    return cart, after


def test_an_abandoned_cart_email_shows_the_cart_then_what_goes_with_it_in_stock(shop):
    email = Recording()
    shop.channels.override("email", lambda ctx: email)
    ann = _id(shop, "ann")
    with shop.uow.session() as s:
        _cart_message(s, "cart-1", ann, "c-ann")
    assert shop.dispatcher.dispatch(now=NOW)["sent"] == 1
    (out,) = email.sent
    cart, after = _sections(out.html)
    assert "Espresso beans</a>" in cart and "Often bought together" in after
    with shop.uow.session() as s:
        block = shop.recommend_in_messages(s, customer_id=ann, block="cart", cart=["BEAN-1"], size=3)
    assert [p["sku"] for p in block][:1] == ["MUG-1"] and block[0]["source"] == "bought_together"
    assert len(block) == 3 and {"BEAN-1", "GRINDER-1"}.isdisjoint(p["sku"] for p in block)
    shown = [after.index(f">{html.escape(p['name'])}</a>") for p in block]  # each one, escaped
    assert shown == sorted(shown)  # in the block's order
    assert "Hand grinder" not in out.html and "Hand grinder" not in out.text  # out of stock: never shown
    assert "Espresso beans" not in after  # what is in the cart is not recommended again
    assert "Often bought together:\n- Stoneware mug — €9.00: http" in out.text  # the text part too, links tracked
    assert "/t/c/" in after and f'href="{SHOP}/p/MUG-1"' not in after


def test_product_names_are_escaped_in_the_email_html(shop):
    email = Recording()
    shop.channels.override("email", lambda ctx: email)
    with shop.uow.session() as s:
        _cart_message(s, "cart-tea", _id(shop, "tea"), "c-tea")
    shop.dispatcher.dispatch(now=NOW)
    (out,) = email.sent
    _, after = _sections(out.html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in after
    assert "<script" not in out.html
    assert 'alt="&lt;script&gt;alert(1)&lt;/script&gt;"' in after


def test_the_telegram_form_shows_the_products_as_buttons(shop):
    ann = _id(shop, "ann")
    with shop.uow.session() as s:
        message = _cart_message(s, "cart-tg", ann, "c-ann", channels=("telegram",))
        composer = Composer(s, shop.links, shop.settings.messaging, now=NOW, recommend=shop.recommend_in_messages)
        out = composer.compose(message, "telegram", "12345")
        block = shop.recommend_in_messages(s, customer_id=ann, block="cart", cart=["BEAN-1"], size=3)
    labels = [b.label for b in out.buttons]
    assert labels[0] == "Open my cart"
    assert labels[1:] == [f"{p['name']} · €{p['price']:.2f}" for p in block]
    assert all("/t/c/" in b.url for b in out.buttons)  # tracked like every link


def test_a_block_with_fewer_products_makes_fewer_buttons(shop):
    with shop.uow.session() as s:
        message = _cart_message(s, "cart-none", _id(shop, "ann"), "c-ann", channels=("telegram",))
        nothing = Composer(s, shop.links, shop.settings.messaging, now=NOW, recommend=lambda session, **kw: [])
        assert [b.label for b in nothing.compose(message, "telegram", "1").buttons] == ["Open my cart"]


def test_a_win_back_shows_personal_picks_not_what_they_bought_lately(shop):
    email = Recording()
    shop.channels.override("email", lambda ctx: email)
    loyal, fresh, ann = _id(shop, "loyal"), _id(shop, "fresh"), _id(shop, "ann")
    with shop.uow.session() as s:
        queue(s, "wb-loyal", loyal, template="winback_1")
        queue(s, "wb-fresh", fresh, template="winback_1")
        picks = {c: shop.recommend_in_messages(s, customer_id=c, block="email", size=4) for c in (loyal, fresh)}
        new = shop.recommend_in_messages(s, customer_id=ann, block="email", size=4)
    assert shop.dispatcher.dispatch(now=NOW)["sent"] == 2
    sent = {m.customer_id: m for m in email.sent}
    assert {p["source"] for p in picks[loyal]} == {"personal"}  # learned from customers who bought what they did
    assert new[0]["sku"] == "MUG-1"  # the best seller, for a customer the model does not know...
    assert "MUG-1" not in {p["sku"] for p in picks[fresh]}  # ...but they bought it 29 days ago
    for cid, chosen in picks.items():
        _, _, section = sent[cid].html.partition("Picked for you</h2>")
        assert len(chosen) == 4 and all(f">{html.escape(p['name'])}</a>" in section for p in chosen)
    assert ">Stoneware mug</a>" not in sent[fresh].html and "Hand grinder" not in sent[fresh].html


def test_the_recommender_is_asked_only_by_templates_that_read_it_and_once_per_block(shop):
    add = {"name": "plain", "locales": {"en": {"subject": "Hi", "email": {"html": "<p>Hi</p>", "text": "Hi"}}}}
    twice = {
        "name": "twice",
        "locales": {
            "en": {
                "subject": "{{ recommendations[0].name }}",
                "email": {
                    "html": "{% for p in recommendations %}<p>{{ p.name }}</p>{% endfor %}",
                    "text": "{% for p in recommend('home', 2) %}{{ p.sku }} {% endfor %}{{ recommendations|length }}",
                },
            }
        },
    }
    counting = Counting(shop)
    loyal = _id(shop, "loyal")
    with shop.uow.session() as s:
        add_template(s, add)
        add_template(s, twice)
        composer = Composer(s, shop.links, shop.settings.messaging, now=NOW, recommend=counting)
        composer.compose(queue(s, "p1", loyal, template="plain"), "email", "x@example.com")
        assert counting.asked == []  # a template that shows no products costs no recommendation
        out = composer.compose(queue(s, "t1", loyal, template="twice"), "email", "x@example.com")
        composer.compose(queue(s, "t2", loyal, template="twice"), "email", "x@example.com")
    assert sorted(counting.asked) == ["email", "home"]  # once per block for the batch, however often it is read
    with shop.uow.session() as s:
        first = shop.recommend_in_messages(s, customer_id=loyal, block="email", size=4)[0]
    assert out.subject == first["name"] and out.text.split("\n")[0].endswith(" 4")


def test_recommend_in_a_message_about_a_product_and_a_broken_call(shop):
    loyal = _id(shop, "loyal")
    about = {
        "name": "about",
        "locales": {
            "en": {"subject": "x", "text": "{% for p in recommend('bought_together', 2) %}{{ p.sku }} {% endfor %}"}
        },
    }
    broken = {"name": "broken", "locales": {"en": {"subject": "x", "text": "{{ recommend('nowhere')|length }}"}}}
    with shop.uow.session() as s:
        add_template(s, about)
        add_template(s, broken)
        composer = Composer(s, shop.links, shop.settings.messaging, now=NOW, recommend=shop.recommend_in_messages)
        on_bean = composer.compose(queue(s, "a1", loyal, template="about", subject="BEAN-2"), "sms", "+1")
        assert on_bean.text.split()[0] == "FILTER-1"  # bought with the message's product, not the product itself
        assert composer.compose(queue(s, "a2", loyal, template="about"), "sms", "+1").text == ""  # no product
        from boomerang.messaging.compose import CannotCompose

        with pytest.raises(CannotCompose, match="no block named 'nowhere'"):
            composer.compose(queue(s, "b1", loyal, template="broken"), "sms", "+1")


def test_the_preview_shows_a_customers_recommendations_and_the_samples(shop):
    ann = _id(shop, "ann")
    with shop.uow.session() as s:
        shown = delivery.preview(
            s,
            shop.settings.messaging,
            "cart_reminder_1",
            customer_id=ann,
            channels=["email", "telegram"],
            now=NOW,
            recommend=shop.recommend_in_messages,
        )
        sample = delivery.preview(s, shop.settings.messaging, "cart_reminder_1", channels=["telegram"], now=NOW)
        without = delivery.preview(
            s, shop.settings.messaging, "winback_1", customer_id=ann, channels=["email"], now=NOW
        )
    _, after = _sections(shown["channels"]["email"]["html"])
    assert ">Stoneware mug</a>" in after  # with her open cart as the context, as at send time
    assert "Hand grinder" not in shown["channels"]["email"]["html"]
    assert [b["label"] for b in shown["channels"]["telegram"]["buttons"]][1:2] == ["Stoneware mug · €9.00"]
    assert [b["label"] for b in sample["channels"]["telegram"]["buttons"]] == ["Open my cart", "Tea set · €34.00"]
    assert "Picked for you" in without["channels"]["email"]["html"]  # no recommender: the shop's best sellers
    loyal = _id(shop, "loyal")
    api = Api(shop).api("POST", "/templates/preview", json={"template": "winback_1", "customer_id": loyal})
    with shop.uow.session() as s:
        first = shop.recommend_in_messages(s, customer_id=loyal, block="email", size=4)[0]
    assert api.status_code == 200 and f">{html.escape(first['name'])}</a>" in api.json()["channels"]["email"]["html"]
    with shop.uow.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Message)) == 0  # previewing sends nothing
