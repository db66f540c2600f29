"""Earn rules as data (issue 15): cashback by category and brand, exclusions, dated campaigns, caps per order and
per day, fixed bonuses (sign-up, first order, review, birthday) posted once, versions, the checkout estimate by the
same rules, and the dry run against history; the API, the CLI and bad input."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.cli.app import app as cli
from boomerang.core.clock import FixedClock
from boomerang.customers import service as customers
from boomerang.customers.models import Customer
from boomerang.loyalty import bonuses, service
from boomerang.loyalty.models import LoyaltyTransaction

T0 = datetime(2026, 5, 1, 12, 0)
DAY = timedelta(days=1)
RULES = {
    "base_percent": 5,
    "cashback": [{"category": "Coffee", "percent": 10}, {"brand": "Lumi", "percent": 20}],
    "exclude": {"gift_cards": True, "skus": ["BAG"]},
}


@pytest.fixture
def api(ws) -> Api:
    ws.clock = FixedClock(T0)
    return Api(ws)


def _rules(api: Api, rules: dict, note: str = "") -> dict:
    response = api.api("PUT", "/loyalty/rules", json={"rules": rules, "note": note})
    assert response.status_code == 200, response.text
    return response.json()


def _order(api: Api, order_id: str, lines: list[dict], who: str = "u-r", at: datetime | None = None) -> str:
    if at is not None:
        api.ws.clock = FixedClock(at)
    total = sum(li["price"] * li.get("quantity", 1) for li in lines)
    response = api.api("POST", "/orders", json={"id": order_id, "external_id": who, "total": total, "lines": lines})
    assert response.status_code == 200, response.text
    with api.ws.uow.session() as s:
        return customers.lookup(s, who).id


def _earned(ws, reference: str) -> LoyaltyTransaction | None:
    with ws.uow.session() as s:
        row = s.scalar(sa.select(LoyaltyTransaction).where(LoyaltyTransaction.reference == reference))
        if row is not None:
            s.expunge(row)
        return row


def _points(ws, reference: str) -> int:
    with ws.uow.session() as s:
        row = s.execute(
            sa.text(
                "SELECT sum(e.amount) FROM loyalty_ledger e JOIN loyalty_transactions t ON t.id = e.transaction_id "
                "WHERE t.reference = :r AND e.amount > 0"
            ),
            {"r": reference},
        ).scalar()
        return int(row or 0)


def _proof(ws) -> None:
    with ws.uow.session() as s:
        assert service.check(s)["ok"]


def test_categories_brands_and_exclusions_decide_what_each_line_earns(api):
    version = _rules(api, RULES, note="coffee month")
    assert version["version"] == 1
    _order(
        api,
        "o1",
        [
            {"sku": "C1", "category": "Coffee > Beans", "price": 100},  # 10 %: 10
            {"sku": "T1", "category": "Tea", "price": 40},  # base 5 %: 2
            {"sku": "L1", "category": "Tea", "brand": "Lumi", "price": 20},  # the brand's 20 %: 4
            {"sku": "G1", "category": "Gift Cards", "price": 500},  # excluded
            {"sku": "BAG", "category": "Tea", "price": 10},  # excluded by sku
        ],
    )
    assert _points(api.ws, "order:o1:earn") == 16
    assert _earned(api.ws, "order:o1:earn").detail["rules_version"] == 1
    _proof(api.ws)


def test_a_campaign_multiplies_what_orders_placed_while_it_runs_earn(api):
    campaign = {"name": "Spring x2", "multiplier": 2, "starts": "2026-05-01T00:00:00Z", "ends": "2026-05-03T00:00:00Z"}
    _rules(api, {"base_percent": 5, "campaigns": [campaign]})
    _order(api, "in", [{"sku": "A", "price": 100}])
    _order(api, "after", [{"sku": "A", "price": 100}], at=T0 + 3 * DAY)
    assert _points(api.ws, "order:in:earn") == 10
    assert _earned(api.ws, "order:in:earn").detail["campaign"] == "Spring x2"
    assert _points(api.ws, "order:after:earn") == 5


def test_caps_per_order_and_per_day_hold_whatever_the_order_of_arrival(api):
    _rules(api, {"base_percent": 10, "caps": {"per_order": 15, "per_day": 25}})
    _order(api, "a", [{"sku": "A", "price": 300}])  # 30, capped at 15
    _order(api, "b", [{"sku": "A", "price": 300}])  # 15 more would pass the day's 25: 10
    _order(api, "c", [{"sku": "A", "price": 300}])  # the day is spent: nothing
    _order(api, "d", [{"sku": "A", "price": 300}], at=T0 + DAY)  # a new day
    assert [_points(api.ws, f"order:{o}:earn") for o in "abcd"] == [15, 10, 0, 15]
    assert _earned(api.ws, "order:a:earn").detail["capped_from"] == 30
    _order(api, "b", [{"sku": "A", "price": 300}], at=T0 + DAY)  # the same order again: earns nothing new
    assert _points(api.ws, "order:b:earn") == 10
    _proof(api.ws)


def test_bonuses_are_posted_once_each(api):
    bonus = [
        {"kind": "registration", "points": 100},
        {"kind": "first_order", "points": 50},
        {"kind": "review", "points": 20},
        {"kind": "birthday", "points": 70},
    ]
    _rules(api, {"base_percent": 5, "bonuses": bonus})
    signed = {"userId": "u-b", "event": "Signed Up", "messageId": "m-signup"}
    assert api.track("track", signed, server=True).status_code == 200
    assert api.track("track", signed, server=True).status_code == 200  # a retry
    again = {**signed, "messageId": "m-signup-2"}
    assert api.track("track", again, server=True).status_code == 200  # signed up "again"
    for n in range(2):
        review = {
            "userId": "u-b",
            "event": "Product Reviewed",
            "messageId": f"m-review-{n}",
            "properties": {"rating": 5},
        }
        api.track("track", review, server=True)
    forged = {"userId": "u-b", "event": "Product Reviewed", "messageId": "m-forged"}
    assert api.track("track", forged).status_code == 200  # the public write key: anyone may send it, so no points
    cid = _order(api, "first", [{"sku": "A", "price": 100}], who="u-b")
    _order(api, "second", [{"sku": "A", "price": 100}], who="u-b", at=T0 + DAY)
    assert _points(api.ws, f"bonus:registration:{cid}") == 100
    assert _points(api.ws, "bonus:review:m-review-0") == _points(api.ws, "bonus:review:m-review-1") == 20
    assert _points(api.ws, "bonus:review:m-forged") == 0
    first = _earned(api.ws, f"bonus:first_order:{cid}")
    assert first.detail["order_id"] == "first" and _points(api.ws, f"bonus:first_order:{cid}") == 50
    with api.ws.uow.session() as s:
        kinds = s.scalars(
            sa.select(LoyaltyTransaction.reference).where(
                LoyaltyTransaction.customer_id == cid, LoyaltyTransaction.kind == "bonus"
            )
        ).all()
        assert len(kinds) == 4
        s.get(Customer, cid).birthday = date(1990, 5, 3)
        s.commit()
    assert bonuses.birthdays(api.ws.uow, T0 + DAY) == 0
    assert bonuses.birthdays(api.ws.uow, T0 + 2 * DAY) == 1
    assert bonuses.birthdays(api.ws.uow, T0 + 2 * DAY + timedelta(hours=3)) == 0  # once a year
    assert _points(api.ws, f"bonus:birthday:{cid}:2026") == 70
    _proof(api.ws)


def test_the_first_order_bonus_goes_when_that_order_is_cancelled_and_a_partial_refund_keeps_it(api):
    _rules(api, {"base_percent": 5, "bonuses": [{"kind": "first_order", "points": 50}]})
    cid = _order(api, "f-1", [{"sku": "A", "price": 100}], who="u-f")
    refund = api.api("POST", "/orders/f-1/refunds", json={"amount": 20, "refund_id": "r1"})
    assert refund.status_code == 200, refund.text
    assert _earned(api.ws, f"bonus:first_order:{cid}:reverse") is None  # a partial refund keeps it
    for _ in range(2):  # a cancellation sent twice takes it back once
        cancelled = api.api("POST", "/orders/f-1/status", json={"status": "cancelled"})
        assert cancelled.status_code == 200, cancelled.text
    taken = _earned(api.ws, f"bonus:first_order:{cid}:reverse")
    assert taken.detail == {"order_id": "f-1", "reversed": 50, "unrecovered": 0}
    with api.ws.uow.session() as s:
        assert service.wallets(s, [cid], now=api.ws.now())[cid].points == 0
    _order(api, "f-2", [{"sku": "A", "price": 100}], who="u-f", at=T0 + DAY)
    assert _earned(api.ws, "order:f-2:earn") is not None and _points(api.ws, f"bonus:first_order:{cid}") == 50
    _proof(api.ws)


def test_the_estimate_uses_the_rules_in_force(api):
    _rules(api, RULES)
    cid = _order(api, "o1", [{"sku": "A", "price": 10}])
    body = {
        "customer_id": cid,
        "lines": [{"price": 100, "category": "Coffee"}, {"price": 100, "category": "Gift Cards", "name": "Gift card"}],
    }
    response = api.api("POST", "/loyalty/estimate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["earn"] == 10


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"base_percent": 150}, "rules.base_percent"),
        ({"base_percent": 5, "cashback": [{"percent": 5}]}, "rules.cashback.0"),
        ({"base_percent": 5, "caps": {"per_day": -1}}, "rules.caps.per_day"),
        (
            {
                "base_percent": 5,
                "campaigns": [{"name": "x", "multiplier": 2, "starts": "2026-05-02", "ends": "2026-05-01"}],
            },
            "rules.campaigns.0",
        ),
        ({"base_percent": 5, "bonuses": [{"kind": "review", "points": 1}, {"kind": "review", "points": 2}]}, "rules"),
        ({"base_percent": 5, "surprise": 1}, "rules.surprise"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(api, rules, field):
    response = api.api("PUT", "/loyalty/rules", json={"rules": rules})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field
    assert api.api("GET", "/loyalty/rules/versions").json() == []


def test_versions_keep_every_change(api):
    assert api.api("GET", "/loyalty/rules").json()["version"] == 0
    _rules(api, {"base_percent": 5}, note="first")
    _rules(api, {"base_percent": 7}, note="more")
    listed = api.api("GET", "/loyalty/rules/versions").json()
    assert [(v["version"], v["note"]) for v in listed] == [(2, "more"), (1, "first")]
    assert api.api("GET", "/loyalty/rules/versions/1").json()["rules"]["base_percent"] == 5
    assert api.api("GET", "/loyalty/rules/versions/9").status_code == 404
    assert api.api("GET", "/loyalty/rules").json()["rules"]["base_percent"] == 7


def test_a_dry_run_prices_proposed_rules_against_history_and_writes_nothing(api):
    for n in range(4):
        _order(api, f"h{n}", [{"sku": "A", "category": "Coffee", "price": 100}], who=f"u{n}", at=T0 + n * DAY)
    api.track("track", {"userId": "u1", "event": "Product Reviewed", "messageId": "rev-1"}, server=True)
    api.track("track", {"userId": "u2", "event": "Product Reviewed", "messageId": "rev-2"})  # a browser's: no bonus
    api.events()  # into the log
    before = _counts(api.ws)
    proposed = {"base_percent": 5, "cashback": [{"category": "Coffee", "percent": 10}]}
    proposed["bonuses"] = [{"kind": "review", "points": 25}, {"kind": "first_order", "points": 30}]
    api.ws.clock = FixedClock(T0 + 10 * DAY)
    response = api.api("POST", "/loyalty/rules/dry-run", json={"rules": proposed, "days": 30})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["current"]["points"] == 4 * 5 and data["current"]["orders"] == 4
    assert data["proposed"]["cashback"] == 4 * 10
    assert data["proposed"]["bonuses"] == {"first_order": 4 * 30, "review": 25}
    assert data["difference"]["points"] == 40 + 120 + 25 - 20
    assert data["difference"]["cost"] == pytest.approx(165.0)
    assert sum(m["points"] for m in data["proposed"]["by_month"]) == data["proposed"]["points"]
    assert _counts(api.ws) == before
    bad = api.api(
        "POST", "/loyalty/rules/dry-run", json={"rules": proposed, "since": "2026-06-01", "until": "2026-05-01"}
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "until"


def _counts(ws) -> tuple[int, int]:
    with ws.uow.session() as s:
        return (
            s.scalar(sa.select(sa.func.count()).select_from(LoyaltyTransaction)),
            s.scalar(sa.text("SELECT count(*) FROM loyalty_rule_versions")),
        )


def test_cli_shows_sets_lists_and_dry_runs(api, tmp_path):
    home = ["--home", str(api.ws.settings.home)]
    runner = CliRunner()
    _order(api, "c1", [{"sku": "A", "category": "Coffee", "price": 200}])
    api.events()
    file = tmp_path / "rules.yaml"
    file.write_text("base_percent: 5\ncashback:\n  - category: Coffee\n    percent: 10\n", "utf-8")
    dry = runner.invoke(cli, [*home, "loyalty", "rules", "dry-run", str(file), "--until", "2026-05-02", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["difference"]["points"] == 10
    shown = runner.invoke(cli, [*home, "loyalty", "rules", "dry-run", str(file), "--until", "2026-05-02"])
    assert shown.exit_code == 0 and "proposed" in shown.stdout
    saved = runner.invoke(cli, [*home, "loyalty", "rules", "set", str(file), "--note", "coffee", "--json"])
    assert saved.exit_code == 0 and json.loads(saved.stdout)["version"] == 1
    listed = runner.invoke(cli, [*home, "loyalty", "rules", "versions", "--json"])
    assert [v["note"] for v in json.loads(listed.stdout)] == ["coffee"]
    assert "10% on Coffee" in runner.invoke(cli, [*home, "loyalty", "rules", "show"]).stdout
    file.write_text("base_percent: 500\n", "utf-8")
    bad = runner.invoke(cli, [*home, "loyalty", "rules", "set", str(file)])
    assert bad.exit_code == 2 and "base_percent" in bad.stderr


def _form(**over) -> dict:
    form = {
        "base_percent": "5",
        "cashback-0-target": "category",
        "cashback-0-name": "Coffee",
        "cashback-0-percent": "10",
        "cashback-1-target": "category",
        "cashback-1-name": "",
        "cashback-1-percent": "",
        "campaign-0-name": "",
        "bonus-review": "25",
        "bonus-registration": "",
        "per_order": "",
        "per_day": "",
        "gift_cards": "on",
        "days": "30",
    }
    return {**form, **over}


def test_the_dashboard_dry_runs_and_saves_rules_without_yaml(api):
    from test_dashboard import _csrf, _login, _user

    _user(api.ws, "mia", "marketer")
    _user(api.ws, "vera", "viewer")
    client = api.client
    _order(api, "d1", [{"sku": "A", "category": "Coffee", "price": 100}])
    api.events()
    assert _login(client, "vera").status_code == 303
    page = client.get("/loyalty/rules")
    assert page.status_code == 200 and "version 0" in page.text and 'id="save-button"' not in page.text
    assert client.post("/loyalty/rules", data={**_form(), "csrf_token": _csrf(page.text)}).status_code == 403
    _login(client, "mia")
    token = _csrf(client.get("/loyalty/rules").text)
    dry = client.post("/loyalty/rules", data={**_form(), "action": "dry_run", "csrf_token": token})
    assert dry.status_code == 200 and 'id="dry-run-table"' in dry.text and 'id="dry-run-chart"' in dry.text
    assert _counts(api.ws)[1] == 0
    bad = client.post("/loyalty/rules", data={**_form(base_percent="120"), "action": "save", "csrf_token": token})
    assert bad.status_code == 400 and "base_percent" in bad.text and 'value="120"' in bad.text
    saved = client.post(
        "/loyalty/rules",
        data={**_form(), "action": "save", "note": "coffee", "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/loyalty/rules?saved=1"
    shown = api.api("GET", "/loyalty/rules").json()
    assert shown["version"] == 1
    assert shown["rules"]["cashback"] == [{"percent": 10.0, "category": "Coffee", "brand": None}]
    assert shown["rules"]["bonuses"] == [{"kind": "review", "points": 25}]
    page = client.get("/loyalty/rules?saved=1").text
    assert "Version 1 is in force" in page and "coffee" in page and 'value="Coffee"' in page
