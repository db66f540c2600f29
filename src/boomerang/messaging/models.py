"""Messaging in the operational store: channel settings, templates, delivery events, preferences,
the in-app inbox, web push subscriptions and campaigns. Messages themselves are the journeys' outbox
(`boomerang.journeys.models.Message`), which is the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class ChannelSetting(Base):
    """One channel's provider and configuration; secret fields are stored encrypted (channels.config)."""

    __tablename__ = "channel_settings"

    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(32))  # smtp, telegram, generic, twilio, vapid, sandbox...
    enabled: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]]  # secrets as {"encrypted": "<fernet token>"}
    updated_at: Mapped[datetime]


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


class MessageEvent(Base):
    """What happened to a message after it left: delivered, opened, clicked, bounced, complained, unsubscribed."""

    __tablename__ = "message_events"
    __table_args__ = (sa.Index("ix_message_events_message", "message_id", "kind"),)

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"))
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


class InboxItem(Base):
    """An in-app message waiting for the customer's app to fetch it."""

    __tablename__ = "inbox_items"
    __table_args__ = (sa.Index("ix_inbox_items_customer", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    message_key: Mapped[str] = mapped_column(sa.String(200), unique=True)  # one item per message, ever
    message_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(255), default="")
    body: Mapped[str] = mapped_column(sa.Text(), default="")
    url: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]


class PushSubscription(Base):
    """A browser's web push subscription (the PushSubscription JSON of the Push API)."""

    __tablename__ = "push_subscriptions"

    endpoint: Mapped[str] = mapped_column(sa.String(1000), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    p256dh: Mapped[str] = mapped_column(sa.String(200))
    auth: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]


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
