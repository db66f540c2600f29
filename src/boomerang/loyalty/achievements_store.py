"""Achievements in the operational store: the definitions (create, update, turn on and off, archive; the ready-made
ones listed beside them until the shop stores one), and reading progress (a customer's, badges, how many earned
each, segment traits). Merges and privacy requests too. Services flush; the caller commits.

Counting and awarding are in `achievements`; the definitions' rules in `achievements_rules`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.customers.privacy import hooks as privacy
from boomerang.db import in_chunks
from boomerang.loyalty.achievements_rules import Condition, Definition, combine, compact, current, parse, ready_made
from boomerang.loyalty.models import LoyaltyAchievement, LoyaltyAchievementProgress

ACHIEVEMENTS = LoyaltyAchievement.__table__
PROGRESS = LoyaltyAchievementProgress.__table__
FIELDS = ("title", "description", "badge", "points", "active", "valid_from", "valid_until")


def definition(row: Any) -> Definition:
    """A stored row as its definition."""
    return Definition.model_validate(
        {"key": row.key, "condition": row.condition, **{f: getattr(row, f) for f in FIELDS}}
    )


def _stored(session: Session, key: str) -> Any:
    return session.execute(sa.select(ACHIEVEMENTS).where(ACHIEVEMENTS.c.key == key)).first()


def stored(session: Session, key: str) -> bool:
    """Whether the achievement is in the store (a ready-made one is not until turned on or edited)."""
    return _stored(session, key) is not None


def _counts(session: Session) -> dict[str, dict[str, int]]:
    """Per achievement: customers who earned it, and those on their way."""
    earned = sa.func.count(PROGRESS.c.earned_at)
    on_way = sa.func.sum(sa.case(((PROGRESS.c.earned_at.is_(None)) & (PROGRESS.c.count > 0), 1), else_=0))
    query = sa.select(PROGRESS.c.achievement_key, earned, on_way).group_by(PROGRESS.c.achievement_key)
    return {key: {"earned": int(e or 0), "in_progress": int(w or 0)} for key, e, w in session.execute(query)}


def _listed(spec: Definition, row: Any, counts: dict[str, int]) -> dict[str, Any]:
    return {
        **spec.model_dump(mode="json"),
        "condition": compact(spec.condition),
        "ready_made": spec.key in ready_made(),
        "stored": row is not None,
        "archived_at": row.archived_at if row is not None else None,
        "updated_at": row.updated_at if row is not None else None,
        "earned": counts.get("earned", 0),
        "in_progress": counts.get("in_progress", 0),
    }


def catalogue(session: Session, *, archived: bool = False) -> list[dict[str, Any]]:
    """Every achievement, stored ones first then the ready-made ones not stored yet (off), each with how many
    customers earned it; archived ones only when asked."""
    counts = _counts(session)
    rows = session.execute(sa.select(ACHIEVEMENTS).order_by(ACHIEVEMENTS.c.created_at, ACHIEVEMENTS.c.key)).all()
    out = [_listed(definition(r), r, counts.get(r.key, {})) for r in rows if archived or r.archived_at is None]
    stored = {r.key for r in rows}
    out += [_listed(spec, None, {}) for key, spec in ready_made().items() if key not in stored]
    return out


def show(session: Session, key: str) -> dict[str, Any]:
    """One achievement (stored or ready-made) with its counts; NotFound names the key."""
    row = _stored(session, key)
    if row is not None:
        return _listed(definition(row), row, _counts(session).get(key, {}))
    if key in ready_made():
        return _listed(ready_made()[key], None, {})
    raise NotFound(f"no achievement '{key}'", field="key")


def active(session: Session, keys: Iterable[str] | None = None) -> list[Definition]:
    """The achievements that count now: on and not archived (of `keys` only, when given)."""
    query = sa.select(ACHIEVEMENTS).where(ACHIEVEMENTS.c.active.is_(True), ACHIEVEMENTS.c.archived_at.is_(None))
    if keys is not None:
        query = query.where(ACHIEVEMENTS.c.key.in_(list(keys)))
    return [definition(row) for row in session.execute(query.order_by(ACHIEVEMENTS.c.key))]


def create(session: Session, spec: Any, *, now: datetime) -> dict[str, Any]:
    """A new achievement (409 if the key is stored already; a ready-made key may be stored with changes)."""
    found = parse(spec)
    if _stored(session, found.key) is not None:
        raise Conflict(f"an achievement '{found.key}' exists already", field="key")
    session.execute(sa.insert(ACHIEVEMENTS), [_row(found, now) | {"created_at": now, "archived_at": None}])
    return show(session, found.key)


def update(session: Session, key: str, spec: Any, *, now: datetime) -> dict[str, Any]:
    """Replace an achievement's definition (storing a ready-made one). A changed condition forgets the progress
    of those who have not earned it yet (`reset`: how many; `rebuild` recounts it); earned badges stay."""
    if isinstance(spec, dict) and spec.get("key", key) != key:
        raise ValidationFailed([{"field": "key", "reason": "cannot change: archive this one and add another"}])
    found = parse({**spec, "key": key} if isinstance(spec, dict) else spec)
    row = _stored(session, key)
    if row is None:
        if key not in ready_made():
            raise NotFound(f"no achievement '{key}'", field="key")
        session.execute(sa.insert(ACHIEVEMENTS), [_row(found, now) | {"created_at": now, "archived_at": None}])
        return show(session, key) | {"reset": 0}
    if row.archived_at is not None:
        raise Conflict(f"achievement '{key}' is archived", field="key")
    changed = Condition.model_validate(row.condition) != found.condition
    session.execute(sa.update(ACHIEVEMENTS).where(ACHIEVEMENTS.c.key == key).values(_row(found, now)))
    reset = forget_unearned(session, [key]) if changed else 0
    return show(session, key) | {"reset": reset}


def set_active(session: Session, key: str, on: bool, *, now: datetime) -> dict[str, Any]:
    """Turn an achievement on or off (storing a ready-made one as it comes)."""
    spec = show(session, key)
    if spec["archived_at"] is not None:
        raise Conflict(f"achievement '{key}' is archived", field="key")
    keep = {f: spec[f] for f in ("title", "description", "badge", "points", "valid_from", "valid_until")}
    return update(session, key, {**keep, "condition": spec["condition"], "active": on}, now=now)


def archive(session: Session, key: str, *, now: datetime) -> dict[str, Any]:
    """Retire an achievement: it counts no more and leaves the listings; customers keep the badges earned."""
    if _stored(session, key) is None:
        set_active(session, key, False, now=now)
    session.execute(
        sa.update(ACHIEVEMENTS)
        .where(ACHIEVEMENTS.c.key == key, ACHIEVEMENTS.c.archived_at.is_(None))
        .values(active=False, archived_at=now, updated_at=now)
    )
    return show(session, key)


def _row(spec: Definition, now: datetime) -> dict[str, Any]:
    return {
        "key": spec.key,
        "condition": compact(spec.condition),
        "updated_at": now,
        **{f: getattr(spec, f) for f in FIELDS},
    }


def forget_unearned(session: Session, keys: list[str]) -> int:
    """Drop the progress of customers who have not earned these achievements (before a recount)."""
    return session.execute(
        sa.delete(PROGRESS).where(PROGRESS.c.achievement_key.in_(keys), PROGRESS.c.earned_at.is_(None))
    ).rowcount


# -- reading progress -------------------------------------------------------------------------------------------


def progress(session: Session, customer_id: str, *, now: datetime) -> list[dict[str, Any]]:
    """The customer's progress towards every achievement on now, and every badge they earned (even of one
    since turned off or archived): earned first, then by how near they are."""
    rows = {
        r.achievement_key: r for r in session.execute(sa.select(PROGRESS).where(PROGRESS.c.customer_id == customer_id))
    }
    stored = session.execute(sa.select(ACHIEVEMENTS)).all()
    items = []
    for row in stored:
        mine = rows.get(row.key)
        earned = mine is not None and mine.earned_at is not None
        if not earned and not (row.active and row.archived_at is None):
            continue
        spec = definition(row)
        have = spec.condition.count if earned else current(spec.condition, mine.state, now) if mine else 0
        items.append(
            {
                "key": row.key,
                "title": row.title,
                "description": row.description,
                "badge": row.badge,
                "points": row.points,
                "count": have,
                "target": spec.condition.count,
                "earned": earned,
                "earned_at": mine.earned_at if mine is not None else None,
                "valid_until": row.valid_until,
            }
        )
    return sorted(items, key=lambda i: (not i["earned"], -i["count"] / i["target"], i["key"]))


def badges(session: Session, customer_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Each customer's earned badges (key, title, badge, points, earned_at), oldest first."""
    out: dict[str, list[dict[str, Any]]] = {cid: [] for cid in customer_ids}
    rows = in_chunks(
        session,
        lambda ids: (
            sa.select(PROGRESS.c.customer_id, PROGRESS.c.earned_at, ACHIEVEMENTS.c.key, ACHIEVEMENTS.c.title)
            .add_columns(ACHIEVEMENTS.c.badge, ACHIEVEMENTS.c.points)
            .join(ACHIEVEMENTS, ACHIEVEMENTS.c.key == PROGRESS.c.achievement_key)
            .where(PROGRESS.c.customer_id.in_(ids), PROGRESS.c.earned_at.is_not(None))
            .order_by(PROGRESS.c.earned_at, ACHIEVEMENTS.c.key)
        ),
        out,
    )
    for row in rows:
        out[row.customer_id].append(
            {"key": row.key, "title": row.title, "badge": row.badge, "points": row.points, "earned_at": row.earned_at}
        )
    return out


