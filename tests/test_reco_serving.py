"""Recommendation blocks served (issue 16): a small shop's catalog and history through the real API, a model trained
from its event log, and what each block shows: filters, fill-in chains, explanations, the control share, a new
product recommendable without training, bad input named, the write key's limits, and the CLI."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api_helpers import Api, basic
from boomerang.bootstrap import open_workspace
from boomerang.cli.app import app as cli
from boomerang.config import Settings
from boomerang.core.clock import FixedClock
from boomerang.orchestration import reco_training
from boomerang.orchestration.rounds import move_events
from boomerang.recommendations import service as reco_service
from reco_data import order

NOW = datetime(2026, 6, 1, 12, 0)
DAY = timedelta(days=1)
BEANS = [f"BEAN-{i}" for i in range(1, 7)]  # brands A, B, A, B, A, B; prices 10..15


def _products() -> list[dict]:
    products = [
        {
            "sku": sku,
            "name": f"Espresso beans {i}",
            "category": "Coffee > Beans",
            "brand": "AB"[i % 2],
            "price": 10.0 + i,
            "currency": "EUR",
            "url": f"https://shop.example.com/{sku}",
            "image_url": f"https://shop.example.com/{sku}.jpg",
        }
        for i, sku in enumerate(BEANS)
    ]
    products += [
        {
            "sku": "MUG-1",
            "name": "Stoneware mug",
            "category": "Coffee > Mugs",
            "brand": "C",
            "price": 12.0,
            "image_url": "https://shop.example.com/mug1.jpg",
        },
        {"sku": "MUG-2", "name": "Glass mug", "category": "Coffee > Mugs", "brand": "C", "price": 14.0},
        {
            "sku": "TEA-1",
            "name": "Green tea",
            "category": "Tea",
            "brand": "T",
            "price": 8.0,
            "image_url": "https://shop.example.com/tea1.jpg",
            "attributes": {"compare_at_price": 10.0},
        },
        {"sku": "TEA-2", "name": "Black tea", "category": "Tea", "brand": "T", "price": 7.0, "in_stock": False},
        {"sku": "<b>X</b>", "name": "<script>alert(1)</script>", "category": "Tea", "brand": "T", "price": 9.0},
    ]
    return products


def _view(n: int, user: str, at: datetime, sku: str) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Product Viewed",
        "timestamp": at.isoformat(),
        "messageId": f"v-{n}",
        "properties": {"sku": sku},
    }


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory, migrated_home) -> Path:
    """40 customers over 30 weeks: beans with MUG-1 in the same order, half of them rebuying their beans every
    two weeks, some tea; 'loyal' rebuys BEAN-3 every ten days; views of beans then mugs; and the model trained
    on it. Made once; each test works on a copy."""
    home = tmp_path_factory.mktemp("reco") / "ws"
    shutil.copytree(migrated_home, home)
    ws = open_workspace(Settings(home=home), clock=FixedClock(NOW))
    api = Api(ws)
    assert api.api("PUT", "/products", json=_products()).status_code == 200
    events, n = [], 0
    for c in range(40):
        user = f"u{c}"
        beans = BEANS[c % 6]
        start = NOW - 210 * DAY + c * DAY
        for week in range(0, 28, 2 if c % 2 == 0 else 12):
            n += 1
            skus = [beans, "MUG-1"] if week == 0 else [beans] + (["TEA-1"] if c % 3 == 0 else [])
            events.append(order(n, user, start + week * 7 * DAY, skus))
        events.append(_view(n, user, NOW - 3 * DAY, beans))
        events.append(_view(n + 1000, user, NOW - 2 * DAY, "MUG-2"))
    for k in range(20):
        n += 1
        events.append(order(n, "loyal", NOW - 200 * DAY + k * 10 * DAY, ["BEAN-3"]))
    for i in range(0, len(events), 100):
        response = api.client.post("/v1/batch", json={"batch": events[i : i + 100]}, headers=basic(api.secret_key))
        assert response.status_code == 200, response.text
    move_events(ws)
    trained = reco_training.train(ws.log, ws.settings.reco_model_path, now=ws.now())
    assert trained["trained"] and trained["counts"]["views"] == 80, trained
    (home / "trained.json").write_text(json.dumps(trained, default=str))
    ws.engine.dispose()
    return home


@pytest.fixture
def shop(trained_home, tmp_path) -> Api:
    """The trained shop, a copy of its own."""
    shutil.copytree(trained_home, tmp_path / "ws")
    return Api(open_workspace(Settings(home=tmp_path / "ws"), clock=FixedClock(NOW)))


def _get(api: Api, block: str, **params) -> dict:
    response = api.api("GET", f"/recommendations/{block}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _skus(result: dict) -> list[str]:
    return [i["sku"] for i in result["items"]]


def test_before_any_training_blocks_fill_from_the_catalog_best_sellers_first(shop):
    shop.ws.settings.reco_model_path.unlink()
    got = _get(shop, "empty_search")
    assert got["model_trained_at"] is None and got["variant"] in ("block", "control")
    assert len(got["items"]) == 8  # the block's size: ten of the eleven products are in stock
    assert "TEA-2" not in _skus(got)  # out of stock
    assert _skus(got)[0] == "BEAN-3"  # the most orders (the loyal customer's)
    assert {i["source"] for i in got["items"]} == {"popular"}


def test_training_learns_bought_together_personal_repeats_and_explains_them(shop):
    result = json.loads((shop.ws.settings.home / "trained.json").read_text())
    assert result["counts"]["purchases"] > 300 and result["counts"]["customers"] == 41
    assert {r["name"] for r in result["quality"]} >= {"popularity", "item_knn"}
    together = _get(shop, "bought_together", product="BEAN-2", customer="u0")
    first = together["items"][0]
    assert first["sku"] == "MUG-1" and first["source"] == "bought_together" and first["because"] == "BEAN-2"
    assert "often in the same order" in first["reason"]
    mine = _get(shop, "home", customer="loyal")
    assert mine["customer_id"] and mine["items"][0]["sku"] == "BEAN-3"
    assert mine["items"][0]["source"] == "personal" and mine["items"][0]["because"] == "BEAN-3"
    # the email block leaves out what they bought in the last 30 days
    assert "BEAN-3" not in _skus(_get(shop, "email", customer="loyal"))


def test_filters_price_window_brand_cap_stock_and_the_context_product(shop):
    page = _get(shop, "product_page", product="BEAN-1", customer="nobody-we-know")
    skus = _skus(page)
    assert page["customer_id"] is None  # an unknown customer gets the anonymous chain, not an error
    assert "BEAN-1" not in skus and "TEA-2" not in skus
    assert skus[0].startswith("BEAN-") and page["items"][0]["source"] == "similar"
    assert page["items"][0]["because"] == "BEAN-1"
    brands = [i["brand"] for i in page["items"]]
    assert max(brands.count(b) for b in set(brands)) <= 3  # max_per_brand
    prices = [i["price"] for i in page["items"] if i["price"] is not None]
    assert all(0.5 * 10 <= p <= 2.0 * 10 for p in prices)  # price_min_ratio / price_max_ratio of BEAN-1's 10
    discounted = {"name": "deals", "chain": ["popular"], "filters": {"discounted_only": True, "has_image": True}}
    assert shop.api("PUT", "/recommendations/blocks/deals", json=discounted).status_code == 200
    assert _skus(_get(shop, "deals")) == ["TEA-1"]


def test_the_cart_is_context_and_excluded(shop):
    got = _get(shop, "cart", cart="BEAN-4", customer="u9")
    assert got["items"][0]["sku"] == "MUG-1" and "BEAN-4" not in _skus(got)


def test_a_new_product_is_recommendable_without_training(shop, monkeypatch):
    monkeypatch.setattr(reco_service, "CHECK_SECONDS", 0.0)
    page = {"product": "BEAN-1", "customer": "visitor-1"}  # always the block's arm, never its control's
    _get(shop, "product_page", **page)  # the catalog as it was is loaded
    new = {
        "sku": "BEAN-NEW",
        "name": "Espresso beans 0 decaf",
        "category": "Coffee > Beans",
        "brand": "Z",
        "price": 10.0,
    }
    assert shop.api("PUT", "/products", json=[new]).status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # rebuilt in the background while the old catalog serves
        if "BEAN-NEW" in _skus(_get(shop, "product_page", **page)):
            break
        time.sleep(0.05)
    shown = {i["sku"]: i for i in _get(shop, "product_page", **page)["items"]}
    assert shown["BEAN-NEW"]["source"] == "similar" and shown["BEAN-NEW"]["because"] == "BEAN-1"


def test_a_share_of_visitors_sees_the_control_and_always_the_same(shop):
    block = {"name": "half", "chain": ["similar"], "context": "product", "control_share": 0.5}
    assert shop.api("PUT", "/recommendations/blocks/half", json=block).status_code == 200
    variants = {}
    for i in range(200):
        got = shop.client.get(
            "/v1/recommendations/half",
            params={"product": "BEAN-1", "anonymous_id": f"a{i}"},
            headers=basic(shop.write_key),
        )
        assert got.status_code == 200, got.text
        variants[i] = got.json()["variant"]
        if got.json()["variant"] == "control":
            assert {x["source"] for x in got.json()["items"]} == {"popular"}
    share = sum(v == "control" for v in variants.values()) / len(variants)
    assert 0.38 < share < 0.62
    again = shop.client.get(
        "/v1/recommendations/half", params={"product": "BEAN-1", "anonymous_id": "a7"}, headers=basic(shop.write_key)
    )
    assert again.json()["variant"] == variants[7]


def test_the_write_key_sees_a_visitor_only_as_their_browser_or_a_signed_user_id(shop):
    url = "/v1/recommendations/home"
    assert shop.client.get(url).status_code == 401
    assert shop.client.get(url, params={"writeKey": "bk_w_wrong"}).status_code == 401
    unsigned = shop.client.get(url, params={"user_id": "loyal"}, headers=basic(shop.write_key))
    assert unsigned.status_code == 200 and "customer_id" not in unsigned.json()
    assert all(i["source"] != "personal" for i in unsigned.json()["items"])  # not theirs without a signature
    forged = shop.client.get(url, params={"user_id": "loyal", "user_hash": "00" * 32}, headers=basic(shop.write_key))
    assert forged.status_code == 401 and forged.json()["errors"][0]["field"] == "user_hash"
    escaped = shop.client.get("/v1/recommendations/empty_search", params={"writeKey": shop.write_key, "size": 50})
    assert "<script>alert(1)</script>" in {i["name"] for i in escaped.json()["items"]}  # data as it is, JSON


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/recommendations/nope", {}, 404, "block"),
        ("/recommendations/product_page", {}, 400, "product"),
        ("/recommendations/product_page", {"product": "NOPE"}, 404, "product"),
        ("/recommendations/home", {"size": 0}, 400, "size"),
    ],
)
def test_bad_requests_name_the_field(shop, path, params, status, field):
    response = shop.api("GET", path, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body.get("field") == field or body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"chain": []}, "chain"),
        ({"chain": ["magic"]}, "chain"),
        ({"chain": ["popular"], "filters": {"categories": ["Shoes"]}}, "filters.categories.0"),
        ({"chain": ["popular"], "filters": {"price_min_ratio": 0.5}}, "body"),
        ({"chain": ["popular"], "size": 500}, "size"),
        ({"chain": ["popular"], "filters": {"in_stok": True}}, "filters.in_stok"),
    ],
)
def test_bad_blocks_are_refused_naming_the_field_and_nothing_is_stored(shop, block, field):
    response = shop.api("PUT", "/recommendations/blocks/mine", json=block)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field
    assert shop.api("GET", "/recommendations/blocks/mine").status_code == 404


def test_a_ready_made_block_edited_then_reset(shop):
    edited = {"title": "Ours", "context": "product", "chain": ["bought_together", "popular"], "size": 3}
    assert shop.api("PUT", "/recommendations/blocks/product_page", json=edited).status_code == 200
    listed = {b["name"]: b for b in shop.api("GET", "/recommendations/blocks").json()}
    assert listed["product_page"]["stored"] and listed["product_page"]["size"] == 3
    assert len(_get(shop, "product_page", product="BEAN-1")["items"]) == 3
    assert shop.api("DELETE", "/recommendations/blocks/product_page").json() == {"deleted": True}
    assert shop.api("GET", "/recommendations/blocks/product_page").json()["size"] == 8


def test_the_cli_trains_lists_and_recommends(shop, tmp_path):
    home, runner = ["--home", str(shop.ws.settings.home)], CliRunner()
    trained = runner.invoke(cli, [*home, "reco", "train", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.output)["trained"] is True
    shown = runner.invoke(cli, [*home, "reco", "recommend", "home", "--customer", "loyal", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["items"][0]["sku"] == "BEAN-3"
    table = runner.invoke(cli, [*home, "reco", "recommend", "bought_together", "--product", "BEAN-2"])
    assert table.exit_code == 0 and "MUG-1" in table.output and "often in the same order" in table.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: mine\nchain: [magic]\n")
    refused = runner.invoke(cli, [*home, "reco", "save", str(bad)])
    assert refused.exit_code != 0 and "chain" in refused.output and "magic" in refused.output
    good = tmp_path / "good.yaml"
    good.write_text("name: mine\nchain: [trending, popular]\nsize: 2\n")
    assert runner.invoke(cli, [*home, "reco", "save", str(good)]).exit_code == 0
    listed = json.loads(runner.invoke(cli, [*home, "reco", "blocks", "--json"]).output)
    assert {"name": "mine", "stored": True}.items() <= next(b for b in listed if b["name"] == "mine").items()


def test_an_erased_customer_leaves_the_trained_model(shop):
    from boomerang.recommendations import model as trained

    loyal = _get(shop, "home", customer="loyal")["customer_id"]
    assert trained.load(shop.ws.settings.reco_model_path).row(loyal) >= 0
    erased = shop.api("DELETE", f"/customers/{loyal}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["deleted"]["recommendation_model"] == 1
    model = trained.load(shop.ws.settings.reco_model_path)
    assert model.row(loyal) == -1 and loyal not in set(model.customers) and loyal not in model.viewed


def test_new_orders_reach_bought_together_without_training(shop, monkeypatch):
    monkeypatch.setattr(reco_service, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(reco_service, "ORDERS_SECONDS", 0.0)
    pair = [
        {"sku": "NEW-A", "name": "Pour-over kettle", "category": "Coffee > Kettles", "price": 40.0},
        {"sku": "NEW-B", "name": "Paper filters", "category": "Coffee > Filters", "price": 4.0},
    ]
    assert shop.api("PUT", "/products", json=pair).status_code == 200
    assert "NEW-B" not in _skus(_get(shop, "bought_together", product="NEW-A"))
    orders = [order(900 + i, f"kettle{i}", NOW - DAY, ["NEW-A", "NEW-B"]) for i in range(3)]
    assert shop.client.post("/v1/batch", json={"batch": orders}, headers=basic(shop.secret_key)).status_code == 200
    move_events(shop.ws)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # rebuilt in the background from the orders in the store
        first = _get(shop, "bought_together", product="NEW-A")["items"][0]
        if first["sku"] == "NEW-B":
            break
        time.sleep(0.05)
    assert (first["sku"], first["source"], first["because"]) == ("NEW-B", "bought_together", "NEW-A")
