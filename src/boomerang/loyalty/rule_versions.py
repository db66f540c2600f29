"""The earn rules in force and their history: every change is a new version (who, when, why); the newest is in
force, and every earn records the version it was computed by. Before a shop writes any, the rules are
`rules.initial` of the settings (version 0)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.core.errors import NotFound
from boomerang.loyalty import programme, rules
from boomerang.loyalty.models import LoyaltyRuleVersion


def current(session: Session, settings: LoyaltySettings | None = None) -> tuple[int, rules.EarnRules]:
    """The version in force and its rules."""
    row = session.scalars(sa.select(LoyaltyRuleVersion).order_by(LoyaltyRuleVersion.version.desc()).limit(1)).first()
    if row is None:
        return 0, rules.initial(settings or programme.of(session))
    return row.version, rules.EarnRules.model_validate(row.rules)


def save(
    session: Session, new: rules.EarnRules, *, note: str = "", author: str | None = None, now: datetime
) -> dict[str, Any]:
    """Put `new` in force as the next version; flushes. Returns the version as `listing` shows it."""
    latest = session.scalar(sa.select(sa.func.max(LoyaltyRuleVersion.version))) or 0
    row = LoyaltyRuleVersion(
        version=latest + 1, rules=new.model_dump(mode="json"), note=note[:500], author=author, created_at=now
    )
    session.add(row)
    session.flush()
    return _row(row)


def listing(session: Session) -> list[dict[str, Any]]:
    """Every version, newest first, without their rules."""
    rows = session.scalars(sa.select(LoyaltyRuleVersion).order_by(LoyaltyRuleVersion.version.desc()))
    return [{k: v for k, v in _row(r).items() if k != "rules"} for r in rows]


def get(session: Session, version: int) -> dict[str, Any]:
    row = session.get(LoyaltyRuleVersion, version)
    if row is None:
        raise NotFound(f"no earn rules version {version}", field="version")
    return _row(row)


def _row(row: LoyaltyRuleVersion) -> dict[str, Any]:
    return {
        "version": row.version,
        "note": row.note,
        "author": row.author,
        "created_at": row.created_at,
        "rules": row.rules,
    }
