"""Recommendations: a block's products for the shop's pages (`/v1`, the write key: a visitor by their anonymous id,
or by their user id when the shop's server signed it), for the shop's server (`/api`, the secret key: any
customer id or email), the blocks themselves, training, and how each block performs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from boomerang.api.deps import ActorDep, ReadingDep, SessionDep, Unauthorized, WorkspaceDep, basic_user, json_object
from boomerang.core.errors import ValidationFailed
from boomerang.orchestration import reco_performance, reco_training
from boomerang.recommendations import store
from boomerang.recommendations.service import Visitor

public = APIRouter(tags=["recommendations"])
router = APIRouter(prefix="/recommendations", tags=["recommendations"])
Skus = Annotated[list[str] | None, Query(max_length=50, description="skus; repeat the parameter or comma-separate")]
Id = Annotated[str | None, Query(max_length=255)]


class Item(BaseModel):
    sku: str
    name: str | None
    category: str | None
    brand: str | None
    price: float | None
    currency: str | None
    url: str | None
    image_url: str | None
    position: int
    source: str  # the algorithm that put it there
    because: str | None  # the sku of the product that led to it: the context's, or one the customer bought
    reason: str


class Recommended(BaseModel):
    block: str
    title: str
    variant: str  # "block", or "control": plain best sellers, measured against the block
    model_trained_at: datetime | None
    items: list[Item]


class RecommendedFor(Recommended):
    customer_id: str | None  # the live customer they were for; null: not known, served the anonymous chain


def _skus(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    if any(len(s) > 128 for s in out):
        raise ValidationFailed([{"field": "cart", "reason": "a sku is at most 128 characters"}])
    return out


@public.get("/v1/recommendations/{block}", response_model=Recommended, openapi_extra={"security": []})
def for_visitor(
    block: str,
    request: Request,
    session: ReadingDep,
    anonymous_id: Id = None,
    user_id: Id = None,
    user_hash: Annotated[str | None, Query(max_length=128, description="the shop server's HMAC of user_id")] = None,
    product: Id = None,
    category: Annotated[str | None, Query(max_length=1024)] = None,
    cart: Skus = None,
    recent: Skus = None,
    size: Annotated[int | None, Query(ge=1, le=50)] = None,
    write_key: Annotated[str | None, Query(alias="writeKey", max_length=255)] = None,
) -> dict:
    """A block for a shop page, with the write key (HTTP Basic user name, or `writeKey`). A user id counts only
    with its `user_hash` (signed by the shop's server): otherwise the browser's anonymous id says who it is."""
    ws = request.app.state.ws
    if request.app.state.keys.kind_of(basic_user(request) or write_key) not in ("write", "secret"):
        raise Unauthorized("a valid write key is required as the HTTP Basic user name", field="authorization")
    signed = bool(user_id and user_hash and request.app.state.identities.verify(user_id, user_hash))
    if user_id and user_hash and not signed:
        raise Unauthorized("user_hash is not the shop's signature of this user_id", field="user_hash")
    visitor = Visitor(user_id=user_id if signed else None, anonymous_id=anonymous_id)
    return ws.recommendations.recommend(
        session,
        block,
        visitor,
        product=product,
        category=category,
        cart=_skus(cart),
        recent=_skus(recent) or (),
        size=size,
    )


@router.get("/blocks")
def blocks(session: SessionDep) -> list[dict]:
    """Every block: the shop's and the ready-made ones."""
    return store.listing(session)


@router.get("/blocks/{name}")
def block(name: str, session: SessionDep) -> dict:
    return store.get(session, name).model_dump(mode="json")


@router.put("/blocks/{name}")
async def save_block(name: str, request: Request, ws: WorkspaceDep, session: SessionDep, actor: ActorDep) -> dict:
    """Create or replace a block (the name is the path's); 400 naming the field of a bad chain or filter."""
    definition = store.parse(json_object(await request.body()), name)
    saved = store.save(session, definition, by=actor, now=ws.now())
    session.commit()
    return saved.model_dump(mode="json")


@router.delete("/blocks/{name}")
def delete_block(name: str, session: SessionDep) -> dict:
    """Forget the shop's version of a block (a ready-made one goes back to its defaults)."""
    deleted = store.delete(session, name)
    session.commit()
    return {"deleted": deleted}


@router.post("/train")
def train(ws: WorkspaceDep) -> dict:
    """Train every algorithm on the event log now (the scheduled round does it every `train_every_hours`)."""
    settings = ws.settings
    result = reco_training.train(
        ws.log, settings.reco_model_path, now=ws.now(), history_days=settings.recommendations.history_days
    )
    ws.recommendations.reload()
    return result


@router.get("/performance")
def performance(
    ws: WorkspaceDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=reco_performance.MAX_DAYS, description="the period: the last N days")] = (
        reco_performance.DEFAULT_DAYS
    ),
) -> dict:
    """How every block performed (the shop's, the ready-made, and any other the widget reported), by variant:
    impressions, clicks, attributed orders and revenue, and the incremental revenue against its control."""
    names = [b["name"] for b in store.listing(session)]
    return reco_performance.compute(ws.log, now=ws.now(), days=days, blocks=names)


@router.get("/{block}", response_model=RecommendedFor)
def for_customer(
    block: str,
    ws: WorkspaceDep,
    session: ReadingDep,
    customer: Annotated[str | None, Query(max_length=255, description="any id or the email of a customer")] = None,
    product: Id = None,
    category: Annotated[str | None, Query(max_length=1024)] = None,
    cart: Skus = None,
    size: Annotated[int | None, Query(ge=1, le=50)] = None,
) -> dict:
    """A block for any customer (an unknown one gets the anonymous chain), with why each product was picked."""
    return ws.recommendations.recommend(
        session, block, Visitor(customer=customer), product=product, category=category, cart=_skus(cart), size=size
    )
