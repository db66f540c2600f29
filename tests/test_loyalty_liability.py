"""The liability report (issue 15): points outstanding and their value, when they expire, the monthly flows, the
breakage seen and expected; through the API, the CLI and the dashboard, and a customer's points on their page."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.cli.app import app as cli
from boomerang.core.clock import FixedClock
from boomerang.customers import service as customers
from boomerang.loyalty import checkout, liability, service
from test_dashboard import _login, _user

T0 = datetime(2026, 5, 1, 12, 0)
LATER = T0 + timedelta(days=400)  # past every lot's expiry


@pytest.fixture
def shop(ws) -> Api:
    """One customer: an order of 300 (15 points pending 14 days, then a year to spend them), 50 points given by
    hand (spendable at once, for a year), 30 of them spent at checkout."""
    ws.clock = FixedClock(T0)
    api = Api(ws)
    order = {"order_id": "o-1", "total": 300, "currency": "EUR"}
    assert api.track("track", {"userId": "ann", "event": "Order Completed", "properties": order}, server=True)
    settings = ws.settings.loyalty
    with ws.uow.session() as s:
        cid = customers.lookup(s, "ann").id
        service.adjust(s, cid, 50, reason="welcome gift", now=T0, settings=settings)
        checkout.hold(s, cid, "o-2", 30, 120.0, settings=settings, now=T0)
        checkout.confirm(s, "o-2", now=T0)
    return api


def _report(ws, now: datetime, months: int = 12) -> dict:
    with ws.uow.session() as s:
        return liability.report(s, now=now, settings=ws.settings.loyalty, months=months)


def test_what_is_owed_now(shop):
    report = _report(shop.ws, T0)
    assert (report["available"], report["pending"], report["outstanding"], report["customers"]) == (20, 15, 35, 1)
    assert report["value"] == 35.0 and report["breakage_rate"] is None and report["expected_breakage"] is None
    # the gift's 20 left expire a year on (2027-05-01), the order's 15 a year after they became spendable
    assert report["expiring_by_month"] == [{"month": "2027-05", "points": 35}] and report["never_expiring"] == 0
    assert report["flows_by_month"][-1] == {"month": "2026-05", "earned": 15, "redeemed": 30, "expired": 0}
    assert [row["month"] for row in report["flows_by_month"]][:2] == ["2025-06", "2025-07"]


def test_breakage_counts_what_lapsed_whether_or_not_the_round_has_run(shop):
    before_round = _report(shop.ws, LATER)
    service.expire(shop.ws.uow, LATER)
    after_round = _report(shop.ws, LATER)
    for report in (before_round, after_round):
        # of the 65 points that reached their expiry, 35 lapsed unspent
        assert report["outstanding"] == 0 and report["breakage_rate"] == pytest.approx(35 / 65)
    assert after_round["flows_by_month"][-1]["month"] == "2027-06"
    assert sum(row["expired"] for row in after_round["flows_by_month"]) == 35


def test_expected_breakage_applies_the_rate_seen_to_what_is_outstanding(shop):
    service.expire(shop.ws.uow, LATER)
    with shop.ws.uow.session() as s:
        cid = customers.lookup(s, "ann").id
        service.adjust(s, cid, 100, reason="apology", now=LATER, settings=shop.ws.settings.loyalty)
    report = _report(shop.ws, LATER)
    assert report["outstanding"] == 100 and report["expected_breakage"] == round(100 * 35 / 65)
    assert report["expected_breakage_value"] == pytest.approx(100 * 35 / 65, abs=0.01)


def test_api_cli_and_dashboard(shop):
    answer = shop.api("GET", "/loyalty/liability", params={"months": 3})
    assert answer.status_code == 200 and answer.json()["outstanding"] == 35
    assert len(answer.json()["flows_by_month"]) == 3
    refused = shop.api("GET", "/loyalty/liability", params={"months": 0})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "months"
    home = ["--home", str(shop.ws.settings.home)]
    done = CliRunner().invoke(cli, [*home, "loyalty", "liability", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["value"] == 35.0
    text = CliRunner().invoke(cli, [*home, "loyalty", "liability"])
    assert text.exit_code == 0 and "35 points outstanding" in text.output and "2027-05" in text.output

    _user(shop.ws, "vera", "viewer")
    assert _login(shop.client, "vera").status_code == 303
    page = shop.client.get("/loyalty")
    assert page.status_code == 200 and 'href="/loyalty" class="active"' in page.text
    assert 'id="expiring-chart"' in page.text and 'id="flows-chart"' in page.text
    with shop.ws.uow.session() as s:
        cid = customers.lookup(s, "ann").id
    customer = shop.client.get(f"/customers/{cid}")
    assert customer.status_code == 200 and 'id="customer-points"' in customer.text
    assert "welcome gift" in customer.text and "o-1" in customer.text
