"""The recommendations widget (/v1/recommendations.js) in a real headless Chromium: a shop's pages on another
loopback origin embed it with one script tag; against `boomerang serve` it renders each placeholder's block as
text with safe links, remembers the product pages a visitor saw and sends them as `recent`, and its impressions
and clicks land in the workspace as `Product List Viewed` / `Product Clicked` with the block and the variant."""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from boomerang.auth.service import create_key, user_hash
from boomerang.bootstrap import open_workspace
from boomerang.catalog.models import Product
from boomerang.catalog.schemas import ProductIn
from boomerang.catalog.service import upsert_products
from boomerang.config import Settings
from boomerang.core.vocab import VERIFIED
from boomerang.events import debugger
from boomerang.recommendations import store
from boomerang.recommendations.blocks import READY_MADE
from browser_support import need_browser, serving

pytestmark = pytest.mark.browser
EXPECTED_ERRORS = ("status of 404",)  # the page asking for a block that does not exist, on purpose
T0 = datetime(2026, 3, 1, 10, 0)
HOSTILE = '<img src=x onerror="window.__pwned=1">Mug'
PRODUCTS = [  # one category, prices within the product page's window, no brand: every block shows them all
    ("MUG-1", "Blue mug", 12.5, "EUR"),
    ("MUG-2", "Red mug", 14.0, "EUR"),
    ("MUG-3", HOSTILE, 13.0, "EUR"),
    ("MUG-5", "Yellow mug", 15.0, "USD"),
]
IMAGE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="{h}"><rect width="8" height="{h}" fill="#c33"/></svg>'
)
USER = "shopper-7"
CUSTOM = """window.shopCards = (block, el) => {
  for (const item of block.items.filter((i) => /^https?:/.test(i.url || ""))) {
    const a = document.createElement("a");
    a.className = "our-card"; a.href = item.url; a.dataset.boomerangSku = item.sku; a.textContent = item.sku;
    el.append(a);
  }
};"""  # the shop's own cards: the widget still tracks their impressions and clicks


class Shop:
    """The shop's own site, on its own loopback origin: product pages, a home page far below the fold, an account
    page of a signed-in customer and a page asking for a block that does not exist."""

    def __init__(self) -> None:
        self.boomerang = self.write_key = self.signature = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                path = urlsplit(self.path).path
                if path.startswith("/img/"):  # /img/tall.svg pushes what follows far below the fold
                    return self._send(200, IMAGE.format(h=3000 if "tall" in path else 8).encode(), "image/svg+xml")
                page = shop.page(path)
                return self._send(200 if page else 404, (page or "not here").encode(), "text/html; charset=utf-8")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Security-Policy", shop.policy)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def policy(self) -> str:
        """A strict CSP (no inline styles): the widget must work under it; any violation fails the test."""
        return (
            f"default-src 'self'; script-src {self.boomerang} 'unsafe-inline'; connect-src {self.boomerang}; "
            "style-src 'self'; img-src 'self'"
        )

    def page(self, path: str) -> str | None:
        tag = f'<script async src="{self.boomerang}/v1/recommendations.js" data-write-key="{self.write_key}"'
        if path.startswith("/product/"):
            sku = path.removeprefix("/product/")
            body = (
                f'<h1>{html.escape(sku)}</h1><div data-boomerang-block="product_page" data-product="{sku}"></div>'
                f'<div data-boomerang-block="bought_together" data-product="{sku}" data-size="2"></div>'
            )
        elif path == "/home":
            body = '<h1>Home</h1><img src="/img/tall.svg" alt=""><div data-boomerang-block="home"></div>'
        elif path == "/account":
            tag += f' data-user-id="{USER}" data-user-hash="{self.signature}"'
            body = '<h1>Your account</h1><div data-boomerang-block="home" data-size="3"></div>'
        elif path == "/custom":
            body = '<h1>Ours</h1><div data-boomerang-block="home" data-template="shopCards"></div>'
            body += f"<script>{CUSTOM}</script>"
        elif path == "/broken":
            body = '<h1>Oops</h1><div data-boomerang-block="no_such_block">kept empty</div>'
        else:
            return None
        head = f"<title>Shop {path}</title>{tag}></script>"
        return f'<!doctype html><html lang="en-US"><head>{head}</head><body>{body}</body></html>'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A catalog, a write key and an identity key; the shop's site, and `boomerang serve` letting its origin in."""
    need_browser()
    shop = Shop()
    shop.thread.start()
    home = tmp_path_factory.mktemp("reco-widget") / "ws"
    ws = open_workspace(Settings(home=home))
    with ws.uow.session() as s:
        _, shop.write_key = create_key(s, kind="write", name="site", now=T0)
        _, identity = create_key(s, kind="identity", name="shop server", now=T0, secret=ws.secret)
        products = [
            ProductIn(
                sku=sku,
                name=name,
                price=price,
                currency=currency,
                category="Kitchen > Mugs",
                url=f"{shop.base}/product/{sku}",
                image_url=f"{shop.base}/img/{sku}.svg",
            )
            for sku, name, price, currency in PRODUCTS
        ]
        upsert_products(s, products, now=T0)
        # Stored before the API checked addresses: the widget must not turn it into a link.
        s.add(
            Product(
                sku="MUG-4",
                name="Green mug",
                price=11.0,
                currency="EUR",
                category="Kitchen > Mugs",
                url="javascript:window.__pwned=2",
                attributes={},
                created_at=T0,
                updated_at=T0,
            )
        )
        # The home block without its control share, so that what it shows is known.
        store.save(s, READY_MADE["home"].model_copy(update={"control_share": 0.0}), by="test", now=T0)
        s.commit()
    shop.signature = user_hash(identity, USER)
    env = {"BOOMERANG_CORS_ORIGINS": json.dumps([shop.base])}
    try:
        with serving(home, env) as base:
            shop.boomerang = base
            yield {"base": shop.base, "boomerang": base, "ws": ws, "signature": shop.signature}
    finally:
        shop.server.shutdown()
        ws.engine.dispose()


