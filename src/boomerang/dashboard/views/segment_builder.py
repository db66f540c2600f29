"""The segment builder: condition rows over the shop's own vocabulary beside the rule's text, its live preview,
saving (which counts the members at once), and the JSON the rows need (vocabulary, text read as a rule)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from boomerang.core import documents
from boomerang.core.errors import BoomerangError, LogBusy, ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.dashboard.auth import csrf_matches
from boomerang.dashboard.views.common import (
    BoardDep,
    Marketer,
    checked_form,
    json_answer,
    missing,
    parse_day,
    render,
    session_of,
)
from boomerang.dashboard.views.segment_explain import explain
from boomerang.dashboard.views.segment_notices import outcome, redirect_with
from boomerang.segments import membership, service, vocabulary
from boomerang.segments.definition import KEYS, MEASURES, NO_VALUE, OPERATORS, RULE_FIELDS, TRAITS, parse_rule

router = APIRouter()
MAX_RULE = 20_000  # characters of rule text
PREVIEW_SAMPLE = 10
VOCABULARY_TTL = 300.0  # seconds the shop's vocabulary is reused though the log changed (it changes slowly)
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
    "no_value": sorted(NO_VALUE),
}
_cache: dict[str, tuple[tuple, float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def parse_rule_text(text: str) -> Any:
    """The rule from the builder's textarea, JSON or YAML; a problem is a ValidationFailed naming `rule`."""
    if not text.strip():
        raise ValidationFailed([{"field": "rule", "reason": 'write a rule, such as {"event": "Order Completed"}'}])
    if len(text) > MAX_RULE:
        raise ValidationFailed([{"field": "rule", "reason": f"at most {MAX_RULE:,} characters"}])
    return documents.read(text, field="rule")


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def shop_vocabulary(board) -> dict[str, Any]:
    """What the rows offer: the shop's events, properties, values, attributes and traits (from the log, reused
    while the log is unchanged or for VOCABULARY_TTL), its segments, channels, profile fields and the operators."""
    log = board.ws.log
    key, mark = str(log.path), log.fingerprint()
    with _cache_lock:
        found = _cache.get(key)
    if found is None or (found[0] != mark and time.monotonic() - found[1] > VOCABULARY_TTL):
        try:
            found = (mark, time.monotonic(), vocabulary.read(log))
        except LogBusy:  # another process holds the log: the rows still work, with fewer suggestions
            found = (None, 0.0, {"events": [], "attributes": [], "fields": {}, "traits": vocabulary.traits_only()})
        else:
            with _cache_lock:
                _cache[key] = found
    with board.ws.uow.session() as s:
        segments = [{"name": g["name"], "title": g["title"], "size": g["size"]} for g in service.list_segments(s)]
    return {**REFERENCE, **found[2], "segments": segments}


def _builder(
    request: Request,
    user,
    board,
    *,
    editing: str | None,
    form: dict[str, str],
    version: int | None = None,
    status_code: int = 200,
    errors: list[dict] | None = None,
) -> Response:
    try:
        initial = parse_rule_text(form["rule"])
        parse_rule(initial)
    except BoomerangError:
        initial = None  # the rows start from the text once it reads as a rule
    return render(
        request,
        "segment_form.html",
        user=user,
        editing=editing,
        form=form,
        version=version,
        errors=errors,
        reference=REFERENCE,
        vocabulary=shop_vocabulary(board),
        initial=initial,
        status_code=status_code,
    )


def _submitted(form) -> dict[str, str]:
    return {key: str(form.get(key) or "") for key in ("name", "title", "description", "rule")}


