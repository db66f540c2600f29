"""Bounces, complaints and deliveries reported by a mail provider or an MTA's bounce processor.

POST /hooks/email/events with `{"events": [{"type": "bounce", "message_id": "<...>", "reason": "...",
"at": "2026-03-10T12:00:00Z"}]}`, signed: `X-Boomerang-Signature: sha256=<hex HMAC-SHA256 of the raw
body>` under a key derived from the workspace secret (`boomerang.channels.smtp.hook_signature`).
Each event is kept against the email whose Message-ID it names (`Message.provider_id`); events
for Message-IDs this workspace never sent are counted and ignored.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Unauthorized
from boomerang.bootstrap import Workspace
from boomerang.channels.smtp import hook_signature
from boomerang.core.clock import naive_utc
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.messaging import tracking

router = APIRouter(tags=["hooks"])

MAX_BODY = 1 << 20  # read before the signature is checked, so bounded
SIGNATURE = "X-Boomerang-Signature"
KINDS = {"bounce": "bounced", "complaint": "complained", "delivered": "delivered"}


class TooLarge(BoomerangError):
    status_code = 413


class HookEvent(BaseModel):
    type: Literal["bounce", "complaint", "delivered"]
    message_id: str = Field(min_length=1, max_length=998)
    reason: str | None = None
    at: datetime | None = None


class HookBody(BaseModel):
    events: list[HookEvent] = Field(max_length=10_000)


async def _read(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"the body is larger than {MAX_BODY} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> HookBody:
    try:
        return HookBody.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed([{"field": "body", "reason": f"not valid JSON: {exc}"}]) from None
    except ValidationError as exc:
        raise ValidationFailed(
            [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]} for e in exc.errors()]
        ) from None


def _normalise(message_id: str) -> str:
    """The Message-ID as the channel stores it (`<id@domain>`), however the sender wrapped it."""
    return f"<{message_id.strip().strip('<>').strip()}>"


def _record(ws: Workspace, events: list[HookEvent]) -> dict:
    now = ws.now()
    receipts = [
        (
            _normalise(e.message_id),
            KINDS[e.type],
            naive_utc(e.at) if e.at else now,
            e.reason[:2000] if e.reason else None,
        )
        for e in events
    ]
    with ws.uow.session() as session:
        recorded = tracking.record_receipts(session, "email", receipts)
    return {"success": True, "recorded": recorded, "unknown": len(events) - recorded}


@router.post("/hooks/email/events")
async def email_events(request: Request) -> dict:
    """Keep the bounces, complaints and deliveries a mail provider reports."""
    ws: Workspace = request.app.state.ws
    body = await _read(request)
    given = request.headers.get(SIGNATURE)
    if not given:
        raise Unauthorized("missing: send sha256=<hex HMAC-SHA256 of the body>", field=SIGNATURE)
    if not hmac.compare_digest(given.strip().encode(), hook_signature(ws.secret, body).encode()):
        raise Unauthorized("does not match the body", field=SIGNATURE)
    return await run_in_threadpool(_record, ws, _parse(body).events)