def _until(found: Callable[[], object], what: str, timeout: float = 20.0):
    """Poll until `found` gives something (events reach the inbox, then the log, while serve runs)."""
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)
    return result


def _events(ws, name: str, visitor: str, **properties) -> list[dict]:
    """The workspace's events of that name from that visitor whose properties include these."""
    with ws.uow.session() as s:
        rows, _ = debugger.latest(s, ws.log, debugger.Filters(event=name, user=visitor, source="all"), limit=100)
    return [r for r in rows if r["event"] == name and all(r["properties"].get(k) == v for k, v in properties.items())]


def _ready(page, block: str) -> None:
    page.wait_for_selector(f'[data-boomerang-block="{block}"][data-boomerang-state=ready]', timeout=15_000)


def _block_answer(page, path: str, block: str) -> tuple[dict, dict]:
    """Open the page; the block's request's parameters and the answer it got."""
    with page.expect_response(lambda r: f"/v1/recommendations/{block}?" in r.url) as answer:
        page.goto(path)
    response = answer.value
    assert response.status == 200, response.text()
    return {k: v[0] for k, v in parse_qs(urlsplit(response.url).query).items()}, response.json()


def test_the_script_is_served_with_cache_headers(server):
    script = httpx.get(f"{server['boomerang']}/v1/recommendations.js")
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "max-age=" in script.headers["cache-control"] and script.headers["x-content-type-options"] == "nosniff"
    assert "Product List Viewed" in script.text and "innerHTML" not in script.text
    again = httpx.get(f"{server['boomerang']}/v1/recommendations.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_blocks_render_as_text_with_prices_and_safe_links(page, server):
    page.goto("/product/MUG-1")
    _ready(page, "product_page")
    _ready(page, "bought_together")
    block = page.locator('[data-boomerang-block="product_page"]')
    assert block.locator("h2.boomerang-title").inner_text() == "You may also like"
    names = block.locator(".boomerang-name").all_inner_texts()
    assert sorted(names) == sorted(["Red mug", HOSTILE, "Green mug", "Yellow mug"])  # the page's own is left out
    assert page.evaluate("window.__pwned") is None and page.locator("img:not(.boomerang-image)").count() == 0
    red = block.locator('[data-boomerang-sku="MUG-2"]')
    assert red.locator(".boomerang-price").inner_text() == "€14.00"
    assert block.locator('[data-boomerang-sku="MUG-5"] .boomerang-price').inner_text() == "$15.00"
    assert red.locator("a.boomerang-link").get_attribute("href") == f"{server['base']}/product/MUG-2"
    assert red.locator("img.boomerang-image").get_attribute("src") == f"{server['base']}/img/MUG-2.svg"
    assert block.locator('[data-boomerang-sku="MUG-4"] a').count() == 0  # a javascript: address is no link
    assert page.locator('[data-boomerang-block="bought_together"] .boomerang-item').count() == 2  # data-size
    styled = "el => getComputedStyle(el).display"  # the default styles hold under the shop's strict CSP
    assert block.locator(".boomerang-items").evaluate(styled) == "grid"
    labelled = block.locator("section.boomerang-block").get_attribute("aria-labelledby")
    assert page.locator(f"#{labelled}").inner_text() == "You may also like"


def test_a_shop_renders_its_own_cards_and_they_are_still_tracked(page, server):
    page.goto("/custom")
    _ready(page, "home")
    assert page.locator(".boomerang-item").count() == 0 and page.locator("a.our-card").count() == 4
    with page.expect_request(lambda r: r.url.endswith("/v1/track") and "Product Clicked" in r.post_data) as click:
        page.click('a.our-card[data-boomerang-sku="MUG-2"]')
    message = json.loads(click.value.post_data)
    assert message["properties"]["list_id"] == "home" and message["properties"]["sku"] == "MUG-2"
    assert message["context"]["library"]["name"] == "boomerang-widget"


def test_a_failed_block_leaves_its_placeholder_empty(page, server):
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.goto("/broken")
    page.wait_for_selector('[data-boomerang-block="no_such_block"][data-boomerang-state=error]', state="attached")
    assert page.inner_text('[data-boomerang-block="no_such_block"]') == ""
    assert any("no_such_block" in w for w in warnings), warnings


def test_impressions_and_clicks_land_in_the_workspace(page, server):
    ws = server["ws"]
    params, answer = _block_answer(page, "/product/MUG-1", "product_page")
    _ready(page, "product_page")
    visitor = page.evaluate("localStorage.getItem('boomerang_anonymous_id')")
    assert visitor and params["anonymous_id"] == visitor and params["product"] == "MUG-1"
    variant, shown = answer["variant"], [i["sku"] for i in answer["items"]]
    viewed = _until(lambda: _events(ws, "Product List Viewed", visitor, list_id="product_page"), "impression")
    assert len(viewed) == 1 and viewed[0]["anonymous_id"] == visitor
    props, context = viewed[0]["properties"], viewed[0]["context"]
    assert props["variant"] == variant and [p["sku"] for p in props["products"]] == shown
    assert [p["position"] for p in props["products"]] == list(range(1, len(shown) + 1))
    assert context["library"]["name"] == "boomerang-widget" and context["page"]["path"] == "/product/MUG-1"
    assert context["page"]["title"] == "Shop /product/MUG-1" and context["page"]["url"].startswith(server["base"])

    red = next(i for i in answer["items"] if i["sku"] == "MUG-2")
    page.click('[data-boomerang-block="product_page"] [data-boomerang-sku="MUG-2"] a')
    page.wait_for_url(f"{server['base']}/product/MUG-2")  # the click navigates away at once: the event survives
    clicked = _until(lambda: _events(ws, "Product Clicked", visitor, list_id="product_page"), "click")
    props = clicked[0]["properties"]
    assert props["variant"] == variant and props["sku"] == props["product_id"] == "MUG-2"
    assert props["position"] == red["position"] and props["name"] == "Red mug" and props["price"] == 14.0
    assert props["url"] == f"{server['base']}/product/MUG-2"
    assert clicked[0]["context"]["page"]["path"] == "/product/MUG-1"  # where the click was


def test_an_impression_waits_until_the_block_is_seen(page, server):
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if r.url.endswith("/v1/track") else None)
    page.goto("/home")  # the block is 3000 px down
    _ready(page, "home")
    page.wait_for_load_state("networkidle")
    assert not any("Product List Viewed" in body for body in sent)
    with page.expect_request(lambda r: r.url.endswith("/v1/track")) as impression:
        page.locator('[data-boomerang-block="home"]').scroll_into_view_if_needed()
    message = json.loads(impression.value.post_data)
    assert message["event"] == "Product List Viewed" and message["properties"]["list_id"] == "home"
    assert message["properties"]["variant"] == "block"


