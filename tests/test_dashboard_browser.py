"""The dashboard in a real headless Chromium (Debian's), driven by Playwright, against `boomerang serve` on a demo shop.

Screenshots are decoded (a small PNG reader below, standard library only) and must not be blank.
Set BOOMERANG_SCREENSHOTS=DIR to keep them for a look.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.browser


def _need_browser():
    problem = None
    if not CHROMIUM.exists():
        problem = "Debian's chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(b for j in range(0, stride, 4) for b in line[j:j + 3]))
        previous = line
    return width, height, rows


def colours(png: bytes) -> tuple[int, float]:
    """How many distinct colours, and the share of pixels unlike the most common one (the background)."""
    width, height, rows = decode_png(png)
    counts: dict[bytes, int] = {}
    for row in rows:
        for x in range(0, width * 3, 3):
            pixel = row[x:x + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    return len(counts), 1 - max(counts.values()) / (width * height)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(home, *args) -> dict:
    done = subprocess.run([sys.executable, "-m", "boomerang", "--home", str(home), *args, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A demo shop (200 customers, 90 days), a viewer besides the demo's admin, and `boomerang serve` on it."""
    _need_browser()
    home = tmp_path_factory.mktemp("dashboard") / "ws"
    demo = _cli(home, "demo", "--no-serve", "--customers", "200", "--days", "90")
    viewer = _cli(home, "users", "create", "--username", "vera", "--role", "viewer")
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "boomerang", "--home", str(home), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(proc.stdout.read())
    yield {"base": base, "admin": demo["dashboard"], "viewer": viewer}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh browser context; console errors and page errors (a CSP violation, say) fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server["base"])
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.problems = problems
    yield tab
    context.close()
    expected = ("status of 401", "status of 403")  # a wrong password, a page the role may not see
    assert [p for p in problems if not any(e in p for e in expected)] == []


def shot(page, name: str, **kw) -> bytes:
    png = page.screenshot(full_page=True, **kw)
    keep = os.environ.get("BOOMERANG_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{name}.png").write_bytes(png)
    distinct, busy = colours(png)
    assert distinct > 40 and busy > 0.02, f"{name} looks blank: {distinct} colours, {busy:.1%} non-background"
    return png


