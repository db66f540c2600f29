"""Simulating a journey over the shop's history: the counts one can make by hand, and nothing written."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

import segments_data
from boomerang.config import GuardSettings, Settings
from boomerang.events.ingest import record
from boomerang.journeys import library, service
from boomerang.journeys import models as m
from boomerang.journeys.simulate import simulate
from boomerang.loyalty.models import LoyaltyLot, PromoCode
from boomerang.messaging.models import Message
from boomerang.orchestration.rounds import move_events
from boomerang.segments import library as segment_library
from boomerang.segments import membership

APRIL = {"date_from": date(2024, 4, 1), "date_to": date(2024, 5, 1)}


def _at(text: str) -> str:
    return datetime.fromisoformat(text).isoformat() + "Z"


def _added(user: str, cart: str, at: str) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Product Added",
        "timestamp": _at(at),
        "properties": {"cart_id": cart, "sku": "C1", "price": 10},
    }


def _ordered(user: str, order: str, cart: str, at: str, revenue: float) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": _at(at),
        "properties": {"order_id": order, "cart_id": cart, "revenue": revenue, "currency": "USD"},
    }


CARTS = [  # added to segments_data's shop (whose one Product Added, bob's on 04-30, has no cart id)
    _added("cat", "k-cat", "2024-04-10 09:00"),
    _added("cat", "k-cat", "2024-04-10 09:20"),  # one cart, one instance
    _added("cat", "k-cat2", "2024-04-13 09:00"),  # within a week of her last entry: kept out
    _added("ann", "k-ann", "2024-04-20 11:00"),
    _ordered("ann", "a4", "k-ann", "2024-04-20 11:30", 25.0),
    _added("dan", "k-dan", "2024-04-25 08:00"),
    _ordered("dan", "d2", "k-dan", "2024-04-26 07:00", 60.0),
    _added("eve", "k-eve", "2024-05-01 11:30"),
]


@pytest.fixture
def settings(tmp_path) -> Settings:
    """No global control group: it is a hash of customer ids, which are new in every test."""
    return Settings(home=tmp_path / "ws", guards=GuardSettings(global_control_share=0))


@pytest.fixture
def shop(ws):
    ids = segments_data.load(ws)
    with ws.uow.session() as session:
        record(session, CARTS, now=segments_data.NOW, limits=ws.settings.ingest, source="test")
    move_events(ws)
    return ws, ids


def _cart(**change) -> dict:
    return {**library.get("abandoned_cart"), "control_share": 0, **change}


def _stored(ws) -> dict[str, int]:
    with ws.engine.connect() as conn:
        return {
            model.__tablename__: conn.execute(sa.select(sa.func.count()).select_from(model)).scalar()
            for model in (m.Instance, Message, m.Conversion, m.ApprovalRequest, LoyaltyLot, PromoCode)
        }


def test_abandoned_cart_over_april(shop):
    ws, ids = shop
    before = _stored(ws)  # the shop's orders earned points: lots are there already
    report = simulate(ws.segments, ws.settings.guards, _cart(), **APRIL)
    # cat: reminded at 10:00 on 04-10, a code and the second reminder 24 hours later, then out
    # ann: bought the cart within the hour; dan: reminded, bought the next morning; eve: reminded, still inside
    assert report["entered"] == {
        "count": 4,
        "customers": 4,
        "treated": 4,
        "control": 0,
        "sample": [ids["cat"], ids["ann"], ids["dan"], ids["eve"]],
    }
    assert report["outcomes"] == {
        "converted": 2,
        "exited": 1,
        "rejected": 0,
        "expired": 0,
        "approval_pending": 0,
        "evaluating": 0,
        "running": 1,
    }
    assert report["conversions"]["treated"] == {"entered": 4, "converted": 2, "revenue": 85.0, "conversion_rate": 0.5}
    assert report["messages"]["total"] == 4
    assert report["messages"]["by_node"] == {"reminder_1": 3, "reminder_2": 1}
    assert report["actions"] == {"promo_codes": 1}
    # weeks from 04-01: cat gets 2 in her week, dan and eve 1 each in theirs
    assert report["messages"]["per_customer_week"]["alone"] == {
        "customers": 3,
        "weeks": 3,
        "mean": 1.333,
        "p95": 2,
        "max": 2,
    }
    # the guards: cat has SMS (both reminders go there), dan Telegram, eve no consent at all
    assert report["guards"]["journey"] == {
        "sent": 3,
        "by_channel": {"sms": 2, "telegram": 1},
        "suppressed": {"consent": 1},
        "deferred": {},
        "deferred_past_end": 0,
        "sent_per_customer_week": {"customers": 2, "weeks": 2, "mean": 1.5, "p95": 2, "max": 2},
    }
    assert _stored(ws) == before and before["journey_instances"] == before["messages"] == 0  # nothing written


def test_events_without_the_key_start_nothing(ws):
    ids = segments_data.load(ws)
    assert (
        simulate(ws.segments, ws.settings.guards, "abandoned_cart", **APRIL)["entered"]["count"] == 0
    )  # ready-made, not even saved
    keyless = simulate(
        ws.segments,
        ws.settings.guards,
        _cart(trigger={"event": "Product Added"}, goal={"event": "Order Completed"}),
        **APRIL,
    )
    assert keyless["entered"]["sample"] == [ids["bob"]]  # 04-30 12:00: reminded at 13:00, again on 05-01 13:00
    assert keyless["messages"]["by_node"] == {"reminder_1": 1, "reminder_2": 1}
    assert keyless["outcomes"]["exited"] == 1
    with ws.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(m.Journey)).scalar() == 0


def test_a_coarser_step_acts_at_the_workers_ticks(shop):
    ws, _ = shop
    hourly = simulate(ws.segments, ws.settings.guards, _cart(), **APRIL, step=timedelta(hours=1))
    assert hourly["messages"]["by_node"] == {"reminder_1": 3, "reminder_2": 1}
    daily = simulate(ws.segments, ws.settings.guards, _cart(), **APRIL, step=timedelta(days=1))
    # timers fire at midnight: eve's reminder would wait for 05-02, after the window
    assert daily["messages"]["by_node"] == {"reminder_1": 2, "reminder_2": 1}
    assert daily["outcomes"]["running"] == 1 and daily["outcomes"]["converted"] == 2


def test_together_with_the_active_journeys(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        service.save(s, library.get("order_confirmation"), now=ws.now())
        service.set_status(s, "order_confirmation", "active", now=ws.now())
        service.save(s, _cart(), now=ws.now())
        service.set_status(s, "abandoned_cart", "active", now=ws.now())  # the one simulated, by name: counted once
    report = simulate(ws.segments, ws.settings.guards, "abandoned_cart", **APRIL)
    assert report["together_with"] == ["order_confirmation"]
    assert report["messages"]["total"] == 4
    # dan also gets the confirmations of his orders of 04-01 (week 0) and 04-26 (week 3, beside a reminder)
    assert report["messages"]["per_customer_week"]["together"] == {
        "customers": 3,
        "weeks": 4,
        "mean": 1.5,
        "p95": 2,
        "max": 2,
    }
    alone = simulate(ws.segments, ws.settings.guards, "abandoned_cart", **APRIL, together=False)
    assert alone["together_with"] == [] and alone["messages"] == {
        **report["messages"],
        "per_customer_week": {
            "alone": report["messages"]["per_customer_week"]["alone"],
            "together": report["messages"]["per_customer_week"]["alone"],
        },
    }
    assert _stored(ws)["messages"] == 0 and _stored(ws)["journey_instances"] == 0


@pytest.mark.parametrize("installed", [False, True])
def test_a_segment_trigger_and_a_branch_as_of_the_moment(shop, installed):
    ws, ids = shop
    if installed:  # the saved segment, never computed: no membership events in the log either
        with ws.uow.session() as s:
            segment_library.install(s, now=ws.now())
    report = simulate(
        ws.segments, ws.settings.guards, "browse_abandonment", date_from=date(2024, 4, 28), date_to=date(2024, 5, 1)
    )
    # ann (Coffee > Beans on 04-28, 29, 30) and cat (Coffee on 04-25, 27, 30) reach 3 views by the end of 04-30
    assert sorted(report["entered"]["sample"]) == sorted([ids["ann"], ids["cat"]])
    assert report["outcomes"]["exited"] == 2
    assert report["messages"]["total"] + report["messages"]["held_out"] == 2
    # a membership query each midnight (the first is the baseline), one branch query for both customers
    assert report["segment_queries"] == 4 + 1


def test_a_segment_trigger_reads_the_membership_events_of_the_log(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        segment_library.install(s, now=ws.now())
    membership.refresh(ws.segments, ["category_viewers"])  # now, 05-01 12:00: ann and cat enter
    move_events(ws)
    report = simulate(
        ws.segments, ws.settings.guards, "browse_abandonment", date_from=date(2024, 4, 28), date_to=date(2024, 5, 1)
    )
    assert sorted(report["entered"]["sample"]) == sorted([ids["ann"], ids["cat"]])
    assert report["outcomes"]["running"] == 2  # waiting for 10:00 tomorrow
    assert report["segment_queries"] == 1  # the branch, for both: no daily membership


def test_approvals_pending_or_answered(shop):
    ws, ids = shop
    vip = {
        "name": "vip",
        "trigger": {"manual": True},
        "control_share": 0,
        "start": "ask",
        "nodes": {
            "ask": {"type": "approval", "note": "gift?", "next": "gift", "on_reject": "end"},
            "gift": {"type": "send", "channel": "email", "template": "vip_gift", "next": "end"},
            "end": {"type": "exit"},
        },
    }
    manual = [(ids["ann"], datetime(2024, 4, 2, 9)), (ids["bob"], datetime(2024, 4, 3, 9))]
    pending = simulate(ws.segments, ws.settings.guards, vip, **APRIL, manual=manual)
    assert pending["outcomes"]["approval_pending"] == 2 and pending["messages"]["total"] == 0
    approved = simulate(ws.segments, ws.settings.guards, vip, **APRIL, manual=manual, approve=True)
    assert approved["outcomes"]["exited"] == 2 and approved["messages"]["total"] == 2
    rejected = simulate(ws.segments, ws.settings.guards, vip, **APRIL, manual=manual, approve=False)
    assert rejected["outcomes"]["exited"] == 2 and rejected["messages"]["total"] == 0


def test_win_back_enters_on_the_sixtieth_day(shop):
    ws, ids = shop
    report = simulate(
        ws.segments,
        ws.settings.guards,
        {**library.get("win_back"), "control_share": 0},
        date_from=date(2024, 4, 9),
        date_to=date(2024, 4, 12),
    )
    assert report["entered"]["sample"] == [ids["bob"]]  # his only order: 2024-02-10
    assert report["messages"]["by_node"] == {"winback_1": 1} and report["actions"] == {"promo_codes": 1}
    assert report["outcomes"]["running"] == 1
    assert report["segment_queries"] == 4  # one a day


def test_guards_defer_at_night_and_over_the_caps(shop):
    ws, ids = shop
    three = {
        "name": "three",
        "category": "promotional",
        "trigger": {"manual": True},
        "control_share": 0,
        "start": "a",
        "nodes": {
            "a": {"type": "send", "channel": "email", "fallback": ["sms"], "template": "t_a", "next": "w1"},
            "w1": {"type": "wait", "hours": 1, "next": "b"},
            "b": {"type": "send", "channel": "email", "fallback": ["sms"], "template": "t_b", "next": "w2"},
            "w2": {"type": "wait", "hours": 1, "next": "c"},
            "c": {"type": "send", "channel": "email", "fallback": ["sms"], "template": "t_c", "next": "end"},
            "end": {"type": "exit"},
        },
    }
    manual = [
        (ids["ann"], datetime(2024, 4, 2, 12)),  # email: the third waits a week for the cap of 2 in 7 days
        (ids["bob"], datetime(2024, 4, 2, 12)),  # no consent: nothing goes
        (ids["cat"], datetime(2024, 4, 3, 22)),
    ]  # SMS at night: all three wait for 09:00, the third a week
    report = simulate(ws.segments, ws.settings.guards, three, **APRIL, manual=manual, together=False)
    assert report["messages"]["total"] == 9
    assert report["guards"]["journey"] == {
        "sent": 6,
        "by_channel": {"email": 3, "sms": 3},
        "suppressed": {"consent": 3},
        "deferred": {"frequency": 2, "quiet_hours": 3},
        "deferred_past_end": 0,
        "sent_per_customer_week": {"customers": 2, "weeks": 4, "mean": 1.5, "p95": 2, "max": 2},
    }
