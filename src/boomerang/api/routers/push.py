"""Web push for browsers: the VAPID public key, subscribing and unsubscribing, and the service worker.

Subscribing takes the write key like the tracking API (HTTP Basic user name or `writeKey`),
resolves the visitor as identify does, keeps the browser's subscription and records the
customer's consent to web push: asking the browser's permission is how that consent is given.
"""

from __future__ import annotations

import binascii
from importlib import resources

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Unauthorized, basic_user
from boomerang.channels import config as settings
from boomerang.channels.models import PushSubscription
from boomerang.channels.webpush import PUSH_HOSTS, b64url_decode, endpoint_problem
from boomerang.core.clock import naive_utc
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers import profiles
from boomerang.customers.identity import Resolver

router = APIRouter(tags=["push"])
SERVICE_WORKER = resources.files("boomerang.channels").joinpath("static", "push-sw.js")


class Keys(BaseModel):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class BrowserSubscription(BaseModel):
    """The browser's PushSubscription.toJSON()."""

    endpoint: str = Field(max_length=1000)
    keys: Keys


class Subscribe(BaseModel):
    userId: str | None = Field(default=None, max_length=255)
    anonymousId: str | None = Field(default=None, max_length=255)
    writeKey: str | None = None
    subscription: BrowserSubscription


class Unsubscribe(BaseModel):
    endpoint: str = Field(max_length=1000)
    writeKey: str | None = None


def _authorize(request: Request, body_key: str | None) -> None:
    key = basic_user(request) or body_key
    if request.app.state.keys.kind_of(key) is None:
        raise Unauthorized("a valid write key is required as the HTTP Basic user name", field="authorization")


def _check_keys(keys: Keys) -> None:
    """Browsers' keys, checked now rather than failing at every send: a P-256 point and a 16-byte secret."""
    errors = []
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(keys.p256dh))
    except (ValueError, binascii.Error):
        errors.append({"field": "subscription.keys.p256dh", "reason": "not a base64url P-256 public key"})
    try:
        if len(b64url_decode(keys.auth)) != 16:
            raise ValueError
    except (ValueError, binascii.Error):
        errors.append({"field": "subscription.keys.auth", "reason": "not a base64url 16-byte secret"})
    if errors:
        raise ValidationFailed(errors)


def _subscribe(request: Request, body: Subscribe) -> dict:
    _authorize(request, body.writeKey)
    if not body.userId and not body.anonymousId:
        raise ValidationFailed([{"field": "userId", "reason": "userId or anonymousId is required"}])
    _check_keys(body.subscription.keys)
    ws = request.app.state.ws
    now = naive_utc(ws.clock.now())
    endpoint, keys = body.subscription.endpoint, body.subscription.keys
    with ws.uow.session() as session:
        provider, config, _ = settings.load(ws, session, "webpush")
        if problem := endpoint_problem(endpoint, config.push_hosts if provider == "vapid" else PUSH_HOSTS):
            raise ValidationFailed([{"field": "subscription.endpoint", "reason": problem}])
        resolver = Resolver(session, now=now)
        customer = resolver.customer(resolver.resolve(body.userId, body.anonymousId))
        row = session.get(PushSubscription, endpoint)
        if row is None:
            session.add(
                PushSubscription(
                    endpoint=endpoint, customer_id=customer.id, p256dh=keys.p256dh, auth=keys.auth, created_at=now
                )
            )
        else:  # the same browser again, perhaps signed in as someone else now
            row.customer_id, row.p256dh, row.auth = customer.id, keys.p256dh, keys.auth
        profiles.set_consent(session, customer, "webpush", True, source="webpush:subscribe", at=now)
    return {"success": True}


def _unsubscribe(request: Request, body: Unsubscribe) -> dict:
    _authorize(request, body.writeKey)
    with request.app.state.ws.uow.session() as session:
        deleted = session.execute(
            sa.delete(PushSubscription).where(PushSubscription.endpoint == body.endpoint)
        ).rowcount
    return {"success": True, "deleted": bool(deleted)}


def _public_key(request: Request) -> dict:
    ws = request.app.state.ws
    with ws.uow.session() as session:
        provider, config, enabled = settings.load(ws, session, "webpush")
    if provider != "vapid" or not enabled:
        raise NotFound("web push is not set up with VAPID keys", field="webpush")
    return {"publicKey": config.vapid_public_key}


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
