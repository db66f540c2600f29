"""Journeys on a workspace: entering, events, timers, the outbox, conversions, approvals, re-entry, stats."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import segments_data
from boomerang.config import FrequencyCap, GuardSettings
from boomerang.core.errors import ValidationFailed
from boomerang.customers.models import Customer
from boomerang.events.schemas import Logged
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.messaging.models import Message
from test_journeys_engine import CART

T0 = segments_data.NOW


@pytest.fixture
def shop(ws):
    return ws, segments_data.load(ws)


def _added(customer_id: str, cart: str, at: datetime = T0) -> Logged:
    return Logged(customer_id, "track", "Product Added", at, {"cart_id": cart})


def _save(ws, raw: dict) -> dict:
    with ws.uow.session() as s:
        return service.save(s, raw, now=ws.now())


def _set_status(ws, name: str, status: str) -> dict:
    with ws.uow.session() as s:
        return service.set_status(s, name, status, now=ws.now())


def _stats(ws, name: str) -> dict:
    with ws.uow.session() as s:
        return service.stats(s, name)


def _decide(ws, key: str, **kwargs) -> dict:
    with ws.uow.session() as s:
        return runtime.decide(s, key, **kwargs)


def _messages(ws) -> list[tuple]:
    with ws.engine.connect() as conn:
        return conn.execute(
            sa.select(Message.customer_id, Message.node, Message.status, Message.template).order_by(Message.id)
        ).all()


def _never_in_control(ws, name):
    _save(ws, {**CART, "name": name, "control_share": 0})
    _set_status(ws, name, "active")


def test_abandoned_cart_end_to_end(shop):
    ws, ids = shop
    _never_in_control(ws, "cart")
    bob, cat = ids["bob"], ids["cat"]
    counts = runtime.on_events(ws.uow, [_added(bob, "k1"), _added(bob, "k1"), _added(cat, "k2")], T0)
    assert counts == {"entered": 2, "advanced": 0}  # one instance per cart, the same cart twice is one
    assert runtime.run_due(ws.uow, T0 + timedelta(minutes=30)) == 0
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=1)) == 2
    assert [(c, n, s) for c, n, s, _ in _messages(ws)] == [(bob, "remind", "queued"), (cat, "remind", "queued")]
    order = Logged(bob, "track", "Order Completed", T0 + timedelta(hours=2), {"cart_id": "k1", "revenue": 55.5})
    assert runtime.on_events(ws.uow, [order], T0 + timedelta(hours=2))["advanced"] == 1
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=25)) == 1  # only cat's instance was still waiting
    stats = _stats(ws, "cart")
    assert stats["groups"]["treated"] == {
        "entered": 2,
        "converted": 1,
        "revenue": 55.5,
        "conversion_rate": 0.5,
        "revenue_per_customer": 27.75,
    }
    assert stats["nodes"]["later"]["conversions"] == 1
    with ws.engine.connect() as conn:
        conversion = conn.execute(sa.select(m.Conversion.customer_id, m.Conversion.message_key)).one()
    assert conversion[0] == bob and conversion[1].endswith(":remind:1")


def test_control_group_enters_but_is_sent_nothing(shop):
    ws, ids = shop
    _save(ws, {**CART, "name": "cart_held", "control_share": 0.999})
    _set_status(ws, "cart_held", "active")
    runtime.on_events(ws.uow, [_added(ids["bob"], "k1")], T0)
    runtime.run_due(ws.uow, T0 + timedelta(hours=1))
    assert [s for _, _, s, _ in _messages(ws)] == ["held_out"]
    assert _stats(ws, "cart_held")["groups"]["control"]["entered"] == 1


def test_reentry_and_paused_journeys(shop):
    ws, ids = shop
    welcome = {
        "name": "welcome",
        "trigger": {"event": "Signed Up"},
        "reentry": {"mode": "never"},
        "control_share": 0,
        "start": "hello",
        "nodes": {
            "hello": {"type": "send", "channel": "email", "template": "welcome_1", "next": "end"},
            "end": {"type": "exit"},
        },
    }
    _save(ws, welcome)
    signed = Logged(ids["ann"], "track", "Signed Up", T0, {})
    assert runtime.on_events(ws.uow, [signed], T0)["entered"] == 0  # a draft starts nothing
    _set_status(ws, "welcome", "active")
    assert runtime.on_events(ws.uow, [signed], T0)["entered"] == 1
    assert runtime.on_events(ws.uow, [signed], T0 + timedelta(days=400))["entered"] == 0  # never again
    _set_status(ws, "welcome", "paused")
    assert runtime.on_events(ws.uow, [replace(signed, customer_id=ids["bob"])], T0)["entered"] == 0


def test_new_versions_leave_running_instances_on_theirs(shop):
    ws, ids = shop
    _never_in_control(ws, "cart")
    runtime.on_events(ws.uow, [_added(ids["bob"], "k1")], T0)
    changed = {
        **CART,
        "name": "cart",
        "control_share": 0,
        "nodes": {**CART["nodes"], "remind": {**CART["nodes"]["remind"], "template": "cart_v2"}},
    }
    assert _save(ws, changed)["version"] == 2
    runtime.on_events(ws.uow, [_added(ids["cat"], "k2")], T0)
    runtime.run_due(ws.uow, T0 + timedelta(hours=1))
    assert {(c, t) for c, _, _, t in _messages(ws)} == {(ids["bob"], "cart_1"), (ids["cat"], "cart_v2")}


def test_branch_reads_the_profile_and_approval_waits_for_a_person(shop):
    ws, ids = shop
    _save(
        ws,
        {
            "name": "vip",
            "trigger": {"manual": True},
            "control_share": 0,
            "start": "check",
            "nodes": {
                "check": {"type": "branch", "rule": {"reachable": "email"}, "yes": "ask", "no": "end"},
                "ask": {"type": "approval", "note": "gift?", "next": "gift", "on_reject": "end"},
                "gift": {"type": "send", "channel": "email", "template": "vip_gift", "next": "end"},
                "end": {"type": "exit"},
            },
        },
    )
    _set_status(ws, "vip", "active")
    with ws.uow.session() as session:
        row = service.get(session, "vip")
        runtime.enter(session, row, ids["ann"], T0)  # has email and consent
        runtime.enter(session, row, ids["bob"], T0)  # email without consent
    assert runtime.resolve_branches(ws.segments, T0) == 2  # answered outside the store's transaction
    with ws.engine.connect() as conn:
        pending = conn.execute(sa.select(m.ApprovalRequest.key, m.ApprovalRequest.customer_id)).all()
    assert [c for _, c in pending] == [ids["ann"]]
    done = _decide(ws, pending[0][0], approved=True, by="ann.admin", template="vip_gift_kind", now=T0)
    assert done["instance_status"] == "done"
    assert [(c, t) for c, _, _, t in _messages(ws)] == [(ids["ann"], "vip_gift_kind")]
    with pytest.raises(ValidationFailed, match="already approved"):
        _decide(ws, pending[0][0], approved=False, by="x", now=T0)


def test_scheduled_triggers_birthday_and_inactivity(shop):
    ws, ids = shop
    for name, trigger in (("birthday", {"date": "birthday", "offset_days": -3}), ("winback", {"inactive_days": 30})):
        _save(
            ws,
            {
                "name": name,
                "trigger": trigger,
                "control_share": 0,
                "reentry": {"mode": "after", "days": 300},
                "start": "hi",
                "nodes": {
                    "hi": {"type": "send", "channel": "email", "template": name, "next": "end"},
                    "end": {"type": "exit"},
                },
            },
        )
        _set_status(ws, name, "active")
    # ann's birthday is on 05-04, three days after 2024-05-01; dan's only order was on 04-01, 30 days before
    assert runtime.run_scheduled(ws.segments, T0) == {"birthday": 1, "winback": 1}
    assert runtime.run_scheduled(ws.segments, T0) == {"birthday": 0, "winback": 0}  # re-entry after 300 days
    assert {(c, t) for c, _, _, t in _messages(ws)} == {(ids["ann"], "birthday"), (ids["dan"], "winback")}


def test_a_segment_trigger_needs_the_segment(shop):
    ws, _ = shop
    with pytest.raises(ValidationFailed) as info:
        _save(ws, {**CART, "name": "seg", "trigger": {"segment": "nowhere"}})
    assert info.value.errors[0]["field"] == "trigger.segment"


def test_replenishment_learns_each_products_cycle(ws):
    """Coffee bought every 28 days by three customers: the fourth customer's coffee is due 28 days
    after their last bag, and they enter three days before, keyed by the product."""
    from boomerang.events.ingest import record
    from boomerang.orchestration.rounds import move_events

    def order(user, oid, day, sku):
        return {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": f"{day}T12:00:00Z",
            "properties": {"order_id": oid, "revenue": 10, "products": [{"sku": sku, "quantity": 1}]},
        }

    msgs = [
        order(u, f"{u}{k}", d, "COFFEE")
        for u in ("a", "b", "c")
        for k, d in enumerate(("2024-01-01", "2024-01-29", "2024-02-26"))
    ]
    msgs += [
        order("d", "d1", "2024-04-01", "COFFEE"),
        order("d", "d2", "2024-04-01", "MUG"),
        order("e", "e1", "2024-04-02", "COFFEE"),
    ]
    with ws.uow.session() as session:
        record(session, msgs, now=T0, limits=ws.settings.ingest, source="test")
    move_events(ws)
    _save(
        ws,
        {
            "name": "refill",
            "trigger": {"replenish_offset_days": -3},
            "control_share": 0,
            "start": "hi",
            "nodes": {
                "hi": {"type": "send", "channel": "email", "template": "refill", "next": "end"},
                "end": {"type": "exit"},
            },
        },
    )
    _set_status(ws, "refill", "active")
    assert runtime.run_scheduled(ws.segments, datetime(2024, 4, 25, 8)) == {"refill": 0}
    assert runtime.run_scheduled(ws.segments, datetime(2024, 4, 26, 8)) == {"refill": 1}  # d: 04-01 + 28 - 3
    with ws.engine.connect() as conn:
        who = conn.execute(
            sa.select(Customer.external_id, m.Instance.key).join(Customer, Customer.id == m.Instance.customer_id)
        ).all()
    assert who == [("d", "COFFEE")]  # the mug has no learned cycle


def test_orders_after_the_last_step_count_for_treated_and_control(shop):
    ws, ids = shop
    back = {
        "name": "back",
        "trigger": {"event": "Back In Stock"},
        "goal": {"event": "Order Completed", "within_days": 7},
        "control_share": 0,
        "start": "tell",
        "nodes": {
            "tell": {"type": "send", "channel": "email", "template": "back_1", "next": "end"},
            "end": {"type": "exit"},
        },
    }
    for journey in (back, {**back, "name": "back_held", "control_share": 0.999}):
        _save(ws, journey)
        _set_status(ws, journey["name"], "active")
    ann, bob = ids["ann"], ids["bob"]
    assert runtime.on_events(ws.uow, [Logged(c, "track", "Back In Stock", T0, {}) for c in (ann, bob)], T0) == {
        "entered": 4,
        "advanced": 0,
    }

    def order(customer_id: str, after: timedelta, revenue: float) -> None:
        event = Logged(customer_id, "track", "Order Completed", T0 + after, {"revenue": revenue})
        runtime.on_events(ws.uow, [event], T0 + after)

    order(ann, timedelta(seconds=80), 20.0)  # 80 s after the email, the instance long done
    order(ann, timedelta(days=2), 99.0)  # converted already: no second conversion
    order(bob, timedelta(days=7, minutes=1), 50.0)  # outside the 7-day window
    with ws.engine.connect() as conn:
        rows = conn.execute(sa.select(m.Conversion.customer_id, m.Conversion.control, m.Conversion.revenue)).all()
        outcomes = conn.execute(sa.select(m.Instance.customer_id, m.Instance.outcome)).all()
    assert sorted(rows) == [(ann, False, 20.0), (ann, True, 20.0)]
    assert sorted(outcomes) == sorted([(ann, "converted"), (ann, "converted"), (bob, "exited"), (bob, "exited")])
    assert _stats(ws, "back")["groups"]["treated"]["converted"] == 1
    assert _stats(ws, "back_held")["groups"]["control"]["converted"] == 1


def test_a_deferred_reminder_whose_cart_was_bought_does_not_go(shop):
    ws, ids = shop
    ws.settings.guards = GuardSettings(global_control_share=0, caps={"all": FrequencyCap(count=1, days=7)})
    _never_in_control(ws, "cart")
    ann = ids["ann"]
    with ws.uow.session() as s:  # ann is at her weekly cap
        s.add(
            Message(
                key="earlier",
                source="campaign:x",
                customer_id=ann,
                channels=["email"],
                channel="email",
                template="news",
                category="promotional",
                when_capped="defer",
                status="sent",
                send_after=T0,
                attempts=1,
                created_at=T0,
                sent_at=T0,
            )
        )
    runtime.on_events(ws.uow, [_added(ann, "k1")], T0)
    runtime.run_due(ws.uow, T0 + timedelta(hours=1))
    assert ws.dispatcher.dispatch(now=T0 + timedelta(hours=1))["deferred"] == 1
    bought = Logged(ann, "track", "Order Completed", T0 + timedelta(hours=2), {"cart_id": "k1", "revenue": 30.0})
    runtime.on_events(ws.uow, [bought], T0 + timedelta(hours=2))
    assert ws.dispatcher.dispatch(now=T0 + timedelta(days=8))["suppressed"] == 1
    with ws.engine.connect() as conn:
        status, reason = conn.execute(
            sa.select(Message.status, Message.reason).where(Message.customer_id == ann, Message.key != "earlier")
        ).one()
    assert (status, reason) == ("suppressed", "purpose: the journey's goal was met")


@pytest.mark.parametrize("per, entered", [("key", [1, 1, 0, 1]), ("customer", [1, 0, 0, 1])])
def test_reentry_counts_per_key_where_the_trigger_is_keyed(shop, per, entered):
    """A second product back in stock the same day starts its own instance; the same product again waits
    a day. Counted per customer, any second product waits the day too."""
    ws, ids = shop
    _save(
        ws,
        {
            "name": "restock",
            "trigger": {"event": "Back In Stock", "key": "sku"},
            "reentry": {"mode": "after", "days": 1, "per": per},
            "control_share": 0,
            "start": "notify",
            "nodes": {
                "notify": {"type": "send", "channel": "email", "template": "back_in_stock", "next": "end"},
                "end": {"type": "exit"},
            },
        },
    )
    _set_status(ws, "restock", "active")

    def back(sku: str, at: datetime) -> int:
        event = Logged(ids["ann"], "track", "Back In Stock", at, {"sku": sku})
        return runtime.on_events(ws.uow, [event], at)["entered"]

    hour = timedelta(hours=1)
    assert [back("MUG", T0), back("TEA", T0 + hour), back("MUG", T0 + 2 * hour), back("MUG", T0 + 25 * hour)] == entered


def test_a_test_run_scales_waits_sends_for_real_and_stays_out_of_the_results(shop):
    """A draft cart journey tried on one customer at 60x: the 1-hour wait takes a minute, the message is
    queued for the real channels, the order counts nowhere, and the customer can still enter for real."""
    ws, ids = shop
    _save(ws, {**CART, "name": "cart", "control_share": 0.99})  # nearly everyone held out; a test run never is
    ann = ids["ann"]
    with ws.uow.session() as s:
        tried = runtime.enter_manually(s, "cart", ann, key="k1", test_speed=60, now=T0)
    assert tried["instance"] and tried["test"]
    with ws.uow.session() as s:
        with pytest.raises(ValidationFailed):  # without --test a draft takes no one
            runtime.enter_manually(s, "cart", ann, now=T0)
    assert runtime.run_due(ws.uow, T0 + timedelta(seconds=59)) == 0
    assert runtime.run_due(ws.uow, T0 + timedelta(minutes=1)) == 1
    with ws.engine.connect() as conn:
        assert conn.execute(sa.select(Message.source, Message.node, Message.status)).all() == [
            ("journey-test:cart", "remind", "queued")
        ]
    order = Logged(ann, "track", "Order Completed", T0 + timedelta(minutes=2), {"cart_id": "k1", "revenue": 40})
    runtime.on_events(ws.uow, [order], T0 + timedelta(minutes=2))
    stats = _stats(ws, "cart")
    assert stats["groups"]["treated"]["entered"] == stats["groups"]["control"]["entered"] == 0
    assert stats["groups"]["treated"]["converted"] == 0
    _set_status(ws, "cart", "active")
    assert runtime.on_events(ws.uow, [_added(ann, "k1", T0 + timedelta(minutes=3))], T0)["entered"] == 1
