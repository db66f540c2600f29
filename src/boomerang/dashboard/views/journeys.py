"""Journeys: the list with activate and pause, a journey's drawn graph with its numbers, the approval queue,
and the journeys card of a customer's page."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.customers import search
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, missing, redirect, render
from boomerang.dashboard.views.journey_graph import layout, settings
from boomerang.journeys import runtime, service
from boomerang.journeys.definition import Approval, Send
from boomerang.messaging import delivery

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


# -- the list --------------------------------------------------------------------------------------


def _list_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        journeys = service.list_journeys(s)
        for j in journeys:
            groups = service.stats(s, j["name"])["groups"]
            j["entered"] = sum(g["entered"] for g in groups.values())
            j["converted"] = sum(g["converted"] for g in groups.values())
            j["trigger_text"] = trigger_text(j["trigger"])
        pending = service.pending_count(s)
    changed_name = context.pop("changed_name", "")
    changed = next(({"name": j["name"], "status": j["status"]} for j in journeys if j["name"] == changed_name), None)
    context.setdefault("changed", changed)
    return render(
        request, "journeys.html", user=user, journeys=journeys, pending=pending, status_code=status_code, **context
    )


@router.get("/journeys")
def journeys_page(request: Request, user: Viewer, board: BoardDep, changed: str = Query("", max_length=63)) -> Response:
    """The journeys; `changed`: the one just activated or paused (its status as it is now)."""
    return _list_page(request, user, board, changed_name=changed)


# -- the approval queue (before /journeys/{name}: "approvals" is a page, not a journey) --------------


def _next_message(journey, node: str) -> dict[str, str] | None:
    """The message an approval lets through next, if the node after it sends one."""
    approval = journey.nodes.get(node)
    after = journey.nodes.get(approval.next) if isinstance(approval, Approval) and approval.next else None
    if isinstance(after, Send):
        return {"template": after.template, "channel": " → ".join((after.channel, *after.fallback))}
    return None


def _approvals_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        queue, decided = service.approvals(s, recent=RECENT)
    for item in queue:
        journey = item.pop("definition")
        item["next_message"] = _next_message(journey, item["node"]) if journey else None
    key = context.pop("decided_key", "")
    context.setdefault("decided", next((d for d in decided if key and d["key"] == key), None))
    return render(
        request, "journeys_approvals.html", user=user, queue=queue, recent=decided, status_code=status_code, **context
    )


@router.get("/journeys/approvals")
def approvals_page(
    request: Request, user: Viewer, board: BoardDep, decided: str = Query("", max_length=300)
) -> Response:
    """The queue; `decided`: the request just decided (shown from the recent decisions)."""
    return _approvals_page(request, user, board, decided_key=decided)


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
        result = await run_in_threadpool(_decide, board, key, approved, user.username, template if approved else None)
    except BoomerangError as exc:
        return _approvals_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"/journeys/approvals?decided={quote(result['approval'], safe='')}#decided")


def _decide(board, key: str, approved: bool, by: str, template: str | None) -> dict[str, Any]:
    with board.ws.uow.session() as s:
        return runtime.decide(s, key, approved=approved, by=by, template=template, now=board.ws.now())


# -- activate and pause ----------------------------------------------------------------------------


def _set(board, name: str, status: str) -> None:
    with board.ws.uow.session() as s:
        service.set_status(s, name, status, now=board.ws.now())


async def _set_status(request: Request, name: str, user, board, status: str) -> Response:
    form = await checked_form(request)
    try:
        await run_in_threadpool(_set, board, name, status)
    except NotFound:
        return missing(request, user, "journey", name)
    if form.get("back") == "journey":  # to a page, so that a reload sends nothing again
        return redirect(f"/journeys/{quote(name, safe='')}?changed=1#changed")
    return redirect(f"/journeys?changed={quote(name, safe='')}#changed")


@router.post("/journeys/{name}/activate")
async def activate(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    return await _set_status(request, name, user, board, "active")


@router.post("/journeys/{name}/pause")
async def pause(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    return await _set_status(request, name, user, board, "paused")


# -- a test run ------------------------------------------------------------------------------------


def _test_run(board, name: str, customer: str, speed: float) -> dict[str, Any]:
    with board.ws.uow.session() as s:
        found = search.resolve(s, customer, field="customer")  # a name, email, phone or id
        return runtime.enter_manually(s, name, found.id, test_speed=speed, now=board.ws.now())


@router.post("/journeys/{name}/test")
async def test_run(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    """Try the journey on one customer: waits shorter, real channels, nothing counted in its results."""
    form = await checked_form(request)
    try:
        speed = min(max(float(form.get("speed") or 60), 1), 86400)
    except ValueError:
        speed = 60
    customer = str(form.get("customer") or "").strip()
    try:
        tested = await run_in_threadpool(_test_run, board, name, customer, speed)
    except NotFound as exc:
        if exc.field == "journey":
            return missing(request, user, "journey", name)
        tested = {"instance": None, "reason": exc.message}
    except BoomerangError as exc:
        tested = {"instance": None, "reason": exc.message}
    if tested["instance"]:  # to the page, so that a reload does not run the test again
        return redirect(f"/journeys/{quote(name, safe='')}?tested={quote(tested['instance'], safe='')}#tested")
    return _journey_page(request, user, board, name, tested={**tested, "speed": speed}, status_code=409)


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
        try:
            row = service.get(s, name)
        except NotFound:
            return missing(request, user, "journey", name)
        versions = service.versions(s, row.id)
        shown = version if version is not None else row.version
        raw = service.version_definition(s, row.id, shown)
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
        stats = service.stats(s, name)
        share = board.ws.settings.guards.global_control_share
        results = service.results(s, name, global_control_share=share)
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
        results=results,
        graph=graph,
        nodes=_node_rows(journey, graph, stats["nodes"]),
        elsewhere=elsewhere,
        status_code=status_code,
        **context,
    )


@router.get("/journeys/{name}")
def journey_page(
    request: Request,
    name: str,
    user: Viewer,
    board: BoardDep,
    version: int | None = Query(None, ge=1, le=1_000_000),
    tested: str = Query("", max_length=40),
    changed: bool = False,
) -> Response:
    """A journey's page; `tested`: the test run just started (its instance); `changed`: just activated or paused."""
    run = None
    if tested:
        with board.ws.uow.session() as s:
            try:
                run = service.test_run(s, name, tested)
            except NotFound:
                run = None
    return _journey_page(request, user, board, name, version=version, tested=run, changed=changed)


