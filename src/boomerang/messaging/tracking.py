"""What happens to a message after it leaves: delivered, opened, clicked, bounced, complained,
unsubscribed. `record` keeps it in three places in the caller's transaction: a `message_events`
row, the message's status (it only moves forward), and, the first time of each kind, a
"Message <Kind>" event in the inbox on its way to the log, where segments and journeys see it.

Signed links carry the message id: `link(ws, message_id, url)` for clicks, `pixel_url` for opens,
`unsubscribe_url` for List-Unsubscribe and `preferences_url` for the preference centre.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.customers import profiles
from boomerang.customers.models import Customer
from boomerang.events.models import inbox
from boomerang.messaging.models import Message, MessageEvent

if TYPE_CHECKING:
    from boomerang.bootstrap import Workspace

KINDS = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
# a message's status only moves right: an open after a click leaves it clicked
PROGRESS = ("queued", "sending", "sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
EVENT_NAMES = {kind: f"Message {kind.capitalize()}" for kind in KINDS}
CLICK, OPEN, UNSUBSCRIBE, PREFERENCES = "click", "open", "unsubscribe", "preferences"


def record(session: Session, message: Message, kind: str, *, at: datetime, detail: str | None = None) -> bool:
    """Keep that `kind` happened to `message`; False when it adds nothing new (a second open is still kept
    as a row but changes no status and writes no event). Unsubscribes and complaints withdraw consent."""
    if kind not in KINDS:
        raise ValidationFailed([{"field": "kind", "reason": f"unknown delivery event (one of {', '.join(KINDS)})"}])
    first = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(MessageEvent)
            .where(
                MessageEvent.message_id == message.id,
                MessageEvent.kind == kind,
                *([MessageEvent.detail == detail] if kind == "clicked" else []),
            )
        )
        == 0
    )
    session.add(MessageEvent(message_id=message.id, kind=kind, detail=detail, at=at))
    if message.status in PROGRESS and PROGRESS.index(kind) > PROGRESS.index(message.status):
        message.status = kind
    if kind in ("unsubscribed", "complained") and message.channel in CHANNELS:
        customer = session.get(Customer, message.customer_id)
        if customer is not None:
            profiles.set_consent(session, customer, message.channel, False, source=f"{kind}:{message.channel}", at=at)
    if first:
        session.execute(sa.insert(inbox), [_event(message, kind, at, detail)])
    session.flush()
    return first


def _event(message: Message, kind: str, at: datetime, detail: str | None) -> dict:
    suffix = f":{hashlib.sha256(detail.encode()).hexdigest()[:16]}" if kind == "clicked" and detail else ""
    props = {
        "message_key": message.key,
        "message_id": message.id,
        "channel": message.channel,
        "template": message.template,
        "source": message.source,
        "instance_id": message.instance_id,
    }
    if kind == "clicked" and detail:
        props["url"] = detail
    elif detail:
        props["reason"] = detail[:500]
    return {
        "message_id": f"message:{message.id}:{kind}{suffix}",
        "type": "track",
        "event": EVENT_NAMES[kind],
        "customer_id": message.customer_id,
        "anonymous_id": None,
        "user_id": None,
        "timestamp": at,
        "received_at": at,
        "source": "messaging",
        "properties": orjson.dumps(props).decode(),
        "context": "{}",
        "processed_at": at,
    }


# -- signed links ----------------------------------------------------------------------------------


def _base(ws: Workspace) -> str:
    return ws.settings.public_url.rstrip("/")


def link(ws: Workspace, message_id: int, url: str) -> str:
    """A tracked link to `url` (http or https only): the click is recorded, then the customer is sent on."""
    if urlsplit(url).scheme not in ("http", "https"):
        return url  # mailto:, tel: and anchors are not tracked
    return f"{_base(ws)}/t/c/{ws.signer.sign(CLICK, [message_id, url])}"


def pixel_url(ws: Workspace, message_id: int) -> str:
    return f"{_base(ws)}/t/o/{ws.signer.sign(OPEN, [message_id])}.gif"


def unsubscribe_url(ws: Workspace, message_id: int) -> str:
    """RFC 8058 one-click: a POST to it unsubscribes at once; a GET shows a page asking to confirm."""
    return f"{_base(ws)}/u/{ws.signer.sign(UNSUBSCRIBE, [message_id])}"


def preferences_url(ws: Workspace, customer_id: str) -> str:
    return f"{_base(ws)}/preferences/{ws.signer.sign(PREFERENCES, [customer_id])}"
