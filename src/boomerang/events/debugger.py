"""The events debugger: the latest messages that reached Boomerang, wherever they are now (waiting in the inbox,
processed there, or flushed into the log), and the messages set aside from batches with their reasons, so that a
shop wiring up its tracking sees what arrives and what is refused. Plain dicts, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.clock import naive_utc
from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import BROWSER, SERVER, VERIFIED
from boomerang.customers import service as customers
from boomerang.events import intake
from boomerang.events.log import EventLog
from boomerang.events.models import InboxEvent, SetAsideMessage
from boomerang.events.schemas import MODELS

MAX_LIMIT = 200
TYPES = tuple(MODELS)
# The source filter, by the key that sent the events: "" either tracking key; "all" adds Boomerang's own events,
# imports and REST calls.
SOURCES: dict[str, tuple[str, ...] | None] = {
    "": (BROWSER, VERIFIED, SERVER),
    BROWSER: (BROWSER, VERIFIED),
    SERVER: (SERVER,),
    "all": None,
}
KEYS = {BROWSER: "write key", VERIFIED: "write key, verified user", SERVER: "secret key"}
MAX_TEXT = 255  # characters of a filter's text
MAX_KNOWN = 50  # ids of one customer matched by the user filter
SHOWN = ("message_id", "type", "event", "customer_id", "anonymous_id", "user_id", "timestamp", "received_at", "source")


@dataclass(frozen=True)
class Filters:
    type: str = ""
    event: str = ""  # the event's name contains it (any case)
    user: str = ""  # a user id, anonymous id, customer id or email: the customer's events by any of their ids
    source: str = ""  # a key of SOURCES

    def check(self, limit: int, offset: int) -> None:
        errors = []
        if self.type and self.type not in TYPES:
            errors.append({"field": "type", "reason": f"must be one of {', '.join(TYPES)}"})
        if self.source not in SOURCES:
            errors.append({"field": "source", "reason": f"must be {BROWSER}, {SERVER}, all, or empty for either key"})
        for name in ("event", "user"):
            if len(getattr(self, name)) > MAX_TEXT:
                errors.append({"field": name, "reason": f"at most {MAX_TEXT} characters"})
        if not 1 <= limit <= MAX_LIMIT:
            errors.append({"field": "limit", "reason": f"must be between 1 and {MAX_LIMIT}"})
        if offset < 0:
            errors.append({"field": "offset", "reason": "must be 0 or more"})
        if errors:
            raise ValidationFailed(errors)


def latest(
    session: Session, log: EventLog, filters: Filters, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of the events that match, newest first, and how many match: those still in the inbox first (status
    `pending` until processed, then `processed`), then those in the log (`flushed`)."""
    filters.check(limit, offset)
    intake.take_into(session)  # what the tracking API just accepted, shown as pending
    known = _known(session, filters.user)
    where = _inbox_where(filters, known)
    waiting = session.scalar(sa.select(sa.func.count()).select_from(InboxEvent).where(*where)) or 0
    rows = session.scalars(
        sa.select(InboxEvent).where(*where).order_by(InboxEvent.id.desc()).limit(limit).offset(offset)
    )
    page = [_from_inbox(r) for r in rows]
    with log.reader() as r:
        events = _log_filter(r.events, filters, known)
        logged = int(events.count().execute())
        if len(page) < limit:
            found = (
                events.order_by([events.received_at.desc(), events.message_id])
                .select(*SHOWN, properties=events.properties.cast(str), context=events.context.cast(str))
                .limit(limit - len(page), offset=max(0, offset - waiting))
                .execute()
            )
            seen = {e["message_id"] for e in page}  # flushed between the two reads: shown once
            page += [_from_log(row) for row in _records(found) if row["message_id"] not in seen]
    return page, waiting + logged


