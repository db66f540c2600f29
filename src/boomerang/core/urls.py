"""Web addresses that may be stored and sent to customers: http(s) only, with a host."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field


def web_url(value: str | None) -> str | None:
    """The URL when it is an absolute http(s) address; ValueError otherwise (`javascript:`, `data:`...)."""
    if value is None or value == "":
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// address")
    return value.strip()


def host_of(url: str) -> str:
    """The lower-case host of a URL ('' when it has none)."""
    return (urlsplit(url).hostname or "").lower()


WebUrl = Annotated[str, Field(max_length=2048), AfterValidator(web_url)]