def login(page, who: dict, next_: str = "/") -> None:
    page.goto(f"/login?next={next_}" if next_ != "/" else "/")
    page.fill("input[name=username]", who["username"])
    page.fill("input[name=password]", who["password"])
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def chart_pixels(page, selector: str) -> int:
    """How many pixels of the chart's canvas Chart.js painted."""
    page.wait_for_selector(f"{selector}[data-rendered=true]", timeout=15_000)
    return page.eval_on_selector(selector, """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")


def test_login_and_overview_with_charts(page, server):
    page.goto("/")
    assert page.url.endswith("/login")
    shot(page, "login")
    page.fill("input[name=username]", server["admin"]["username"])
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.inner_text(".error")
    login(page, server["admin"])
    assert page.url == server["base"] + "/"
    assert page.inner_text("h1") == "Overview"
    tiles = page.inner_text(".tiles")
    for label in ("CUSTOMERS", "IDENTIFIED", "ORDERS", "REVENUE", "REPEAT PURCHASE RATE", "RETENTION RATE",
                  "CHURN RATE", "AVERAGE ORDER VALUE", "NPS"):
        assert label in tiles.upper()
    assert chart_pixels(page, "#sales-chart") > 2000
    assert chart_pixels(page, "#activity-chart") > 500
    shot(page, "overview")
    canvas = page.locator("#sales-chart").screenshot()
    distinct, busy = colours(canvas)
    assert distinct > 20 and busy > 0.02
    page.select_option("select[name=interval]", "week")  # submits by itself
    page.wait_for_url("**interval=week**")
    assert chart_pixels(page, "#sales-chart") > 2000 and "per week" in page.inner_text("h2")


def test_cohorts_rfm_and_funnel_pages(page, server):
    login(page, server["admin"], "/cohorts")
    assert page.url.endswith("/cohorts")
    assert page.locator("#cohort-table tbody tr").count() >= 3
    assert page.locator("#cohort-table td.heat-10").count() >= 3
    shot(page, "cohorts")

    page.click("nav >> text=RFM")
    assert page.locator("#rfm-grid tbody tr").count() == 5 and page.locator("#rfm-grid tbody td").count() == 25
    assert page.locator("#rfm-groups tbody tr").count() == 11
    shot(page, "rfm")

    page.click("nav >> text=Funnel")
    assert chart_pixels(page, "#funnel-chart") > 1000
    leaks = page.inner_text("#leaks")
    assert "→" in leaks and "drop-off" in leaks
    assert page.locator("#funnel-categories tbody tr").count() >= 2
    shot(page, "funnel")
    category = page.inner_text("#funnel-categories tbody tr:first-child td:first-child a")
    page.click("#funnel-categories tbody tr:first-child td:first-child a")
    assert page.input_value("input[name=category]") == category
    assert chart_pixels(page, "#funnel-chart") > 500


def test_customer_list_and_page(page, server):
    login(page, server["admin"], "/customers")
    assert page.locator("#customers tbody tr").count() == 50
    email = page.inner_text("#customers tbody tr:nth-child(3) td:nth-child(3)")
    page.fill("input[name=q]", email)
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state("networkidle")
    assert page.locator("#customers tbody tr").count() == 1
    page.click("#customers tbody tr:first-child a")
    page.wait_for_load_state("networkidle")
    assert "/customers/" in page.url
    assert email in page.inner_text("main")
    assert page.locator("#identities tbody tr").count() >= 1
    assert page.locator("#timeline li").count() >= 1
    assert "predicted clv" in page.inner_text("main").lower()  # the demo stores predictions: values, or none for non-buyers
    shot(page, "customer")


def test_a_customer_with_orders_shows_their_rfm_group(page, server):
    login(page, server["admin"], "/rfm")
    page.goto("/customers?page=2")
    for link in page.locator("#customers tbody a").all()[:50]:
        href = link.get_attribute("href")
        page.goto(href)
        if page.locator("#rfm-group").count():
            break
        page.go_back()
    else:
        pytest.fail("no customer on page 2 with an RFM group")
    assert page.inner_text("#rfm-group").strip()
    assert page.locator("details.order").count() >= 1
    page.locator("details.order summary").first.click()
    assert page.locator("details.order[open] table tbody tr").count() >= 1
    shot(page, "customer-with-orders")


def test_a_viewer_sees_pages_but_not_users(page, server):
    login(page, server["viewer"])
    assert page.locator("nav a", has_text="Users").count() == 0
    assert page.inner_text(".who .badge") == "viewer"
    response = page.goto("/users")
    assert response.status == 403 and "Not allowed" in page.inner_text("h1")
    page.goto("/")
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/login")
    assert page.goto("/rfm").url.endswith("/login?next=/rfm")


def test_an_admin_creates_and_disables_a_user(page, server, browser):
    login(page, server["admin"], "/users")
    page.fill("#create-user input[name=username]", "mia")
    page.select_option("#create-user select[name=role]", "marketer")
    page.click("#create-user button[type=submit]")
    password = page.inner_text("#new-password")
    shot(page, "users")
    other = browser.new_context(base_url=server["base"]).new_page()
    login(other, {"username": "mia", "password": password})
    assert other.inner_text(".who .badge") == "marketer"
    page.goto("/users")
    page.locator("#users tr", has_text="mia").locator("button:has-text('Disable')").click()
    page.wait_for_load_state("networkidle")
    assert "disabled" in page.locator("#users tr", has_text="mia").inner_text()
    assert other.goto("/funnel").url.endswith("/login?next=/funnel")
    other.context.close()


def test_the_layout_fits_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server["base"])
    tab = context.new_page()
    login(tab, server["admin"])
    assert chart_pixels(tab, "#sales-chart") > 500
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    shot(tab, "overview-phone")
    context.close()


def test_png_reader_sees_a_blank_image_as_blank():
    width = height = 8
    rows = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    assert colours(png) == (1, 0.0)
