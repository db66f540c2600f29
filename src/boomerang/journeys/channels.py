"""Channels deliver one message each: the `Channel` protocol, the fake channel, and `channel_for(name)`.

A channel's expected failures (a bounce, a provider's 5xx, an unknown chat) come back as a
`SendResult`, not as exceptions: `permanent` says that trying again is pointless. Real adapters
(email, SMS, Telegram, web push) will come with the channels; until then every name gives the
`FakeChannel`, which only records what it was given, in the same transaction as the message's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from boomerang.core.clock import SystemClock, naive_utc
from boomerang.db import Base
from boomerang.journeys.models import Message


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None  # shown to people: never a secret
    permanent: bool = False  # True: do not try again


class Channel(Protocol):
    """Sends `message` to `address` (None for channels without one); the dispatcher has set the message's
    `channel` and `sent_at` to this attempt's and commits whatever the channel writes through `session`."""

    def send(self, session: Session, message: Message, address: str | None) -> SendResult: ...


class FakeChannelLog(Base):
    """Every message the fake channel was given. No unique key, on purpose: a second send would show."""

    __tablename__ = "fake_channel_log"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    message_key: Mapped[str] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(16))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    template: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime]


class FakeChannel:
    """Delivers nothing; writes one `fake_channel_log` row per message through the caller's session."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, session: Session, message: Message, address: str | None) -> SendResult:
        at = message.sent_at or naive_utc(SystemClock().now())
        session.add(FakeChannelLog(message_key=message.key, channel=self.name, customer_id=message.customer_id,
                                   address=address, template=message.template, at=at))
        session.flush()
        return SendResult(ok=True)


def channel_for(name: str) -> Channel:
    """The adapter for a channel name (email, sms, telegram, webpush, inapp, webhook)."""
    return FakeChannel(name)
