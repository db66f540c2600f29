"""API keys: made once, shown once, stored as SHA-256 hashes, checked with a short cache."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.auth.models import KEY_KINDS, ApiKey
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.ids import new_id

PREFIXES = {"write": "bk_w_", "secret": "bk_s_"}


def digest(key: str) -> str:
    # Keys are 192 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, kind: str, name: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is not stored anywhere."""
    if kind not in KEY_KINDS:
        raise ValidationFailed([{"field": "kind", "reason": f"must be one of {', '.join(KEY_KINDS)}"}])
    plaintext = PREFIXES[kind] + secrets.token_urlsafe(24)
    key = ApiKey(
        id=new_id("key"), kind=kind, name=name or kind, prefix=plaintext[:9], key_hash=digest(plaintext), created_at=now
    )
    session.add(key)
    session.flush()
    return key, plaintext


def revoke_key(session: Session, key_id: str, *, now: datetime) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"unknown key '{key_id}'", field="key_id")
    key.revoked_at = key.revoked_at or now
    session.flush()
    return key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)))


class KeyChecker:
    """Answers 'which live key is this?' with a few seconds of cache, so revocation takes effect quickly."""

    def __init__(self, sessions, ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._cache: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._lock = threading.Lock()

    def kind_of(self, key: str | None) -> str | None:
        found = self.identify(key)
        return found[0] if found else None

    def identify(self, key: str | None) -> tuple[str, str] | None:
        """The live key's (kind, id); None for no key, an unknown or a revoked one."""
        if not key:
            return None
        hashed = digest(key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(hashed)
        if hit and hit[0] > now:
            return hit[1]
        with self._sessions() as session:
            row = session.execute(
                sa.select(ApiKey.kind, ApiKey.id).where(ApiKey.key_hash == hashed, ApiKey.revoked_at.is_(None))
            ).first()
        found = (row[0], row[1]) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[hashed] = (now + self._ttl, found)
        return found
