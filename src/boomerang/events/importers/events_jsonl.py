"""Segment-format JSON lines (one message per line), through the same checks as the tracking API."""

from __future__ import annotations

import gzip
import hashlib
from datetime import datetime
from pathlib import Path

import orjson

from boomerang.config import IngestSettings
from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events import ingest, schemas
from boomerang.events.bulk import LoadResult
from boomerang.events.flush import flush
from boomerang.events.importers import NoProgress, Progress
from boomerang.events.log import EventLog
from boomerang.events.schemas import MODELS

CHUNK = 2000
MAX_ERRORS = 50


def _parse(path: Path, *, now: datetime, limits: IngestSettings) -> list[schemas.Event]:
    """Every line checked before anything is written; a message without an id gets one from its content."""
    events, errors = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"line {number}"
            try:
                payload = orjson.loads(raw)
                if not isinstance(payload, dict):
                    raise ValidationFailed([{"field": where, "reason": "must be a JSON object"}])
                kind = payload.get("type")
                if kind not in MODELS:
                    raise ValidationFailed(
                        [{"field": f"{where}.type", "reason": f"must be one of {', '.join(MODELS)}"}]
                    )
                payload.setdefault("messageId", "jsonl:" + hashlib.sha1(raw.strip()).hexdigest())
                message = schemas.parse_one(kind, payload)
                batch = schemas.normalise([message], received_at=now, limits=limits, new_id=lambda: "")
                ingest.check(batch)
                events += batch
            except orjson.JSONDecodeError as exc:
                errors.append({"field": where, "reason": f"not valid JSON: {exc}"})
            except ValidationFailed as exc:
                errors += [
                    {"field": f"{where}.{e['field']}".rstrip("."), "reason": e["reason"]}
                    if not e["field"].startswith("line")
                    else e
                    for e in exc.errors
                ]
            if len(errors) >= MAX_ERRORS:
                break
    if errors:
        raise ValidationFailed(errors)
    return events


def run(
    uow: UnitOfWork,
    log: EventLog,
    path: Path,
    *,
    now: datetime,
    limits: IngestSettings,
    progress: Progress | None = None,
) -> LoadResult:
    """Ingest a JSONL file; importing it again stores nothing twice."""
    progress = progress or NoProgress()
    events = _parse(Path(path), now=now, limits=limits)
    progress.start(len(events), f"events from {Path(path).name}")
    result = LoadResult()
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
        with uow.session() as session:
            ingest.ingest(session, chunk, now=now, source="import")
        progress.advance(len(chunk))
    before = log.count()
    flush(uow, log, chunk_rows=limits.flush_chunk_rows)
    result.events_new = log.count() - before
    return result
