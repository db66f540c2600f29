"""What an HTTP provider's answer means for a message: the mapping the HTTP adapters share.

429 is a rate limit (honouring Retry-After), 5xx and network trouble are worth another try
later, any other 4xx will not get better by repeating it. Texts that reach a `SendResult` pass
through `redact`, since providers like to echo the phone number they refused. `is_http_url`
checks the URLs adapters are given before they try them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from boomerang.channels.base import SendResult

_PHONE_LIKE = re.compile(r"\+?\d[\d ().-]{5,}\d")
_HOST = re.compile(r"^[\w.-]+$")


def is_http_url(value: str | None) -> bool:
    """Whether `value` is an absolute http:// or https:// URL with a plausible host."""
    if not value or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError:  # also a broken [IPv6] host
        return False
    return parts.scheme in ("http", "https") and bool(host) and (":" in host or bool(_HOST.match(host)))


def retry_after(value: str | None, default: float = 1.0) -> float:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else default
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max((at - datetime.now(UTC)).total_seconds(), 0.0)


def redact(text: str, limit: int = 200) -> str:
    """A provider's text made safe to show: phone-like numbers hidden, cut to `limit` characters."""
    return _PHONE_LIKE.sub("***", " ".join(text.split()))[:limit]


def from_status(status: int, headers: Mapping[str, str], who: str, detail: str = "") -> SendResult:
    """The result of a non-2xx answer from `who` (the provider's name, never its URL)."""
    suffix = f": {redact(detail)}" if detail else ""
    if status == 429:
        return SendResult.rate_limited(retry_after(headers.get("retry-after")), f"{who} answered 429{suffix}")
    if status >= 500:
        return SendResult.failed(f"{who} answered {status}{suffix}")
    if status in (401, 403):
        return SendResult.failed(f"{who} rejected the credentials ({status}){suffix}", permanent=True)
    if 300 <= status < 400:
        return SendResult.failed(f"{who} answered {status}: redirects are not followed", permanent=True)
    return SendResult.failed(f"{who} answered {status}{suffix}", permanent=True)


def from_transport(exc: Exception, who: str) -> SendResult:
    """A temporary failure for a timeout or a connection problem; the exception's text may name the URL."""
    if isinstance(exc, httpx.TimeoutException):
        return SendResult.failed(f"{who} did not answer in time")
    return SendResult.failed(f"cannot reach {who} ({type(exc).__name__})")
