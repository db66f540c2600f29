"""Recounting achievements from history: the event log's matching events, oldest first, through the same counting
as live events (`loyalty.achievements.count`). Loyalty cannot read the log; this sees both."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from boomerang.core.clock import naive_utc
from boomerang.customers.merge import live_ids
from boomerang.events import effects
from boomerang.events.log import EventLog
from boomerang.loyalty import achievements
from boomerang.loyalty.achievements_rules import IDENTIFY, Definition
from boomerang.orchestration import rounds

CHUNK = 20_000  # events per transaction


@dataclass
class _Logged:
    """An event of the log as counting reads it, its customer followed to the live profile."""

    message_id: str
    type: str
    event: str
    customer_id: str | None
    timestamp: datetime
    properties: dict[str, Any]
    source: str


def rebuild(rt: rounds.Runtime, keys: Sequence[str] | None = None, *, tell: bool = False) -> dict[str, Any]:
    """Forget the unearned progress towards the achievements on now (of `keys`, when given) and count it again
    from the whole log; what earns is awarded (once, as always) and, with `tell`, an `Achievement Earned` event.
    What was accepted but not logged yet is brought into the log first, as the round does."""
    rounds.ingest(rt)
    now = naive_utc(rt.clock.now())
    with rt.uow.session() as session:
        chosen = achievements.start_rebuild(session, keys)
    counted = earned = 0
    for chunk in _history(rt.log, chosen):
        with rt.uow.session() as session:
            live = live_ids(session, {e.customer_id for e in chunk if e.customer_id})
            for e in chunk:
                e.customer_id = live.get(e.customer_id) if e.customer_id else None
            notices = achievements.count(session, chunk, chosen, now=now, tell=True)
            if tell:
                effects.log_loyalty_notices(session, notices)
        counted += len(chunk)
        earned += len(notices)
    return {"achievements": [spec.key for spec in chosen], "events": counted, "earned": earned, "told": tell}


def _history(log: EventLog, chosen: Sequence[Definition]) -> Iterator[list[_Logged]]:
    """The log's events that may match, oldest first, a chunk per read (the log is not held open while the
    operational store is written)."""
    names = sorted({spec.condition.event for spec in chosen if spec.condition.event != IDENTIFY})
    identify = any(spec.condition.event == IDENTIFY for spec in chosen)
    if not names and not identify:
        return
    after: tuple[Any, str] | None = None
    while True:
        with log.reader() as r:
            e = r.events
            wanted = (e.type == "track") & e.event.isin(names) if names else None
            if identify:
                wanted = (e.type == "identify") if wanted is None else wanted | (e.type == "identify")
            if after is not None:  # where the last chunk ended: (timestamp, message id) in order
                wanted &= (e.timestamp > after[0]) | ((e.timestamp == after[0]) & (e.message_id > after[1]))
            found = (
                e.filter(wanted)
                .order_by([e.timestamp, e.message_id])
                .select(
                    "message_id", "type", "event", "customer_id", "timestamp", "source", props=e.properties.cast(str)
                )
                .limit(CHUNK)
                .execute()
            )
        if found.empty:
            return
        rows = found.astype(object).where(found.notna(), None).to_dict("records")
        yield [_logged(row) for row in rows]
        after = (rows[-1]["timestamp"], rows[-1]["message_id"])
        if len(rows) < CHUNK:
            return


def _logged(row: dict[str, Any]) -> _Logged:
    at = row["timestamp"]
    at = at.to_pydatetime() if hasattr(at, "to_pydatetime") else at
    return _Logged(
        row["message_id"],
        row["type"],
        row["event"] or "",
        row["customer_id"],
        naive_utc(at) if at.tzinfo else at,
        orjson.loads(row["props"]) if row["props"] else {},
        row["source"] or "",
    )
