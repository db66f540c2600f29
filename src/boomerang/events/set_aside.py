"""Messages set aside from an accepted batch: each bad message is kept here with its reasons while its good
neighbours go on (Segment's SDKs do not retry a 4xx, so rejecting the whole batch would lose them all).
Kept for KEEP_DAYS, for the shop to see what its tracking sends wrong (`/api/events/set-aside`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.events.models import SetAsideMessage

KEEP_DAYS = 30
PAYLOAD_CHARS = 16_000


def record(
    session: Session, items: list[Any], problems: dict[int, list[dict]], *, source: str, now: datetime
) -> list[dict[str, Any]]:
    """Keep the batch's bad messages (by index, with their problems); returns what the response says of them."""
    if not problems:
        return []
    out = [
        {"index": index, "messageId": _message_id(items[index]), "errors": errors}
        for index, errors in sorted(problems.items())
    ]
    session.execute(
        sa.insert(SetAsideMessage),
        [
            {
                "received_at": now,
                "source": source,
                "position": item["index"],
                "message_id": item["messageId"],
                "errors": item["errors"],
                "payload": _payload(items[item["index"]]),
            }
            for item in out
        ],
    )
    session.execute(sa.delete(SetAsideMessage).where(SetAsideMessage.received_at < now - timedelta(days=KEEP_DAYS)))
    return out


def listing(session: Session, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The latest set-aside messages, newest first, and how many are kept."""
    total = session.scalar(sa.select(sa.func.count()).select_from(SetAsideMessage)) or 0
    rows = session.scalars(
        sa.select(SetAsideMessage).order_by(SetAsideMessage.id.desc()).limit(limit).offset(offset)
    ).all()
    return [
        {
            "received_at": r.received_at,
            "source": r.source,
            "index": r.position,
            "message_id": r.message_id,
            "errors": r.errors,
            "payload": r.payload,
        }
        for r in rows
    ], total


def _message_id(item: Any) -> str | None:
    value = item.get("messageId") if isinstance(item, dict) else None
    return value[:128] if isinstance(value, str) else None


def _payload(item: Any) -> str:
    try:
        text = orjson.dumps(item).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(item)
    return text[:PAYLOAD_CHARS]
