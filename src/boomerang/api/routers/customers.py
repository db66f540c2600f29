"""Customers: profiles with identities and consents, upsert through identify, explicit merge; privacy requests
(everything held about a customer, and erasure)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from boomerang.api.deps import ActorDep, Offset, SessionDep, WorkspaceDep
from boomerang.customers import privacy, profiles, service
from boomerang.customers.schemas import (
    ConsentHistory,
    ConsentIn,
    ConsentSet,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    Erasure,
    MergeIn,
)
from boomerang.events.ingest import record

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("", response_model=CustomerPage)
def list_customers(
    session: SessionDep, q: str | None = None, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0
) -> dict:
    """Live profiles, newest first; `q` matches an external id, email or phone exactly."""
    rows, _ = service.find(session, q or "", limit=limit, offset=offset)
    return {"items": [service.profile(session, c) for c in rows], "limit": limit, "offset": offset}


@router.get("/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: str, session: SessionDep) -> dict:
    return service.profile(session, service.live(session, customer_id))


@router.post("", response_model=CustomerOut)
def upsert_customer(body: CustomerIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Create or update a profile by external id; recorded as an identify event."""
    traits = body.model_dump(exclude={"external_id", "attributes", "consents"}, exclude_none=True)
    traits = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in traits.items()}
    traits.update(body.attributes)
    if body.consents:
        traits["consents"] = body.consents
    events = record(
        session,
        [{"type": "identify", "userId": body.external_id, "traits": traits}],
        now=ws.now(),
        limits=ws.settings.ingest,
        source="api",
    )
    return service.profile(session, service.live(session, events[0].customer_id))


@router.post("/{customer_id}/consents", response_model=ConsentSet)
def set_consent(customer_id: str, body: ConsentIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    customer = service.live(session, customer_id)
    changed = profiles.set_consent(session, customer, body.channel, body.granted, source=body.source, at=ws.now())
    return {"changed": changed, **service.profile(session, customer)}


@router.get("/{customer_id}/consents/history", response_model=ConsentHistory)
def consent_history(customer_id: str, session: SessionDep) -> dict:
    rows = service.consent_history(session, service.live(session, customer_id).id)
    return {"items": [{"channel": r.channel, "granted": r.granted, "source": r.source, "at": r.at} for r in rows]}


@router.post("/{customer_id}/merge", response_model=CustomerOut)
def merge(customer_id: str, body: MergeIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Fold another profile into this one: its identities, consents, orders and events move here."""
    return service.profile(session, service.merge(session, customer_id, body.from_customer_id, now=ws.now()))


@router.get("/{customer_id}/export")
def export_customer(customer_id: str, ws: WorkspaceDep, session: SessionDep, actor: ActorDep) -> dict:
    """Everything held about the customer, in both stores, as one document (recorded in the audit log)."""
    return privacy.export(session, ws.log, customer_id, actor=actor, now=ws.now())


@router.delete("/{customer_id}", response_model=Erasure)
def erase_customer(customer_id: str, ws: WorkspaceDep, session: SessionDep, actor: ActorDep) -> dict:
    """Erase the customer: their personal data goes from both stores, what analytics counts stays under a
    pseudonym, their email and phone are suppressed; answers what was done, counted."""
    return privacy.erase(session, ws.forgetting, customer_id, actor=actor, now=ws.now())
