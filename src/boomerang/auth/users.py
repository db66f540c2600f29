"""Dashboard users: scrypt password hashes, creation, listing, disabling and login checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.auth import sessions
from boomerang.auth.models import ROLES, User
from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.core.ids import new_id

# scrypt with n=2**14, r=8, p=1 takes ~16 MiB and ~50 ms: slow for a guesser, fine for a login.
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES = 2**14, 8, 1, 32
MIN_PASSWORD = 8
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,63}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash`, with a fresh random salt per call."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash, compared in constant time."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        salt_raw, expected_raw = base64.b64decode(salt), base64.b64decode(expected)
        key = hashlib.scrypt(
            password.encode(),
            salt=salt_raw,
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected_raw),
            maxmem=128 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(key, expected_raw)


# Checked when the user does not exist, so that an unknown name takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def normalize_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not _USERNAME.fullmatch(name):
        raise ValidationFailed(
            [
                {
                    "field": "username",
                    "reason": "1 to 64 characters: letters, digits, _ . @ -, starting with a letter or digit",
                }
            ]
        )
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationFailed([{"field": "role", "reason": f"must be one of {', '.join(ROLES)}"}])
    return role


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed([{"field": "password", "reason": f"must be at least {MIN_PASSWORD} characters"}])
    if len(password) > 1024:
        raise ValidationFailed([{"field": "password", "reason": "must be at most 1024 characters"}])
    return password


def by_id(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(sa.select(User).where(User.username == username.strip().lower()))


def create_user(session: Session, *, username: str, role: str, password: str | None, now: datetime) -> tuple[User, str]:
    """A new user and their password (generated when not given); the password is stored only as a hash."""
    name = normalize_username(username)
    _check_role(role)
    password = _check_password(password) if password is not None else generate_password()
    if get_user(session, name) is not None:
        raise Conflict(f"user '{name}' already exists", field="username")
    user = User(id=new_id("usr"), username=name, password_hash=hash_password(password), role=role, created_at=now)
    session.add(user)
    session.flush()
    return user, password


def set_password(
    session: Session, *, username: str, password: str | None, now: datetime, keep: str | None = None
) -> tuple[User, str]:
    """Give a user a new password (generated when not given) and enable them again; every session of theirs
    ends, but the one whose token is `keep` (the user's own, changing their password)."""
    user = get_user(session, username)
    if user is None:
        raise NotFound(f"unknown user '{username}'", field="username")
    password = _check_password(password) if password is not None else generate_password()
    user.password_hash = hash_password(password)
    user.disabled_at = None
    sessions.end_all(session, user.id, now=now, keep=keep)
    return user, password


def list_users(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).order_by(User.username)))


def disable_user(session: Session, username: str, *, now: datetime) -> User:
    """Stop a user from logging in; their open sessions end at once."""
    user = get_user(session, username)
    if user is None:
        raise NotFound(f"unknown user '{username}'", field="username")
    if user.disabled_at is None:
        user.disabled_at = now
    sessions.end_all(session, user.id, now=now)
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; the same work is done either way."""
    user = get_user(session, username) if _USERNAME.fullmatch((username or "").strip().lower()) else None
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    return user if ok and user is not None and user.active else None


def demo_admin(session: Session, *, now: datetime, username: str = "admin") -> dict[str, str]:
    """The demo's admin with a fresh password (a second demo into the same workspace gives a new one)."""
    if get_user(session, username) is None:
        user, password = create_user(session, username=username, role="admin", password=None, now=now)
    else:
        user, password = set_password(session, username=username, password=None, now=now)
    return {"username": user.username, "password": password, "role": user.role}
