"""Segments: the list with size trends, the builder with a live preview, a segment's page with explain, the matrix."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from boomerang.core import documents
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.customers import service as customers
from boomerang.dashboard.auth import csrf_matches
from boomerang.dashboard.views.common import (
    HEADERS,
    BoardDep,
    Marketer,
    Viewer,
    checked_form,
    missing,
    parse_day,
    redirect,
    render,
    session_of,
)
from boomerang.journeys.matrix import matrix
from boomerang.segments import library, membership, service
from boomerang.segments.definition import KEYS, MEASURES, OPERATORS, RULE_FIELDS, TRAITS

router = APIRouter()
MAX_RULE = 20_000  # characters of rule text
SAMPLE = 20  # members listed on a segment's page
PREVIEW_SAMPLE = 10
EXAMPLE = {
    "all": [
        {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
            "within_days": 7,
            "op": "gte",
            "value": 3,
        },
        {"not": {"event": "Order Completed", "within_days": 7}},
    ]
}
REFERENCE = {
    "rules": list(KEYS),
    "profile_fields": RULE_FIELDS,
    "traits": {name: kind for name, (_, kind) in TRAITS.items()},
    "operators": {kind: sorted(ops) for kind, ops in OPERATORS.items()},
    "measures": MEASURES,
    "channels": list(CHANNELS),
}


def parse_rule_text(text: str) -> Any:
    """The rule from the builder's textarea, JSON or YAML; a problem is a ValidationFailed naming `rule`."""
    if not text.strip():
        raise ValidationFailed([{"field": "rule", "reason": 'write a rule, such as {"event": "Order Completed"}'}])
    if len(text) > MAX_RULE:
        raise ValidationFailed([{"field": "rule", "reason": f"at most {MAX_RULE:,} characters"}])
    return documents.read(text, field="rule")


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def size_chart(points: list[dict[str, Any]], *, spark: bool = False) -> dict[str, Any]:
    return {
        "type": "line",
        "spark": spark,
        "labels": [p["at"][:16].replace("T", " ") for p in points],
        "datasets": [{"label": "Members", "data": [p["size"] for p in points]}],
    }


# -- the list --------------------------------------------------------------------------------------


def _list_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        segments = service.list_segments(s)
        trends = {g["name"]: size_chart(service.history(s, g["name"], limit=60), spark=True) for g in segments}
    return render(
        request, "segments.html", user=user, segments=segments, trends=trends, status_code=status_code, **context
    )


@router.get("/segments")
def segments_page(request: Request, user: Viewer, board: BoardDep, installed: str = "") -> Response:
    return _list_page(request, user, board, installed=int(installed) if installed.isdigit() else None)


@router.post("/segments/library")
async def install(request: Request, user: Marketer, board: BoardDep) -> Response:
    await checked_form(request)
    try:
        made = await run_in_threadpool(_install, board)
    except BoomerangError as exc:
        return _list_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"/segments?installed={len(made)}")


def _install(board) -> list[dict[str, Any]]:
    with board.ws.uow.session() as s:
        return library.install(s, now=board.ws.now())