def set_aside(session: Session, filters: Filters, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """A page of the messages set aside from batches, newest first, with their problems, and how many match. Such a
    message may be malformed, so the filters look for their text in it as it was sent."""
    filters.check(limit, offset)
    where = _aside_where(filters, _known(session, filters.user))
    total = session.scalar(sa.select(sa.func.count()).select_from(SetAsideMessage).where(*where)) or 0
    rows = session.scalars(
        sa.select(SetAsideMessage).where(*where).order_by(SetAsideMessage.id.desc()).limit(limit).offset(offset)
    )
    return [_from_aside(r) for r in rows], total


def last_hour(session: Session, log: EventLog, *, now: datetime, source: str = "") -> dict[str, int]:
    """How many events were received and how many messages set aside in the hour before `now`."""
    Filters(source=source).check(1, 0)
    intake.take_into(session)
    since = naive_utc(now) - timedelta(hours=1)
    sources = SOURCES[source]
    inbox = [InboxEvent.received_at >= since] + ([InboxEvent.source.in_(sources)] if sources else [])
    aside = [SetAsideMessage.received_at >= since] + ([SetAsideMessage.source.in_(sources)] if sources else [])
    waiting = session.scalar(sa.select(sa.func.count()).select_from(InboxEvent).where(*inbox)) or 0
    with log.reader() as r:
        events = _log_filter(r.events, Filters(source=source), None)
        logged = int(events.filter(events.received_at >= since).count().execute())
    refused = session.scalar(sa.select(sa.func.count()).select_from(SetAsideMessage).where(*aside)) or 0
    return {"received": waiting + logged, "set_aside": refused}


# -- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """Who the user filter means: the ids events may carry (user and anonymous ids) and customer ids."""

    ids: list[str]
    customers: list[str]


def _known(session: Session, text: str) -> _Known | None:
    if not (text := text.strip()):
        return None
    found = customers.lookup(session, text)
    if found is None:
        return _Known([text], [text])
    ids = [i.value for i in customers.identities(session, found.id)][:MAX_KNOWN]
    return _Known(sorted({text, *ids}), sorted({text, found.id}))


def _inbox_where(filters: Filters, known: _Known | None) -> list:
    where = []
    if sources := SOURCES[filters.source]:
        where.append(InboxEvent.source.in_(sources))
    if filters.type:
        where.append(InboxEvent.type == filters.type)
    if text := filters.event.strip():
        where.append(sa.func.lower(InboxEvent.event).contains(text.lower(), autoescape=True))
    if known:
        where.append(
            sa.or_(
                InboxEvent.user_id.in_(known.ids),
                InboxEvent.anonymous_id.in_(known.ids),
                InboxEvent.customer_id.in_(known.customers),
            )
        )
    return where


def _log_filter(events, filters: Filters, known: _Known | None):
    if sources := SOURCES[filters.source]:
        events = events.filter(events.source.isin(list(sources)))
    if filters.type:
        events = events.filter(events.type == filters.type)
    if text := filters.event.strip():
        events = events.filter(events.event.lower().contains(text.lower()))
    if known:
        events = events.filter(
            events.user_id.isin(known.ids)
            | events.anonymous_id.isin(known.ids)
            | events.customer_id.isin(known.customers)
        )
    return events


def _aside_where(filters: Filters, known: _Known | None) -> list:
    """The payload is the message as sent, compact JSON: a type is `"type":"track"` in it, an id a JSON string."""
    payload = SetAsideMessage.payload
    where = []
    if sources := SOURCES[filters.source]:
        where.append(SetAsideMessage.source.in_(sources))
    if filters.type:
        where.append(payload.contains(f'"type":"{filters.type}"', autoescape=True))
    if text := filters.event.strip():
        where.append(sa.func.lower(payload).contains(text.lower(), autoescape=True))
    if known:
        where.append(sa.or_(*(payload.contains(_json(v), autoescape=True) for v in known.ids)))
    return where


# -- rows ------------------------------------------------------------------------------------------


def _from_inbox(row: InboxEvent) -> dict[str, Any]:
    event = {name: getattr(row, name) for name in SHOWN}
    event.update(properties=row.properties, context=row.context)
    return _shown(event, "processed" if row.processed_at else "pending")


def _from_log(row: dict[str, Any]) -> dict[str, Any]:
    for name in ("timestamp", "received_at"):
        row[name] = pd.Timestamp(row[name]).to_pydatetime()
    return _shown(row, "flushed")


def _shown(event: dict[str, Any], status: str) -> dict[str, Any]:
    """An event's columns, its key, its status and the whole of it as indented JSON (escaped by the page)."""
    whole = {
        **{name: event[name] for name in SHOWN},
        "properties": _parsed(event["properties"]),
        "context": _parsed(event["context"]),
    }
    return {**whole, "key": KEYS.get(event["source"], event["source"]), "status": status, "json": _pretty(whole)}


def _from_aside(row: SetAsideMessage) -> dict[str, Any]:
    sent = _parsed(row.payload)
    sent = sent if isinstance(sent, dict) else {}
    return {
        "received_at": row.received_at,
        "source": row.source,
        "key": KEYS.get(row.source, row.source),
        "index": row.position,
        "message_id": row.message_id,
        "errors": row.errors,
        "type": _text(sent.get("type")),
        "event": _text(sent.get("event")),
        "user_id": _text(sent.get("userId")),
        "anonymous_id": _text(sent.get("anonymousId")),
        "json": _pretty(sent) if sent else row.payload,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _parsed(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_TEXT]


def _json(value: str) -> str:
    return orjson.dumps(value).decode()


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
