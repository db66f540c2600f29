"""Signed tokens for links that leave Boomerang (tracking, unsubscribe, preference centre, Telegram deep
links, the in-app inbox): HMAC-SHA256 over a purpose and a small JSON payload, URL-safe, compact.

A token signed for one purpose is refused for every other, so a click token cannot open a
preference centre. Tokens carry no secret and no address, only ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

import orjson
from cryptography.fernet import Fernet

SECRET_FILE = "dashboard-secret"  # its first user named it; every signing key is derived from it


class BadToken(Exception):
    """A token that is malformed, altered, signed for another purpose or expired."""


def load_secret(home: Path) -> bytes:
    """The workspace's signing secret, made once and kept in the workspace folder, readable by its owner only."""
    path = home / SECRET_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            text = path.read_text().strip()
            if text:
                return bytes.fromhex(text)
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it and start again") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"boomerang-links\0" + secret).digest()

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.digest(self._key, f"{purpose}\0{body}".encode(), "sha256")[:16])

    def sign(self, purpose: str, payload: dict | list, *, expires_in: float | None = None) -> str:
        """A token for `payload`; with `expires_in` (seconds) it is refused after that."""
        data = {"p": payload, **({"e": int(time.time() + expires_in)} if expires_in else {})}
        body = _b64(orjson.dumps(data))
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str) -> dict | list:
        """The payload of a token signed for `purpose`; BadToken otherwise."""
        body, _, mac = (token or "").partition(".")
        if not body or not mac or not hmac.compare_digest(mac.encode(), self._mac(purpose, body).encode()):
            raise BadToken("invalid or altered link")
        try:
            data = orjson.loads(_unb64(body))
        except ValueError:
            raise BadToken("invalid link") from None
        if "e" in data and data["e"] < time.time():
            raise BadToken("this link has expired")
        return data["p"]


def sealer(secret: bytes, purpose: bytes) -> Fernet:
    """Authenticated encryption (Fernet) under a key derived from the workspace secret for one purpose: what
    Boomerang must read back in clear (a channel's credentials, an identity-verification key) is stored so."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(purpose + b"\0" + secret).digest()))