def _refreshed(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    done = [r for r in results if "error" not in r]
    failed = [
        {"field": f"segment {r['name']}", "reason": f"not refreshed: {r['error']}"} for r in results if "error" in r
    ]
    return done, failed


@router.post("/segments/refresh")
async def refresh_all(request: Request, user: Marketer, board: BoardDep) -> Response:
    await checked_form(request)
    try:
        results = await run_in_threadpool(membership.refresh, board.ws.segments)
    except BoomerangError as exc:
        return _list_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    done, failed = _refreshed(results)
    return _list_page(request, user, board, refreshed=done, errors=failed)


@router.post("/segments/{name}/refresh")
async def refresh_one(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    to_segment = form.get("back") == "segment"
    try:
        results = await run_in_threadpool(membership.refresh, board.ws.segments, [name])
    except BoomerangError as exc:
        if exc.status_code == 400 and exc.field == "segment":  # no such segment
            return missing(request, user, "segment", name)
        return _list_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    done, failed = _refreshed(results)
    if to_segment:
        return _segment_page(
            request, user, board, name, status_code=400 if failed else 200, refreshed=done, errors=failed
        )
    return _list_page(request, user, board, status_code=400 if failed else 200, refreshed=done, errors=failed)


# -- the builder -----------------------------------------------------------------------------------


def _builder(
    request: Request,
    user,
    *,
    editing: str | None,
    form: dict[str, str],
    version: int | None = None,
    status_code: int = 200,
    errors: list[dict] | None = None,
) -> Response:
    return render(
        request,
        "segment_form.html",
        user=user,
        editing=editing,
        form=form,
        version=version,
        errors=errors,
        reference=REFERENCE,
        status_code=status_code,
    )


def _submitted(form) -> dict[str, str]:
    return {key: str(form.get(key) or "") for key in ("name", "title", "description", "rule")}


def _save(board, fields: dict[str, str], *, new: bool) -> dict[str, Any]:
    definition = {
        "name": fields["name"].strip(),
        "title": fields["title"].strip(),
        "description": fields["description"].strip(),
        "rule": parse_rule_text(fields["rule"]),
    }
    with board.ws.uow.session() as s:
        if new and service.find(s, definition["name"]) is not None:
            reason = f"a segment named {definition['name']} already exists: edit it instead"
            raise ValidationFailed([{"field": "name", "reason": reason}])
        return service.save(s, definition, now=board.ws.now())


@router.get("/segments/new")
def new_form(request: Request, user: Marketer) -> Response:
    return _builder(
        request, user, editing=None, form={"name": "", "title": "", "description": "", "rule": pretty(EXAMPLE)}
    )


@router.post("/segments/new")
async def create(request: Request, user: Marketer, board: BoardDep) -> Response:
    fields = _submitted(await checked_form(request))
    try:
        saved = await run_in_threadpool(_save, board, fields, new=True)
    except BoomerangError as exc:
        return _builder(request, user, editing=None, form=fields, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"/segments/{saved['name']}")


@router.get("/segments/{name}/edit")
def edit_form(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    with board.ws.uow.session() as s:
        segment = service.find(s, name)
        if segment is None:
            return missing(request, user, "segment", name)
        form = {
            "name": segment.name,
            "title": segment.title,
            "description": segment.description,
            "rule": pretty(segment.definition),
        }
        version = segment.version
    return _builder(request, user, editing=name, form=form, version=version)


@router.post("/segments/{name}/edit")
async def update(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    fields = {**_submitted(await checked_form(request)), "name": name}  # the name is the segment's identity
    with board.ws.uow.session() as s:
        segment = service.find(s, name)
        found = segment.version if segment else None
    if found is None:
        return missing(request, user, "segment", name)
    try:
        await run_in_threadpool(_save, board, fields, new=False)
    except BoomerangError as exc:
        return _builder(
            request, user, editing=name, form=fields, version=found, status_code=exc.status_code, errors=exc.errors
        )
    return redirect(f"/segments/{name}")


def _json(body: dict[str, Any], status_code: int) -> JSONResponse:
    response = JSONResponse(body, status_code=status_code)
    response.headers.update(HEADERS)
    return response


@router.post("/segments/preview")
async def preview(request: Request, user: Marketer, board: BoardDep) -> Response:
    """Size, share and a sample of an unsaved rule, as JSON for the builder (CSRF token in X-CSRF-Token)."""
    if not csrf_matches(session_of(request), request.headers.get("x-csrf-token")):
        return _json({"errors": [{"field": "csrf_token", "reason": "missing or stale: reload the page"}]}, 403)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("rule"), str):
        return _json({"errors": [{"field": "rule", "reason": 'send {"rule": "<JSON or YAML text>"}'}]}, 400)
    try:
        as_of = parse_day(str(body.get("as_of") or ""), "as_of")
        definition = {"name": "unsaved", "rule": parse_rule_text(body["rule"])}
        result = await run_in_threadpool(
            lambda: board.ws.segments.preview(definition, as_of=as_of, sample=PREVIEW_SAMPLE)
        )
    except BoomerangError as exc:
        return _json({"errors": exc.errors}, exc.status_code)
    return _json(result, 200)


# -- the matrix ------------------------------------------------------------------------------------


@router.get("/segments/matrix")
def matrix_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    with board.ws.uow.session() as s:
        return render(request, "segments_matrix.html", user=user, m=matrix(s))


# -- one segment -----------------------------------------------------------------------------------


ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def shown(value: Any) -> str:
    """A value seen by explain, as text: moments to the minute (days alone at midnight), short floats, JSON lists."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{round(value, 4):,}"
    if isinstance(value, str) and ISO_MOMENT.fullmatch(value):
        moment = datetime.fromisoformat(value)
        return moment.date().isoformat() if moment.time() == datetime.min.time() else moment.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _with_shown(node: dict[str, Any]) -> dict[str, Any]:
    out = {**node, "children": [_with_shown(c) for c in node.get("children", [])]}
    if node["op"] == "condition":
        out["shown"] = shown(node.get("value"))
    return out


def _explain(board, name: str, who: str, as_of: str | None) -> dict[str, Any]:
    day = parse_day(as_of, "as_of")
    with board.ws.uow.session() as s:
        customer = customers.lookup(s, who)
        if customer is None:
            raise ValidationFailed(
                [{"field": "customer", "reason": f"no customer with the id, external id or email {who.strip()!r}"}]
            )
        label = customer.email or customer.external_id or customer.id
    result = board.ws.segments.explain(name, customer.id, as_of=day)
    return {**result, "rule": _with_shown(result["rule"]), "label": label}


def _segment_page(
    request: Request, user, board, name: str, *, customer: str = "", as_of: str = "", status_code: int = 200, **context
) -> Response:
    with board.ws.uow.session() as s:
        try:
            current = membership.current(s, name)
        except BoomerangError:
            return missing(request, user, "segment", name)
        points = service.history(s, name)
        sample = membership.latest_members(s, name, limit=SAMPLE)
    explained, explain_errors = None, None
    if customer.strip():
        try:
            explained = _explain(board, name, customer, as_of)
        except BoomerangError as exc:
            explain_errors = exc.errors
            status_code = max(status_code, exc.status_code)
    return render(
        request,
        "segment.html",
        user=user,
        segment=current,
        definition=pretty(current["rule"]),
        chart=size_chart(points) if points else None,
        history=points,
        sample=sample,
        customer=customer,
        as_of=as_of,
        explained=explained,
        explain_errors=explain_errors,
        status_code=status_code,
        **context,
    )


@router.get("/segments/{name}")
def segment_page(
    request: Request, name: str, user: Viewer, board: BoardDep, customer: str = "", as_of: str = ""
) -> Response:
    return _segment_page(request, user, board, name, customer=customer, as_of=as_of)
