"""Messaging as JSON: templates (with preview and the ready-made library), the delivery log, a test send,
customers' preferences and in-app inbox tokens, and campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Offset, SessionDep, WorkspaceDep
from boomerang.core.clock import naive_utc
from boomerang.journeys import live_templates
from boomerang.messaging import campaign_results, campaigns, delivery, preferences, service
from boomerang.messaging.schemas import (
    CampaignList,
    CampaignOut,
    CampaignSummary,
    InboxToken,
    Installed,
    PreferenceChange,
    Preferences,
    Preview,
    Schedule,
    SendOutcome,
    TemplateList,
    TemplateOut,
    TestSend,
)

router = APIRouter(tags=["messaging"])


# -- templates ------------------------------------------------------------------------------------


@router.get("/templates", response_model=TemplateList)
def list_templates(session: SessionDep) -> dict:
    return {"items": service.listing(session)}


@router.post("/templates", status_code=201, response_model=TemplateOut)
def save_template(ws: WorkspaceDep, session: SessionDep, definition: dict[str, Any] = Body(...)) -> dict:
    """Create or replace a template; one that live journeys or campaigns send must render for the shop's customers."""
    return service.as_dict(live_templates.save(session, ws.settings.messaging, definition, now=ws.now()))


@router.post("/templates/library", response_model=Installed)
def install_templates(ws: WorkspaceDep, session: SessionDep, replace: bool = False) -> dict:
    return {"items": service.install(session, now=ws.now(), replace=replace)}


@router.post("/templates/preview")
def preview(ws: WorkspaceDep, session: SessionDep, body: Preview) -> dict:
    return delivery.preview(
        session,
        ws.settings.messaging,
        body.template,
        customer_id=body.customer_id,
        channels=body.channels,
        now=ws.now(),
        recommend=ws.recommend_in_messages,
    )


@router.get("/templates/{name}", response_model=TemplateOut)
def get_template(name: str, session: SessionDep) -> dict:
    return service.as_dict(service.get(session, name))


@router.delete("/templates/{name}")
def delete_template(name: str, session: SessionDep) -> dict:
    """Delete a template, unless active journeys or scheduled campaigns send it (409)."""
    live_templates.delete(session, name)
    return {"deleted": name}


# -- sending --------------------------------------------------------------------------------------


@router.post("/send/test", response_model=SendOutcome)
async def send_test(ws: WorkspaceDep, body: TestSend) -> dict:
    return await run_in_threadpool(
        lambda: delivery.send_test(
            ws.dispatcher, channel=body.channel, customer_id=body.customer_id, template=body.template, now=ws.now()
        )
    )


@router.get("/messages")
def messages(
    session: SessionDep,
    status: str | None = None,
    channel: str | None = None,
    source: str | None = None,
    customer_id: str | None = None,
    template: str | None = None,
    since: datetime | None = None,
    limit: int = Query(100),
    offset: Offset = 0,
) -> dict:
    """The delivery log, newest first."""
    return delivery.log(
        session,
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


@router.get("/customers/{customer_id}/preferences", response_model=Preferences)
def get_preferences(customer_id: str, session: SessionDep) -> dict:
    return preferences.get(session, customer_id)


@router.put("/customers/{customer_id}/preferences", response_model=Preferences)
def set_preferences(customer_id: str, body: PreferenceChange, ws: WorkspaceDep, session: SessionDep) -> dict:
    return preferences.update(
        session,
        customer_id,
        now=ws.now(),
        source="api",
        channels=body.channels,
        topics=body.topics,
        frequency=body.frequency,
    )


@router.get("/customers/{customer_id}/inbox-token", response_model=InboxToken)
def get_inbox_token(customer_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The token a customer's app uses to read their in-app inbox at /v1/inbox/{token}."""
    preferences.get(session, customer_id)  # 404 for an unknown customer
    return {"customer_id": customer_id, "token": ws.links.inbox_token(customer_id), "url": ws.links.inbox(customer_id)}


# -- campaigns ------------------------------------------------------------------------------------


@router.get("/campaigns", response_model=CampaignList)
def list_campaigns(session: SessionDep) -> dict:
    return {"items": campaigns.listing(session)}


@router.post("/campaigns", status_code=201, response_model=CampaignSummary)
def save_campaign(ws: WorkspaceDep, session: SessionDep, definition: dict[str, Any] = Body(...)) -> dict:
    return campaigns.save(session, definition, now=ws.now())


@router.get("/campaigns/{name}", response_model=CampaignOut)
def get_campaign(name: str, session: SessionDep) -> dict:
    return campaigns.get(session, name)


@router.post("/campaigns/{name}/schedule", response_model=CampaignSummary)
def schedule_campaign(name: str, ws: WorkspaceDep, session: SessionDep, body: Schedule | None = None) -> dict:
    return campaigns.schedule(session, name, at=body.at if body else None, now=ws.now())


@router.post("/campaigns/{name}/cancel", response_model=CampaignSummary)
def cancel_campaign(name: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return campaigns.cancel(session, name, now=ws.now())


@router.get("/campaigns/{name}/stats")
def campaign_stats(name: str, session: SessionDep) -> dict:
    return campaigns.stats(session, name)


@router.get("/campaigns/{name}/results")
def campaign_results_(name: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Each variant against the holdout, the global control group and the first variant: conversion and revenue
    per customer with always-valid intervals, verdicts, the sample still needed and the sample-ratio check."""
    return campaign_results.results(session, name, global_control_share=ws.settings.guards.global_control_share)
