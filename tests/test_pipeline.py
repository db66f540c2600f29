"""The pipeline: several processors share one PostgreSQL inbox without losing or doubling anything."""

from __future__ import annotations

import threading
from datetime import datetime

import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.customers.models import Customer, Identity
from boomerang.events import intake, schemas
from boomerang.events.models import inbox
from boomerang.events.process import process


def test_two_pipelines_share_the_inbox_on_postgres(pg_ws):
    now = datetime(2026, 3, 1, 12, 0)
    messages = [
        schemas.Track(
            event="Product Viewed",
            anonymousId=f"visitor-{i % 300}",
            messageId=f"m{i}",
            properties={"sku": f"S{i % 50}", "price": 3},
        )
        for i in range(3000)
    ]
    events = schemas.normalise(messages, received_at=now, limits=pg_ws.settings.ingest, new_id=str)
    with pg_ws.uow.session() as session:
        intake.accept(session, events, now=now, source="api")
    settings = Settings(
        home=pg_ws.settings.home, database_url=pg_ws.settings.database_url, ingest={"process_chunk_rows": 100}
    )
    counts, errors = [], []

    def pipeline() -> None:
        try:
            ws = open_workspace(settings)
            counts.append(process(ws.uow, ws.clock, chunk_rows=ws.settings.ingest.process_chunk_rows))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=pipeline) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sum(counts) == 3000 and all(counts)  # both took part, no row twice
    with pg_ws.uow.session() as s:
        assert s.scalar(sa.select(sa.func.count()).where(inbox.c.customer_id.is_(None))) == 0
        assert s.scalar(sa.select(sa.func.count(sa.distinct(inbox.c.customer_id)))) == 300
        assert s.scalar(sa.select(sa.func.count()).select_from(Customer)) == 300
        assert s.scalar(sa.select(sa.func.count()).select_from(Identity)) == 300
