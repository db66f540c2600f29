"""API keys: made once, shown once, stored as SHA-256 hashes, checked with a short cache.

Three kinds: a write key (public: browsers and apps track with it), a secret key (the shop's server: /api, and
trusted tracking), an identity key (the shop's server signs its customers' user ids with it, HMAC-SHA256 in hex,
so that a browser's identify carrying that signature speaks for the customer; see `IdentityVerifier`). An identity
key is the one kind Boomerang must read back, so it is also kept encrypted under the workspace secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.auth.models import KEY_KINDS, ApiKey
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.core.signing import sealer

PREFIXES = {"write": "bk_w_", "secret": "bk_s_", "identity": "bk_i_"}
SEAL = b"boomerang-identity-keys"


def digest(key: str) -> str:
    # Keys are 192 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, *, kind: str, name: str, now: datetime, secret: bytes | None = None
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is stored nowhere in clear (an identity key is sealed with `secret`,
    the workspace secret)."""
    if kind not in KEY_KINDS:
        raise ValidationFailed([{"field": "kind", "reason": f"must be one of {', '.join(KEY_KINDS)}"}])
    plaintext = PREFIXES[kind] + secrets.token_urlsafe(24)
    key = ApiKey(
        id=new_id("key"), kind=kind, name=name or kind, prefix=plaintext[:9], key_hash=digest(plaintext), created_at=now
    )
    if kind == "identity":
        if secret is None:
            raise ValueError("an identity key is sealed with the workspace secret")
        key.sealed = sealer(secret, SEAL).encrypt(plaintext.encode()).decode()
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


def user_hash(identity_key: str, user_id: str) -> str:
    """What the shop's server sends along with a user id: HMAC-SHA256 of the id under an identity key, in hex."""
    return hmac.new(identity_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


class IdentityVerifier:
    """Answers 'did the shop's server sign this user id?' against every live identity key (several live at once
    while one is being replaced), read again every few seconds so a new or revoked key counts quickly."""

    def __init__(self, sessions, secret: bytes, ttl: float = 5.0) -> None:
        self._sessions = sessions
        self._sealer = sealer(secret, SEAL)
        self._ttl = ttl
        self._keys: tuple[float, list[str]] = (0.0, [])
        self._lock = threading.Lock()

    def verify(self, user_id: str, signature: str) -> bool:
        return any(hmac.compare_digest(user_hash(key, user_id), signature.lower()) for key in self._live())

    def _live(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            until, keys = self._keys
        if until > now:
            return keys
        with self._sessions() as session:
            sealed = session.scalars(
                sa.select(ApiKey.sealed).where(ApiKey.kind == "identity", ApiKey.revoked_at.is_(None))
            ).all()
        keys = [self._sealer.decrypt(s.encode()).decode() for s in sealed if s]
        with self._lock:
            self._keys = (now + self._ttl, keys)
        return keys