def _save(board, fields: dict[str, str], *, new: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Save the definition, then count its members (a preview's number is what the saved segment shows)."""
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
        saved = service.save(s, definition, now=board.ws.now())
    return saved, membership.refresh(board.ws.segments, [saved["name"]])


def _saved(request: Request, saved: dict[str, Any], results: list[dict[str, Any]]) -> Response:
    notice = {**outcome(results), "saved": saved["version"], "changed": saved["changed"]}
    return redirect_with(f"/segments/{saved['name']}", request, notice)


def suggested(rule: dict[str, Any], name: str, title: str) -> str:
    """The builder opened with `rule` under a suggested name and title: it shows the live size, then saves it."""
    return "/segments/new?" + urlencode({"name": name, "title": title, "rule": json.dumps(rule, ensure_ascii=False)})


@router.get("/segments/new")
def new_form(
    request: Request,
    user: Marketer,
    board: BoardDep,
    name: str = "",
    title: str = "",
    description: str = "",
    rule: str = "",
) -> Response:
    """The builder, empty but for an example, or opened with a suggested rule, name and title (the analytics
    pages link here with the rule of the customers they counted)."""
    text = rule[:MAX_RULE] if rule.strip() else pretty(EXAMPLE)
    try:
        text = pretty(json.loads(text))  # a rule given as compact JSON reads better spread out
    except ValueError:
        pass
    form = {"name": name[:63], "title": title[:200], "description": description[:2000], "rule": text}
    return _builder(request, user, board, editing=None, form=form)


@router.post("/segments/new")
async def create(request: Request, user: Marketer, board: BoardDep) -> Response:
    fields = _submitted(await checked_form(request))
    try:
        saved, results = await run_in_threadpool(_save, board, fields, new=True)
    except BoomerangError as exc:
        return await run_in_threadpool(
            _builder, request, user, board, editing=None, form=fields, status_code=exc.status_code, errors=exc.errors
        )
    return _saved(request, saved, results)


@router.get("/segments/vocabulary.json")
def vocabulary_json(request: Request, user: Marketer, board: BoardDep) -> Response:
    """The builder's choices, as JSON."""
    return json_answer(shop_vocabulary(board), 200)


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
    return _builder(request, user, board, editing=name, form=form, version=version)


@router.post("/segments/{name}/edit")
async def update(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    fields = {**_submitted(await checked_form(request)), "name": name}  # the name is the segment's identity
    with board.ws.uow.session() as s:
        segment = service.find(s, name)
        found = segment.version if segment else None
    if found is None:
        return missing(request, user, "segment", name)
    try:
        saved, results = await run_in_threadpool(_save, board, fields, new=False)
    except BoomerangError as exc:
        return await run_in_threadpool(
            _builder,
            request,
            user,
            board,
            editing=name,
            form=fields,
            version=found,
            status_code=exc.status_code,
            errors=exc.errors,
        )
    return _saved(request, saved, results)


async def _json_body(request: Request) -> tuple[dict[str, Any] | None, JSONResponse | None]:
    """The request's JSON object with a rule text, after the CSRF check; or the JSON error to answer with."""
    if not csrf_matches(session_of(request), request.headers.get("x-csrf-token")):
        return None, json_answer(
            {"errors": [{"field": "csrf_token", "reason": "missing or stale: reload the page"}]}, 403
        )
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("rule"), str):
        return None, json_answer({"errors": [{"field": "rule", "reason": 'send {"rule": "<JSON or YAML text>"}'}]}, 400)
    return body, None


@router.post("/segments/preview")
async def preview(request: Request, user: Marketer, board: BoardDep) -> Response:
    """Size, share and a sample of an unsaved rule, as JSON for the builder (CSRF token in X-CSRF-Token)."""
    body, refused = await _json_body(request)
    if refused is not None:
        return refused
    try:
        as_of = parse_day(str(body.get("as_of") or ""), "as_of")
        definition = {"name": "unsaved", "rule": parse_rule_text(body["rule"])}
        result = await run_in_threadpool(
            lambda: board.ws.segments.preview(definition, as_of=as_of, sample=PREVIEW_SAMPLE)
        )
    except BoomerangError as exc:
        return json_answer({"errors": exc.errors}, exc.status_code)
    return json_answer(result, 200)


@router.post("/segments/parse")
async def parse(request: Request, user: Marketer) -> Response:
    """The rule text (JSON or YAML) read and checked, as JSON data for the rows; or the errors naming the field."""
    body, refused = await _json_body(request)
    if refused is not None:
        return refused
    try:
        rule = parse_rule_text(body["rule"])
        parse_rule(rule)
    except BoomerangError as exc:
        return json_answer({"errors": exc.errors}, exc.status_code)
    return json_answer({"rule": rule}, 200)


@router.post("/segments/explain")
async def explain_unsaved(request: Request, user: Marketer, board: BoardDep) -> Response:
    """Why a customer is in or out of the unsaved rule, condition by condition (JSON; CSRF token in X-CSRF-Token)."""
    body, refused = await _json_body(request)
    if refused is not None:
        return refused
    who = body.get("customer")
    if not isinstance(who, str) or not who.strip():
        return json_answer(
            {"errors": [{"field": "customer", "reason": "give a customer's id, external id or email"}]}, 400
        )
    try:
        definition = {"name": "unsaved", "rule": parse_rule_text(body["rule"])}
        result = await run_in_threadpool(explain, board, definition, who, str(body.get("as_of") or ""))
    except BoomerangError as exc:
        return json_answer({"errors": exc.errors}, exc.status_code)
    return json_answer(result, 200)
