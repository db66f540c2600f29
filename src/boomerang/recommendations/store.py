"""Blocks in the operational store: the ready-made ones are listed until the shop saves its own version of one;
saving checks the block against the catalog (a category filter no product is in could never show anything)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from boomerang.catalog import service as catalog
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.db import upsert
from boomerang.recommendations.blocks import READY_MADE, Block
from boomerang.recommendations.models import RecoBlock

BLOCKS = RecoBlock.__table__


def parse(data: Any, name: str | None = None) -> Block:
    """A block from a request body or a file; ValidationFailed naming each field."""
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "body", "reason": "a block is an object (name, chain, filters, size...)"}])
    if name is not None:
        data = {**data, "name": name}
    try:
        return Block.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.of(exc) from None


def _row(session: Session, name: str) -> Any:
    return session.execute(sa.select(BLOCKS).where(BLOCKS.c.name == name)).first()


def get(session: Session, name: str) -> Block:
    """The shop's block of this name, or the ready-made one; NotFound naming `block`."""
    row = _row(session, name)
    if row is not None:
        return Block.model_validate({**row.definition, "name": name})
    if name in READY_MADE:
        return READY_MADE[name]
    raise NotFound(f"no block named {name!r}", field="block")


def listing(session: Session) -> list[dict[str, Any]]:
    """Every block (the shop's and the ready-made), by name, with whether it is stored and when it changed."""
    rows = {r.name: r for r in session.execute(sa.select(BLOCKS))}
    out = []
    for name in sorted(set(rows) | set(READY_MADE)):
        row = rows.get(name)
        block = Block.model_validate({**row.definition, "name": name}) if row else READY_MADE[name]
        out.append(
            {
                **block.model_dump(mode="json"),
                "ready_made": name in READY_MADE,
                "stored": row is not None,
                "updated_at": row.updated_at if row else None,
                "updated_by": row.updated_by if row else None,
            }
        )
    return out


def _check_catalog(session: Session, block: Block) -> None:
    for i, prefix in enumerate(block.filters.categories):
        if not catalog.listing(session, category=prefix, limit=1):
            reason = f"no product is in the category {prefix!r}: the filter could never match"
            raise ValidationFailed([{"field": f"filters.categories.{i}", "reason": reason}])


def save(session: Session, block: Block, *, by: str | None, now: datetime) -> Block:
    """Store the block (a new one, or the shop's version of a ready-made one)."""
    _check_catalog(session, block)
    definition = block.model_dump(mode="json", exclude={"name"})
    row = {"name": block.name, "definition": definition, "updated_by": by, "created_at": now, "updated_at": now}
    session.execute(upsert(session, BLOCKS, ["name"], [row]), [row])
    session.flush()
    return block


def delete(session: Session, name: str) -> bool:
    """Forget the shop's version: a ready-made block goes back to its defaults. False when nothing was stored."""
    gone = session.execute(sa.delete(BLOCKS).where(BLOCKS.c.name == name)).rowcount
    if not gone and name not in READY_MADE:
        raise NotFound(f"no block named {name!r}", field="block")
    return bool(gone)
