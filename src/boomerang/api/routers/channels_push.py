"""Web push for browsers: the VAPID public key, subscribing and unsubscribing, and the service worker.

Subscribing takes the write key like the tracking API (HTTP Basic user name or `writeKey`),
resolves the visitor as identify does, keeps the browser's subscription and records the
customer's consent to web push: asking the browser's permission is how that consent is given.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Unauthorized, basic_user
from boomerang.channels import service as channels
from boomerang.channels.schemas import Subscribe, Unsubscribe
from boomerang.core.errors import ValidationFailed
from boomerang.customers import profiles
from boomerang.customers.identity import Resolver

router = APIRouter(tags=["push"])
SERVICE_WORKER = resources.files("boomerang.channels").joinpath("static", "push-sw.js")


def _authorize(request: Request, body_key: str | None) -> None:
    key = basic_user(request) or body_key
    if request.app.state.keys.kind_of(key) is None:
        raise Unauthorized("a valid write key is required as the HTTP Basic user name", field="authorization")


def _subscribe(request: Request, body: Subscribe) -> dict:
    _authorize(request, body.writeKey)
    if not body.userId and not body.anonymousId:
        raise ValidationFailed([{"field": "userId", "reason": "userId or anonymousId is required"}])
    ws = request.app.state.ws
    now, keys = ws.now(), body.subscription.keys
    with ws.uow.session() as session:
        resolver = Resolver(session, now=now)
        customer = resolver.customer(resolver.resolve(body.userId, body.anonymousId))
        channels.subscribe(
            session,
            customer.id,
            endpoint=body.subscription.endpoint,
            p256dh=keys.p256dh,
            auth=keys.auth,
            secret=ws.secret,
            now=now,
        )
        profiles.set_consent(session, customer, "webpush", True, source="webpush:subscribe", at=now)
    return {"success": True}


def _unsubscribe(request: Request, body: Unsubscribe) -> dict:
    _authorize(request, body.writeKey)
    with request.app.state.ws.uow.session() as session:
        return {"success": True, "deleted": channels.unsubscribe(session, body.endpoint)}


def _public_key(request: Request) -> dict:
    ws = request.app.state.ws
    with ws.uow.session() as session:
        return {"publicKey": channels.vapid_public_key(session, secret=ws.secret)}


@router.get("/v1/push/key")
async def push_key(request: Request) -> dict:
    """The VAPID public key browsers subscribe with (applicationServerKey)."""
    return await run_in_threadpool(_public_key, request)


@router.post("/v1/push/subscriptions")
async def subscribe(request: Request, body: Subscribe) -> dict:
    """Keep a browser's push subscription for the visitor and record their consent to web push."""
    return await run_in_threadpool(_subscribe, request, body)


@router.delete("/v1/push/subscriptions")
async def unsubscribe(request: Request, body: Unsubscribe) -> dict:
    """Forget a browser's push subscription (the browser unsubscribed)."""
    return await run_in_threadpool(_unsubscribe, request, body)


@router.get("/push-sw.js", include_in_schema=False)
def service_worker() -> Response:
    """The service worker that shows Boomerang's push notifications; allowed to control the whole site."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="application/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )
