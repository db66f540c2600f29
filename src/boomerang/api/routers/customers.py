"""Customers: profiles with identities and consents, upsert through identify, explicit merge."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.core.clock import naive_utc
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers import profiles
from boomerang.customers.identity import Resolver, canonical
from boomerang.customers.models import Consent, ConsentChange, Customer, Identity
from boomerang.events.ingest import record

router = APIRouter(prefix="/customers", tags=["customers"])


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    first_name: str | None = None
    last_name: str | None = None
    birthday: date | None = None
    city: str | None = None
    country: str | None = None
    timezone: str | None = None
    locale: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    consents: dict[str, bool] = Field(default_factory=dict)


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str
    granted: bool
    source: str = Field(default="api", max_length=64)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_customer_id: str = Field(alias="from")


def _profile(session, customer: Customer) -> dict:
    identities = session.execute(
        sa.select(Identity.kind, Identity.value).where(Identity.customer_id == customer.id)
    ).all()
    consents = session.scalars(sa.select(Consent).where(Consent.customer_id == customer.id)).all()
    data = {c.key: getattr(customer, c.key) for c in Customer.__table__.columns}
    data["identified"] = customer.identified
    data["identities"] = [{"kind": k, "value": v} for k, v in identities]
    data["consents"] = {c.channel: {"granted": c.granted, "source": c.source, "at": c.updated_at} for c in consents}
    return data


def _get(session, customer_id: str) -> Customer:
    customer = canonical(session, customer_id)
    if customer is None:
        raise NotFound(f"unknown customer '{customer_id}'", field="customer_id")
    return customer


@router.get("")
def list_customers(
    session: SessionDep, q: str | None = None, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)
) -> dict:
    """Live profiles, newest first; `q` matches an external id, email or phone exactly."""
    query = sa.select(Customer).where(Customer.merged_into_id.is_(None))
    if q:
        query = query.where(sa.or_(Customer.external_id == q, Customer.email == q.lower(), Customer.phone == q))
    rows = session.scalars(query.order_by(Customer.created_at.desc(), Customer.id).limit(limit).offset(offset)).all()
    return {"items": [_profile(session, c) for c in rows], "limit": limit, "offset": offset}


@router.get("/{customer_id}")
def get_customer(customer_id: str, session: SessionDep) -> dict:
    return _profile(session, _get(session, customer_id))


@router.post("")
def upsert_customer(body: CustomerIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Create or update a profile by external id; recorded as an identify event."""
    traits = body.model_dump(exclude={"external_id", "attributes", "consents"}, exclude_none=True)
    traits = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in traits.items()}
    traits.update(body.attributes)
    if body.consents:
        traits["consents"] = body.consents
    now = naive_utc(ws.clock.now())
    events = record(
        session,
        [{"type": "identify", "userId": body.external_id, "traits": traits}],
        now=now,
        limits=ws.settings.ingest,
        source="api",
    )
    return _profile(session, _get(session, events[0].customer_id))


@router.post("/{customer_id}/consents")
def set_consent(customer_id: str, body: ConsentIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    customer = _get(session, customer_id)
    changed = profiles.set_consent(
        session, customer, body.channel, body.granted, source=body.source, at=naive_utc(ws.clock.now())
    )
    return {"changed": changed, **_profile(session, customer)}


@router.get("/{customer_id}/consents/history")
def consent_history(customer_id: str, session: SessionDep) -> dict:
    customer = _get(session, customer_id)
    rows = session.scalars(
        sa.select(ConsentChange).where(ConsentChange.customer_id == customer.id).order_by(ConsentChange.id)
    ).all()
    return {"items": [{"channel": r.channel, "granted": r.granted, "source": r.source, "at": r.at} for r in rows]}


@router.post("/{customer_id}/merge")
def merge(customer_id: str, body: MergeIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Fold another profile into this one: its identities, consents, orders and events move here."""
    target = _get(session, customer_id)
    source = _get(session, body.from_customer_id)
    if source.id == target.id:
        raise ValidationFailed([{"field": "from", "reason": "a profile cannot be merged into itself"}])
    Resolver(session, now=naive_utc(ws.clock.now())).merge(source, target, reason="api")
    return _profile(session, target)
