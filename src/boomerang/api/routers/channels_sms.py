"""SMS delivery receipts: Twilio's status callback and a generic gateway's signed JSON.

Each receipt finds its message by the provider's id and records "delivered", or "bounced" for a
message the network gave up on. A receipt for an unknown message, or for a state that says
nothing yet (queued, sent), is acknowledged and ignored, so that providers do not retry it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Unauthorized, json_object
from boomerang.channels import config as settings
from boomerang.channels.http_results import redact
from boomerang.channels.sms import receipt_key, twilio_signature
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.messaging import tracking

router = APIRouter(tags=["hooks"])

OUTCOMES = {"delivered": "delivered", "undelivered": "bounced", "failed": "bounced"}


def _record(ws, provider_id: str | None, status: str | None, detail: str) -> dict:
    kind = OUTCOMES.get(status or "")
    if kind is None or not provider_id:
        return {"success": True, "recorded": False}
    with ws.uow.session() as session:
        recorded = tracking.record_receipts(
            session, "sms", [(provider_id, kind, ws.now(), detail if kind == "bounced" else None)]
        )
    return {"success": True, "recorded": bool(recorded)}


def _twilio(request: Request, params: list[tuple[str, str]]) -> dict:
    ws = request.app.state.ws
    with ws.uow.session() as session:
        provider, config, _ = settings.load(session, "sms", secret=ws.secret)
    if provider != "twilio":
        raise NotFound("the sms channel does not use Twilio", field="sms")
    token = config.auth_token.get_secret_value()
    # Twilio signs the URL it was given; behind a proxy that is the configured one, not the one we see
    urls = {str(request.url), *([config.status_callback_url] if config.status_callback_url else [])}
    signature = request.headers.get("x-twilio-signature", "").encode()  # bytes: compare_digest refuses non-ASCII str
    if not any(hmac.compare_digest(twilio_signature(token, url, params).encode(), signature) for url in urls):
        raise Unauthorized("missing or not made with the account's auth token", field="X-Twilio-Signature")
    form = dict(params)
    status = form.get("MessageStatus")
    code = form.get("ErrorCode")
    return _record(ws, form.get("MessageSid"), status, f"Twilio {status}" + (f" (error {code})" if code else ""))


@router.post("/hooks/sms/twilio")
async def twilio_status(request: Request) -> dict:
    """Twilio's status callback (MessageSid, MessageStatus), signed with X-Twilio-Signature."""
    form = await request.form()
    params = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    return await run_in_threadpool(_twilio, request, params)


def _payload(body: bytes) -> dict[str, Any]:
    payload = json_object(body)
    if not isinstance(payload.get("id"), str) or not payload["id"]:
        raise ValidationFailed([{"field": "id", "reason": "the gateway's message id is required (a string)"}])
    if payload.get("status") not in OUTCOMES:
        raise ValidationFailed([{"field": "status", "reason": f"must be one of {', '.join(OUTCOMES)}"}])
    return payload


@router.post("/hooks/sms/generic")
async def generic_receipt(request: Request) -> dict:
    """A gateway's receipt {"id", "status", "reason"}, signed `X-Boomerang-Signature: sha256=<hex HMAC of the body>`."""
    ws, body = request.app.state.ws, await request.body()
    expected = b"sha256=" + hmac.new(receipt_key(ws.secret), body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, request.headers.get("x-boomerang-signature", "").encode()):
        raise Unauthorized("missing or not made with the workspace's SMS receipt key", field="X-Boomerang-Signature")
    payload = _payload(body)
    reason = redact(str(payload.get("reason") or payload["status"]), 500)  # gateways like to quote the number
    return await run_in_threadpool(_record, ws, payload["id"], payload["status"], reason)
