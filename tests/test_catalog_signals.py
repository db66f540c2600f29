"""Catalog signals (issue 13.4): a product back in stock or cheaper, through any path that writes products
(the stock and upsert API, `boomerang import catalog`, what tracked events teach), becomes one `Back In Stock`
or `Price Dropped` event per interested customer, once; the ready-made back_in_stock journey sends from it."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.catalog.changes import claim
from boomerang.catalog.models import CatalogChange
from boomerang.channels.models import FakeChannelLog
from boomerang.cli.app import app as cli
from boomerang.config import GuardSettings
from boomerang.core.clock import FixedClock
from boomerang.journeys import library as journeys_library
from boomerang.journeys import service as journeys
from boomerang.messaging import service as templates
from boomerang.messaging.models import Message
from boomerang.orchestration import catalog_signals, rounds

NOW = datetime(2026, 3, 10, 12, 0)  # noon UTC: daytime where the timezone is unknown


@pytest.fixture
def api(any_ws):
    any_ws.clock = FixedClock(NOW)
    return Api(any_ws)


def _at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat() + "Z"


def _track(api: Api, user: str, event: str, days_ago: float, **properties) -> None:
    body = {"userId": user, "event": event, "timestamp": _at(days_ago), "properties": properties}
    assert api.track("track", body).status_code == 200


def _order(api: Api, user: str, order_id: str, sku: str, days_ago: float, price: float) -> None:
    """An order of one product at `price` (an order line never changes a known price: it may carry a discount)."""
    line = {"sku": sku, "price": price}
    _track(api, user, "Order Completed", days_ago, order_id=order_id, total=price, products=[line])


def _products(api: Api, items: list[dict]) -> None:
    response = api.api("PUT", "/products", json=items)
    assert response.status_code == 200, response.text


def _stock(api: Api, changes: list[dict]) -> None:
    response = api.api("POST", "/products/stock", json=changes)
    assert response.status_code == 200, response.text


def _signals(api: Api) -> dict[str, list[tuple[str, dict]]]:
    """Fan out what changed, flush, and return every signal in the log: event -> [(user id, properties)]."""
    rounds.signal_catalog_changes(api.ws)
    users = dict(api.events("SELECT DISTINCT customer_id, user_id FROM events WHERE user_id IS NOT NULL"))
    rows = api.events("SELECT event, customer_id, properties FROM events WHERE source = 'catalog' ORDER BY message_id")
    out: dict[str, list[tuple[str, dict]]] = {}
    for event, customer_id, properties in rows:
        out.setdefault(event, []).append((users[customer_id], orjson.loads(properties)))
    return {event: sorted(items, key=lambda item: item[0]) for event, items in out.items()}


def _who(signals: dict, event: str) -> list[str]:
    return [user for user, _ in signals.get(event, [])]


def _pending(ws) -> int:
    with ws.uow.session() as s:
        return s.scalar(sa.select(sa.func.count()).where(CatalogChange.fanned_out_at.is_(None)))


def test_stock_endpoint_tells_each_interested_customer_once(api):
    _products(api, [{"sku": "MUG", "name": "Mug", "price": 12, "in_stock": False, "stock_quantity": 0}])
    _products(api, [{"sku": "CUP", "name": "Cup", "price": 5, "stock_quantity": 5}])
    _track(api, "ann", "Product Viewed", 2, sku="MUG")
    _track(api, "bob", "Product Added", 3, product_id="MUG", cart_id="c1")  # Segment's product_id works too
    _track(api, "cat", "Product Viewed", 40, sku="MUG")  # too long ago
    _track(api, "dan", "Product Viewed", 5, sku="MUG")
    _order(api, "dan", "o1", "MUG", 1, 12)  # bought it since
    _track(api, "eve", "Back In Stock Subscribed", 90, sku="MUG")  # asked: no window
    _track(api, "fay", "Product Viewed", 1, sku="CUP")
    _track(api, "gus", "Product Viewed", 1, sku="TEA")
    api.events()
    _stock(api, [{"sku": "MUG", "stock_quantity": 4}, {"sku": "CUP", "stock_quantity": 3}])  # CUP: 5 -> 3, no news
    signals = _signals(api)
    assert list(signals) == ["Back In Stock"]
    assert _who(signals, "Back In Stock") == ["ann", "bob", "eve"]
    assert signals["Back In Stock"][0][1] == {
        "sku": "MUG",
        "name": "Mug",
        "currency": None,
        "url": None,
        "price": 12.0,
        "stock_quantity": 4,
    }
    assert _pending(api.ws) == 0
    _stock(api, [{"sku": "MUG", "stock_quantity": 4}])  # the same change again: nothing changed
    assert rounds.signal_catalog_changes(api.ws) == {"changes": 0, "events": 0}
    # Sold out and back: the viewers hear again, eve's request was answered once.
    _stock(api, [{"sku": "MUG", "in_stock": False}])
    _stock(api, [{"sku": "MUG", "in_stock": True}])
    assert rounds.signal_catalog_changes(api.ws) == {"changes": 1, "events": 2}
    assert _who(_signals(api), "Back In Stock") == ["ann", "ann", "bob", "bob", "eve"]


def test_upsert_tells_of_lower_prices_and_stock_back(api):
    _products(api, [{"sku": "MUG", "price": 20, "currency": "EUR"}, {"sku": "POT", "price": 30, "in_stock": False}])
    _track(api, "ann", "Product Added to Wishlist", 1, sku="MUG")
    _track(api, "bob", "Product Viewed", 10, sku="MUG")
    _track(api, "cat", "Product Viewed", 9, sku="MUG")
    _order(api, "cat", "o1", "MUG", 8, 20)
    _track(api, "dan", "Product Viewed", 31, sku="MUG")
    _track(api, "eve", "Product Viewed", 2, sku="POT")
    api.events()
    _products(api, [{"sku": "MUG", "price": 15}, {"sku": "POT", "in_stock": True}])
    signals = _signals(api)
    assert _who(signals, "Price Dropped") == ["ann", "bob"]
    assert signals["Price Dropped"][0][1] == {
        "sku": "MUG",
        "name": None,
        "currency": "EUR",
        "url": None,
        "old_price": 20.0,
        "price": 15.0,
        "drop_percent": 25.0,
    }
    assert _who(signals, "Back In Stock") == ["eve"]
    _products(api, [{"sku": "MUG", "price": 18}])  # up: no news
    _products(api, [{"sku": "MUG", "price": 18}, {"sku": "POT", "in_stock": True}])  # replayed: nothing changed
    _products(api, [{"sku": "MUG", "price": 9, "currency": "USD"}])  # another currency: not comparable
    assert rounds.signal_catalog_changes(api.ws) == {"changes": 0, "events": 0}


def test_import_catalog_command_signals_what_the_feed_changed(ws, tmp_path):
    api = Api(ws)  # the command runs on the system clock, and so does this test
    now = ws.now()
    feed = tmp_path / "feed.csv"
    header = "sku,name,price,currency,available,quantity\n"
    feed.write_text(header + "MUG,Mug,20,EUR,no,0\nPOT,Pot,30,EUR,yes,5\n")

    def run() -> dict:
        result = CliRunner().invoke(cli, ["--home", str(ws.settings.home), "import", "catalog", str(feed), "--json"])
        assert result.exit_code == 0, result.output
        return orjson.loads(result.output)["extra"]

    assert run()["created"] == 2
    for user, sku in (("ann", "MUG"), ("bob", "POT")):
        body = {"userId": user, "event": "Product Viewed", "timestamp": (now - timedelta(days=1)).isoformat() + "Z"}
        api.track("track", {**body, "properties": {"sku": sku}})
    api.events()
    feed.write_text(header + "MUG,Mug,20,EUR,yes,3\nPOT,Pot,24,EUR,yes,2\n")  # MUG back, POT cheaper, stock 5 -> 2
    assert run()["updated"] == 2
    rounds.signal_catalog_changes(ws)
    rows = api.events("SELECT event, properties FROM events WHERE source = 'catalog' ORDER BY event")
    assert [(event, orjson.loads(p)["sku"]) for event, p in rows] == [
        ("Back In Stock", "MUG"),
        ("Price Dropped", "POT"),
    ]
    assert orjson.loads(rows[1][1])["drop_percent"] == 20.0
    assert run()["unchanged"] == 2  # the same feed again
    assert rounds.signal_catalog_changes(ws) == {"changes": 0, "events": 0}


def test_tracked_events_signal_only_the_prices_they_write(api):
    _products(api, [{"sku": "MUG", "name": "Mug", "price": 20, "in_stock": False}])
    _track(api, "ann", "Product Viewed", 3, sku="MUG", price=20)
    _track(api, "bob", "Product Viewed", 60, sku="MUG", price=20)
    api.events()
    assert _signals(api) == {}  # the price it already had
    # A browser says the mug costs less: the public key changes no known price, so nobody hears of it.
    listing = {"userId": "cat", "event": "Product List Viewed", "messageId": "list-1", "timestamp": _at(0)}
    api.track("track", {**listing, "properties": {"products": [{"sku": "MUG", "price": 1}]}})
    assert _signals(api) == {} and api.api("GET", "/products/MUG").json()["price"] == 20
    # The shop's server lists it at a lower price: the learner writes it (and never the stock).
    listing = {**listing, "messageId": "list-2"}
    api.track("track", {**listing, "properties": {"products": [{"sku": "MUG", "price": 16}]}}, server=True)
    signals = _signals(api)
    assert list(signals) == ["Price Dropped"] and _who(signals, "Price Dropped") == ["ann"]
    assert signals["Price Dropped"][0][1]["old_price"] == 20.0 and signals["Price Dropped"][0][1]["price"] == 16.0
    api.track("track", {**listing, "properties": {"products": [{"sku": "MUG", "price": 16}]}}, server=True)  # again
    _track(api, "cat", "Product Viewed", 0, sku="MUG", price=16)  # the same price
    _track(api, "cat", "Product Viewed", 0, sku="MUG", price=17)  # up
    assert _who(_signals(api), "Price Dropped") == ["ann"]
    assert api.api("GET", "/products/MUG").json()["in_stock"] is False


def test_a_failed_fan_out_leaves_the_change_pending_and_a_claimed_one_is_not_claimed_again(ws, monkeypatch):
    ws.clock = FixedClock(NOW)
    api = Api(ws)
    _products(api, [{"sku": "MUG", "price": 20}])
    _track(api, "ann", "Product Viewed", 1, sku="MUG")
    api.events()
    _products(api, [{"sku": "MUG", "price": 10}])

    def broken(session, events):
        raise RuntimeError("the store went away")

    monkeypatch.setattr(catalog_signals.own, "log_later", broken)
    with pytest.raises(RuntimeError):
        rounds.signal_catalog_changes(ws)
    assert _pending(ws) == 1  # the claim was rolled back with the events
    monkeypatch.undo()
    assert rounds.signal_catalog_changes(ws) == {"changes": 1, "events": 1}
    with ws.uow.session() as s:
        (change_id,) = s.scalars(sa.select(CatalogChange.id))
        assert claim(s, [change_id], at=NOW) == set()  # another worker, late: nothing to write
    assert _who(_signals(api), "Price Dropped") == ["ann"]


def test_back_in_stock_journey_sends_to_the_customer_who_waited(ws):
    ws.clock = FixedClock(NOW)
    ws.settings.guards = GuardSettings(global_control_share=0)
    api = Api(ws)
    with ws.uow.session() as s:
        templates.install(s, now=NOW)
        journeys.save(s, {**journeys_library.get("back_in_stock"), "control_share": 0}, now=NOW)
        journeys.set_status(s, "back_in_stock", "active", now=NOW)
    _products(api, [{"sku": "MUG", "name": "Blue mug", "price": 12, "stock_quantity": 0}])
    traits = {"email": "ann@example.org", "consents": {"email": True}}
    assert api.track("identify", {"userId": "ann", "timestamp": _at(5), "traits": traits}).status_code == 200
    _track(api, "ann", "Product Viewed", 2, sku="MUG")
    _track(api, "bob", "Product Viewed", 45, sku="MUG")
    rounds.ingest(ws)
    _stock(api, [{"sku": "MUG", "stock_quantity": 7}])
    # One pipeline round, as worker.run goes: catalog signals, then events to journeys, then messages.
    assert rounds.signal_catalog_changes(ws) == {"changes": 1, "events": 1}
    assert rounds.ingest(ws)["journeys"]["entered"] == 1
    assert rounds.tick(ws)["sent"] == 1
    with ws.uow.session() as s:
        message = s.scalars(sa.select(Message)).one()
        sandbox = s.scalars(sa.select(FakeChannelLog)).one()
    assert (message.template, message.channel, message.subject, message.status) == (
        "back_in_stock",
        "email",
        "MUG",
        "sent",
    )
    assert (sandbox.address, sandbox.template) == ("ann@example.org", "back_in_stock")


def test_an_order_at_a_discount_is_not_a_price_drop(api):
    _products(api, [{"sku": "MUG", "name": "Mug", "price": 20}])
    _track(api, "ann", "Product Viewed", 1, sku="MUG")
    _order(api, "bob", "o-1", "MUG", 0, price=12)  # a coupon, not a new price
    api.events()
    assert _signals(api) == {}
    assert api.api("GET", "/products/MUG").json()["price"] == 20


def _shop_with(ws, journey: str) -> Api:
    ws.clock = FixedClock(NOW)
    ws.settings.guards = GuardSettings(global_control_share=0)
    api = Api(ws)
    with ws.uow.session() as s:
        templates.install(s, now=NOW)
        journeys.save(s, {**journeys_library.get(journey), "control_share": 0}, now=NOW)
        journeys.set_status(s, journey, "active", now=NOW)
    traits = {"email": "ann@example.org", "consents": {"email": True}}
    assert api.track("identify", {"userId": "ann", "timestamp": _at(5), "traits": traits}).status_code == 200
    return api


def _statuses(ws) -> list[tuple]:
    with ws.uow.session() as s:
        return s.execute(sa.select(Message.template, Message.status, Message.reason)).all()


def test_a_back_in_stock_message_does_not_go_once_the_product_is_out_again(ws):
    api = _shop_with(ws, "back_in_stock")
    _products(api, [{"sku": "MUG", "name": "Blue mug", "price": 12, "stock_quantity": 0}])
    _track(api, "ann", "Product Viewed", 2, sku="MUG")
    rounds.ingest(ws)
    _stock(api, [{"sku": "MUG", "stock_quantity": 7}])
    rounds.signal_catalog_changes(ws)
    assert rounds.ingest(ws)["journeys"]["entered"] == 1
    _stock(api, [{"sku": "MUG", "stock_quantity": 0}])  # sold out again before the message left
    rounds.tick(ws)
    assert _statuses(ws) == [("back_in_stock", "suppressed", "purpose: the product is out of stock again")]


def test_a_price_drop_message_shows_the_old_price_and_does_not_go_once_the_price_is_back_up(ws):
    from boomerang.messaging.compose import Composer

    api = _shop_with(ws, "price_drop")
    _products(api, [{"sku": sku, "name": sku, "price": 20, "currency": "EUR"} for sku in ("MUG", "TEA")])
    _track(api, "ann", "Product Viewed", 2, sku="MUG")
    _track(api, "ann", "Product Viewed", 2, sku="TEA")
    rounds.ingest(ws)
    _products(api, [{"sku": "MUG", "price": 15}, {"sku": "TEA", "price": 15}])
    rounds.signal_catalog_changes(ws)
    assert rounds.ingest(ws)["journeys"]["entered"] == 2  # one instance per product
    _products(api, [{"sku": "TEA", "price": 25}])  # the tea's price goes back up before 10:00
    ws.clock.at = NOW + timedelta(hours=22)
    rounds.tick(ws)
    with ws.uow.session() as s:
        sent = {m.subject: (m.status, m.reason) for m in s.scalars(sa.select(Message))}
        mug = s.scalars(sa.select(Message).where(Message.subject == "MUG")).one()
        text = Composer(s, ws.links, ws.settings.messaging, now=NOW).compose(mug, "email", "ann@example.org").text
    assert sent == {"MUG": ("sent", None), "TEA": ("suppressed", "purpose: the price went back up")}
    assert "€15.00 instead of €20.00" in text, text