# -- merges and privacy -----------------------------------------------------------------------------------------


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The surviving profile's progress combines both: earned if either earned, else what both counted (where that
    reaches the target, the next matching event, or a rebuild, earns it)."""
    theirs = session.execute(sa.select(PROGRESS).where(PROGRESS.c.customer_id == from_id)).all()
    if not theirs:
        return
    mine = {r.achievement_key: r for r in session.execute(sa.select(PROGRESS).where(PROGRESS.c.customer_id == into_id))}
    conditions = {r.key: definition(r).condition for r in session.execute(sa.select(ACHIEVEMENTS))}
    for row in theirs:
        into = mine.get(row.achievement_key)
        if into is None:
            values = {"customer_id": into_id}
        elif into.earned_at is not None or row.earned_at is not None:
            values = {
                "earned_at": min(t for t in (into.earned_at, row.earned_at) if t),
                "count": into.target,
                "state": {},
            }
        else:
            condition = conditions.get(row.achievement_key)
            state = combine(condition, into.state, row.state) if condition else into.state
            values = {"state": state, "count": current(condition, state, now) if condition else into.count}
        target = PROGRESS.c.customer_id == (into_id if into is not None else from_id)
        session.execute(
            sa.update(PROGRESS)
            .where(PROGRESS.c.achievement_key == row.achievement_key, target)
            .values(values | {"updated_at": now})
        )
    session.execute(sa.delete(PROGRESS).where(PROGRESS.c.customer_id == from_id))


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' progress towards achievements and the badges they earned."""
    return {"loyalty_achievements": privacy.rows_of(session, LoyaltyAchievementProgress.customer_id, customer_ids)}


def erase_customer(session: Session, customer_id: str) -> int:
    """An erased customer's progress goes (the points it earned stay in the ledger, under the pseudonym)."""
    return privacy.delete_of(session, LoyaltyAchievementProgress.customer_id, customer_id)
