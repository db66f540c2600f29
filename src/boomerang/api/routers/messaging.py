"""Messaging as JSON: templates (with preview and the ready-made library), channel settings, the delivery
log, a test send, customers' preferences and in-app inbox tokens, and campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.api.routers.links import inbox_token
from boomerang.channels import config as channel_config
from boomerang.core.clock import naive_utc
from boomerang.messaging import campaigns, delivery, preferences, service

router = APIRouter(tags=["messaging"])


class ChannelSettings(BaseModel):
    provider: str
    config: dict[str, Any] = {}
    enabled: bool = True


class TestSend(BaseModel):
    channel: str
    customer_id: str
    template: str


class Preview(BaseModel):
    template: str | dict[str, Any]
    customer_id: str | None = None
    channels: list[str] | None = None


class PreferenceChange(BaseModel):
    channels: dict[str, bool] | None = None
    topics: dict[str, bool] | None = None
    frequency: str | None = None


class Schedule(BaseModel):
    at: datetime | None = None


# -- templates ------------------------------------------------------------------------------------


@router.get("/templates")
def list_templates(session: SessionDep) -> dict:
    return {"items": service.listing(session)}


@router.post("/templates", status_code=201)
def save_template(ws: WorkspaceDep, session: SessionDep, definition: dict[str, Any] = Body(...)) -> dict:
    return service.as_dict(service.save(session, definition, now=naive_utc(ws.clock.now())))


@router.post("/templates/library")
def install_templates(ws: WorkspaceDep, session: SessionDep, replace: bool = False) -> dict:
    return {"items": service.install(session, now=naive_utc(ws.clock.now()), replace=replace)}


@router.post("/templates/preview")
async def preview(ws: WorkspaceDep, body: Preview) -> dict:
    return await run_in_threadpool(
        delivery.preview, ws, body.template, customer_id=body.customer_id, channels=body.channels
    )


@router.get("/templates/{name}")
def get_template(name: str, session: SessionDep) -> dict:
    return service.as_dict(service.get(session, name))


@router.delete("/templates/{name}")
def delete_template(name: str, session: SessionDep) -> dict:
    service.delete(session, name)
    return {"deleted": name}


# -- channels and sending -------------------------------------------------------------------------


@router.get("/channels")
def list_channels(ws: WorkspaceDep, session: SessionDep) -> dict:
    return {"items": [channel_config.describe(ws, session, c) for c in channel_config.PROVIDERS]}


@router.get("/channels/{channel}")
def get_channel(channel: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return channel_config.describe(ws, session, channel)


@router.put("/channels/{channel}")
def set_channel(channel: str, body: ChannelSettings, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Choose a channel's provider and settings; secrets are stored encrypted and answered masked."""
    channel_config.save(
        ws, session, channel, body.provider, body.config, enabled=body.enabled, now=naive_utc(ws.clock.now())
    )
    return channel_config.describe(ws, session, channel)


@router.post("/send/test")
async def send_test(ws: WorkspaceDep, body: TestSend) -> dict:
    return await run_in_threadpool(
        delivery.send_test, ws, channel=body.channel, customer_id=body.customer_id, template=body.template
    )


@router.get("/messages")
def messages(
    ws: WorkspaceDep,
    status: str | None = None,
    channel: str | None = None,
    source: str | None = None,
    customer_id: str | None = None,
    template: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100),
    offset: int = Query(0, ge=0),
) -> dict:
    """The delivery log, newest first."""
    return delivery.log(
        ws,
        status=status,
        channel=channel,
        source=source,
        customer_id=customer_id,
        template=template,
        since=naive_utc(since) if since else None,
        limit=limit,
        offset=offset,
    )


# -- customers' side ------------------------------------------------------------------------------


@router.get("/customers/{customer_id}/preferences")
def get_preferences(customer_id: str, session: SessionDep) -> dict:
    return preferences.get(session, customer_id)


@router.put("/customers/{customer_id}/preferences")
def set_preferences(customer_id: str, body: PreferenceChange, ws: WorkspaceDep, session: SessionDep) -> dict:
    return preferences.update(
        session,
        customer_id,
        now=naive_utc(ws.clock.now()),
        source="api",
        channels=body.channels,
        topics=body.topics,
        frequency=body.frequency,
    )


@router.get("/customers/{customer_id}/inbox-token")
def get_inbox_token(customer_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The token a customer's app uses to read their in-app inbox at /v1/inbox/{token}."""
    preferences.get(session, customer_id)  # 404 for an unknown customer
    return {
        "customer_id": customer_id,
        "token": inbox_token(ws, customer_id),
        "url": f"{ws.settings.public_url.rstrip('/')}/v1/inbox/{inbox_token(ws, customer_id)}",
    }


# -- campaigns ------------------------------------------------------------------------------------


@router.get("/campaigns")
def list_campaigns(ws: WorkspaceDep) -> dict:
    return {"items": campaigns.listing(ws)}


@router.post("/campaigns", status_code=201)
def save_campaign(ws: WorkspaceDep, definition: dict[str, Any] = Body(...)) -> dict:
    return campaigns.save(ws, definition)


@router.get("/campaigns/{name}")
def get_campaign(name: str, ws: WorkspaceDep) -> dict:
    return campaigns.get(ws, name)


@router.post("/campaigns/{name}/schedule")
def schedule_campaign(name: str, ws: WorkspaceDep, body: Schedule | None = None) -> dict:
    return campaigns.schedule(ws, name, at=body.at if body else None)


@router.post("/campaigns/{name}/cancel")
def cancel_campaign(name: str, ws: WorkspaceDep) -> dict:
    return campaigns.cancel(ws, name)


@router.get("/campaigns/{name}/stats")
def campaign_stats(name: str, ws: WorkspaceDep) -> dict:
    return campaigns.stats(ws, name)
