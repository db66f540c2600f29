"""Dashboard sessions kept in the store: the browser holds a random token, the store only its SHA-256 hash.

A session is live until it is ended (logging out; the user disabled; their password changed), left unused
for the idle timeout, or past its absolute lifetime. Sessions past their lifetime are deleted whenever
someone logs in, so the table holds at most a lifetime's worth of logins.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.auth.models import DashboardSession, User

TOKEN_BYTES = 32  # 256 random bits: a fast hash is enough, there is nothing to brute-force
TOUCH_EVERY = timedelta(minutes=1)  # `last_seen_at` is written at most this often, not on every page


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta  # unused this long: over
    absolute: timedelta  # this long after logging in: over, however busy


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, *, now: datetime, lifetime: Lifetime) -> str:
    """A new session for `user`; returns its token, whose only copy goes to the browser."""
    prune(session, now=now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        DashboardSession(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime.absolute,
        )
    )
    session.flush()
    return token


def _live(row: DashboardSession, now: datetime, idle: timedelta) -> bool:
    return row.ended_at is None and now < row.expires_at and now < row.last_seen_at + idle


def user_of(session: Session, token: str, *, now: datetime, idle: timedelta) -> User | None:
    """The active user of the live session with this token, which counts as used now; None otherwise."""
    row = session.get(DashboardSession, token_hash(token))
    if row is None or not _live(row, now, idle):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= min(TOUCH_EVERY, idle / 4):
        row.last_seen_at = now
        session.flush()
    return user


def end(session: Session, token: str, *, now: datetime) -> None:
    """End the session with this token (logging out); an unknown or ended one is left as it is."""
    _end(session, DashboardSession.token_hash == token_hash(token), now)


def end_all(session: Session, user_id: str, *, now: datetime, keep: str | None = None) -> None:
    """End every open session of a user, but the one whose token is `keep` (the one making the change)."""
    where = DashboardSession.user_id == user_id
    if keep is not None:
        where = sa.and_(where, DashboardSession.token_hash != token_hash(keep))
    _end(session, where, now)


def _end(session: Session, where, now: datetime) -> None:
    session.execute(
        sa.update(DashboardSession)
        .where(where, DashboardSession.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()


def prune(session: Session, *, now: datetime) -> None:
    """Forget sessions past their absolute lifetime (live or not, none of them can come back)."""
    session.execute(
        sa.delete(DashboardSession)
        .where(DashboardSession.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
