"""Materialised membership: full recomputes on a schedule, and live updates of the customers a flush touched.

Each change of membership is written in one transaction of the operational store: the member rows,
and a "Segment Entered" or "Segment Exited" event in the inbox (already processed, so the next flush
moves it into the log). Message ids are deterministic: a recompute repeated after a crash adds
nothing twice, and journeys can trigger on the events.

The pipeline runs the scheduled recompute in a thread of its own (`Refresher`), so that events keep moving
while it reads the log. A live update and a recompute write membership one at a time (`_WRITING`), and a
recompute leaves alone the customers that live updates re-evaluated while it ran: their answer is newer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork, among
from boomerang.events import own
from boomerang.events.schemas import Logged
from boomerang.segments.definition import ENTERED, EXITED, PROFILE, Definition
from boomerang.segments.evaluate import Evaluator
from boomerang.segments.models import Segment, SegmentMember, SegmentSize
from boomerang.segments.service import describe, get

log = logging.getLogger("boomerang.segments")
LIVE_LIMIT = 5000  # customers touched by one flush beyond which segments are recomputed whole
_WRITING = threading.Lock()  # one write of membership at a time in this process (live updates, recomputes)
_NEWER: list[dict[str, set[str]]] = []  # per running recompute: segment -> customers live updates re-evaluated


def refresh(
    evaluator: Evaluator,
    names: list[str] | None = None,
    *,
    only_expiring: bool = False,
    on_segment: Callable[[dict[str, Any]], None] = lambda done: None,
) -> list[dict[str, Any]]:
    """Recompute every segment (or the named ones, or those whose membership changes with time) and
    record who entered and who left; returns per segment its size, entries, exits and seconds (each also
    given to `on_segment` as soon as it is written)."""
    with evaluator.uow.session() as session:
        query = sa.select(Segment).order_by(Segment.name)
        if names:
            query = query.where(Segment.name.in_(names))
        found = list(session.scalars(query))
        missing = set(names or []) - {s.name for s in found}
        if missing:
            raise ValidationFailed([{"field": "segment", "reason": f"no segment named {sorted(missing)[0]!r}"}])
        if only_expiring:
            found = [s for s in found if s.expires]
        session.expunge_all()
    newer: dict[str, set[str]] = defaultdict(set)
    with _WRITING:
        _NEWER.append(newer)
    try:
        evaluator.sync()
        return [_refresh_one(evaluator, segment, newer[segment.name], on_segment) for segment in found]
    finally:
        with _WRITING:
            _NEWER.remove(newer)


def _refresh_one(
    evaluator: Evaluator, segment: Segment, newer: set[str], on_segment: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    started = time.perf_counter()
    now = evaluator.now()
    with evaluator.compiler(sync=False) as c:  # a connection per segment: a flush waits for one query at most
        try:
            ids = set(c.members(_tree(segment)).execute()["customer_id"])
        except ValueError as exc:  # a trait not computed yet, say: the others still refresh
            log.warning("segment %s not refreshed: %s", segment.name, exc)
            done = {"name": segment.name, "error": str(exc)}
            on_segment(done)
            return done
    entered, exited, size = _apply(evaluator.uow, segment, ids, scope=None, at=now, newer=newer)
    done = {
        "name": segment.name,
        "version": segment.version,
        "size": size,
        "entered": entered,
        "exited": exited,
        "seconds": round(time.perf_counter() - started, 3),
    }
    on_segment(done)
    return done


class Refresher:
    """The scheduled recompute of the expiring segments in a thread of its own, one at a time: the pipeline
    starts it and goes on moving events; `last` is what the one before found."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last: list[dict[str, Any]] = []

    def start(self, evaluator: Evaluator, *, on_segment: Callable[[dict[str, Any]], None] = lambda done: None) -> bool:
        """Start recomputing; False when a recompute is still running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._thread = threading.Thread(
                target=self._run, args=(evaluator, on_segment), name="segments-refresh", daemon=True
            )
            self._thread.start()
        return True

    def _run(self, evaluator: Evaluator, on_segment: Callable[[dict[str, Any]], None]) -> None:
        try:
            self.last = refresh(evaluator, only_expiring=True, on_segment=on_segment)
        except Exception:  # noqa: BLE001 - the next schedule tries again; nothing half-written stays
            log.exception("the scheduled refresh of the segments failed; will retry")

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait for the recompute under way (if any) to end; returns what the last one found."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.last


_REFRESHERS: dict[Path, Refresher] = {}


def refresher(evaluator: Evaluator) -> Refresher:
    """The refresher of this workspace's event log (the process's one)."""
    with _WRITING:
        return _REFRESHERS.setdefault(evaluator.log.path, Refresher())


def touched_by(events: list[Logged]) -> dict[str, set[str]]:
    """customer_id -> the events they did among those just moved into the log (identify calls as "profile")."""
    touched: dict[str, set[str]] = {}
    for e in events:
        touched.setdefault(e.customer_id, set()).add(PROFILE if e.type == "identify" else e.event)
    return touched


def update_customers(evaluator: Evaluator, touched: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Re-evaluate, for the customers in `touched` only, the segments whose rules mention what they did
    (customer_id -> event names, with "profile" for identify calls and consents)."""
    if not touched:
        return []
    with evaluator.uow.session() as session:
        segments = list(session.scalars(sa.select(Segment)))
        session.expunge_all()
    done_events = set().union(*touched.values())
    relevant = [s for s in segments if set(s.triggers) & done_events]
    if not relevant:
        return []
    if len(touched) > LIVE_LIMIT:  # a bulk load: recomputing the segments whole is cheaper than by customer
        return [r for r in refresh(evaluator, [s.name for s in relevant]) if r.get("entered") or r.get("exited")]
    evaluator.sync(list(touched))
    now = evaluator.now()
    chosen = {s.name: sorted(c for c, events in touched.items() if set(s.triggers) & events) for s in relevant}
    with _WRITING:  # a recompute running now leaves these customers to us
        for newer in _NEWER:
            for name, who in chosen.items():
                newer[name].update(who)
    found: list[tuple[Segment, list[str], set[str]]] = []
    with evaluator.compiler(sync=False) as everyone:
        for segment in relevant:
            who = chosen[segment.name]
            try:
                found.append((segment, who, set(everyone.scoped(who).members(_tree(segment)).execute()["customer_id"])))
            except ValueError as exc:
                log.warning("segment %s not updated: %s", segment.name, exc)
    out = []
    for segment, who, ids in found:
        entered, exited, _ = _apply(evaluator.uow, segment, ids, scope=set(who), at=now)
        if entered or exited:
            out.append({"name": segment.name, "entered": entered, "exited": exited})
    return out


