"""Pausing logins after wrong passwords, in the store so that every worker agrees.

Each try is a row per key it counts against (a username's, an address's: opaque strings, which the
caller hashes with a secret so that nothing typed into a login form is kept in clear). A try is
counted before its password is checked, so that parallel tries cannot slip past the limit, and forgiven
when the password was right. A key with `failures` rows within the window is paused until the oldest of
those leaves it. Rows older than the window are deleted with every try.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.auth.models import LoginFailure


@dataclass(frozen=True)
class Limit:
    key: str
    failures: int  # wrong passwords within the window that pause this key


def paused_for(session: Session, limits: Sequence[Limit], *, now: datetime, window: timedelta) -> timedelta | None:
    """How long until logging in may be tried again under all these limits; None when it may now."""
    waits = [wait for limit in limits if (wait := _wait(session, limit, now, window)) is not None]
    return max(waits) if waits else None


def _wait(session: Session, limit: Limit, now: datetime, window: timedelta) -> timedelta | None:
    # Once the limit-th newest try within the window leaves it, fewer than `failures` remain.
    nth = session.scalar(
        sa.select(LoginFailure.at)
        .where(LoginFailure.key == limit.key, LoginFailure.at > now - window)
        .order_by(LoginFailure.at.desc())
        .offset(limit.failures - 1)
        .limit(1)
    )
    return None if nth is None else nth + window - now


def attempt(session: Session, keys: Sequence[str], *, now: datetime, window: timedelta) -> list[int]:
    """Count a try against each key, as a wrong password until `forgive`n; returns the rows' ids."""
    session.execute(
        sa.delete(LoginFailure).where(LoginFailure.at <= now - window).execution_options(synchronize_session=False)
    )
    rows = [LoginFailure(key=key, at=now) for key in keys]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def forgive(session: Session, attempt_ids: Sequence[int], *, reset: str) -> None:
    """The password was right: the try counts against no key, and `reset` (the username's) starts afresh."""
    session.execute(
        sa.delete(LoginFailure)
        .where(sa.or_(LoginFailure.id.in_(list(attempt_ids)), LoginFailure.key == reset))
        .execution_options(synchronize_session=False)
    )
    session.flush()
