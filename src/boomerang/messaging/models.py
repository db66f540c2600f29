"""Messaging in the operational store: the outbox and delivery log (`messages`), what happened to each
message after it left, templates, customers' preferences and campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, BigInt


class Message(Base):
    """The outbox and delivery log: every message a journey or campaign wanted to send, and what became of it."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.Index("ix_messages_due", "status", "send_after", "id"),  # the outbox in claiming order
        sa.Index("ix_messages_source", "source", "status"),  # a campaign's or journey's messages
        sa.Index("ix_messages_customer", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)  # idempotency: instance, node, visit
    source: Mapped[str] = mapped_column(sa.String(100))  # journey:<name> or campaign:<name>
    instance_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    node: Mapped[str | None] = mapped_column(sa.String(100))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    channels: Mapped[list[str]]  # in order of preference
    channel: Mapped[str | None] = mapped_column(sa.String(16))  # the one used
    template: Mapped[str] = mapped_column(sa.String(200))
    category: Mapped[str] = mapped_column(sa.String(16))  # transactional, triggered, promotional
    when_capped: Mapped[str] = mapped_column(sa.String(8), default="defer")  # defer or drop
    # queued, sending, sent, delivered, opened, clicked, bounced, complained, unsubscribed, suppressed, held_out, failed
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text())  # why suppressed, deferred or failed
    send_after: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    variant: Mapped[str | None] = mapped_column(sa.String(32))  # a campaign's A/B variant
    subject: Mapped[str | None] = mapped_column(sa.String(255))  # what it is about: a journey's product, cart
    trigger: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())  # the event that started its journey
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)  # for receipts and bounces


class Template(Base):
    """A message: its variants per locale and channel (`{"en": {"email": {"subject": ..}, "sms": {..}}}`)."""

    __tablename__ = "templates"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    topic: Mapped[str | None] = mapped_column(sa.String(32))  # what the preference centre lets people turn off
    default_locale: Mapped[str] = mapped_column(sa.String(8), default="en")
    variants: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime]


class TemplateVersion(Base):
    """Each saved version of a template, as it was saved: the history a marketer can restore from."""

    __tablename__ = "template_versions"
    __table_args__ = (sa.UniqueConstraint("template", "version"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    template: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    topic: Mapped[str | None] = mapped_column(sa.String(32))
    default_locale: Mapped[str] = mapped_column(sa.String(8), default="en")
    variants: Mapped[dict[str, Any]]
    saved_at: Mapped[datetime]


class MessageEvent(Base):
    """What happened to a message after it left: delivered, opened, clicked, bounced, complained, unsubscribed."""

    __tablename__ = "message_events"
    __table_args__ = (sa.Index("ix_message_events_message", "message_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigInt)
    kind: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[str | None] = mapped_column(sa.Text())  # the link clicked, the bounce's diagnostic
    at: Mapped[datetime]


class Preference(Base):
    """What a customer chose in the preference centre (channels are consents, kept in `consents`)."""

    __tablename__ = "preferences"

    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    topics_off: Mapped[list[str]] = mapped_column(default=list)
    frequency: Mapped[str] = mapped_column(sa.String(16), default="normal")  # normal, weekly, monthly
    updated_at: Mapped[datetime]


class Campaign(Base):
    """A one-off or scheduled send of a message to a segment."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")  # draft, scheduled, sending, sent, cancelled
    definition: Mapped[dict[str, Any]]
    scheduled_for: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    audience: Mapped[int | None]  # customers when it started
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
