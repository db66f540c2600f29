"""The webhook channel: a signed JSON POST to a URL the journey names, for systems that act themselves.

The body is {"id", "customer_id", "channel", "data", "sent_at"}; `X-Boomerang-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` lets the receiver check it came from here and
is fresh (`verify_signature`), and `Idempotency-Key` (the message key) lets it drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, ClassVar

import httpx
import orjson
from pydantic import BaseModel, Field, SecretStr

from boomerang.channels.base import Outbound, SendResult
from boomerang.channels.http_results import from_status, from_transport, is_http_url
from boomerang.core.clock import utc

if TYPE_CHECKING:
    from boomerang.channels.registry import ChannelContext

WHO = "the webhook endpoint"  # errors never name the URL: webhook URLs often carry a token


def derived_secret(secret: bytes) -> bytes:
    """The signing key when none is configured, derived from the workspace secret (give receivers the hex)."""
    return hashlib.sha256(b"boomerang-webhooks\0" + secret).digest()


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The X-Boomerang-Signature header for `body` sent at `timestamp`."""
    digest = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str | bytes, header: str, body: bytes | str, tolerance: float = 300, now: float | None = None
) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance` seconds; any v1 may match (rotated keys)."""
    timestamp, candidates = None, []
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body.encode() if isinstance(body, str) else body, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in candidates)


class WebhookChannel:
    name: ClassVar[str] = "webhook"
    in_store: ClassVar[bool] = False
    concurrency = 4

    class Config(BaseModel):
        secret: SecretStr | None = None  # None: derived from the workspace secret (derived_secret)
        timeout: float = Field(default=10, gt=0)
        rate_per_second: float | None = Field(default=None, gt=0)

    def __init__(self, config: Config, ctx: ChannelContext) -> None:
        self.clock = ctx.clock
        self.key = (
            config.secret.get_secret_value().encode() if config.secret is not None else derived_secret(ctx.secret)
        )
        self.client = httpx.Client(timeout=config.timeout, follow_redirects=False)

    def send(self, message: Outbound) -> SendResult:
        if not is_http_url(message.to):
            return SendResult.failed("to: the webhook URL must be http:// or https:// with a host", permanent=True)
        now = utc(self.clock.now())
        try:
            body = orjson.dumps(
                {
                    "id": message.key,
                    "customer_id": message.customer_id,
                    "channel": message.channel,
                    "data": dict(message.data),
                    "sent_at": now.isoformat(),
                }
            )
        except TypeError as exc:
            return SendResult.failed(f"data: cannot be sent as JSON ({exc})", permanent=True)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.key,
            "X-Boomerang-Signature": sign(self.key, body, int(now.timestamp())),
        }
        try:
            response = self.client.post(message.to, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return from_transport(exc, WHO)
        if response.is_success:
            return SendResult.sent()
        if response.status_code == 410:
            return SendResult.failed(f"{WHO} answered 410: it is gone", permanent=True)
        return from_status(response.status_code, response.headers, WHO)

    def close(self) -> None:
        self.client.close()
