"""The journey canvas: a new journey (blank or from the library), editing one (a new version: customers inside
finish on theirs), duplicating one; live validation by the engine's own parser with each error's path; saving;
and the confirmation before activating (who would enter, what is sent, the guards, sandbox channels).

The canvas itself is static/journey_editor.js: it posts the definition as JSON text (the text view may hold YAML)
with the form's CSRF token, and answers come back as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.channels import config as channel_config
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, json_answer, missing, render
from boomerang.dashboard.views.journey_graph import layout as auto_layout
from boomerang.dashboard.views.journeys import trigger_text
from boomerang.dashboard.views.messaging import parse_text
from boomerang.journeys import audience, library, service
from boomerang.journeys.definition import (
    NODE_TYPES,
    TRIGGER_BOX,
    TRIGGERS,
    Journey,
    Loyalty,
    SegmentTrigger,
    Send,
    Webhook,
    parse_journey,
)
from boomerang.messaging import service as templates
from boomerang.segments import service as segments

router = APIRouter()
BLANK: dict[str, Any] = {"name": "", "title": "", "category": "triggered", "trigger": {"manual": True}, "nodes": {}}
EVENTS_SHOWN = 200
KNOWN_EVENTS = ("Order Completed", "Product Added", "Product Viewed", "Checkout Started", "Signed Up")


# -- what the pickers offer ------------------------------------------------------------------------


def _events(board) -> list[str]:
    """Event names for the pickers: the log's, most frequent first, then those the library's journeys use."""
    try:
        seen = list(board.ws.log.summary()["by_event"])[:EVENTS_SHOWN]
    except Exception:  # noqa: BLE001 - an unreadable log leaves the names typed by hand
        seen = []
    for raw in library.raw_definitions():
        for name in (raw["trigger"].get("event"), (raw.get("goal") or {}).get("event")):
            seen += [name] if name else []
    return list(dict.fromkeys([*seen, *KNOWN_EVENTS]))


def _pickers(board, session) -> dict[str, Any]:
    return {
        "segments": [{"name": g["name"], "size": g["size"]} for g in segments.list_segments(session)],
        "templates": [{"name": t["name"], "channels": t["channels"]} for t in templates.listing(session)],
        "channels": list(CHANNELS),
        "events": _events(board),
        "library": [{"name": r["name"], "title": r.get("title") or r["name"]} for r in library.raw_definitions()],
        "triggers": list(TRIGGERS),
        "node_types": sorted(NODE_TYPES),
    }


# -- the editor page -------------------------------------------------------------------------------


def _first_layout(journey: Journey) -> dict[str, dict[str, float]]:
    """The read-only graph's layout as the canvas's first drawing, below the trigger's box."""
    graph = auto_layout(journey, {})
    boxes = {b.name: {"x": round(b.x), "y": round(b.y) + 110} for b in graph.boxes}
    start = boxes.get(journey.start, {"x": 20})
    return {TRIGGER_BOX: {"x": start["x"], "y": 20}, **boxes}


def _editor(
    request: Request, user, board, *, raw: dict[str, Any], mode: str, editing: str = "", status_code: int = 200
) -> Response:
    """The canvas on `raw`; `mode` new (also a copy or a ready-made journey) or edit (of `editing`)."""
    info, counts = None, {}
    with board.ws.uow.session() as s:
        pickers = _pickers(board, s)
        if editing:
            row = service.get(s, editing)
            stats = service.stats(s, editing)
            info = {
                **service.describe(row),
                "running": sum(
                    n for node in stats["nodes"].values() for status, n in node["here"].items() if status != "done"
                ),
            }
            went, read = service.passed(s, editing)
            counts = {n: {**stats["nodes"].get(n, {}), "passed": went.get(n, 0)} for n in {*stats["nodes"], *went}}
            info["sampled"] = read if read >= service.PASSED_SAMPLE else None
    definition = {k: v for k, v in raw.items() if k != "layout"}
    positions = raw.get("layout") or {}
    try:
        parsed = parse_journey(raw)
        positions = {**_first_layout(parsed), **positions}
    except ValidationFailed:
        pass  # a blank journey: the canvas places the boxes itself
    data = {
        "mode": mode,
        "editing": editing,
        "journey": info,
        "definition": definition,
        "layout": positions,
        "counts": counts,
        "pickers": pickers,
        "can_edit": user.role in ("marketer", "admin"),
        "urls": {
            "validate": "/journeys/validate",
            "save": f"/journeys/{editing}/edit" if editing else "/journeys/new",
            "properties": "/journeys/new/event-properties",
        },
    }
    return render(request, "journey_editor.html", user=user, data=data, mode=mode, info=info, status_code=status_code)


