"""Journeys: the list with activate and pause, a journey's drawn graph with its numbers, the approval queue,
and the journeys card of a customer's page."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.clock import naive_utc
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.customers.models import Customer
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, render
from boomerang.dashboard.views.journey_graph import layout, settings
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.journeys.definition import Approval, Send
from boomerang.messaging.models import Message

router = APIRouter()
RECENT = 20  # decided approvals listed under the queue
CUSTOMER_ROWS = 50  # instances and messages on a customer's page
PATH_CHIPS = 30  # the last nodes of an instance's path shown
MAX_TEMPLATE = 200


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def trigger_text(trigger: dict[str, Any]) -> str:
    """What starts the journey, in words."""
    if "event" in trigger:
        text = f"event {trigger['event']}"
        if trigger.get("key"):
            text += f", one instance per {trigger['key']}"
        if trigger.get("where"):
            text += " where " + ", ".join(
                f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in trigger["where"].items()
            )
        return text
    if "segment" in trigger:
        return f"{'leaves' if trigger.get('on') == 'exited' else 'enters'} segment {trigger['segment']}"
    if "date" in trigger:
        return _relative(
            trigger.get("offset_days", 0), "birthday" if trigger["date"] == "birthday" else "first order's anniversary"
        )
    if "inactive_days" in trigger:
        return f"no order for {trigger['inactive_days']} days"
    if "lifecycle" in trigger:
        return f"lifecycle stage becomes {trigger['lifecycle']}"
    if "next_purchase_offset_days" in trigger:
        return _relative(trigger["next_purchase_offset_days"], "predicted next purchase")
    return "manual or API entry"


def _relative(days: int, what: str) -> str:
    if days < 0:
        return f"{-days} days before the {what}"
    return f"{days} days after the {what}" if days else f"on the {what}"


def _not_found(request: Request, user, name: str) -> Response:
    return render(
        request,
        "error.html",
        user=user,
        status_code=404,
        title="No such journey",
        message=f"There is no journey named {name}.",
    )


# -- the list --------------------------------------------------------------------------------------


def _list_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    journeys = service.list_journeys(board.ws)
    for j in journeys:
        groups = service.stats(board.ws, j["name"])["groups"]
        j["entered"] = sum(g["entered"] for g in groups.values())
        j["converted"] = sum(g["converted"] for g in groups.values())
        j["trigger_text"] = trigger_text(j["trigger"])
    with board.ws.uow.session() as s:
        pending = s.scalar(
            sa.select(sa.func.count()).select_from(m.ApprovalRequest).where(m.ApprovalRequest.status == "pending")
        )
    return render(
        request, "journeys.html", user=user, journeys=journeys, pending=pending, status_code=status_code, **context
    )


@router.get("/journeys")
def journeys_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    return _list_page(request, user, board)


# -- the approval queue (before /journeys/{name}: "approvals" is a page, not a journey) --------------


def _next_message(journey, node: str) -> dict[str, str] | None:
    """The message an approval lets through next, if the node after it sends one."""
    approval = journey.nodes.get(node)
    after = journey.nodes.get(approval.next) if isinstance(approval, Approval) and approval.next else None
    if isinstance(after, Send):
        return {"template": after.template, "channel": " → ".join((after.channel, *after.fallback))}
    return None


def _approvals_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    items = service.pending_approvals(board.ws)
    with board.ws.uow.session() as s:
        customers = {
            c: (email, external_id)
            for c, email, external_id in s.execute(
                sa.select(Customer.id, Customer.email, Customer.external_id).where(
                    Customer.id.in_(sorted({i["customer_id"] for i in items}))
                )
            )
        }
        versions = {
            i: (j, v)
            for i, j, v in s.execute(
                sa.select(m.Instance.id, m.Instance.journey_id, m.Instance.version).where(
                    m.Instance.id.in_(sorted({i["instance_id"] for i in items}))
                )
            )
        }
        for item in items:
            email, external_id = customers.get(item["customer_id"], (None, None))
            item["customer_label"] = email or external_id or item["customer_id"]
            journey_id, version = versions.get(item["instance_id"], (None, None))
            try:
                journey = service.definition_of(s, journey_id, version) if journey_id is not None else None
            except ValidationFailed:
                journey = None
            item["next_message"] = _next_message(journey, item["node"]) if journey else None
            item["version"] = version
        recent = s.execute(
            sa.select(m.ApprovalRequest, m.Journey.name)
            .join(m.Journey)
            .where(m.ApprovalRequest.status != "pending")
            .order_by(m.ApprovalRequest.decided_at.desc(), m.ApprovalRequest.key)
            .limit(RECENT)
        ).all()
        decided = [
            {
                "journey": name,
                "node": r.node,
                "customer_id": r.customer_id,
                "status": r.status,
                "template": r.template,
                "by": r.decided_by,
                "at": r.decided_at,
            }
            for r, name in recent
        ]
    return render(
        request, "journeys_approvals.html", user=user, queue=items, recent=decided, status_code=status_code, **context
    )


@router.get("/journeys/approvals")
def approvals_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    return _approvals_page(request, user, board)


@router.post("/journeys/approvals/{key}")
async def decide(request: Request, key: str, user: Marketer, board: BoardDep) -> Response:
    """Approve (optionally with another template for the next message) or reject one request."""
    form = await checked_form(request)
    decision = str(form.get("decision") or "")
    template = str(form.get("template") or "").strip() or None
    try:
        if decision not in ("approve", "reject"):
            raise ValidationFailed([{"field": "decision", "reason": "approve or reject"}])
        if template and len(template) > MAX_TEMPLATE:
            raise ValidationFailed([{"field": "template", "reason": f"at most {MAX_TEMPLATE} characters"}])
        approved = decision == "approve"
        result = await run_in_threadpool(
            lambda: runtime.decide(
                board.ws,
                key,
                approved=approved,
                by=user.username,
                template=template if approved else None,
                now=naive_utc(board.ws.clock.now()),
            )
        )
    except BoomerangError as exc:
        return _approvals_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    return _approvals_page(request, user, board, decided=result)


# -- activate and pause ----------------------------------------------------------------------------


async def _set_status(request: Request, name: str, user, board, status: str) -> Response:
    form = await checked_form(request)
    try:
        await run_in_threadpool(service.set_status, board.ws, name, status)
    except NotFound:
        return _not_found(request, user, name)
    changed = {"name": name, "status": status}
    if form.get("back") == "journey":
        return _journey_page(request, user, board, name, changed=changed)
    return _list_page(request, user, board, changed=changed)


@router.post("/journeys/{name}/activate")
async def activate(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    return await _set_status(request, name, user, board, "active")


@router.post("/journeys/{name}/pause")
async def pause(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    return await _set_status(request, name, user, board, "paused")


# -- one journey -----------------------------------------------------------------------------------


def _node_rows(journey, graph, counts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "index": b.index,
            "name": b.name,
            "type": b.type,
            "settings": settings(journey.nodes[b.name]),
            **{"here": {}, "messages": {}, "conversions": 0, "revenue": 0.0, **counts.get(b.name, {})},
        }
        for b in graph.boxes
    ]


def _journey_page(
    request: Request, user, board, name: str, *, version: int | None = None, status_code: int = 200, **context
) -> Response:
    with board.ws.uow.session() as s:
        row = s.scalar(sa.select(m.Journey).where(m.Journey.name == name))
        if row is None:
            return _not_found(request, user, name)
        versions = s.execute(
            sa.select(m.JourneyVersion.version, m.JourneyVersion.created_at)
            .where(m.JourneyVersion.journey_id == row.id)
            .order_by(m.JourneyVersion.version.desc())
        ).all()
        shown = version if version is not None else row.version
        raw = s.scalar(
            sa.select(m.JourneyVersion.definition).where(
                (m.JourneyVersion.journey_id == row.id) & (m.JourneyVersion.version == shown)
            )
        )
        if raw is None:
            return render(
                request,
                "error.html",
                user=user,
                status_code=404,
                title="No such version",
                message=f"The journey {name} has no version {shown}.",
            )
        try:
            journey = service.definition_of(s, row.id, shown)
        except ValidationFailed as exc:  # stored under older rules that have since become stricter
            return render(
                request,
                "error.html",
                user=user,
                status_code=500,
                title="Version no longer valid",
                message=f"Version {shown} of {name} does not validate any more: "
                + "; ".join(f"{e['field']}: {e['reason']}" for e in exc.errors),
            )
        info = {**service.describe(row), "shown": shown}
    stats = service.stats(board.ws, name)
    graph = layout(journey, stats["nodes"])
    elsewhere = {n: c for n, c in stats["nodes"].items() if n not in journey.nodes}
    return render(
        request,
        "journey.html",
        user=user,
        journey=info,
        definition=pretty(raw),
        parsed=journey,
        trigger=trigger_text(raw["trigger"]),
        versions=versions,
        stats=stats,
        graph=graph,
        nodes=_node_rows(journey, graph, stats["nodes"]),
        elsewhere=elsewhere,
        status_code=status_code,
        **context,
    )


@router.get("/journeys/{name}")
def journey_page(
    request: Request, name: str, user: Viewer, board: BoardDep, version: int | None = Query(None, ge=1, le=1_000_000)
) -> Response:
    return _journey_page(request, user, board, name, version=version)


# -- a customer's journeys (for the customer's page) -----------------------------------------------


def message_status(status: str, reason: str | None) -> str:
    """The status to show: a queued message a guard put off is `deferred`."""
    return "deferred" if status == "queued" and (reason or "").startswith("deferred") else status


def customer_journeys(session, customer_id: str, limit: int = CUSTOMER_ROWS) -> dict[str, Any]:
    """The customer's journey instances and the messages journeys meant for them, newest first (also those
    of profiles merged into this one). A query of its own: the journeys service has none per customer."""
    ids = [customer_id, *session.scalars(sa.select(Customer.id).where(Customer.merged_into_id == customer_id))]
    instances = []
    for i, name, title in session.execute(
        sa.select(m.Instance, m.Journey.name, m.Journey.title)
        .join(m.Journey, m.Journey.id == m.Instance.journey_id)
        .where(m.Instance.customer_id.in_(ids))
        .order_by(m.Instance.entered_at.desc(), m.Instance.id)
        .limit(limit)
    ):
        path = list((i.state or {}).get("path") or [])
        instances.append(
            {
                "id": i.id,
                "journey": name,
                "title": title or name,
                "version": i.version,
                "key": i.key,
                "status": i.status,
                "node": i.node,
                "outcome": i.outcome,
                "control": i.control,
                "entered_at": i.entered_at,
                "ended_at": i.ended_at,
                "wake_at": i.wake_at,
                "waiting_for": i.waiting_for,
                "variants": (i.state or {}).get("variants") or {},
                "path": path[-PATH_CHIPS:],
                "path_cut": max(0, len(path) - PATH_CHIPS),
            }
        )
    messages = []
    for msg in session.scalars(
        sa.select(Message)
        .where(Message.customer_id.in_(ids))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    ):
        source = msg.source or ""
        messages.append(
            {
                "created_at": msg.created_at,
                "source": source,
                "journey": source.removeprefix("journey:") if source.startswith("journey:") else None,
                "node": msg.node,
                "template": msg.template,
                "channels": list(msg.channels or []),
                "channel": msg.channel,
                "status": message_status(msg.status, msg.reason),
                "reason": msg.reason,
                "send_after": msg.send_after,
                "sent_at": msg.sent_at,
            }
        )
    return {"instances": instances, "messages": messages, "limit": limit}
