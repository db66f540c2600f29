"""What the browser tests share: Debian's chromium through Playwright, `boomerang serve` on a workspace,
a fresh page per test whose console errors fail it, logging in, counting a chart's painted pixels.

A test module defines its own `server` fixture (a dict with at least "base"); the `browser` and `page`
fixtures (conftest.py) use it. `EXPECTED_ERRORS` in the module lists console errors its tests cause on purpose.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from serve_support import start_serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def need_browser():
    problem = None
    if not CHROMIUM.exists():
        problem = "Debian's chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401 - is it installed
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@contextmanager
def serving(home: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`boomerang serve` on the workspace in its own process, until the block ends; yields its base URL."""
    base, proc = start_serve(home, {**os.environ, **(env or {})})
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def cli_json(home: Path, *args: str) -> dict:
    """`boomerang --home HOME ARGS --json` in its own process; its answer."""
    done = subprocess.run(
        [sys.executable, "-m", "boomerang", "--home", str(home), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@contextmanager
def demo_server(home: Path, customers: int, days: int) -> Iterator[dict]:
    """A demo shop, a viewer ("vera") besides the demo's admin, and `boomerang serve` on it: base, admin, viewer."""
    need_browser()
    demo = cli_json(home, "demo", "--no-serve", "--customers", str(customers), "--days", str(days))
    viewer = cli_json(home, "users", "create", "--username", "vera", "--role", "viewer")
    with serving(home) as base:
        yield {"base": base, "admin": demo["dashboard"], "viewer": viewer}


def login(page, who: dict, next_: str = "/") -> None:
    page.goto(f"/login?next={next_}" if next_ != "/" else "/")
    page.fill("input[name=username]", who["username"])
    page.fill("input[name=password]", who["password"])
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def chart_pixels(page, selector: str) -> int:
    """How many pixels of the chart's canvas Chart.js painted."""
    page.wait_for_selector(f"{selector}[data-rendered=true]", timeout=15_000)
    return page.eval_on_selector(
        selector,
        """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
    )


def shot(page, name: str, **kw) -> bytes:
    png = page.screenshot(full_page=True, **kw)
    keep = os.environ.get("BOOMERANG_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{name}.png").write_bytes(png)
    distinct, busy = colours(png)
    assert distinct > 40 and busy > 0.02, f"{name} looks blank: {distinct} colours, {busy:.1%} non-background"
    return png


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
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
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
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
        rows.append(bytes(line) if bpp == 3 else bytes(b for j in range(0, stride, 4) for b in line[j : j + 3]))
        previous = line
    return width, height, rows


def colours(png: bytes) -> tuple[int, float]:
    """How many distinct colours, and the share of pixels unlike the most common one (the background)."""
    width, height, rows = decode_png(png)
    counts: dict[bytes, int] = {}
    for row in rows:
        for x in range(0, width * 3, 3):
            pixel = row[x : x + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    return len(counts), 1 - max(counts.values()) / (width * height)
