"""The durable inbox: accepted events wait here to be processed (identity, products, orders), then
to be flushed into the DuckDB log. `processed_at` is empty until the first step is done.

The message ids accepted lately, kept for the deduplication window (events.dedup) long after their
inbox rows have moved into the log."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, BigInt


class InboxEvent(Base):
    __tablename__ = "event_inbox"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    type: Mapped[str] = mapped_column(sa.String(16))
    event: Mapped[str] = mapped_column(sa.String(255))
    customer_id: Mapped[str | None] = mapped_column(sa.String(40))
    anonymous_id: Mapped[str | None] = mapped_column(sa.String(255))
    user_id: Mapped[str | None] = mapped_column(sa.String(255))
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(sa.String(64))
    properties: Mapped[str] = mapped_column(sa.Text())  # JSON text, copied as is into the log
    context: Mapped[str] = mapped_column(sa.Text())
    processed_at: Mapped[datetime | None] = mapped_column(index=True)


inbox = InboxEvent.__table__


class SeenMessage(Base):
    """A message id accepted at `seen_at`: the same id again within the window is a duplicate."""

    __tablename__ = "event_seen_ids"

    message_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


seen = SeenMessage.__table__


class SetAsideMessage(Base):
    """A message of an accepted batch that was not taken, with why: its neighbours were (events.set_aside)."""

    __tablename__ = "event_set_aside"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    position: Mapped[int]  # its index in the batch
    message_id: Mapped[str | None] = mapped_column(sa.String(128))
    errors: Mapped[list[dict]] = mapped_column(sa.JSON())  # [{field, reason}]
    payload: Mapped[str] = mapped_column(sa.Text())  # the message as sent (JSON, cut to PAYLOAD_CHARS)
