"""Promo codes: pools (generated, uploaded) and their stock, personal codes, and codes at checkout (validate, hold,
confirm, cancel; idempotent by order id)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.core.errors import ValidationFailed
from boomerang.loyalty import checkout, codes, codes_redeem
from boomerang.loyalty.codes_schemas import CodeHoldIn, GenerateIn, PersonalIn, PoolIn, ValidateIn

router = APIRouter(prefix="/loyalty", tags=["loyalty codes"])
MAX_UPLOAD = 64 * 1024 * 1024


@router.get("/pools")
def list_pools(ws: WorkspaceDep, session: SessionDep) -> list[dict]:
    """Every pool with its counts (codes, unused, uses, personal) and `low_stock`."""
    return codes.list_pools(session, now=ws.now())


@router.post("/pools")
def create_pool(body: PoolIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """A new pool of codes and the discount they give; 409 if the name is taken."""
    return codes.create_pool(session, body.model_dump(), now=ws.now())


@router.get("/pools/{name}")
def show_pool(name: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The pool, its counts and whether its stock is low."""
    return codes.show_pool(session, name, now=ws.now())


@router.post("/pools/{name}/generate")
def generate(name: str, body: GenerateIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """`count` new unguessable codes in a generated pool."""
    return codes.generate(session, name, body.count, length=body.length, now=ws.now())


@router.post(
    "/pools/{name}/upload",
    openapi_extra={
        "requestBody": {
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "string"}}},
            }
        }
    },
)
async def upload(name: str, request: Request, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Codes from another system: a text or CSV body (a code a line), or a JSON list of codes."""
    raw = await request.body()
    if len(raw) > MAX_UPLOAD:
        raise ValidationFailed([{"field": "body", "reason": "is larger than 64 MiB"}])
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            given = orjson.loads(raw)
        except orjson.JSONDecodeError:
            given = None
        if not isinstance(given, list):
            raise ValidationFailed([{"field": "body", "reason": "must be a JSON list of codes"}])
    else:
        given = codes.parse_upload(raw.decode("utf-8", errors="replace"))
    return codes.upload(session, name, given, now=ws.now())


@router.post("/codes/personal")
def personal(body: PersonalIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """A code bound to one customer: new in a generated pool, the next unused one of an uploaded pool."""
    cid = checkout.customer(session, body.customer_id)
    return codes.personal(session, body.pool, cid, valid_days=body.valid_days, now=ws.now())


@router.post("/codes/validate")
def validate(body: ValidateIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The discount the code gives this order, or 404/409/400 naming why not."""
    return codes_redeem.validate(session, body.code, body.customer_id, body.total, now=ws.now())


@router.post("/codes/holds")
def hold(body: CodeHoldIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Take one use of the code for the order (idempotent by order id) until confirmed, cancelled or expired."""
    return codes_redeem.hold(
        session, body.code, body.customer_id, body.order_id, body.total, ttl_minutes=body.ttl_minutes, now=ws.now()
    )


@router.post("/codes/holds/{order_id}/confirm")
def confirm(order_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The order is paid: its held codes are used. 409 after expiry or cancellation."""
    return codes_redeem.confirm(session, order_id, now=ws.now())


@router.post("/codes/holds/{order_id}/cancel")
def cancel(order_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The checkout was abandoned or the order cancelled: the codes' uses go back."""
    return codes_redeem.cancel(session, order_id, now=ws.now())
