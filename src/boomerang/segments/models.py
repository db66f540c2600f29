"""Segments in the operational store: definitions with their versions, current members, size history.

Entries and exits are also written, in the same transaction, as "Segment Entered" / "Segment Exited"
events to the inbox, so that the log keeps the whole history and journeys can trigger on them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text(), default="")
    definition: Mapped[dict[str, Any]]  # the rule of the current version
    version: Mapped[int] = mapped_column(default=1)
    triggers: Mapped[list[str]]  # event names (and "profile") whose arrival re-evaluates a customer
    expires: Mapped[bool]  # membership changes with time alone: recomputed on a schedule
    size: Mapped[int | None]
    refreshed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SegmentVersion(Base):
    __tablename__ = "segment_versions"

    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class SegmentMember(Base):
    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, index=True)
    entered_at: Mapped[datetime]


class SegmentSize(Base):
    """The size after each full recompute, with how many entered and left: the size history."""

    __tablename__ = "segment_sizes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id"), index=True)
    at: Mapped[datetime]
    size: Mapped[int]
    entered: Mapped[int]
    exited: Mapped[int]
