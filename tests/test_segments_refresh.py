"""The scheduled recompute of the segments runs in a thread of its own: events keep moving meanwhile."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

import segments_data
from boomerang.events.ingest import record
from boomerang.orchestration import rounds
from boomerang.segments import membership, service
from boomerang.segments.models import Segment, SegmentMember

EXPIRING = {  # rolling windows: recomputed on the schedule
    "buyers_30": {"event": "Order Completed", "within_days": 30},
    "cart_now": {"event": "Product Added", "within_days": 1},
    "viewers_7": {"event": "Product Viewed", "within_days": 7},
}


def _members(ws, name: str) -> set[str]:
    with ws.uow.session() as s:
        query = sa.select(SegmentMember.customer_id).join(Segment).where(Segment.name == name)
        return set(s.scalars(query))


def test_events_move_and_enter_segments_while_a_recompute_is_under_way(ws):
    ids = segments_data.load(ws)
    with ws.uow.session() as s:
        for name, rule in EXPIRING.items():
            service.save(s, {"name": name, "rule": rule}, now=ws.now())
    paused, go = threading.Event(), threading.Event()

    def hold(done: dict) -> None:  # after the first segment is written, wait until the test says go
        if not paused.is_set():
            paused.set()
            assert go.wait(60)

    refresher = membership.refresher(ws.segments)
    assert refresher.start(ws.segments, on_segment=hold)
    assert paused.wait(60) and refresher.running()
    assert not refresher.start(ws.segments)  # one at a time

    at = (segments_data.NOW - timedelta(minutes=1)).isoformat() + "Z"
    with ws.uow.session() as s:  # eve puts something in her cart while the recompute is paused half-way
        added = {"type": "track", "userId": "eve", "event": "Product Added", "timestamp": at, "properties": {}}
        record(s, [added], now=segments_data.NOW, limits=ws.settings.ingest, source="test")
    done = rounds.ingest(ws)  # the pipeline's round: processed, logged, live segments, journeys
    assert done["events"] >= 1 and {"name": "cart_now", "entered": 1, "exited": 0} in done["segments"]
    assert refresher.running() and ids["eve"] in _members(ws, "cart_now")

    go.set()
    found = {r["name"]: r for r in refresher.wait(60)}
    assert not refresher.running() and set(found) == set(EXPIRING)
    assert _members(ws, "cart_now") == {ids["bob"], ids["eve"]}  # the recompute kept the live entry
    assert found["viewers_7"]["size"] == len(_members(ws, "viewers_7")) == 3  # ann, bob, cat


def test_the_pipeline_starts_the_recompute_apart(ws):
    segments_data.load(ws)
    with ws.uow.session() as s:
        service.save(s, {"name": "viewers_7", "rule": EXPIRING["viewers_7"]}, now=ws.now())
    assert rounds.scheduled(ws, segments_apart=True)["segments"] == "recomputing in the background"
    assert [r["name"] for r in membership.refresher(ws.segments).wait(60)] == ["viewers_7"]
    assert len(_members(ws, "viewers_7")) == 3
