"""Journeys in the operational store: definitions and versions, instances with their timers, conversions
and approval requests.

An instance's timer is its `wake_at`: workers claim due instances with FOR UPDATE SKIP LOCKED on
PostgreSQL. Every side effect is a row keyed by an idempotency key (instance, node, visit), written
in the same transaction as the instance's new state, so a crash repeats nothing and loses nothing. An
instance started by an event keeps its message id: the same event never starts the journey twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, Money


class Journey(Base):
    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")  # draft, active, paused
    version: Mapped[int] = mapped_column(default=1)
    definition: Mapped[dict[str, Any]]  # the current version's
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class JourneyVersion(Base):
    __tablename__ = "journey_versions"

    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Instance(Base):
    """One customer's way through one version of a journey."""

    __tablename__ = "journey_instances"
    __table_args__ = (
        sa.Index("ix_journey_instances_due", "status", "wake_at"),
        sa.Index("ix_journey_instances_customer", "customer_id", "journey_id"),
        # one instance per journey and triggering event, whichever way the event came again (a retry, an
        # import of the same file, a replay), and whichever worker saw it first
        sa.Index(
            "uq_journey_instances_trigger_event",
            "journey_id",
            "trigger_event_id",
            unique=True,
            sqlite_where=sa.text("trigger_event_id IS NOT NULL"),
            postgresql_where=sa.text("trigger_event_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id"))
    version: Mapped[int]
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    key: Mapped[str | None] = mapped_column(sa.String(255))  # the trigger's entity (cart id, order id)
    trigger_event_id: Mapped[str | None] = mapped_column(sa.String(128))  # the message id of the event that started it
    status: Mapped[str] = mapped_column(sa.String(16))  # running, waiting, approval, evaluating, done
    node: Mapped[str] = mapped_column(sa.String(100))
    waiting_for: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    wake_at: Mapped[datetime | None]
    control: Mapped[bool]
    test: Mapped[bool] = mapped_column(default=False)  # a test run (scaled waits, not in the results)
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    state: Mapped[dict[str, Any]]
    entered_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Conversion(Base):
    __tablename__ = "journey_conversions"

    instance_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    node: Mapped[str] = mapped_column(sa.String(100))  # where the customer was when the goal came
    message_key: Mapped[str | None] = mapped_column(sa.String(200))  # the last message sent before it
    control: Mapped[bool]
    revenue: Mapped[float] = mapped_column(Money)
    at: Mapped[datetime]


class ApprovalRequest(Base):
    __tablename__ = "journey_approvals"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    instance_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id"))
    node: Mapped[str] = mapped_column(sa.String(100))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    note: Mapped[str] = mapped_column(sa.Text(), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)  # pending, approved, rejected
    template: Mapped[str | None] = mapped_column(sa.String(200))
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