@router.get("/journeys/new")
def new_journey(
    request: Request,
    user: Marketer,
    board: BoardDep,
    start: str = Query("", alias="from", max_length=63),
    segment: str = Query("", max_length=63),
) -> Response:
    """The canvas on a blank journey, one that starts when a customer enters `segment`, or a ready-made one of
    the library (`from`)."""
    raw = dict(BLANK)
    if segment:
        raw["trigger"] = {"segment": segment, "on": "entered"}
    if start:
        try:
            raw = library.get(start)
        except KeyError:
            return missing(request, user, "ready-made journey", start)
    return _editor(request, user, board, raw=raw, mode="new")


@router.get("/journeys/new/event-properties")
def event_properties(
    request: Request, user: Viewer, board: BoardDep, event: str = Query(..., min_length=1, max_length=200)
) -> Response:
    """The property names the latest events of this name carry (for a trigger's `key` and `where`)."""
    return json_answer({"event": event, "properties": audience.event_properties(board.ws.log, event)}, 200)


def _stored(board, name: str) -> dict[str, Any]:
    with board.ws.uow.session() as s:
        return dict(service.get(s, name).definition)


@router.get("/journeys/{name}/edit")
def edit_journey(request: Request, name: str, user: Viewer, board: BoardDep) -> Response:
    """The canvas on the current version (viewers see it without the editing tools)."""
    try:
        raw = _stored(board, name)
    except NotFound:
        return missing(request, user, "journey", name)
    return _editor(request, user, board, raw=raw, mode="edit", editing=name)


