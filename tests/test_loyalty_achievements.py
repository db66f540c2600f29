"""Achievements and missions (issue 15): rules over events that award a badge and points once, counted as events
arrive through the tracking API (retried and reordered batches land on the same progress), windows checked
exactly, distinct values, the ledger, `Achievement Earned`, the API, the CLI, the dashboard's form, the customer's
own view, merges and privacy, and recounting from the log."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.auth import users
from boomerang.cli.app import app as cli
from boomerang.core.clock import FixedClock
from boomerang.customers import privacy
from boomerang.customers import service as customers
from boomerang.events.models import inbox
from boomerang.loyalty import service, traits
from boomerang.loyalty.achievements_rules import Condition, add, met, parse
from boomerang.loyalty.models import LoyaltyTransaction
from boomerang.messaging.context import ContextLoader
from boomerang.orchestration import loyalty_traits

T0 = datetime(2026, 1, 1, 12, 0)
DAY = timedelta(days=1)


@pytest.fixture
def api(ws) -> Api:
    ws.clock = FixedClock(T0 + 400 * DAY)  # every event below is in the past
    return Api(ws)


@pytest.fixture
def any_api(any_ws) -> Api:
    """The same, on SQLite and on PostgreSQL (rows locked FOR UPDATE there)."""
    any_ws.clock = FixedClock(T0 + 400 * DAY)
    return Api(any_ws)


def _on(api: Api, key: str) -> None:
    response = api.api("POST", f"/loyalty/achievements/{key}/activate")
    assert response.status_code == 200 and response.json()["active"] is True, response.text


def _order(api: Api, who: str, order_id: str, day: int, categories=("Coffee",), message_id: str | None = None):
    products = [{"sku": f"S-{i}", "price": 10, "category": c} for i, c in enumerate(categories)]
    body = {
        "userId": who,
        "event": "Order Completed",
        "timestamp": (T0 + day * DAY).isoformat() + "Z",
        "properties": {"order_id": order_id, "total": 10 * len(products), "products": products},
    }
    if message_id:
        body["messageId"] = message_id
    response = api.track("track", body, server=True)
    assert response.status_code == 200, response.text


def _cid(ws, who: str) -> str:
    with ws.uow.session() as s:
        return customers.lookup(s, who).id


def _progress(api: Api, who: str) -> dict[str, dict]:
    response = api.api("GET", f"/loyalty/customers/{who}/achievements")
    assert response.status_code == 200, response.text
    return {item["key"]: item for item in response.json()["items"]}


def _told(ws) -> list[tuple[str, dict]]:
    with ws.engine.connect() as conn:
        rows = conn.execute(
            sa.select(inbox.c.customer_id, inbox.c.properties).where(inbox.c.event == "Achievement Earned")
        ).all()
    return [(cid, json.loads(props)) for cid, props in rows]


def _awards(ws, key: str) -> list[str]:
    with ws.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(LoyaltyTransaction.reference).where(LoyaltyTransaction.reference.like(f"achievement:{key}:%"))
            ).scalars()
        )


def _proof(ws) -> bool:
    with ws.uow.session() as s:
        return service.check(s)["ok"]


# -- the rules, pure ---------------------------------------------------------------------------------------------


def test_a_window_is_checked_exactly_and_bounded():
    c = Condition(event="Order Completed", count=3, within_days=90)
    seen = [(T0 + d * DAY, f"m{d}", {}) for d in (0, 100, 200)]
    state = add(c, {}, seen)
    assert not met(c, state)
    assert met(c, add(c, state, [(T0 + 180 * DAY, "late", {})])) is False  # 100, 180, 200: 100 days
    state = add(c, state, [(T0 + 150 * DAY, "m150", {}), (T0 + 180 * DAY, "m180", {})])
    assert met(c, state) and len(state["times"]) <= 6  # 150, 180, 200 within 50 days; at most 2 x count kept
    assert add(c, state, seen) == state  # the same events again change nothing


def test_bad_definitions_name_the_field():
    with pytest.raises(Exception) as caught:
        parse({"key": "x", "title": "t", "condition": {"event": "A", "distinct": "p", "within_days": 3}})
    assert caught.value.errors[0]["field"] == "condition.within_days"


# -- earning through the tracking API ----------------------------------------------------------------------------


def test_ready_made_ones_are_listed_off_until_turned_on(api):
    listed = {a["key"]: a for a in api.api("GET", "/loyalty/achievements").json()}
    assert {"first_order", "first_review", "three_orders_90_days", "tried_3_categories", "joined_telegram"} <= set(
        listed
    )
    assert not any(a["active"] or a["stored"] for a in listed.values())
    _order(api, "u-off", "o-off", 1)  # nothing is on: nothing counts
    assert _progress(api, "u-off") == {} and _told(api.ws) == []


def test_a_first_order_earns_once_under_retried_and_reordered_batches(any_api):
    api = any_api
    _on(api, "first_order")
    _order(api, "u-1", "o-1", 10, message_id="m-1")
    _order(api, "u-1", "o-1", 10, message_id="m-1")  # the same batch again
    _order(api, "u-1", "o-1", 10, message_id="m-1-again")  # the same order sent twice
    _order(api, "u-1", "o-2", 5)  # an earlier order, arriving later
    cid = _cid(api.ws, "u-1")
    mine = _progress(api, "u-1")["first_order"]
    assert mine["earned"] and (mine["count"], mine["target"], mine["points"]) == (1, 1, 50)
    assert _awards(api.ws, "first_order") == [f"achievement:first_order:{cid}"]
    with api.ws.uow.session() as s:
        assert service.wallets(s, [cid], now=api.ws.now())[cid].points >= 50  # spendable at once
    assert _told(api.ws) == [
        (cid, {"key": "first_order", "title": "First order", "badge": "🛍️", "points": 50})
    ] and _proof(api.ws)


def test_three_orders_in_90_days_counts_only_orders_within_the_window(api):
    _on(api, "three_orders_90_days")
    for n, day in enumerate((0, 100, 200)):  # 100 days apart: never three within 90 days
        _order(api, "u-w", f"w-{n}", day)
    _order(api, "u-w", "w-1", 100, message_id="dup")  # a repeat of an order already counted
    assert not _progress(api, "u-w")["three_orders_90_days"]["earned"]
    _order(api, "u-w", "w-3", 180)  # late: 100, 180, 200 still span 100 days
    assert not _progress(api, "u-w")["three_orders_90_days"]["earned"] and _awards(api.ws, "three_orders") == []
    _order(api, "u-w", "w-4", 150)  # 150, 180, 200: within 50 days
    assert _progress(api, "u-w")["three_orders_90_days"]["earned"]
    assert len(_awards(api.ws, "three_orders_90_days")) == 1 and _proof(api.ws)


def test_tried_three_categories_counts_distinct_values_of_the_products(api):
    _on(api, "tried_3_categories")
    _order(api, "u-c", "c-1", 1, categories=("Coffee", "coffee"))
    _order(api, "u-c", "c-2", 2, categories=("Coffee",))
    assert _progress(api, "u-c")["tried_3_categories"]["count"] == 1
    _order(api, "u-c", "c-3", 3, categories=("Tea", "Coffee"))
    assert _progress(api, "u-c")["tried_3_categories"]["count"] == 2
    _order(api, "u-c", "c-4", 4, categories=("Cakes",))
    assert _progress(api, "u-c")["tried_3_categories"]["earned"]


def test_a_review_an_nps_answer_and_a_telegram_link_earn_theirs(api):
    for key in ("first_review", "nps_answered", "joined_telegram"):
        _on(api, key)
    api.track("track", {"userId": "u-r", "event": "Product Reviewed", "properties": {"rating": 5}}, server=True)
    api.track("track", {"userId": "u-r", "event": "NPS Survey Answered", "properties": {"score": 9}}, server=True)
    api.track("identify", {"userId": "u-r", "traits": {"email": "r@example.org"}}, server=True)
    assert not _progress(api, "u-r")["joined_telegram"]["earned"]
    forged = {"userId": "u-r", "event": "Telegram Bot Joined"}
    api.track("track", forged)  # the public write key: anyone may send it, so it earns no points
    assert not _progress(api, "u-r")["joined_telegram"]["earned"]
    api.track("track", forged, server=True)
    mine = _progress(api, "u-r")
    assert all(mine[k]["earned"] for k in ("first_review", "nps_answered", "joined_telegram"))


# -- definitions: API, CLI, dashboard --------------------------------------------------------------------------


def test_bad_definitions_are_refused_with_a_4xx_naming_the_field_and_nothing_stored(api):
    good = {"key": "coffee_lover", "title": "Coffee lover", "condition": {"event": "Order Completed", "count": 3}}
    cases = [
        ({**good, "condition": {"event": "Order Completed", "count": 0}}, "condition.count"),
        ({**good, "key": "Bad Key!"}, "key"),
        ({**good, "points": -5}, "points"),
        ({**good, "condition": {"event": "A", "distinct": "category", "within_days": 30}}, "condition.within_days"),
        ({**good, "valid_from": "2026-03-01T00:00:00", "valid_until": "2026-02-01T00:00:00"}, "valid_until"),
        ({**good, "condition": {"event": "A", "bogus": 1}}, "condition.bogus"),
    ]
    for body, field in cases:
        response = api.api("POST", "/loyalty/achievements", json=body)
        assert response.status_code == 400, response.text
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert api.api("GET", "/loyalty/achievements/coffee_lover").status_code == 404
    assert api.api("POST", "/loyalty/achievements", json=good).status_code == 200
    again = api.api("POST", "/loyalty/achievements", json=good)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "key"
    bad_edit = api.api("PUT", "/loyalty/achievements/coffee_lover", json={**good, "title": ""})
    assert bad_edit.status_code == 400 and api.api("GET", "/loyalty/achievements/coffee_lover").json()["title"]


def test_a_filtered_mission_its_edit_resets_unearned_progress(api):
    spec = {
        "key": "coffee_lover",
        "title": "Coffee lover",
        "badge": "☕",
        "points": 30,
        "active": True,
        "valid_until": (T0 + 50 * DAY).isoformat(),
        "condition": {"event": "Order Completed", "where": {"products.category": "coffee"}, "count": 2},
    }
    assert api.api("POST", "/loyalty/achievements", json=spec).status_code == 200
    _order(api, "u-f", "f-1", 1, categories=("Tea",))
    _order(api, "u-f", "f-2", 2, categories=("Coffee",))
    _order(api, "u-f", "f-3", 60, categories=("Coffee",))  # after the mission ended
    assert _progress(api, "u-f")["coffee_lover"]["count"] == 1
    edited = api.api("PUT", "/loyalty/achievements/coffee_lover", json={**spec, "condition": {"event": "X"}})
    assert edited.status_code == 200 and edited.json()["reset"] == 1
    assert _progress(api, "u-f")["coffee_lover"]["count"] == 0


def test_the_cli_adds_lists_shows_turns_on_and_shows_progress(api):
    ws, runner = api.ws, CliRunner()
    home = ["--home", str(ws.settings.home)]
    add = runner.invoke(
        cli,
        [*home, "achievements", "add", "--key", "regular", "--title", "Regular", "--event", "Order Completed"]
        + ["--count", "2", "--once-per", "order_id", "--points", "25", "--active", "--json"],
    )
    assert add.exit_code == 0, add.output
    assert json.loads(add.output)["condition"] == {"event": "Order Completed", "count": 2, "once_per": "order_id"}
    bad = runner.invoke(
        cli, [*home, "achievements", "add", "--key", "x", "--title", "X", "--event", "A", "--count", "0"]
    )
    assert bad.exit_code != 0 and "condition.count" in bad.output
    _order(api, "u-cli", "k-1", 1)
    _order(api, "u-cli", "k-2", 2)
    listed = json.loads(runner.invoke(cli, [*home, "achievements", "list", "--json"]).output)
    assert next(a for a in listed if a["key"] == "regular")["earned"] == 1
    shown = runner.invoke(cli, [*home, "achievements", "show", "regular"])
    assert shown.exit_code == 0 and "2 x Order Completed" in shown.output
    progress = runner.invoke(cli, [*home, "achievements", "progress", "u-cli", "--json"])
    assert progress.exit_code == 0 and json.loads(progress.output)["items"][0]["earned"] is True
    on = runner.invoke(cli, [*home, "achievements", "enable", "first_review", "--json"])
    assert on.exit_code == 0 and json.loads(on.output)["active"] is True
    assert runner.invoke(cli, [*home, "achievements", "progress", "u-cli"]).exit_code == 0


def test_rebuild_recounts_from_the_log_and_awards_once(api):
    ws, runner = api.ws, CliRunner()
    _order(api, "u-h", "h-1", 1, categories=("Coffee",))  # before anything was on
    _order(api, "u-h", "h-2", 2, categories=("Tea", "Cakes"))
    _on(api, "tried_3_categories")
    _on(api, "first_order")
    assert not _progress(api, "u-h")["tried_3_categories"]["earned"]
    home = ["--home", str(ws.settings.home)]
    for _ in range(2):  # twice: the same outcome
        done = runner.invoke(cli, [*home, "achievements", "rebuild", "--tell", "--json"])
        assert done.exit_code == 0, done.output
    assert json.loads(done.output)["events"] == 2
    mine = _progress(api, "u-h")
    assert mine["tried_3_categories"]["earned"] and mine["first_order"]["earned"]
    told = api.events("SELECT event FROM events WHERE event = 'Achievement Earned'")  # the first run's, logged
    assert len(_awards(ws, "tried_3_categories")) == 1 and len(told) == 2 and _proof(ws)


def test_the_dashboard_form_creates_one_and_turns_it_off(api):
    ws = api.ws
    with ws.uow.session() as s:
        users.create_user(s, username="mia", role="marketer", password="correct-horse", now=ws.now())
    client = api.client
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "mia", "password": "correct-horse", "csrf_token": token, "next": "/"})
    page = client.get("/loyalty/achievements")
    assert page.status_code == 200 and "First order" in page.text and 'href="/loyalty/achievements"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {
        "csrf_token": csrf,
        "title": "Tea time",
        "key": "tea_time",
        "badge": "🍵",
        "points": "15",
        "kind": "count",
        "event": "Order Completed",
        "where": "products.category=Tea",
        "count": "2",
        "within_days": "30",
        "once_per": "order_id",
        "active": "on",
    }
    bad = client.post("/loyalty/achievements", data={**form, "count": "0"}, follow_redirects=False)
    assert bad.status_code == 400 and "How many" in bad.text and 'aria-invalid="true"' in bad.text
    done = client.post("/loyalty/achievements", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    shown = api.api("GET", "/loyalty/achievements/tea_time").json()
    assert shown["active"] and shown["condition"] == {
        "event": "Order Completed",
        "where": {"products.category": "Tea"},
        "count": 2,
        "within_days": 30,
        "once_per": "order_id",
    }
    edit = client.get("/loyalty/achievements?edit=tea_time")
    assert 'value="products.category=Tea"' in edit.text
    off = client.post("/loyalty/achievements/tea_time/deactivate", data={"csrf_token": csrf}, follow_redirects=False)
    assert off.status_code == 303 and not api.api("GET", "/loyalty/achievements/tea_time").json()["active"]


# -- where customers and other domains see it ------------------------------------------------------------------


def test_the_customer_sees_badges_and_progress_and_templates_and_segments_read_them(api):
    ws = api.ws
    _on(api, "first_order")
    _on(api, "three_orders_90_days")
    _order(api, "u-v", "v-1", 399)
    cid = _cid(ws, "u-v")
    token = api.api("GET", f"/loyalty/customers/{cid}/token").json()["token"]
    public = api.client.get(f"/v1/loyalty/{token}")
    assert public.status_code == 200, public.text
    badges = {b["key"]: b for b in public.json()["achievements"]}
    assert badges["first_order"]["earned"] and (badges["three_orders_90_days"]["count"], 3) == (
        1,
        badges["three_orders_90_days"]["target"],
    )
    with ws.uow.session() as s:
        earned = {r["customer_id"]: r["loyalty_achievements"] for r in traits.rows(s, now=ws.now())}
        assert earned[cid] == ["first_order"]
        context = ContextLoader(s, ws.settings.messaging, now=ws.now()).load([cid])[cid]
    assert [b["key"] for b in context["loyalty"]["achievements"]] == ["first_order"]
    loyalty_traits.store(ws.uow, ws.log, now=ws.now(), settings=ws.settings.loyalty)
    rule = {"trait": "loyalty_achievements", "op": "contains", "value": "first_order"}
    assert list(ws.segments.members({"name": "probe", "rule": rule})["customer_id"]) == [cid]


def test_a_merge_combines_progress_and_privacy_exports_and_erases_it(api):
    ws = api.ws
    _on(api, "tried_3_categories")
    _order(api, "u-a", "a-1", 1, categories=("Coffee", "Tea"))
    _order(api, "u-b", "b-1", 2, categories=("Cakes",))
    keep, gone = _cid(ws, "u-a"), _cid(ws, "u-b")
    with ws.uow.session() as s:
        customers.merge(s, keep, gone, now=ws.now())
    assert _progress(api, keep)["tried_3_categories"]["count"] == 3  # combined; earned by the next matching event
    _order(api, "u-a", "a-2", 3, categories=("Coffee",))
    assert _progress(api, keep)["tried_3_categories"]["earned"]
    with ws.uow.session() as s:
        doc = privacy.export(s, ws.log, keep, actor="test", now=ws.now())
    assert [r["achievement_key"] for r in doc["loyalty_achievements"]] == ["tried_3_categories"]
    with ws.uow.session() as s:
        done = privacy.erase(s, ws.log, keep, actor="test", now=ws.now())
    assert done["deleted"]["loyalty_achievement_progress"] == 1 and _proof(ws)
