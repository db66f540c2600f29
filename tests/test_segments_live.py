"""Live membership in the pipeline process of `serve`: an event that arrives moves its customer into a segment."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from boomerang.events import intake, schemas
from boomerang.segments import service
from boomerang.segments.models import SegmentMember
from boomerang.worker import Pipeline


def test_an_arriving_event_changes_membership_within_the_pipeline(ws):
    with ws.uow.session() as s:
        service.save(s, {"name": "cart_now", "rule": {"event": "Product Added", "within_days": 1}}, now=ws.now())
        service.save(s, {"name": "kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}}, now=ws.now())
    pipeline = Pipeline(ws.settings)
    pipeline.start()
    try:
        for user, expected in (("u1", 2), ("u2", 4)):  # the second once the pipeline is warm
            now = datetime.now(UTC).replace(tzinfo=None)
            messages = [
                schemas.Identify(userId=user, messageId=f"i-{user}", traits={"city": "Kyiv"}),
                schemas.Track(event="Product Added", userId=user, messageId=f"t-{user}", properties={"sku": "S1"}),
            ]
            events = schemas.normalise(messages, received_at=now, limits=ws.settings.ingest, new_id=str)
            started = time.perf_counter()
            with ws.uow.session() as session:
                intake.accept(session, events, now=now, source="api")
            pipeline.nudge()  # as the tracking API does after accepting
            members: list[str] = []
            while time.perf_counter() - started < 60 and len(members) < expected:
                with ws.engine.connect() as conn:
                    members = [
                        name
                        for (name,) in conn.execute(
                            sa.text("SELECT s.name FROM segment_members m JOIN segments s ON s.id = m.segment_id")
                        )
                    ]
                time.sleep(0.02)
            print(f"{user}: event to membership {time.perf_counter() - started:.2f} s")  # the bench reports it
    finally:
        pipeline.stop()
    assert sorted(members) == ["cart_now", "cart_now", "kyiv", "kyiv"]
    with ws.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SegmentMember)).scalar_one() == 4
