"""Achievements and missions: rules over a customer's events that award a badge and points once
(`achievements_rules` says what a rule is, `achievements_store` keeps them and reads progress).

Progress is counted as events arrive: the event pipeline calls `follow` (through `reactions.follow`) after every
accepted batch, in the batch's transaction. Each customer's progress towards each achievement is one row, locked
while it changes, holding what was counted (message ids or `once_per` values, distinct values, a window's times;
see `achievements_rules`), so a retried or reordered batch lands on the same progress. When a customer meets a
rule the row is marked earned, its points go into the ledger as an award with the reference
`achievement:{key}:{customer_id}` (so never twice), and an `Achievement Earned` event is told (key, title, badge,
points) for journeys to react to. Earned stays earned: a later edit of the rule or an archive never takes a badge
back.

`rebuild` recounts from history (the orchestration's `achievements` reads the event log and feeds `count` with
it, oldest first): the progress of those who have not earned yet is forgotten and counted again; what earns is
awarded like a live event, told only when asked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound
from boomerang.core.vocab import trusted
from boomerang.db import in_chunks, insert_ignore
from boomerang.loyalty import service
from boomerang.loyalty.achievements_rules import Definition, add, current, in_period, matches, met
from boomerang.loyalty.achievements_store import PROGRESS, active, forget_unearned
from boomerang.loyalty.orders import OrderLike
from boomerang.loyalty.tiers import Notice

EARNED = "Achievement Earned"
SOURCE = "achievement"
Seen = tuple[datetime, str, dict[str, Any]]  # an event as progress counts it: time, message id, properties


class Happening(Protocol):
    """What counting reads of an event (as `reactions.Happening`; an `events.schemas.Event` is one)."""

    message_id: str
    type: str
    event: str
    customer_id: str | None
    timestamp: datetime
    properties: dict[str, Any]


def reference(key: str, customer_id: str) -> str:
    """The ledger reference of an achievement's award: one per customer and achievement."""
    return f"achievement:{key}:{customer_id}"


def follow(
    session: Session, happenings: Sequence[Happening], orders: Sequence[OrderLike] = (), *, now: datetime
) -> list[Notice]:
    """Count a batch of accepted events towards the achievements on now; award and tell what they earn."""
    definitions = active(session)
    return count(session, happenings, definitions, now=now) if definitions else []


def count(
    session: Session,
    happenings: Sequence[Happening],
    definitions: Sequence[Definition],
    *,
    now: datetime,
    tell: bool = True,
) -> list[Notice]:
    """Count these events towards these achievements (each customer's progress row locked while it changes);
    award what they earn. Returns the `Achievement Earned` events to tell (none unless `tell`)."""
    touched: dict[tuple[str, str], list[Seen]] = {}
    for h in happenings:
        if not h.customer_id:
            continue
        for spec in definitions:
            if spec.points and not trusted(h.source):  # what browsers send earns no points: anyone can send it
                continue
            if in_period(spec, h.timestamp) and matches(spec.condition, h.type, h.event, h.properties or {}):
                touched.setdefault((spec.key, h.customer_id), []).append(
                    (h.timestamp, h.message_id, h.properties or {})
                )
    if not touched:
        return []
    by_key = {spec.key: spec for spec in definitions}
    rows = _locked(session, touched, by_key, now)
    changes, awards, notices = [], [], []
    for (key, cid), seen in touched.items():
        row, spec = rows[key, cid], by_key[key]
        if row.earned_at is not None:
            continue
        state = add(spec.condition, row.state or {}, seen)
        change = {"k": key, "c": cid, "count": current(spec.condition, state, now), "state": state, "earned_at": None}
        if met(spec.condition, state):
            change.update(count=spec.condition.count, state={}, earned_at=now)
            if spec.points:
                awards.append(service.points_row(reference(key, cid), cid, spec.points, source=SOURCE, now=now))
            if tell:
                notices.append(earned(spec, cid, now))
        changes.append(change | {"updated_at": now})
    _write(session, changes)
    if awards:
        service.award(session, awards, now=now)
    return notices


def earned(spec: Definition, customer_id: str, now: datetime) -> Notice:
    """The event an earned achievement tells, once per customer and achievement (its message id)."""
    properties = {"key": spec.key, "title": spec.title, "badge": spec.badge, "points": spec.points}
    return Notice(reference(spec.key, customer_id), EARNED, customer_id, now, properties)


def _locked(
    session: Session, touched: dict[tuple[str, str], list[Seen]], specs: dict[str, Definition], now: datetime
) -> dict[tuple[str, str], Any]:
    """The progress rows of these (achievement, customer) pairs, made where missing, locked for the change."""
    blank = [
        {
            "achievement_key": key,
            "customer_id": cid,
            "count": 0,
            "target": specs[key].condition.count,
            "state": {},
            "earned_at": None,
            "updated_at": now,
        }
        for key, cid in touched
    ]
    session.connection().execute(insert_ignore(session, PROGRESS), blank)
    keys = sorted({key for key, _ in touched})
    found = in_chunks(
        session,
        lambda ids: (
            sa.select(PROGRESS)
            .where(PROGRESS.c.achievement_key.in_(keys), PROGRESS.c.customer_id.in_(ids))
            .order_by(PROGRESS.c.customer_id, PROGRESS.c.achievement_key)
            .with_for_update()
        ),
        sorted({cid for _, cid in touched}),
    )
    return {(row.achievement_key, row.customer_id): row for row in found}


def _write(session: Session, changes: list[dict[str, Any]]) -> None:
    if not changes:
        return
    statement = (
        sa.update(PROGRESS)
        .where(PROGRESS.c.achievement_key == sa.bindparam("k"), PROGRESS.c.customer_id == sa.bindparam("c"))
        .values(
            count=sa.bindparam("count"),
            state=sa.bindparam("state", type_=PROGRESS.c.state.type),
            earned_at=sa.bindparam("earned_at"),
            updated_at=sa.bindparam("updated_at"),
        )
    )
    session.connection().execute(statement, changes)


def start_rebuild(session: Session, keys: Sequence[str] | None = None) -> list[Definition]:
    """Before recounting history: the achievements on now (of `keys`, when given; an unknown or inactive key
    is a 404 naming it), with the unearned progress towards them forgotten."""
    chosen = active(session, keys)
    missing = sorted(set(keys or ()) - {spec.key for spec in chosen})
    if missing:
        raise NotFound(f"no achievement on now named {', '.join(missing)}", field="key")
    forget_unearned(session, [spec.key for spec in chosen])
    return chosen
