"""Web push (RFC 8030, VAPID RFC 8292): a notification to every browser the customer subscribed.

The payload is JSON {title, body, url, tag} (and `icon` when the message data has one), encrypted
for each subscription (aes128gcm); the service worker in static/push-sw.js shows it. A push service
answering 404 or 410 has forgotten the subscription, so it is deleted. Endpoints must be https on a
known push service (`push_hosts`): the subscription API is public, and the server POSTs to them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import orjson
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator
from requests.adapters import HTTPAdapter

from boomerang.channels.base import Outbound, SendResult
from boomerang.channels.http_results import from_status
from boomerang.channels.models import PushSubscription

if TYPE_CHECKING:
    from boomerang.channels.registry import ChannelContext

# Chrome, Edge, Firefox and Safari's push services; others can be added to `push_hosts`
PUSH_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "push.apple.com",
)
MAX_PAYLOAD = 3993  # 4096 bytes a record, less aes128gcm's header, tag and padding delimiter (RFC 8291)
WHO = "the push service"
# what py_vapid accepts as the `sub` claim: a mailto: address or an https:// origin
_SUBJECT = re.compile(
    r"^(mailto:[^@\s]+@(localhost|[\w%-]+(\.[\w%-]+)+)|https://(localhost|[\w-]+\.[\w.-]+))$", re.IGNORECASE
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key as base64url raw 32 bytes, public key as base64url uncompressed point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _b64url(key.private_numbers().private_value.to_bytes(32, "big")), public_key(key.public_key())


def public_key(key: ec.EllipticCurvePublicKey) -> str:
    """The base64url uncompressed point browsers take as applicationServerKey."""
    return _b64url(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def load_vapid(private_key: str) -> Vapid:
    """A VAPID signer from a PEM private key or py_vapid's base64url raw or DER form."""
    if "-----BEGIN" in private_key:
        return Vapid.from_pem(private_key.strip().encode())
    return Vapid.from_string(private_key.strip())


def endpoint_problem(endpoint: str, hosts: Sequence[str]) -> str | None:
    """Why Boomerang will not POST to a subscription endpoint, or None when it will."""
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https:// URL"
    host = parts.hostname.lower()
    if not any(host == allowed or host.endswith("." + allowed) for allowed in hosts):
        return f"{host} is not a known push service (the webpush setting push_hosts lists them)"
    return None


class WebPushChannel:
    name: ClassVar[str] = "webpush"
    in_store: ClassVar[bool] = False
    concurrency = 4

    class Config(BaseModel):
        vapid_private_key: SecretStr  # PEM, or base64url of the raw 32-byte key
        vapid_public_key: str  # base64url uncompressed point: the browser's applicationServerKey
        subject: str  # mailto: address or https:// origin push services can reach the sender at
        ttl: int = Field(default=86400, ge=0, le=28 * 86400)  # seconds a push service keeps an undelivered message
        rate_per_second: float | None = Field(default=None, gt=0)
        timeout: float = Field(default=10, gt=0)
        push_hosts: list[str] = Field(default_factory=lambda: list(PUSH_HOSTS))  # endpoints' hosts (or parents)

        @field_validator("vapid_private_key")
        @classmethod
        def check_private_key(cls, value: SecretStr) -> SecretStr:
            try:
                load_vapid(value.get_secret_value())
            except Exception:  # py_vapid fails in many ways on a bad key (binascii, ValueError, IndexError)
                raise ValueError("not a P-256 private key (PEM or base64url)") from None
            return value

        @field_validator("vapid_public_key")
        @classmethod
        def check_public_key(cls, value: str, info: ValidationInfo) -> str:
            private = info.data.get("vapid_private_key")
            if private is not None:
                derived = public_key(load_vapid(private.get_secret_value()).public_key)
                if derived != value.strip().rstrip("="):
                    raise ValueError(f"does not match vapid_private_key, whose public key is {derived}")
            return value.strip().rstrip("=")

        @field_validator("subject")
        @classmethod
        def check_subject(cls, value: str) -> str:
            if not _SUBJECT.match(value):
                raise ValueError("must be a mailto: address or an https:// origin (no path)")
            return value

    def __init__(self, config: Config, ctx: ChannelContext) -> None:
        self.config, self.uow = config, ctx.uow
        self.vapid = load_vapid(config.vapid_private_key.get_secret_value())
        self.http = requests.Session()
        self.http.mount("https://", HTTPAdapter(pool_maxsize=self.concurrency))

    def send(self, message: Outbound) -> SendResult:
        with self.uow.session() as session:
            subscriptions = session.execute(
                sa.select(PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth).where(
                    PushSubscription.customer_id == message.customer_id
                )
            ).all()
        if not subscriptions:
            return SendResult.failed("no push subscription", permanent=True)
        content = {"title": message.subject or "", "body": message.text, "url": message.url, "tag": message.key}
        if message.data.get("icon"):
            content["icon"] = message.data["icon"]
        payload = orjson.dumps(content)
        if len(payload) > MAX_PAYLOAD:
            return SendResult.failed(
                f"the push payload is {len(payload)} bytes, more than {MAX_PAYLOAD}", permanent=True
            )
        results = {endpoint: self._push(endpoint, p256dh, auth, payload) for endpoint, p256dh, auth in subscriptions}
        gone = [endpoint for endpoint, result in results.items() if result is None]
        if gone:
            with self.uow.session() as session:
                session.execute(
                    sa.delete(PushSubscription).where(
                        PushSubscription.endpoint.in_(gone), PushSubscription.customer_id == message.customer_id
                    )
                )
        return _overall(results)

    def _push(self, endpoint: str, p256dh: str, auth: str, payload: bytes) -> SendResult | None:
        """One subscription's result; None when the push service no longer knows it."""
        from pywebpush import WebPushException, webpush  # heavy (aiohttp): loaded when a push is sent

        if problem := endpoint_problem(endpoint, self.config.push_hosts):
            return SendResult.failed(f"subscription endpoint {problem}", permanent=True)
        try:
            webpush(
                {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.config.subject},
                ttl=self.config.ttl,
                timeout=self.config.timeout,
                requests_session=self.http,
            )
        except WebPushException as exc:
            if exc.response is None:
                return SendResult.failed(f"cannot push: {exc.message}", permanent=True)
            if exc.status_code in (404, 410):
                return None
            return from_status(exc.status_code, exc.response.headers, WHO)
        except requests.Timeout:
            return SendResult.failed(f"{WHO} did not answer in time")
        except requests.RequestException as exc:
            return SendResult.failed(f"cannot reach {WHO} ({type(exc).__name__})")
        except (ValueError, TypeError):  # keys that do not decode to a P-256 point and a secret
            return SendResult.failed("the subscription's keys are not valid", permanent=True)
        return SendResult.sent()

    def close(self) -> None:
        self.http.close()


def _overall(results: dict[str, SendResult | None]) -> SendResult:
    """Sent when any browser got it (not retried: the others would get it twice); else the most hopeful failure."""
    delivered = sorted(endpoint for endpoint, result in results.items() if result is not None and result.ok)
    if delivered:
        digest = hashlib.sha256("\n".join(delivered).encode()).hexdigest()[:12]
        return SendResult.sent(f"{digest}/{len(delivered)}")
    failures = [result for result in results.values() if result is not None]
    if not failures:
        return SendResult.failed("no push subscription left: the push service has forgotten them all", permanent=True)
    limited = [r for r in failures if r.status == "rate_limited"]
    if limited:
        return max(limited, key=lambda r: r.retry_after or 0)
    return next((r for r in failures if not r.permanent), failures[0])
