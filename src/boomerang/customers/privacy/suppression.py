"""Suppressed addresses: an erased customer's emails and phones, kept only as keyed hashes, so that an old
import or a later event does not put them back on a profile.

The hash key comes from the workspace secret, which the composition root lends every session of its unit of
work (`session_info`); a session from elsewhere has no key, and asking it is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.privacy import SUPPRESSIBLE, address_digest, digest_key
from boomerang.customers.models import SuppressedAddress
from boomerang.db import chunked, insert_ignore

SECRET = "workspace_secret"  # Session.info: a callable returning the workspace secret
KEY = "suppression_key"  # Session.info: the digest key, derived once per session


def session_info(secret: Callable[[], bytes]) -> dict:
    """What the unit of work puts in every session's `info` for the digests (the secret is read when first
    needed)."""
    return {SECRET: secret}


def _key(session: Session) -> bytes:
    if KEY not in session.info:
        secret = session.info.get(SECRET)
        if secret is None:
            raise RuntimeError(
                "this session was not opened by a workspace's unit of work (Workspace.uow): "
                "there is no secret to hash suppressed addresses with"
            )
        session.info[KEY] = digest_key(secret())
    return session.info[KEY]


def digest(session: Session, kind: str, value: str) -> str:
    return address_digest(_key(session), kind, value)


def is_suppressed(session: Session, kind: str, value: str | None) -> bool:
    """Whether `value` is an erased customer's address of this kind (email or phone, however it is written);
    always False for an empty value or another kind (user ids, Telegram chats...)."""
    if not value or kind not in SUPPRESSIBLE:
        return False
    return session.get(SuppressedAddress, (kind, digest(session, kind, value))) is not None


def suppressed(session: Session, kind: str, values: Iterable[str | None]) -> set[str]:
    """Those of the values that are suppressed addresses of this kind, in a query per few thousand values."""
    if kind not in SUPPRESSIBLE:
        return set()
    by_digest = {digest(session, kind, v): v for v in set(values) if v}
    found: set[str] = set()
    for chunk in chunked(by_digest):
        found.update(
            session.scalars(
                sa.select(SuppressedAddress.digest).where(
                    SuppressedAddress.kind == kind, SuppressedAddress.digest.in_(chunk)
                )
            )
        )
    return {by_digest[d] for d in found}


def suppress(session: Session, addresses: Iterable[tuple[str, str]], *, now: datetime) -> int:
    """Remember (kind, value) addresses as suppressed (again is harmless); returns how many distinct ones."""
    digests = {(kind, digest(session, kind, value)) for kind, value in addresses if value and kind in SUPPRESSIBLE}
    rows = [{"kind": kind, "digest": d, "created_at": now} for kind, d in sorted(digests)]
    if rows:
        session.execute(insert_ignore(session, SuppressedAddress.__table__), rows)
    return len(rows)
