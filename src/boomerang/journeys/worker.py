"""The journey worker's rounds: inside `boomerang serve` (after each flush) and standalone (`boomerang worker`)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import orjson
import pandas as pd

from boomerang.bootstrap import Workspace
from boomerang.core.clock import naive_utc
from boomerang.journeys import runtime
from boomerang.messaging import campaigns
from boomerang.messaging.dispatch import dispatch

log = logging.getLogger("boomerang.worker")


def events_of(frames: list[pd.DataFrame]) -> list[dict[str, Any]]:
    """Rows just moved into the log, as the events journeys look at."""
    out = []
    for frame in frames:
        for customer_id, event, ts, props in zip(
            frame["customer_id"], frame["event"], frame["timestamp"], frame["properties"]
        ):
            out.append(
                {
                    "customer_id": customer_id,
                    "event": event,
                    "timestamp": str(ts),
                    "properties": orjson.loads(props) if isinstance(props, (str, bytes)) and props else {},
                }
            )
    return out


def after_flush(ws: Workspace, frames: list[pd.DataFrame], now: datetime) -> dict[str, Any]:
    """What the rows just flushed change: live segment membership, then journeys (triggers, goals, waits)."""
    from boomerang.segments.membership import touched_by, update_customers

    segments = update_customers(ws, touched_by(frames))
    journeys = runtime.on_events(ws, events_of(frames), now)
    return {"segments": segments, "journeys": journeys}


def tick(ws: Workspace, now: datetime | None = None, *, limit: int = 500, batch: int = 1000) -> dict[str, int]:
    """Due timers, campaigns whose time came, then due messages: until both are done for now (or `limit`
    rounds of each), `batch` instances per transaction."""
    now = now or naive_utc(ws.clock.now())
    out = {"woken": 0, "branched": 0, "campaigns": campaigns.start_due(ws, now=now)}
    for _ in range(limit):
        woken, branched = runtime.run_due(ws, now, limit=batch), runtime.resolve_branches(ws, now, limit=batch)
        out["woken"] += woken
        out["branched"] += branched
        if not woken and not branched:
            break
    for k, v in dispatch(ws, now=now, rounds=limit).items():
        out[k] = out.get(k, 0) + v
    return out


def scheduled(ws: Workspace, now: datetime | None = None) -> dict[str, Any]:
    """What moves with time alone: segments with rolling windows, and dates and silences that start journeys."""
    from boomerang.journeys.triggers import run_scheduled
    from boomerang.segments.membership import refresh

    now = now or naive_utc(ws.clock.now())
    return {"segments": refresh(ws, only_expiring=True), "journeys": run_scheduled(ws, now)}


def run_forever(
    ws: Workspace, *, interval: float = 1.0, schedule_minutes: float = 5.0, batch: int = 1000, stop=None
) -> None:
    """`boomerang worker`: timers, messages and scheduled triggers, until stopped."""
    last = 0.0
    while stop is None or not stop.is_set():
        try:
            tick(ws, batch=batch)
            if time.monotonic() - last >= schedule_minutes * 60:
                last = time.monotonic()
                scheduled(ws)
        except Exception:  # noqa: BLE001 - the next round retries; nothing is lost in the store
            log.exception("journey round failed; will retry")
        time.sleep(interval)
