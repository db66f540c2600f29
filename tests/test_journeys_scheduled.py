"""A scheduled trigger entering many customers, a chunk per transaction, on both stores: each sleeping customer
once, none of the others, a round stopped half-way finished by the next, every step run once."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from boomerang.core.clock import FixedClock
from boomerang.events.ingest import record
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.messaging.models import Message
from boomerang.orchestration.rounds import move_events

TODAY = datetime(2024, 6, 1)
WINBACK = {
    "name": "winback",
    "trigger": {"inactive_days": 60},
    "control_share": 0.3,
    "reentry": {"mode": "after", "days": 180},
    "start": "first",
    "nodes": {
        "first": {"type": "send", "channel": "email", "template": "winback_1", "next": "later"},
        "later": {"type": "wait", "days": 30, "next": "second"},
        "second": {"type": "send", "channel": "email", "template": "winback_2", "next": "done"},
        "done": {"type": "exit"},
    },
}


def _shop(ws, sleeping: int, active: int) -> dict[str, str]:
    """`sleeping` customers whose last order was 60 days before TODAY, `active` ones who ordered again since;
    returns user id -> customer id."""
    ws.clock = FixedClock(TODAY)
    slept = TODAY - timedelta(days=60, hours=-6)

    def order(user: str, at: datetime) -> dict:
        return {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": at.isoformat() + "Z",
            "properties": {"order_id": f"{user}-{at:%m%d}", "revenue": 10.0, "currency": "USD"},
        }

    events = [order(f"s{i}", slept) for i in range(sleeping)]
    events += [order(f"a{i}", at) for i in range(active) for at in (slept, TODAY - timedelta(days=5))]
    with ws.uow.session() as session:
        record(session, events, now=TODAY, limits=ws.settings.ingest, source="test")
    move_events(ws)
    with ws.uow.session() as session:
        service.save(session, WINBACK, now=TODAY)
        service.set_status(session, "winback", "active", now=TODAY)
    with ws.engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT external_id, id FROM customers").all())


def _instances(ws) -> list[tuple[str, str]]:
    with ws.engine.connect() as conn:
        return conn.execute(sa.select(m.Instance.customer_id, m.Instance.status)).all()


def test_a_scheduled_trigger_enters_every_sleeping_customer_once_a_chunk_at_a_time(any_ws):
    ws = any_ws
    ids = _shop(ws, sleeping=7, active=2)
    sleeping = {ids[f"s{i}"] for i in range(7)}
    now = TODAY + timedelta(minutes=5)
    assert runtime.run_scheduled(ws.segments, now, chunk=3) == {"winback": 7}
    assert runtime.run_scheduled(ws.segments, now + timedelta(hours=2), chunk=3) == {"winback": 0}
    instances = _instances(ws)
    assert sorted(c for c, _ in instances) == sorted(sleeping)
    assert {s for _, s in instances} == {"waiting"}
    assert runtime.run_due(ws.uow, now + timedelta(days=30), limit=4) == 4
    assert runtime.run_due(ws.uow, now + timedelta(days=30), limit=4) == 3
    assert runtime.run_due(ws.uow, now + timedelta(days=30)) == 0
    assert {s for _, s in _instances(ws)} == {"done"}
    with ws.engine.connect() as conn:
        sent = conn.execute(sa.select(Message.customer_id, Message.template, Message.key)).all()
    assert sorted((c, t) for c, t, _ in sent) == sorted((c, t) for c in sleeping for t in ("winback_1", "winback_2"))
    assert len({k for *_, k in sent}) == 14


def test_a_round_stopped_half_way_is_finished_by_the_next(ws):
    ids = _shop(ws, sleeping=5, active=1)
    now = TODAY + timedelta(minutes=5)
    first = [ids["s0"], ids["s3"]]  # the chunk a round committed before it stopped
    with ws.uow.session() as session:
        entered = runtime.enter_many(session, service.get(session, "winback"), [(c, None) for c in first], now)
    assert all(entered)
    assert runtime.run_scheduled(ws.segments, now + timedelta(minutes=5), chunk=2) == {"winback": 3}
    assert sorted(c for c, _ in _instances(ws)) == sorted(ids[f"s{i}"] for i in range(5))
