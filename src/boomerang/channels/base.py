"""The channel interface: an `Outbound` message in, a `SendResult` out.

Expected failures (a bounce, an opt-out, a provider's 429 or 5xx) come back as results, not
exceptions: the dispatcher decides what each one means for the message (retry, fail, withdraw
the customer's consent). Adapters never log addresses, bodies or credentials.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

_SECRET_IN_URL = re.compile(r"/bot[^/\s]+/|\?[^\s\"']*")


class _MaskUrls(logging.Filter):
    """httpx logs every request's URL at INFO; bot tokens travel in paths and gateway keys in query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _SECRET_IN_URL.sub(
            lambda m: "/bot***/" if m.group().startswith("/bot") else "?***", record.getMessage()
        )
        record.args = None
        return True


logging.getLogger("httpx").addFilter(_MaskUrls())

Status = Literal["sent", "bounced", "unsubscribed", "rate_limited", "failed"]


@dataclass(frozen=True)
class Button:
    """A link the customer can press (Telegram inline keyboard, email call to action); `url` is already tracked."""

    label: str
    url: str


@dataclass(frozen=True)
class Outbound:
    """One rendered message on one channel, ready to go."""

    key: str  # the message's idempotency key (Message.key)
    message_id: int
    customer_id: str
    channel: str
    to: str | None  # email address, phone (E.164), Telegram chat id; None for webpush, inapp, webhook
    text: str  # plain text: email text part, SMS, Telegram (HTML when `html_text`), push body
    subject: str | None = None  # email subject; push and in-app title
    html: str | None = None  # email HTML part
    buttons: tuple[Button, ...] = ()
    url: str | None = None  # where a push or in-app message leads (tracked)
    headers: Mapping[str, str] = field(default_factory=dict)  # email: List-Unsubscribe and the like
    locale: str = "en"
    data: Mapping[str, Any] = field(default_factory=dict)  # webhook payload, push icon, in-app expiry...


@dataclass(frozen=True)
class SendResult:
    status: Status
    provider_id: str | None = None  # the provider's message id (SMTP Message-ID, Telegram message_id...)
    error: str | None = None  # shown to people: never a secret or an address
    retry_after: float | None = None  # seconds, for rate_limited
    permanent: bool = False  # failed: trying again is pointless

    @property
    def ok(self) -> bool:
        return self.status == "sent"

    @classmethod
    def sent(cls, provider_id: str | None = None) -> SendResult:
        return cls("sent", provider_id=provider_id)

    @classmethod
    def failed(cls, error: str, *, permanent: bool = False) -> SendResult:
        return cls("failed", error=error, permanent=permanent)

    @classmethod
    def bounced(cls, error: str) -> SendResult:
        return cls("bounced", error=error, permanent=True)

    @classmethod
    def unsubscribed(cls, error: str) -> SendResult:
        return cls("unsubscribed", error=error, permanent=True)

    @classmethod
    def rate_limited(cls, seconds: float, error: str = "rate limited") -> SendResult:
        return cls("rate_limited", error=error, retry_after=max(float(seconds), 0.0))


class Channel(Protocol):
    """A delivery adapter. `in_store` channels (in-app, fake) deliver by writing rows through the session they
    were made with, in the dispatcher's transaction: exactly once. The others talk to the outside world
    after that transaction has marked the message `sending`, and are never retried blindly after a crash."""

    name: ClassVar[str]
    in_store: ClassVar[bool]
    concurrency: int  # how many sends may run at once (pooled connections)

    def send(self, message: Outbound) -> SendResult: ...

    def close(self) -> None: ...


class ChannelUnavailable(Exception):
    """A channel that cannot be built: not configured, or its configuration is broken (the message names what)."""
