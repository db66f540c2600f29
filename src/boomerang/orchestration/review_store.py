"""What the monthly review reads from and writes to the operational store: messages the guards suppressed,
segments' titles, and the sends of the review itself (claimed in a committed row before each leaves)."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from boomerang.db import UnitOfWork
from boomerang.messaging.models import Message
from boomerang.orchestration.models import ReviewSend
from boomerang.segments.models import Segment

EXAMPLES = 3  # the commonest reasons shown per guard


def suppressed(session: Session, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Messages due in [since, until) that the guards (or a cancelled campaign, an erasure) suppressed: per guard,
    per journey or campaign, and the commonest reasons; beside the messages that left in the same days."""
    rows = session.execute(
        sa.select(Message.reason, Message.source, sa.func.count())
        .where(Message.status == "suppressed", Message.send_after >= since, Message.send_after < until)
        .group_by(Message.reason, Message.source)
    ).all()
    sent = session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(Message.sent_at >= since, Message.sent_at < until)
    )
    by_guard: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for reason, source, n in rows:
        guard, _, why = (reason or "unknown").partition(": ")
        if not why:  # "campaign cancelled", an erasure: not a guard's "<guard>: <why>"
            guard, why = "other", reason or "unknown"
        by_guard[guard] += n
        by_source[source] += n
        reasons.setdefault(guard, Counter())[why] += n
    return {
        "total": sum(by_guard.values()),
        "sent": int(sent or 0),
        "by_guard": [
            {
                "guard": g,
                "messages": n,
                "reasons": [{"reason": r, "messages": k} for r, k in reasons[g].most_common(EXAMPLES)],
            }
            for g, n in sorted(by_guard.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "by_source": [
            {"source": s, "messages": n} for s, n in sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }


def segment_titles(session: Session) -> dict[str, str]:
    return {name: title or name for name, title in session.execute(sa.select(Segment.name, Segment.title))}


def recipient_key(address: str) -> str:
    """How a send's row names its recipient: a hash, so that the table keeps no address."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def pending(uow: UnitOfWork, month: str, recipients: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (channel, address) pairs not yet sent nor being sent the review of `month` (a failed one is, again)."""
    with uow.session() as session:
        done = {
            (c, r)
            for c, r in session.execute(
                sa.select(ReviewSend.channel, ReviewSend.recipient).where(
                    ReviewSend.month == month, ReviewSend.status != "failed"
                )
            )
        }
    return [(c, a) for c, a in recipients if (c, recipient_key(a)) not in done]


def claim(uow: UnitOfWork, month: str, channel: str, address: str, *, now: datetime) -> bool:
    """Record the send as `sending` and commit, before it leaves; False when another process has it (or had it)."""
    key = recipient_key(address)
    try:
        with uow.session() as session:
            row = session.get(ReviewSend, (month, channel, key))
            if row is None:
                session.add(ReviewSend(month=month, channel=channel, recipient=key, status="sending", created_at=now))
                return True
            claimed = session.execute(  # a failed one, retried: only one process wins the update
                sa.update(ReviewSend)
                .where(ReviewSend.month == month, ReviewSend.channel == channel, ReviewSend.recipient == key)
                .where(ReviewSend.status == "failed")
                .values(status="sending", error=None)
            )
            return claimed.rowcount == 1
    except IntegrityError:  # another worker inserted it first
        return False


def settle(
    uow: UnitOfWork,
    month: str,
    channel: str,
    address: str,
    *,
    status: str,
    error: str | None,
    provider_id: str | None,
    now: datetime,
) -> None:
    with uow.session() as session:
        row = session.get(ReviewSend, (month, channel, recipient_key(address)))
        row.status, row.error, row.provider_id = status, error, provider_id
        row.sent_at = now if status == "sent" else None


def sends(session: Session, month: str) -> list[dict[str, Any]]:
    """What went out for `month`, per channel and status (recipients stay hashed)."""
    rows = session.execute(
        sa.select(ReviewSend.channel, ReviewSend.status, sa.func.count())
        .where(ReviewSend.month == month)
        .group_by(ReviewSend.channel, ReviewSend.status)
        .order_by(ReviewSend.channel, ReviewSend.status)
    ).all()
    return [{"channel": c, "status": s, "recipients": n} for c, s, n in rows]