def test_product_pages_seen_are_sent_as_recent(page, server):
    page.context.add_init_script("localStorage.setItem('ajs_anonymous_id', JSON.stringify('ajs-visitor-1'))")
    params, _ = _block_answer(page, "/home", "home")
    assert "recent" not in params and params["anonymous_id"] == "ajs-visitor-1"  # analytics.js's id, reused
    _block_answer(page, "/product/MUG-3", "product_page")
    params, answer = _block_answer(page, "/home", "home")
    assert params["recent"] == "MUG-3"
    _block_answer(page, "/product/MUG-5", "product_page")
    params, answer = _block_answer(page, "/home", "home")
    assert params["recent"] == "MUG-5,MUG-3"
    assert page.evaluate("JSON.parse(localStorage.getItem('boomerang_recent'))") == ["MUG-5", "MUG-3"]
    first = answer["items"][:2]  # home's chain: personal (nothing known yet), then what they viewed last
    assert [(i["sku"], i["source"]) for i in first] == [("MUG-5", "recently_viewed"), ("MUG-3", "recently_viewed")]
    _ready(page, "home")
    assert page.locator('[data-boomerang-block="home"] .boomerang-name').first.inner_text() == "Yellow mug"


def test_a_signed_in_customer_is_asked_for_and_tracked_by_their_user_id(page, server):
    params, _ = _block_answer(page, "/account", "home")
    assert params["user_id"] == USER and params["user_hash"] == server["signature"]
    _ready(page, "home")
    page.click('[data-boomerang-block="home"] .boomerang-item:first-child a')
    clicked = _until(lambda: _events(server["ws"], "Product Clicked", USER, list_id="home"), "click")
    assert clicked[0]["user_id"] == USER and clicked[0]["key"] == debugger.KEYS[VERIFIED]  # the signature held
