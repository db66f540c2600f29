"""Deep links that bind a Telegram chat to a customer: `/start <token>`, the token signed by the shop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from boomerang.core.errors import ValidationFailed

_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_MAC_CHARS = 14  # 10 bytes of HMAC in base64 without padding


def _mac(secret: bytes, customer_id: str) -> str:
    key = hashlib.sha256(b"boomerang-telegram-link\0" + secret).digest()
    digest = hmac.new(key, customer_id.encode(), hashlib.sha256).digest()[:10]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def link_token(secret: bytes, customer_id: str) -> str:
    """A signed /start parameter naming the customer: at most 55 characters of A-Za-z0-9_- (Telegram allows 64).

    Customer ids are already in that alphabet, so they go in as they are: base64 would push a 40-character
    id past Telegram's limit."""
    if not _ID.fullmatch(customer_id):
        raise ValidationFailed([{"field": "customer", "reason": "cannot be put in a Telegram link"}])
    return f"{customer_id}_{_mac(secret, customer_id)}"


def customer_from_token(secret: bytes, token: str) -> str | None:
    """The customer id a link token was made for; None when it is malformed or altered."""
    customer_id, sep, mac = token[: -_MAC_CHARS - 1], token[-_MAC_CHARS - 1 : -_MAC_CHARS], token[-_MAC_CHARS:]
    if sep != "_" or not _ID.fullmatch(customer_id) or not hmac.compare_digest(mac, _mac(secret, customer_id)):
        return None
    return customer_id


def deep_link(secret: bytes, customer_id: str, bot_username: str) -> str:
    """The t.me link that opens the bot and, on Start, links the chat to the customer."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={link_token(secret, customer_id)}"
