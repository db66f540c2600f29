"""The round serve runs, merges joined by every domain, and the event log's one door."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from boomerang.channels.models import PushSubscription
from boomerang.customers import service as customers
from boomerang.events import ingest, intake, schemas
from boomerang.journeys import runtime
from boomerang.journeys import service as journeys
from boomerang.journeys.models import Instance
from boomerang.loyalty import service as loyalty
from boomerang.messaging import outbox, preferences
from boomerang.messaging.models import Message
from boomerang.orchestration import rounds
from boomerang.segments import service as segments
from boomerang.segments.models import Segment, SegmentMember

BUYERS = {"name": "buyers", "rule": {"event": "Order Completed", "op": "gte", "value": 1}}
THANKS = {
    "name": "thanks",
    "trigger": {"segment": "buyers"},
    "control_share": 0,
    "start": "send",
    "nodes": {
        "send": {"type": "send", "channel": "email", "template": "thanks", "next": "done"},
        "done": {"type": "exit"},
    },
}


def _accept(ws, *messages: dict) -> None:
    """As the tracking API does: checked, stored in the inbox, not yet processed."""
    now = ws.now()
    events = schemas.normalise(
        [schemas.parse_one(m["type"], m) for m in messages],
        received_at=now,
        limits=ws.settings.ingest,
        new_id=lambda: f"m{time.monotonic_ns()}",
    )
    with ws.uow.session() as s:
        intake.accept(s, events, now=now, source="api")


def test_a_segment_entered_in_a_round_starts_its_journeys_in_the_same_round(ws):
    with ws.uow.session() as s:
        segments.save(s, BUYERS, now=ws.now())
        journeys.save(s, THANKS, now=ws.now())
        journeys.set_status(s, "thanks", "active", now=ws.now())
    _accept(
        ws,
        {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"order_id": "o1", "total": 10}},
    )
    done = rounds.ingest(ws)
    assert [s["name"] for s in done["segments"]] == ["buyers"]
    assert done["journeys"]["entered"] == 1  # not one round later
    with ws.uow.session() as s:
        assert s.scalars(sa.select(Message.template)).all() == ["thanks"]
    again = rounds.ingest(ws)  # the Segment Entered event is in the log now; it starts nothing twice
    assert again["journeys"] == {"entered": 0, "advanced": 0}


def test_every_domain_follows_a_merge(ws):
    now = ws.now()
    with ws.uow.session() as s:
        segments.save(s, BUYERS, now=now)
        segments.save(s, {"name": "everyone", "rule": {"bucket": [0, 100]}}, now=now)
        journeys.save(s, {**THANKS, "name": "by_hand", "trigger": {"manual": True}}, now=now)
        journeys.set_status(s, "by_hand", "active", now=now)
    ingest_now = [
        {"type": "identify", "userId": "keep", "traits": {"email": "keep@example.com"}},
        {"type": "identify", "userId": "gone", "traits": {"email": "gone@example.com"}},
    ]
    with ws.uow.session() as s:
        events = ingest.record(s, ingest_now, now=now, limits=ws.settings.ingest, source="api")
    keep, gone = (e.customer_id for e in events)
    with ws.uow.session() as s:
        ids = {name: s.scalar(sa.select(Segment.id).where(Segment.name == name)) for name in ("buyers", "everyone")}
        s.add_all(
            [
                SegmentMember(segment_id=ids["everyone"], customer_id=keep, entered_at=now),
                SegmentMember(segment_id=ids["everyone"], customer_id=gone, entered_at=now),
                SegmentMember(segment_id=ids["buyers"], customer_id=gone, entered_at=now),
                PushSubscription(
                    endpoint="https://push.example.net/1", customer_id=gone, p256dh="k", auth="a", created_at=now
                ),
            ]
        )
        outbox.queue(
            s,
            [
                outbox.message(
                    key="k1",
                    source="test",
                    customer_id=gone,
                    channels=["email"],
                    template="t",
                    category="promotional",
                    now=now,
                )
            ],
        )
        loyalty.write(s, [loyalty.points_row("p1", gone, 50, source="test", now=now)])
        loyalty.write(s, [loyalty.points_row("p2", keep, 20, source="test", now=now)])
        preferences.update(s, gone, now=now, source="test", frequency="weekly")
        runtime.enter_manually(s, "by_hand", gone, now=now)
    with ws.uow.session() as s:
        customers.merge(s, keep, gone, now=now)
    with ws.uow.session() as s:
        assert s.scalar(sa.select(Message.customer_id).where(Message.key == "k1")) == keep
        assert s.scalar(sa.select(Instance.customer_id)) == keep
        assert s.get(PushSubscription, "https://push.example.net/1").customer_id == keep
        assert loyalty.wallets(s, [keep, gone], now=now)[keep].points == 70
        assert preferences.get(s, keep)["frequency"] == "weekly"
        members = s.execute(sa.select(SegmentMember.segment_id, SegmentMember.customer_id)).all()
        assert sorted(members) == sorted([(ids["everyone"], keep), (ids["buyers"], keep)])  # once each


def test_the_log_lets_readers_share_it_and_a_writer_have_it_alone(ws):
    order = []
    writing = threading.Event()

    def write():
        with ws.log.connect():
            writing.set()
            time.sleep(0.3)
            order.append("writer done")

    writer = threading.Thread(target=write)
    writer.start()
    writing.wait(5)
    with ws.log.reader() as first, ws.log.reader() as second:  # readers share the file
        order.append("readers in")
        assert first.events.count().execute() == second.events.count().execute() == 0
    writer.join()
    assert order == ["writer done", "readers in"]
    with ws.log.connect(), pytest.raises(RuntimeError, match="open for writing in this thread"):
        with ws.log.reader():
            pass
