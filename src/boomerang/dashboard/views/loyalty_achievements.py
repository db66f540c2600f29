"""Achievements: the list with how many customers earned each (and a chart), a form to add or edit one without
writing YAML, and turning one on, off or into the archive. The domain does the work
(`loyalty.achievements_store`), as for the API and the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, redirect, render
from boomerang.loyalty import achievements_store as store
from boomerang.loyalty.achievements_rules import describe, from_fields

router = APIRouter()
PAGE = "/loyalty/achievements"
FORM_FIELDS = (
    "key",
    "title",
    "badge",
    "description",
    "points",
    "event",
    "where",
    "count",
    "distinct",
    "within_days",
    "once_per",
    "valid_from",
    "valid_until",
)
LABELS = {
    "key": "Key",
    "title": "Title",
    "badge": "Badge",
    "description": "Description",
    "points": "Points",
    "active": "On",
    "valid_from": "Counts from",
    "valid_until": "Counts until",
    "condition.event": "Event",
    "condition.where": "Only where",
    "condition.count": "How many",
    "condition.distinct": "Distinct values of",
    "condition.within_days": "Within days",
    "condition.once_per": "Once per",
}
EVENTS = ("Order Completed", "Product Reviewed", "NPS Survey Answered", "Product Viewed", "Signed Up", "$identify")
DONE = {
    "saved": "Saved.",
    "on": "Turned on: events from now count towards it.",
    "off": "Turned off: events no longer count; badges earned stay.",
    "archived": "Archived: it counts no more; badges earned stay.",
}
EMPTY = {"badge": "🏅", "points": "50", "event": "Order Completed", "count": "1", "kind": "count"}


def chart(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Customers who earned each achievement, and those on their way, as a Chart.js bar chart."""
    return {
        "type": "bar",
        "labels": [f"{a['badge']} {a['title']}" for a in items],
        "datasets": [
            {"label": "Earned", "data": [a["earned"] for a in items]},
            {"label": "On the way", "data": [a["in_progress"] for a in items]},
        ],
    }


def _values(a: dict[str, Any]) -> dict[str, Any]:
    """An achievement as the form shows it."""
    c = a["condition"]
    return {
        **{f: a.get(f) or "" for f in ("key", "title", "badge", "description")},
        "points": a["points"],
        "event": c["event"],
        "where": ", ".join(f"{k}={v}" for k, v in (c.get("where") or {}).items()),
        "count": c["count"],
        "distinct": c.get("distinct") or "",
        "within_days": c.get("within_days") or "",
        "once_per": c.get("once_per") or "",
        "valid_from": (a["valid_from"] or "")[:16],
        "valid_until": (a["valid_until"] or "")[:16],
        "active": a["active"],
        "kind": "distinct" if c.get("distinct") else "count",
    }


def _page(request: Request, user, board, *, status_code: int = 200, **context: Any) -> Response:
    with board.ws.uow.session() as s:
        items = store.catalogue(s)
        editing = context.pop("editing", None)
        values = context.pop("values", None)
        if values is None:
            values = _values(store.show(s, editing)) if editing else dict(EMPTY)
    shown = [dict(a, rule=describe(a["condition"])) for a in items]
    return render(
        request,
        "loyalty_achievements.html",
        user=user,
        achievements=shown,
        chart=chart([a for a in items if a["stored"]]),
        values=values,
        editing=editing,
        events=EVENTS,
        status_code=status_code,
        **context,
    )


@router.get(PAGE)
def achievements_page(request: Request, user: Viewer, board: BoardDep, edit: str = "", done: str = "") -> Response:
    try:
        return _page(request, user, board, editing=edit or None, done=DONE.get(done))
    except BoomerangError as exc:
        return _page(request, user, board, status_code=exc.status_code, errors=_labelled(exc.errors))


def _labelled(errors: list[dict]) -> list[dict]:
    return [{**e, "label": LABELS.get(e.get("field") or "", e.get("field") or "form")} for e in errors]


def spec_of(form: Any) -> dict[str, Any]:
    """The form's fields as a definition: a count of events, or of distinct values."""
    fields = {name: str(form.get(name) or "") for name in FORM_FIELDS}
    if form.get("kind") == "distinct":
        fields.update(within_days="", once_per="")
    else:
        fields["distinct"] = ""
    return from_fields(fields) | {"active": form.get("active") == "on"}


@router.post(PAGE)
async def save(request: Request, user: Marketer, board: BoardDep) -> Response:
    """A new achievement, or (with `original`) the edit of one."""
    form = await checked_form(request)
    original = str(form.get("original") or "")
    spec = spec_of(form)

    def run() -> None:
        with board.ws.uow.session() as s:
            if original:
                store.update(s, original, {**spec, "key": original}, now=board.ws.now())
            else:
                store.create(s, spec, now=board.ws.now())

    try:
        await run_in_threadpool(run)
    except BoomerangError as exc:
        values = {name: str(form.get(name) or "") for name in (*FORM_FIELDS, "kind")} | {"active": spec["active"]}
        errors = _labelled(exc.errors)
        return _page(
            request,
            user,
            board,
            status_code=exc.status_code,
            errors=errors,
            invalid={e["field"].removeprefix("condition.") for e in errors if e.get("field")},
            values=values | ({"key": original} if original else {}),
            editing=original or None,
        )
    return redirect(f"{PAGE}?done=saved")


async def _act(request: Request, user, board, key: str, done: str, act) -> Response:
    await checked_form(request)

    def run() -> None:
        with board.ws.uow.session() as s:
            act(s)

    try:
        await run_in_threadpool(run)
    except BoomerangError as exc:
        return _page(request, user, board, status_code=exc.status_code, errors=_labelled(exc.errors))
    return redirect(f"{PAGE}?done={done}")


@router.post(PAGE + "/{key}/activate")
async def activate(request: Request, key: str, user: Marketer, board: BoardDep) -> Response:
    return await _act(request, user, board, key, "on", lambda s: store.set_active(s, key, True, now=board.ws.now()))


@router.post(PAGE + "/{key}/deactivate")
async def deactivate(request: Request, key: str, user: Marketer, board: BoardDep) -> Response:
    return await _act(request, user, board, key, "off", lambda s: store.set_active(s, key, False, now=board.ws.now()))


@router.post(PAGE + "/{key}/archive")
async def archive(request: Request, key: str, user: Marketer, board: BoardDep) -> Response:
    return await _act(request, user, board, key, "archived", lambda s: store.archive(s, key, now=board.ws.now()))