@router.get("/journeys/{name}/duplicate")
def duplicate_journey(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    """The canvas on a copy of the current version, as a new journey to name."""
    try:
        raw = _stored(board, name)
    except NotFound:
        return missing(request, user, "journey", name)
    copy = f"{name}_copy"[:63]
    raw = {**raw, "name": copy, "title": f"{raw.get('title') or name} (copy)"}
    return _editor(request, user, board, raw=raw, mode="new")


# -- validating and saving -------------------------------------------------------------------------


def _definition(form) -> dict[str, Any]:
    raw = parse_text(str(form.get("definition") or ""), "definition")
    if not isinstance(raw, dict):
        raise ValidationFailed(
            [{"field": "definition", "reason": "a journey is an object with name, trigger, start, nodes"}]
        )
    return raw


def _check(session, raw: dict[str, Any]) -> tuple[Journey, list[dict[str, str]]]:
    """The engine's parse plus what saving checks (the trigger's segment exists, or is ready-made: saving adds
    it); and warnings that do not stop a save (a template not written yet, a ready-made segment to add)."""
    journey = parse_journey(raw)
    warnings = []
    segment = journey.trigger.segment if isinstance(journey.trigger, SegmentTrigger) else None
    if segment and segments.find(session, segment) is None:
        if not library.ready_segment(segment):
            raise ValidationFailed([{"field": "trigger.segment", "reason": f"segment {segment!r} does not exist"}])
        warnings.append(
            {"field": "trigger.segment", "reason": f"the ready-made segment {segment} is added when this is saved"}
        )
    known = {t["name"] for t in templates.listing(session)}
    warnings += [
        {
            "field": f"nodes.{node_id}.template",
            "reason": f"no template named {node.template!r} yet: write it before activating",
        }
        for node_id, node in journey.nodes.items()
        if isinstance(node, Send) and node.template not in known
    ]
    return journey, warnings


@router.post("/journeys/validate")
async def validate(request: Request, user: Viewer, board: BoardDep) -> Response:
    """The definition checked by the engine's parser: {valid, errors, warnings, definition (as read)}."""
    form = await checked_form(request)
    try:
        raw = _definition(form)
    except ValidationFailed as exc:
        return json_answer({"valid": False, "errors": exc.errors, "warnings": [], "definition": None}, 200)

    def checking() -> dict[str, Any]:
        with board.ws.uow.session() as s:
            try:
                _, warnings = _check(s, raw)
            except ValidationFailed as exc:
                return {"valid": False, "errors": exc.errors, "warnings": [], "definition": raw}
            return {"valid": True, "errors": [], "warnings": warnings, "definition": raw}

    return json_answer(await run_in_threadpool(checking), 200)


def _save(board, raw: dict[str, Any], *, editing: str, base: int | None) -> dict[str, Any]:
    """Save a new journey (its name free) or a new version of `editing` (its name kept, the version the
    editor started from still the current one); one transaction, nothing written when anything fails."""
    with board.ws.uow.session() as s:
        _check(s, raw)
        name = raw.get("name")
        if editing:
            current = service.get(s, editing)
            if name != editing:
                raise ValidationFailed(
                    [{"field": "name", "reason": f"a saved journey keeps its name ({editing}): duplicate it to rename"}]
                )
            if base is not None and current.version != base:
                raise ValidationFailed(
                    [
                        {
                            "field": "version",
                            "reason": f"saved by someone else meanwhile (now v{current.version}): reload",
                        }
                    ]
                )
        elif _exists(s, name):
            raise ValidationFailed([{"field": "name", "reason": f"a journey named {name} already exists"}])
        trigger = raw.get("trigger") or {}
        library.add_ready_segments(s, {trigger["segment"]} if "segment" in trigger else set(), now=board.ws.now())
        return service.save(s, raw, now=board.ws.now())


def _exists(session, name: str) -> bool:
    try:
        service.get(session, name)
    except NotFound:
        return False
    return True


async def _save_answer(request: Request, board, editing: str) -> Response:
    form = await checked_form(request)
    try:
        raw = _definition(form)
        base_text = str(form.get("version") or "").strip()
        if base_text and not base_text.isdigit():
            raise ValidationFailed([{"field": "version", "reason": "a version number"}])
        saved = await run_in_threadpool(_save, board, raw, editing=editing, base=int(base_text) if base_text else None)
    except NotFound:
        return json_answer({"errors": [{"field": "journey", "reason": f"no journey named {editing}"}]}, 404)
    except BoomerangError as exc:
        return json_answer({"errors": exc.errors}, exc.status_code if exc.status_code != 400 else 422)
    return json_answer({"saved": saved, "url": f"/journeys/{saved['name']}"}, 200)


@router.post("/journeys/new")
async def create(request: Request, user: Marketer, board: BoardDep) -> Response:
    return await _save_answer(request, board, "")


@router.post("/journeys/{name}/edit")
async def update(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    return await _save_answer(request, board, name)


# -- the confirmation before activating ------------------------------------------------------------


def sends(journey: Journey) -> list[dict[str, Any]]:
    """What the journey does to customers: each message (channels in order, template), reward and call."""
    out = []
    for node_id, node in journey.nodes.items():
        if isinstance(node, Send):
            out.append(
                {
                    "node": node_id,
                    "kind": "message",
                    "channels": [node.channel, *node.fallback],
                    "template": node.template,
                }
            )
        elif isinstance(node, Loyalty):
            what = (
                f"{node.points:,} points"
                if node.action == "award_points"
                else f"a {node.discount_percent:g}% promo code"
            )
            out.append({"node": node_id, "kind": "loyalty", "channels": [], "template": what})
        elif isinstance(node, Webhook):
            out.append({"node": node_id, "kind": "webhook", "channels": ["webhook"], "template": node.url})
    return out


def guards(board, journey: Journey) -> list[str]:
    """The guards that apply to this journey's messages, with the workspace's settings."""
    g = board.ws.settings.guards
    consent = "consent: each message goes on the first channel with the customer's consent and address"
    if not journey.marketing:
        return [consent, "transactional: exempt from caps, quiet hours and the global control group"]
    caps = ", ".join(f"{c.count} per {c.days:g} days ({name})" for name, c in g.caps.items())
    quiet = (
        "none" if g.quiet_start == g.quiet_end else f"{g.quiet_start}–{g.quiet_end} customer's local time (deferred)"
    )
    return [
        consent,
        "preferences: a topic a customer turned off is not sent",
        f"frequency caps: {caps or 'none'}",
        f"quiet hours: {quiet}",
        f"global control group: {g.global_control_share:.0%} of customers get no marketing",
        f"the same template again within {g.duplicate_window_hours:g} h: suppressed",
        f"journey control group: {journey.control_share:.0%} enter but are sent nothing",
    ]


def _confirmation(board, name: str) -> dict[str, Any]:
    with board.ws.uow.session() as s:
        row = service.get(s, name)
        journey = service.definition_of(s, row.id, row.version)
        estimate = audience.entry_estimate(s, board.ws.log, journey, now=board.ws.now())
        used = {c for item in sends(journey) for c in item["channels"] if c in channel_config.PROVIDERS}
        providers = {c: channel_config.load(s, c, secret=board.ws.secret)[0] for c in sorted(used)}
        known = {t["name"] for t in templates.listing(s)}
        info = service.describe(row)
    return {
        "journey": info,
        "trigger": trigger_text(row.definition["trigger"]),
        "estimate": estimate,
        "sends": sends(journey),
        "missing_templates": sorted({i["template"] for i in sends(journey) if i["kind"] == "message"} - known),
        "guards": guards(board, journey),
        "sandbox": sorted(c for c, p in providers.items() if p == channel_config.SANDBOX),
    }


@router.get("/journeys/{name}/activate")
async def confirm_activation(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    """Before activating: who would enter, what goes out, the guards, and which channels are the sandbox."""
    try:
        context = await run_in_threadpool(_confirmation, board, name)
    except NotFound:
        return missing(request, user, "journey", name)
    except ValidationFailed as exc:
        return render(
            request,
            "error.html",
            user=user,
            status_code=409,
            title="Version no longer valid",
            message="; ".join(f"{e['field']}: {e['reason']}" for e in exc.errors),
        )
    return render(request, "journey_activate.html", user=user, **context)