# -- a customer's journeys (for the customer's page) -----------------------------------------------


def message_status(status: str, reason: str | None) -> str:
    """The status to show: a queued message a guard put off is `deferred`."""
    return "deferred" if status == "queued" and (reason or "").startswith("deferred") else status


def customer_journeys(session, customer_id: str, limit: int = CUSTOMER_ROWS) -> dict[str, Any]:
    """The customer's journey instances and the messages journeys meant for them, newest first."""
    instances = service.instances_of(session, customer_id, limit=limit)
    for i in instances:
        path = i.pop("path")
        i["path"], i["path_cut"] = path[-PATH_CHIPS:], max(0, len(path) - PATH_CHIPS)
    messages = [
        {
            "created_at": msg.created_at,
            "source": msg.source or "",
            "journey": msg.source.removeprefix("journey:") if (msg.source or "").startswith("journey:") else None,
            "node": msg.node,
            "template": msg.template,
            "channels": list(msg.channels or []),
            "channel": msg.channel,
            "status": message_status(msg.status, msg.reason),
            "reason": msg.reason,
            "send_after": msg.send_after,
            "sent_at": msg.sent_at,
        }
        for msg in delivery.of_customer(session, customer_id, limit=limit)
    ]
    return {"instances": instances, "messages": messages, "limit": limit}