def _tree(segment: Segment):
    return Definition(name=segment.name, rule=segment.definition).tree


def _apply(
    uow: UnitOfWork,
    segment: Segment,
    ids: set[str],
    *,
    scope: set[str] | None,
    at: datetime,
    newer: set[str] = frozenset(),
) -> tuple[int, int, int | None]:
    """Write the difference between `ids` and the stored members (of `scope`, or all), leaving alone the
    customers of `newer` (live updates answered for them after `ids` were read); returns the entries, the
    exits and the members after (None for a scope). The stored members are read beside the writers (400K members
    take a second to read: the tracking API and the pipeline do not wait for it); `_write` checks the difference
    again against what another process may have written since."""
    with _WRITING:
        with uow.reading() as session:
            query = sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment.id)
            if scope is not None:
                query = query.where(SegmentMember.customer_id.in_(scope))
            current = set(session.scalars(query))
        entered, exited = sorted(ids - current - newer), sorted(current - ids - newer)
        if scope is not None and not entered and not exited:
            return 0, 0, None
        return _write(uow, segment, entered, exited, scope=scope, at=at)


def _write(
    uow: UnitOfWork, segment: Segment, entered: list[str], exited: list[str], *, scope: set[str] | None, at: datetime
) -> tuple[int, int, int | None]:
    """Store the entries and exits that still differ from the stored members, with their events, and the segment's
    size (after a recompute, with its history); returns the entries, the exits and the members after (None for a
    scope)."""
    with uow.session() as session:
        if entered or exited:
            member = SegmentMember.customer_id
            now_in = set(
                session.scalars(
                    sa.select(member).where(
                        SegmentMember.segment_id == segment.id, among(session, member, entered + exited)
                    )
                )
            )
            entered, exited = [c for c in entered if c not in now_in], [c for c in exited if c in now_in]
        conn = session.connection()
        if entered:
            conn.execute(
                sa.insert(SegmentMember),
                [{"segment_id": segment.id, "customer_id": c, "entered_at": at} for c in entered],
            )
        if exited:
            conn.execute(
                sa.delete(SegmentMember).where(
                    (SegmentMember.segment_id == segment.id) & (SegmentMember.customer_id == sa.bindparam("cid"))
                ),
                [{"cid": c} for c in exited],
            )
        events = [_event(segment, c, ENTERED, at) for c in entered] + [_event(segment, c, EXITED, at) for c in exited]
        own.log_later(session, events)
        db_segment = session.get(Segment, segment.id)
        if scope is None:
            size = session.scalar(
                sa.select(sa.func.count()).select_from(SegmentMember).where(SegmentMember.segment_id == segment.id)
            )
            db_segment.size = size
            db_segment.refreshed_at = at
            session.add(SegmentSize(segment_id=segment.id, at=at, size=size, entered=len(entered), exited=len(exited)))
        else:
            size = None
            if db_segment.size is not None:
                db_segment.size += len(entered) - len(exited)
    return len(entered), len(exited), size


def _event(segment: Segment, customer_id: str, name: str, at: datetime) -> dict[str, Any]:
    kind = "entered" if name == ENTERED else "exited"
    return own.internal(
        f"segment:{segment.id}:{customer_id}:{kind}:{at.isoformat()}",
        name,
        customer_id,
        at=at,
        source="segments",
        properties={"segment": segment.name, "version": segment.version},
    )


def current(session: Session, name: str) -> dict[str, Any]:
    """The stored segment with its member count as materialised."""
    segment = get(session, name)
    count = session.scalar(
        sa.select(sa.func.count()).select_from(SegmentMember).where(SegmentMember.segment_id == segment.id)
    )
    return {**describe(segment), "members": int(count)}


def latest_members(session: Session, name: str, *, limit: int) -> list[tuple[str, str | None, str | None, datetime]]:
    """(customer id, email, external id, entered_at) of the members who entered last."""
    return list(
        session.execute(
            sa.select(Customer.id, Customer.email, Customer.external_id, SegmentMember.entered_at)
            .join(Segment, Segment.id == SegmentMember.segment_id)
            .join(Customer, Customer.id == SegmentMember.customer_id)
            .where(Segment.name == name)
            .order_by(SegmentMember.entered_at.desc(), Customer.id)
            .limit(limit)
        ).all()
    )
