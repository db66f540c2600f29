"""Recommendations on the dashboard: per-block performance from a hand-made event log (every figure worked out by
hand below), its API, and the blocks editor with its live preview in a real headless Chromium against a demo shop.

Set BOOMERANG_SCREENSHOTS=DIR to keep the browser's screenshots for a look."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api_helpers import Api
from boomerang.api.app import create_app
from boomerang.auth import users
from boomerang.catalog import service as catalog_service
from boomerang.catalog.schemas import ProductIn
from boomerang.core.clock import FixedClock
from boomerang.events.log import EVENT_COLUMNS
from boomerang.orchestration import reco_performance
from boomerang.recommendations import store
from boomerang.recommendations.blocks import READY_MADE
from browser_support import demo_server, login, shot

NOW = datetime(2024, 6, 30)  # the period: the 30 days from 2024-05-31
SHOWN, CLICKED, ORDER = "Product List Viewed", "Product Clicked", "Order Completed"


def _line(sku: str, price: float, quantity: int = 1) -> dict:
    return {"sku": sku, "price": price, "quantity": quantity}


# who, event, when, properties; a customer id, or ("anon", id) for a visitor the shop does not know
EVENTS = [
    # b1: shown "home" twice, clicks S1, buys 2 x S1 (attributed: 40) and S2 the next day; buys again 10 days later
    ("b1", SHOWN, "2024-06-10 10:00", {"list_id": "home", "variant": "block"}),
    ("b1", CLICKED, "2024-06-10 10:01", {"list_id": "home", "variant": "block", "sku": "S1", "position": 1}),
    ("b1", SHOWN, "2024-06-12 09:00", {"list_id": "home", "variant": "block"}),
    (
        "b1",
        ORDER,
        "2024-06-11 12:00",
        {"order_id": "o1", "revenue": 50.0, "products": [_line("S1", 20, 2), _line("S2", 10)]},
    ),
    ("b1", ORDER, "2024-06-20 12:00", {"order_id": "o2", "revenue": 30.0, "products": [_line("S1", 30)]}),
    # b2: clicks S3 twice, buys it once (attributed once: 15)
    ("b2", SHOWN, "2024-06-15 10:00", {"list_id": "home", "variant": "block"}),
    ("b2", CLICKED, "2024-06-15 10:01", {"list_id": "home", "variant": "block", "product_id": "S3"}),
    ("b2", CLICKED, "2024-06-16 10:01", {"list_id": "home", "variant": "block", "sku": "S3"}),
    ("b2", ORDER, "2024-06-18 12:00", {"order_id": "o3", "total": 15.0, "products": [_line("S3", 15)]}),
    # b3: clicks S4 and buys it nine days later: outside both windows
    ("b3", SHOWN, "2024-06-20 10:00", {"list_id": "home", "variant": "block"}),
    ("b3", CLICKED, "2024-06-20 10:01", {"list_id": "home", "variant": "block", "sku": "S4"}),
    ("b3", ORDER, "2024-06-29 12:00", {"order_id": "o4", "revenue": 99.0, "products": [_line("S4", 99)]}),
    (("anon", "a1"), SHOWN, "2024-06-21 10:00", {"list_id": "home", "variant": "block"}),
    # the control: c1 clicks S5 and buys it (12); c2's order is cancelled; d1 saw the control first, then the block
    ("c1", SHOWN, "2024-06-05 10:00", {"list_id": "home", "variant": "control"}),
    ("c1", CLICKED, "2024-06-05 10:01", {"list_id": "home", "variant": "control", "sku": "S5"}),
    ("c1", ORDER, "2024-06-06 12:00", {"order_id": "o5", "revenue": 12.0, "products": [_line("S5", 12)]}),
    ("c2", SHOWN, "2024-06-07 10:00", {"list_id": "home", "variant": "control"}),
    ("c2", ORDER, "2024-06-08 12:00", {"order_id": "o6", "revenue": 100.0, "products": [_line("S6", 100)]}),
    ("c2", "Order Cancelled", "2024-06-09 12:00", {"order_id": "o6"}),
    ("d1", SHOWN, "2024-06-01 10:00", {"list_id": "home", "variant": "control"}),
    ("d1", SHOWN, "2024-06-02 10:00", {"list_id": "home", "variant": "block"}),
    ("d1", ORDER, "2024-06-03 12:00", {"order_id": "o7", "revenue": 30.0}),
    # before the period: not counted
    ("c3", SHOWN, "2024-05-01 10:00", {"list_id": "home", "variant": "control"}),
    # another block, the variant not said: the block
    ("b1", SHOWN, "2024-06-25 10:00", {"list_id": "cart"}),
]


def events() -> pd.DataFrame:
    customers = [None if isinstance(who, tuple) else who for who, *_ in EVENTS]
    frame = pd.DataFrame(
        {
            "message_id": [f"m{i}" for i in range(len(EVENTS))],
            "type": "track",
            "event": [e[1] for e in EVENTS],
            "customer_id": pd.Series(customers, dtype="string"),
            "anonymous_id": pd.Series(
                [who[1] if isinstance(who, tuple) else None for who, *_ in EVENTS], dtype="string"
            ),
            "user_id": pd.Series(customers, dtype="string"),
            "timestamp": pd.to_datetime([e[2] for e in EVENTS]),
            "received_at": pd.Timestamp("2024-06-30"),
            "source": "test",
            "properties": [json.dumps(e[3]) for e in EVENTS],
            "context": "{}",
        }
    )
    return frame[EVENT_COLUMNS]


@pytest.fixture
def shop(ws):
    ws.log.append(events())
    ws.clock = FixedClock(NOW)
    return ws


def test_per_block_and_variant_figures_worked_out_by_hand(shop):
    result = reco_performance.compute(shop.log, now=NOW, days=30, min_control=3)
    assert result["since"] == datetime(2024, 5, 31) and result["window_days"] == 7
    by_name = {b["block"]: b for b in result["blocks"]}
    assert sorted(by_name) == ["cart", "home"]
    home = by_name["home"]["variants"]
    assert home["block"] == {
        "impressions": 6,  # b1 twice, b2, b3, a1, d1
        "visitors": 4,  # b1, b2, b3, a1 (d1 saw the control first)
        "clicks": 4,
        "ctr": pytest.approx(4 / 6),
        "orders": 2,  # o1, o3
        "revenue": 55.0,  # 2 x S1 at 20, S3 at 15
        "exposed_revenue": 65.0,  # o1 (50) and o3 (15) within 7 days of the first impression
        "exposed_revenue_sq": 50.0**2 + 15.0**2,  # for the interval: per visitor, squared
        "buyers": 2,
        "revenue_per_visitor": 16.25,
    }
    assert home["control"] == {
        "impressions": 3,  # c1, c2, d1 (c3 was before the period)
        "visitors": 3,
        "clicks": 1,
        "ctr": pytest.approx(1 / 3),
        "orders": 1,
        "revenue": 12.0,
        "exposed_revenue": 42.0,  # o5 (12), o7 (30); o6 was cancelled
        "exposed_revenue_sq": 12.0**2 + 30.0**2,
        "buyers": 2,
        "revenue_per_visitor": 14.0,
    }
    incremental = by_name["home"]["incremental"]
    assert {k: incremental[k] for k in ("block_visitors", "control_visitors", "revenue_per_visitor", "revenue")} == {
        "block_visitors": 4,
        "control_visitors": 3,
        "revenue_per_visitor": 2.25,
        "revenue": 9.0,  # (16.25 - 14) x 4
    }
    assert incremental["revenue_low"] < 0 < incremental["revenue_high"] and incremental["verdict"] == "unclear"
    assert incremental["reason"] is None and "Not enough data yet" in incremental["says"]
    cart = by_name["cart"]["variants"]
    assert cart["block"]["impressions"] == 1 and cart["block"]["visitors"] == 1 and cart["control"]["visitors"] == 0
    assert cart["control"]["ctr"] is None and cart["control"]["revenue_per_visitor"] is None
    assert by_name["cart"]["incremental"]["revenue"] is None


def test_no_incremental_figure_while_the_control_is_small(shop):
    result = reco_performance.compute(shop.log, now=NOW, blocks=["email"])  # 30 days, 30 control visitors needed
    by_name = {b["block"]: b for b in result["blocks"]}
    home = by_name["home"]["incremental"]
    assert home["revenue"] is None and home["control_visitors"] == 3 and home["block_visitors"] == 4
    assert home["reason"].startswith("not enough data") and "30" in home["reason"]
    assert by_name["email"]["variants"]["block"]["impressions"] == 0  # asked for: listed with zeros


def test_a_shorter_period_leaves_the_older_events_out(shop):
    result = reco_performance.compute(shop.log, now=NOW, days=10, min_control=1)
    home = {b["block"]: b for b in result["blocks"]}["home"]["variants"]
    assert home["block"]["impressions"] == 2 and home["block"]["visitors"] == 2  # b3, a1 from 2024-06-20
    assert home["control"]["impressions"] == 0
    with pytest.raises(Exception, match="days"):
        reco_performance.compute(shop.log, now=NOW, days=0)


def test_the_api_lists_every_block_with_its_figures(shop):
    api = Api(shop)
    response = api.api("GET", "/recommendations/performance?days=30")
    assert response.status_code == 200, response.text
    body = response.json()
    by_name = {b["block"]: b for b in body["blocks"]}
    assert {"home", "cart", "product_page", "email"} <= set(by_name)  # the ready-made ones, shown or not
    assert by_name["home"]["variants"]["block"]["revenue"] == 55.0
    assert by_name["home"]["incremental"]["revenue"] is None  # 3 control visitors
    assert api.api("GET", "/recommendations/performance?days=0").status_code == 400
    assert api.client.get("/api/recommendations/performance").status_code == 401  # the secret key is needed


# -- the pages, through the app (no browser) ---------------------------------------------------------------------


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _client(ws, role: str) -> TestClient:
    with ws.uow.session() as s:
        users.create_user(s, username=role, role=role, password="correct-horse", now=ws.now())
    client = TestClient(create_app(ws, background=False))
    token = _csrf(client.get("/login").text)
    client.post("/login", data={"username": role, "password": "correct-horse", "csrf_token": token})
    return client


@pytest.fixture
def catalog(shop):
    with shop.uow.session() as s:
        products = [
            ProductIn(sku=f"S{i}", name=f"Mug {i}", category="Kitchen > Mugs" if i < 4 else "Tea", price=10.0 * i)
            for i in range(1, 7)
        ]
        catalog_service.upsert_products(s, products, now=shop.now())
        s.commit()
    return shop


def _form(**changes) -> dict:
    form = {"name": "home", "title": "Picked for you", "context": "customer", "chain": ["personal", "popular"]}
    form.update({"in_stock": "on", "exclude_cart": "on", "size": "4", "control_share": "10", **changes})
    return form


def test_the_page_lists_the_blocks_with_their_figures(catalog):
    client = _client(catalog, "viewer")
    page = client.get("/recommendations?days=30")
    assert page.status_code == 200
    html = page.text
    assert 'data-block="home"' in html and "Personal picks → Recently viewed → Trending this week" in html
    assert "not enough data" in html and "55.00" in html  # home's attributed revenue, 3 control visitors
    assert 'id="train-form"' not in html and 'id="new-block"' not in html  # a viewer looks only
    assert "No model trained yet" in html and "blocks-chart-data" in html  # clicks and revenue per block


def test_a_marketer_saves_a_block_and_a_bad_value_is_named_on_its_field(catalog):
    client = _client(catalog, "marketer")
    token = _csrf(client.get("/recommendations/blocks/home").text)
    bad = client.post("/recommendations/blocks/home", data={**_form(categories=["Garden"]), "csrf_token": token})
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text and "no product is in the category" in bad.text
    assert re.search(r'data-error-for="categories">[^<]*Garden', bad.text)
    assert "<strong>Categories</strong>" in bad.text and "{" not in bad.text.split('id="form-errors"')[1][:300]
    share = client.post("/recommendations/blocks/home", data={**_form(control_share="80"), "csrf_token": token})
    assert share.status_code == 400 and 'data-error-for="control_share"' in share.text
    good = client.post(
        "/recommendations/blocks/home",
        data={**_form(categories=["Kitchen"], chain=["similar", "popular"]), "csrf_token": token},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/recommendations/blocks/home?saved=1"
    with catalog.uow.session() as s:
        saved = store.get(s, "home")
    assert saved.chain == ["similar", "popular"] and saved.filters.categories == ["Kitchen"]
    assert saved.size == 4 and saved.control_share == pytest.approx(0.1)
    reset = client.post("/recommendations/blocks/home/reset", data={"csrf_token": token}, follow_redirects=False)
    assert reset.headers["location"] == "/recommendations?reset=home"
    with catalog.uow.session() as s:
        assert store.get(s, "home").chain == READY_MADE["home"].chain


def test_the_preview_shows_the_unsaved_definition_with_reasons(catalog):
    client = _client(catalog, "viewer")
    token = _csrf(client.get("/recommendations/blocks/home").text)
    answer = client.post(
        "/recommendations/preview",
        data={**_form(categories=["Kitchen"]), "preview_customer": "b1", "csrf_token": token},
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert items and {i["sku"] for i in items} <= {"S1", "S2", "S3"}  # the unsaved category filter applies
    assert all(i["algorithm"] and i["reason"] for i in items)
    wrong = client.post("/recommendations/preview", data={**_form(size="0"), "csrf_token": token})
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["label"] == "Products shown"
    assert client.post("/recommendations/preview", data=_form()).status_code == 403  # no CSRF token
    viewer_save = client.post("/recommendations/blocks/home", data={**_form(), "csrf_token": token})
    assert viewer_save.status_code == 403


# -- in a real browser, on a demo shop ---------------------------------------------------------------------------

EXPECTED_ERRORS = ("status of 400",)  # saving a category filter no product is in, on purpose


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with demo_server(tmp_path_factory.mktemp("reco") / "ws", customers=150, days=60) as found:
        yield found


def _preview_settled(page) -> list[dict]:
    page.wait_for_selector("#preview[data-state=ok]", timeout=20_000)
    return page.eval_on_selector_all(
        "#preview-items li",
        "rows => rows.map(r => ({sku: r.dataset.sku, source: r.dataset.source, category: r.dataset.category}))",
    )


def _until(page, script: str, arg=None, timeout: float = 20.0) -> None:
    """Wait until the page function returns true (evaluated as a function: the page's CSP forbids eval, which
    wait_for_function's polling needs)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"not true within {timeout} s: {script}"
        page.wait_for_timeout(50)


def _chain(page) -> list[str]:
    return page.eval_on_selector_all("#chain-rows select", "selects => selects.map(s => s.value)")


@pytest.mark.browser
def test_train_edit_preview_save_and_a_bad_value_named_on_its_field(page, server):
    login(page, server["admin"], "/recommendations")
    assert page.inner_text("h1") == "Recommendations"
    assert page.locator("#blocks-table tr[data-block=home]").count() == 1
    page.click("#train-form button[type=submit]")
    page.wait_for_selector("#training-status .working, #done", timeout=10_000)  # it says it is working
    page.wait_for_url("**/recommendations?trained=1#quality", timeout=180_000)
    outcome = page.inner_text("#done")
    assert "Training finished" in outcome and "Trained" in page.inner_text("#quality"), outcome
    assert page.locator("#quality-table tbody tr").count() >= 3
    shot(page, "reco-blocks")

    page.click("#blocks-table tr[data-block=home] a")
    page.wait_for_url("**/recommendations/blocks/home")
    before = _preview_settled(page)
    assert before and all(i["source"] for i in before)
    assert all(page.locator("#preview-items .reco-reason").all_inner_texts())

    # the chain: down to best sellers alone, then trending added and moved before them
    for _ in range(3):
        page.click("#chain-rows li:first-child button[data-move=remove]")
    assert _chain(page) == ["popular"]
    _until(page, "() => [...document.querySelectorAll('#preview-items li')].every(l => l.dataset.source === 'popular')")
    page.click("#add-step")
    page.select_option("#chain-rows li:last-child select", "trending")
    assert "grew most" in page.inner_text("#chain-rows li:last-child .step-description")
    page.click("#chain-rows li:last-child button[data-move=up]")
    assert _chain(page) == ["trending", "popular"]

    # a category filter: every product of the preview is in it
    category = page.eval_on_selector("#f-categories", "s => s.options[0].value")
    page.select_option("#f-categories", [category])
    _until(
        page,
        "c => { const rows = [...document.querySelectorAll('#preview[data-state=ok] #preview-items li')];"
        " return rows.length > 0 && rows.every(l => l.dataset.category === c || l.dataset.category.startsWith(c + ' >')); }",
        category,
    )
    assert _preview_settled(page) != before
    shot(page, "reco-block-editor")

    page.click("#save-button")
    page.wait_for_url("**/recommendations/blocks/home?saved=1")
    assert "Saved" in page.inner_text("#saved") and _chain(page) == ["trending", "popular"]
    assert page.eval_on_selector("#f-categories", "s => [...s.selectedOptions].map(o => o.value)") == [category]

    # a category no product is in (gone from the catalog since the page was loaded): named on its field
    page.eval_on_selector(
        "#f-categories",
        "s => { const o = new Option('Nowhere > Nothing', 'Nowhere > Nothing', true, true); s.add(o); }",
    )
    page.click("#save-button")
    page.wait_for_selector("#form-errors")
    assert page.get_attribute("#f-categories", "aria-invalid") == "true"
    assert "no product is in the category 'Nowhere > Nothing'" in page.inner_text("[data-error-for=categories]")
    assert "Categories" in page.inner_text("#form-errors")
    shot(page, "reco-block-error")

    # at 390 px nothing sticks out of the page, then back to the ready-made block
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/recommendations/blocks/home")
    _preview_settled(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "reco-block-phone")
    page.once("dialog", lambda dialog: dialog.accept())  # "Forget your changes to this block?"
    page.click("#reset-form button")
    page.wait_for_url("**/recommendations?reset=home")
    assert "ready-made" in page.inner_text("#done")
    page.goto("/recommendations")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "reco-blocks-phone")


@pytest.mark.browser
def test_a_viewer_previews_but_changes_nothing(page, server):
    login(page, server["viewer"], "/recommendations/blocks/product_page")
    assert _preview_settled(page)  # a product page's block, previewed for the demo's latest in-stock product
    assert page.locator("#save-button, #reset-form").count() == 0
    page.goto("/recommendations")
    assert page.locator("#train-form, #new-block").count() == 0
