"""What customers' devices keep with the channels: browsers' push subscriptions and the in-app inbox.
Services flush; the caller commits."""

from __future__ import annotations

import binascii
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from boomerang.channels import config as settings
from boomerang.channels.models import FakeChannelLog, InboxItem, PushSubscription
from boomerang.channels.webpush import PUSH_HOSTS, b64url_decode, endpoint_problem
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.merge import move_rows
from boomerang.customers.privacy import hooks as privacy

INBOX_PAGE = 100


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The visitor's browsers keep getting pushes, and their inbox stays theirs, under the merged profile."""
    move_rows(session, PushSubscription.customer_id, from_id, into_id)
    move_rows(session, InboxItem.customer_id, from_id, into_id)


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' browsers (their endpoints; the keys are the browsers' secrets), in-app inbox and what the
    sandbox recorded of messages to them (a privacy export's sections)."""
    subscriptions = privacy.rows_of(
        session, PushSubscription.customer_id, customer_ids, order_by=PushSubscription.created_at
    )
    return {
        "push_subscriptions": [{k: s[k] for k in ("endpoint", "customer_id", "created_at")} for s in subscriptions],
        "inbox_items": privacy.rows_of(session, InboxItem.customer_id, customer_ids, order_by=InboxItem.id),
        "sandbox_deliveries": privacy.rows_of(
            session, FakeChannelLog.customer_id, customer_ids, order_by=FakeChannelLog.id
        ),
    }


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's browsers and in-app inbox go; the sandbox's record of messages stays, for counts,
    without their addresses."""
    privacy.rename_in(session, FakeChannelLog.message_key, customer_id, pseudonym)
    return {
        "deleted": {
            "push_subscriptions": privacy.delete_of(session, PushSubscription.customer_id, customer_id),
            "inbox_items": privacy.delete_of(session, InboxItem.customer_id, customer_id),
        },
        "pseudonymised": {
            "sandbox_deliveries": privacy.move_to(
                session, FakeChannelLog.customer_id, customer_id, pseudonym, address=None
            )
        },
    }


# -- web push subscriptions ------------------------------------------------------------------------


def check_keys(p256dh: str, auth: str) -> None:
    """Browsers' keys, checked now rather than failing at every send: a P-256 point and a 16-byte secret."""
    errors = []
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(p256dh))
    except (ValueError, binascii.Error):
        errors.append({"field": "subscription.keys.p256dh", "reason": "not a base64url P-256 public key"})
    try:
        if len(b64url_decode(auth)) != 16:
            raise ValueError
    except (ValueError, binascii.Error):
        errors.append({"field": "subscription.keys.auth", "reason": "not a base64url 16-byte secret"})
    if errors:
        raise ValidationFailed(errors)


def subscribe(
    session: Session, customer_id: str, *, endpoint: str, p256dh: str, auth: str, secret: bytes, now: datetime
) -> None:
    """Keep a browser's subscription for the customer (the same browser again may be someone else now)."""
    check_keys(p256dh, auth)
    provider, config, _ = settings.load(session, "webpush", secret=secret)
    if problem := endpoint_problem(endpoint, config.push_hosts if provider == "vapid" else PUSH_HOSTS):
        raise ValidationFailed([{"field": "subscription.endpoint", "reason": problem}])
    row = session.get(PushSubscription, endpoint)
    if row is None:
        session.add(
            PushSubscription(endpoint=endpoint, customer_id=customer_id, p256dh=p256dh, auth=auth, created_at=now)
        )
    else:
        row.customer_id, row.p256dh, row.auth = customer_id, p256dh, auth
    session.flush()


def unsubscribe(session: Session, endpoint: str) -> bool:
    """Forget a browser's subscription; whether there was one."""
    return bool(session.execute(sa.delete(PushSubscription).where(PushSubscription.endpoint == endpoint)).rowcount)


def vapid_public_key(session: Session, *, secret: bytes) -> str:
    provider, config, enabled = settings.load(session, "webpush", secret=secret)
    if provider != "vapid" or not enabled:
        raise NotFound("web push is not set up with VAPID keys", field="webpush")
    return config.vapid_public_key


# -- the in-app inbox ------------------------------------------------------------------------------


def inbox(session: Session, customer_id: str, *, now: datetime, unread: bool = False) -> list[InboxItem]:
    """The customer's unexpired in-app messages, newest first."""
    query = (
        sa.select(InboxItem)
        .where(InboxItem.customer_id == customer_id, sa.or_(InboxItem.expires_at.is_(None), InboxItem.expires_at > now))
        .order_by(InboxItem.created_at.desc(), InboxItem.id.desc())
        .limit(INBOX_PAGE)
    )
    if unread:
        query = query.where(InboxItem.read_at.is_(None))
    return list(session.scalars(query))


def mark(session: Session, customer_id: str, item_id: int, *, clicked: bool, now: datetime) -> InboxItem:
    """An item read (and clicked); NotFound for another customer's item."""
    item = session.get(InboxItem, item_id)
    if item is None or item.customer_id != customer_id:
        raise NotFound("no such item", field="item")
    item.read_at = item.read_at or now
    if clicked:
        item.clicked_at = item.clicked_at or now
    session.flush()
    return item
