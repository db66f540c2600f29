"""The audit log of privacy requests: who exported or erased which customer's data, when, and what it covered.

Who: `key:<id>` for an API key, `user:<name>` for a dashboard user, `cli` for the command line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.customers.models import AuditEntry

ACTIONS = ("export", "erase")


def record(
    session: Session, *, actor: str, action: str, customer_id: str, detail: dict[str, Any], now: datetime
) -> AuditEntry:
    if action not in ACTIONS:
        raise ValidationFailed([{"field": "action", "reason": f"must be one of {', '.join(ACTIONS)}"}])
    if not actor:
        raise ValidationFailed([{"field": "actor", "reason": "who asked must be named"}])
    entry = AuditEntry(at=now, actor=actor[:128], action=action, customer_id=customer_id, detail=detail)
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, *, customer_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The latest entries first (of one customer, if given)."""
    query = sa.select(AuditEntry)
    if customer_id:
        query = query.where(AuditEntry.customer_id == customer_id)
    return list(session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))


def erased_at(session: Session, customer_id: str) -> datetime | None:
    """When the customer's data was erased; None if it never was."""
    return session.scalar(
        sa.select(sa.func.max(AuditEntry.at)).where(AuditEntry.customer_id == customer_id, AuditEntry.action == "erase")
    )


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "customer_id": entry.customer_id,
        "detail": entry.detail,
    }
