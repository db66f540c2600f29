"""The loyalty pages of the dashboard (issue 15): the section's tabs, tiers (distribution, latest changes, the grace,
the review on demand), promo codes (pools, a new pool, generating in the request and in the background, uploads,
a pool's redemptions, the CSV, looking up a code) and the programme's settings; roles, CSRF and bad input."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from api_helpers import Api
from boomerang.core.clock import FixedClock
from boomerang.customers import service as customers
from boomerang.dashboard.views import loyalty_codes, loyalty_generation
from boomerang.loyalty import codes_redeem
from boomerang.loyalty.models import LoyaltyTier
from test_dashboard import _csrf, _login, _user

T0 = datetime(2026, 5, 1, 12, 0)
PAGES = ("/loyalty", "/loyalty/tiers", "/loyalty/codes", "/loyalty/programme")


@pytest.fixture
def shop(ws) -> Api:
    ws.clock = FixedClock(T0)
    api = Api(ws)
    _user(ws, "vera", "viewer")
    _user(ws, "mia", "marketer")
    return api


def _order(api: Api, order_id: str, total: float, who: str) -> str:
    body = {"id": order_id, "external_id": who, "total": total, "lines": [{"sku": "A", "price": total, "quantity": 1}]}
    assert api.api("POST", "/orders", json=body).status_code == 200
    with api.ws.uow.session() as s:
        return customers.lookup(s, who).id


def _token(client, path: str) -> str:
    return _csrf(client.get(path).text)


def _post(client, path: str, data: dict, *, page: str | None = None, **kw):
    token = _token(client, page or path)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False, **kw)


def _chart(html: str, chart_id: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', html, flags=re.S)
    return json.loads(found.group(1))


def _pool_form(**over) -> dict:
    form = {
        "name": "spring",
        "kind": "generated",
        "discount_kind": "percent",
        "value": "15",
        "min_order": "50",
        "uses_per_code": "1",
        "prefix": "SPRING-",
        "valid_from": "",
        "valid_until": "2026-06-30T23:59",
        "low_stock_alert": "10",
        "count": "",
    }
    return {**form, **over}


# -- the section -----------------------------------------------------------------------------------


def test_every_loyalty_page_has_the_tabs_and_a_viewer_sees_without_acting(shop):
    client = shop.client
    assert _login(client, "vera").status_code == 303
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        tabs = re.search(r'<nav class="tabs".*?</nav>', page.text, flags=re.S).group(0)
        for href in PAGES:
            assert f'href="{href}"' in tabs
        assert f'<a href="{path}" class="active" aria-current="page">' in tabs
        assert tabs.count('class="active"') == 1
    assert "Run the tier review now" not in client.get("/loyalty/tiers").text
    assert 'id="pool-form"' not in client.get("/loyalty/codes").text
    for path in ("/loyalty/tiers/review", "/loyalty/codes"):
        refused = _post(client, path, _pool_form(), page="/loyalty/codes")
        assert refused.status_code == 403 and "marketer" in refused.text


def test_the_programme_page_names_each_setting_and_its_variable(shop):
    shop.ws.settings.loyalty = shop.ws.settings.loyalty.model_copy(update={"cashback_percent": 7.5})
    _login(shop.client, "vera")
    page = shop.client.get("/loyalty/programme").text
    for variable in (
        "UNIT_NAME",
        "POINT_VALUE",
        "CASHBACK_PERCENT",
        "PENDING_DAYS",
        "EXPIRY_DAYS",
        "MAX_REDEEM_SHARE",
        "HOLD_TTL_MINUTES",
        "TIER_PERIOD_DAYS",
        "TIER_GRACE_DAYS",
        "TIERS",
    ):
        assert f"BOOMERANG_LOYALTY__{variable}" in page
    row = re.search(r'<tr data-setting="cashback_percent">.*?</tr>', page, flags=re.S).group(0)
    assert "7.5 %" in row and "default" not in row
    assert "default" in re.search(r'<tr data-setting="pending_days">.*?</tr>', page, flags=re.S).group(0)
    assert "environment" in page and "Platinum" in page and "500.00 paid or 5 orders" in page
    tiers_json = re.search(r'<pre class="env" id="tiers-json">(.*?)</pre>', page, flags=re.S).group(1)
    assert json.loads(tiers_json.replace("&#34;", '"'))[1]["name"] == "Gold"
    assert 'href="/loyalty/programme"' in shop.client.get("/loyalty").text


# -- tiers -----------------------------------------------------------------------------------------


def test_tiers_show_the_distribution_changes_the_grace_and_the_review_moves_down(shop):
    ws, client = shop.ws, shop.client
    gold = _order(shop, "t-1", 600.0, "ann")  # lifted to Gold at once: a Loyalty Tier Changed event
    slipping = _order(shop, "t-2", 40.0, "bob")
    with ws.uow.session() as s:  # bob held Gold and has been below it for 40 days: past the 30 days of grace
        s.execute(
            sa.update(LoyaltyTier)
            .where(LoyaltyTier.customer_id == slipping)
            .values(tier="Gold", below_since=T0 - timedelta(days=40), updated_at=T0 - timedelta(days=2))
        )
    _login(client, "mia")
    page = client.get("/loyalty/tiers")
    assert page.status_code == 200
    assert _chart(page.text, "tiers-chart")["datasets"][0]["data"] == [0, 2, 0]
    gold_row = re.search(r'<tr data-tier="Gold">.*?</tr>', page.text, flags=re.S).group(0)
    assert "500.00 paid or 5 orders" in gold_row and "× 1.25" in gold_row and "free shipping" in gold_row
    changes = re.search(r'<table class="data" id="tier-changes">.*?</table>', page.text, flags=re.S).group(0)
    assert gold in changes and "Silver → <strong>Gold</strong>" in changes and "direction-up" in changes
    grace = re.search(r'<table class="data" id="tier-grace">.*?</table>', page.text, flags=re.S).group(0)
    assert slipping in grace and "2026-03-22 12:00" in grace and "2026-04-21 12:00" in grace  # below since, down after
    assert "Silver" in grace  # what bob qualifies for
    assert "In their grace (1)" in page.text

    done = _post(client, "/loyalty/tiers/review", {}, page="/loyalty/tiers")
    assert done.status_code == 303 and done.headers["location"] == "/loyalty/tiers?reviewed=0-1-0"
    page = client.get(done.headers["location"]).text
    assert "1 moved down" in page and 'id="no-grace"' in page
    assert _chart(page, "tiers-chart")["datasets"][0]["data"] == [1, 1, 0]
    changes = re.search(r'<table class="data" id="tier-changes">.*?</table>', page, flags=re.S).group(0)
    assert "Gold → <strong>Silver</strong>" in changes and "direction-down" in changes
    assert client.post("/loyalty/tiers/review", data={}, follow_redirects=False).status_code == 403  # no CSRF token


# -- promo codes -----------------------------------------------------------------------------------


def _export(client, pool: str) -> list[dict]:
    answer = client.get(f"/loyalty/codes/{pool}/codes.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert f'filename="{pool}-codes.csv"' in answer.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_a_pool_made_with_the_form_its_codes_the_csv_a_lookup_and_the_redemptions(shop):
    ws, client = shop.ws, shop.client
    _login(client, "mia")
    made = _post(client, "/loyalty/codes", _pool_form(count="25"))
    assert made.status_code == 303 and made.headers["location"] == "/loyalty/codes/spring?created=1&generated=25"
    page = client.get(made.headers["location"]).text
    assert "Pool spring created." in page and "25 codes generated." in page
    assert re.search(r'id="pool-codes">25<', page) and re.search(r'id="pool-unused">25<', page)
    assert "15 % off" in page and "on orders of 50.00 or more" in page and "until 2026-06-30 23:59" in page

    listing = client.get("/loyalty/codes").text
    row = re.search(r'<tr data-pool="spring">.*?</tr>', listing, flags=re.S).group(0)
    assert 'class="num codes">25<' in row and "15 % off" in row and "alert below 10" in row

    rows = _export(client, "spring")
    assert len(rows) == 25 and len({r["code"] for r in rows}) == 25
    assert all(r["code"].startswith("SPRING-") and r["uses"] == "0" and r["max_uses"] == "1" for r in rows)
    assert rows == sorted(rows, key=lambda r: r["code"])

    code = rows[0]["code"]
    found = client.get("/loyalty/codes", params={"code": f"  {code.lower()} "}).text
    assert code in found and "status-unused" in found and "Not used on any order yet" in found

    cid = _order(shop, "o-9", 80.0, "cy")
    with ws.uow.session() as s:
        codes_redeem.hold(s, code, cid, "o-10", 120.0, now=T0)
        codes_redeem.confirm(s, "o-10", now=T0)
    found = client.get("/loyalty/codes", params={"code": code}).text
    assert "status-used-up" in found and "o-10" in found and "18.00" in found  # 15 % of 120
    page = client.get("/loyalty/codes/spring").text
    table = re.search(r'<table class="data" id="redemptions">.*?</table>', page, flags=re.S).group(0)
    assert code in table and "o-10" in table and "status-confirmed" in table and "120.00" in table
    chart = _chart(page, "redemptions-chart")
    assert len(chart["labels"]) == 30 and chart["labels"][-1] == "05-01" and chart["datasets"][0]["data"][-1] == 1
    assert len(_chart(client.get("/loyalty/codes/spring?days=7").text, "redemptions-chart")["labels"]) == 7
    assert re.search(r'id="pool-unused">24<', page)
    assert "Code not found" in client.get("/loyalty/codes", params={"code": "NOPE-NOPE"}).text

    more = _post(client, "/loyalty/codes/spring/generate", {"count": "1,000"}, page="/loyalty/codes/spring")
    assert more.status_code == 303 and more.headers["location"] == "/loyalty/codes/spring?generated=1000"
    assert len(_export(client, "spring")) == 1025
    assert client.get("/loyalty/codes/autumn").status_code == 404
    assert client.get("/loyalty/codes/autumn/codes.csv").status_code == 404


@pytest.mark.parametrize(
    ("change", "label", "reason"),
    [
        ({"value": "abc"}, "Discount value", "must be a number"),
        ({"value": "150"}, "Discount value", "at most 100"),
        ({"name": "no spaces"}, "Name", "letters, digits"),
        ({"uses_per_code": "1.5"}, "Uses per code", "whole number"),
        ({"valid_from": "2026-07-01T00:00"}, "Valid until", "must be after valid_from"),
        ({"valid_from": "soon"}, "Valid from", "YYYY-MM-DD"),
        ({"low_stock_alert": "-3"}, "Low-stock alert", "whole number"),
        ({"kind": "uploaded", "count": "10"}, "Codes to generate", "uploaded"),
        ({"discount_kind": "free_beer"}, "Discount", "must be one of"),
    ],
)
def test_bad_input_comes_back_in_the_form_naming_the_field(shop, change, label, reason):
    _login(shop.client, "mia")
    sent = _pool_form(**change)
    answer = _post(shop.client, "/loyalty/codes", sent)
    assert answer.status_code == 400
    errors = re.search(r'<div class="error" role="alert" id="form-errors">(.*?)</div>\n', answer.text, flags=re.S)
    assert f"<strong>{label}</strong>" in errors.group(1) and reason in errors.group(1)
    assert 'aria-invalid="true"' in answer.text
    for name, value in sent.items():  # what was typed is kept
        if value and name not in ("kind", "discount_kind"):
            assert f'value="{value}"' in answer.text
    assert shop.client.get("/loyalty/codes/spring").status_code == 404


def test_a_taken_name_and_a_bad_count_are_refused(shop):
    _login(shop.client, "mia")
    assert _post(shop.client, "/loyalty/codes", _pool_form()).status_code == 303
    again = _post(shop.client, "/loyalty/codes", _pool_form())
    assert (
        again.status_code == 409 and "<strong>Name</strong>: a pool named &#39;spring&#39; exists already" in again.text
    )
    for count, reason in (("", "say how many"), ("0", "from 1 to"), ("many", "whole number"), ("20000000", "from 1")):
        answer = _post(shop.client, "/loyalty/codes/spring/generate", {"count": count}, page="/loyalty/codes/spring")
        assert answer.status_code == 400 and "<strong>Codes to generate</strong>" in answer.text, count
        assert reason in answer.text
    missing = _post(shop.client, "/loyalty/codes/autumn/generate", {"count": "5"}, page="/loyalty/codes")
    assert missing.status_code == 404


def test_codes_are_uploaded_pasted_or_as_a_file(shop):
    client = shop.client
    _login(client, "mia")
    made = _post(client, "/loyalty/codes", _pool_form(name="partner", kind="uploaded", prefix=""))
    assert made.status_code == 303
    page = client.get(made.headers["location"]).text
    assert "Upload its codes below." in page and 'id="upload-form"' in page and 'id="generate-form"' not in page
    token = _token(client, "/loyalty/codes/partner")
    done = client.post(
        "/loyalty/codes/partner/upload",
        data={"csrf_token": token, "codes": "code\nABC-123\nabc-123\nXYZ999\n"},
        files={"file": ("more.csv", b"code;note\nFILE-001;x\nFILE-002;y\nXYZ999;again\n", "text/csv")},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/loyalty/codes/partner?uploaded=4&skipped=2"
    page = client.get(done.headers["location"]).text
    assert "4 codes added, 2 skipped" in page and re.search(r'id="pool-codes">4<', page)
    assert sorted(r["code"] for r in _export(client, "partner")) == ["ABC-123", "FILE-001", "FILE-002", "XYZ999"]
    bad = client.post(
        "/loyalty/codes/partner/upload",
        data={"csrf_token": token, "codes": "GOOD-1\n!!\n"},
        files={"file": ("", b"", "application/octet-stream")},  # no file chosen
        follow_redirects=False,
    )
    assert bad.status_code == 400 and "<strong>Codes</strong>: &#39;!!&#39; is not a code" in bad.text
    assert "GOOD-1\n!!" in bad.text  # the pasted text is kept
    empty = _post(client, "/loyalty/codes/partner/upload", {"codes": ""}, page="/loyalty/codes/partner")
    assert empty.status_code == 400 and "no codes given" in empty.text
    refused = _post(client, "/loyalty/codes/partner/generate", {"count": "5"}, page="/loyalty/codes/partner")
    assert refused.status_code == 409 and "upload more instead" in refused.text


def test_a_large_count_is_generated_in_the_background_with_its_progress(shop, monkeypatch):
    monkeypatch.setattr(loyalty_codes, "SYNC_MAX", 10)
    monkeypatch.setattr(loyalty_generation, "BATCH", 7)
    monkeypatch.setattr(loyalty_generation, "GAP", 0)
    client = shop.client
    _login(client, "mia")
    assert _post(client, "/loyalty/codes", _pool_form(prefix="")).status_code == 303
    assert client.get("/loyalty/codes/spring/progress").json() == {"running": False}
    started = _post(client, "/loyalty/codes/spring/generate", {"count": "30"}, page="/loyalty/codes/spring")
    assert started.status_code == 303 and started.headers["location"] == "/loyalty/codes/spring?generating=30"
    deadline = time.monotonic() + 60
    while (progress := client.get("/loyalty/codes/spring/progress").json())["running"]:
        assert 0 <= progress["done"] <= 30 and time.monotonic() < deadline
        time.sleep(0.05)
    assert progress["finished"] and progress["done"] == progress["committed"] == 30 and progress["error"] is None
    page = client.get("/loyalty/codes/spring?finished=1").text
    assert "30 codes generated in the background." in page and re.search(r'id="pool-codes">30<', page)
    assert "generated in the background" not in client.get("/loyalty/codes/spring").text  # said once

    # one generation at a time per pool: a second while the first runs is refused, naming the count
    jobs = loyalty_generation.generations(type("R", (), {"app": client.app})())
    running = loyalty_generation.Generation(pool="spring", count=99, started=T0)
    with jobs._lock:
        jobs._jobs["spring"] = running
    page = client.get("/loyalty/codes/spring").text
    assert 'data-progress-url="/loyalty/codes/spring/progress"' in page and "Generating 99 codes" in page
    refused = _post(client, "/loyalty/codes/spring/generate", {"count": "50"}, page="/loyalty/codes/spring")
    assert refused.status_code == 409 and "99 codes are being generated" in refused.text
    running.error, running.committed, running.finished = "the disk is full", 14, True
    page = client.get("/loyalty/codes/spring").text
    assert "stopped after 14: the disk is full" in page
