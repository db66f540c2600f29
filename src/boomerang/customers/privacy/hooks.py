"""How every domain joins a privacy request, as each joins a merge (customers.merge.on_merge).

A domain that keeps rows per customer registers, through the composition root, what it shows in an export
(`on_export`: sections of plain rows) and what it does on an erasure (`on_erase`): rows that are the person
(addresses, devices, choices) are deleted; rows analytics counts (orders, messages, conversions, points) move
to the erased person's pseudonym, stripped of what would name them. Hooks run in the request's transaction
and flush; the helpers below are their usual bodies.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from boomerang.db import Base

ExportHook = Callable[[Session, list[str]], dict[str, Any]]  # (session, customer ids) -> sections
Tally = dict[str, dict[str, int]]  # {"deleted": {...}, "pseudonymised": {...}, "ended": {...}, ...}: counts
EraseHook = Callable[[Session, str, str, datetime], Tally]  # (session, customer id, pseudonym, now)
EXPORTS: list[ExportHook] = []
ERASURES: list[EraseHook] = []


def on_export(*hooks: ExportHook) -> None:
    """Have `hooks` add their sections to every export (once each, in order)."""
    EXPORTS.extend(h for h in hooks if h not in EXPORTS)


def on_erase(*hooks: EraseHook) -> None:
    """Have `hooks` run on every erasure (once each, in order)."""
    ERASURES.extend(h for h in hooks if h not in ERASURES)


def plain(value: Any) -> Any:
    """A stored value as JSON has it, all the way down: times in ISO 8601, decimals and other number types
    (NumPy's, from the log) as ints and floats."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (numbers.Real, Decimal)):
        return float(value)
    return value


def add(tally: Tally, more: Tally) -> Tally:
    """Sum `more` into `tally` (kind by kind, name by name)."""
    for kind, counts in more.items():
        into = tally.setdefault(kind, {})
        for name, n in counts.items():
            into[name] = into.get(name, 0) + n
    return tally


def as_dict(row: Base, *, leave: Iterable[str] = ()) -> dict[str, Any]:
    """An ORM row's columns (but `leave`) as plain values."""
    return {c.key: plain(getattr(row, c.key)) for c in row.__table__.columns if c.key not in leave}


def rows_of(
    session: Session, column: InstrumentedAttribute, customer_ids: list[str], *, order_by: Any = None
) -> list[dict[str, Any]]:
    """Every row of `column`'s table that belongs to one of the customers, as plain dicts."""
    entity = column.class_
    query = sa.select(entity).where(column.in_(customer_ids))
    if order_by is not None:
        query = query.order_by(order_by)
    return [as_dict(row) for row in session.scalars(query)]


def move_to(session: Session, column: InstrumentedAttribute, customer_id: str, pseudonym: str, **values: Any) -> int:
    """The rows of `column`'s table keyed by the customer now belong to the pseudonym (with `values` set);
    returns how many."""
    statement = sa.update(column.class_).where(column == customer_id).values({column.key: pseudonym, **values})
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount


def delete_of(session: Session, column: InstrumentedAttribute, customer_id: str) -> int:
    """Delete the customer's rows of `column`'s table; returns how many."""
    statement = sa.delete(column.class_).where(column == customer_id)
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount


def rename_in(session: Session, column: InstrumentedAttribute, customer_id: str, pseudonym: str) -> None:
    """Replace the customer id inside a text column (idempotency keys such as `campaign:NAME:ID`)."""
    session.execute(
        sa.update(column.class_)
        .where(column.contains(customer_id, autoescape=True))
        .values({column.key: sa.func.replace(column, customer_id, pseudonym)}),
        execution_options={"synchronize_session": False},
    )
