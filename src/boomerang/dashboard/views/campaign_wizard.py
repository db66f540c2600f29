"""A new campaign without writing YAML: audience (a segment, its size and whom each channel reaches), message (a
template, or two for an A/B test), the holdout with the smallest lift it can tell from chance, and when it goes
(when scheduled, at a time in a chosen timezone, or at a time in each customer's own). The definition the form
makes is shown as text beside it, and text may be saved instead. A saved campaign is a draft; scheduling it
shows the summary to confirm (campaigns.confirm_schedule)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.clock import naive_utc
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.dashboard.views.common import BoardDep, Marketer, checked_form, json_answer, redirect, render
from boomerang.dashboard.views.messaging import as_yaml, parse_text
from boomerang.messaging import campaigns, reach, service
from boomerang.segments.service import list_segments

router = APIRouter()
FIELDS = (
    "title",
    "name",
    "segment",
    "template",
    "template_b",
    "share_a",
    "holdout_percent",
    "attribution_days",
    "category",
    "when",
    "at",
    "timezone",
    "local_time",
    "throttle_per_minute",
)
DEFAULTS = {"share_a": "50", "holdout_percent": "10", "attribution_days": "5", "category": "promotional"}
DEFAULTS |= {"when": "schedule", "timezone": "UTC", "local_time": "10:00"}
# where the definition's errors show on the form
FORM_FIELD = {"variants.a.template": "template", "variants.b.template": "template_b", "send_at": "at"}


def _number(form: dict[str, Any], key: str, errors: list[dict], *, whole: bool = False) -> float | int | None:
    text = str(form.get(key) or "").strip()
    if not text:
        return None
    try:
        return int(text) if whole else float(text)
    except ValueError:
        errors.append({"field": key, "reason": "must be a whole number" if whole else "must be a number"})
        return None


def slug(title: str) -> str:
    """A campaign name from its title: lowercase letters, digits and _, starting with a letter."""
    text = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return (text if text[:1].isalpha() else f"c_{text}")[:63].rstrip("_") if text else ""


def definition_of(form: dict[str, Any], channels: list[str]) -> dict[str, Any]:
    """The campaign definition the wizard's fields describe; ValidationFailed naming each bad field."""
    errors: list[dict] = []
    text = {k: str(form.get(k) or "").strip() for k in FIELDS}
    definition: dict[str, Any] = {
        "name": text["name"] or slug(text["title"]),
        "title": text["title"],
        "segment": text["segment"],
        "channels": channels,
        "category": text["category"] or "promotional",
    }
    if not definition["name"]:
        errors.append({"field": "title", "reason": "give the campaign a title (its name is made from it)"})
    for key in ("holdout_percent", "attribution_days"):
        value = _number(text, key, errors)
        if value is not None:
            definition[key] = value
    if text["template_b"]:
        share = _number(text, "share_a", errors)
        share = 50 if share is None else share
        if not 0 < share < 100:
            errors.append({"field": "share_a", "reason": "variant A's share is a percent between 0 and 100"})
        definition["variants"] = [
            {"name": "a", "template": text["template"], "weight": share},
            {"name": "b", "template": text["template_b"], "weight": 100 - share},
        ]
    else:
        definition["template"] = text["template"]
    if text["when"] == "at":
        definition["send_at"] = _moment(text["at"], text["timezone"], errors)
    elif text["when"] == "local":
        definition["local_time"] = text["local_time"]
    elif text["when"] != "schedule":
        errors.append({"field": "when", "reason": "one of: when scheduled, at a time, at a local time"})
    throttle = _number(text, "throttle_per_minute", errors, whole=True)
    if throttle is not None:
        definition["throttle_per_minute"] = throttle
    if errors:
        raise ValidationFailed(errors)
    return definition


def _moment(at: str, zone: str, errors: list[dict]) -> str | None:
    """`at` (a local date and time) in the timezone `zone`, as the UTC time a definition keeps."""
    try:
        tz = ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        errors.append({"field": "timezone", "reason": f"{zone!r} is not a timezone (like Europe/Kyiv)"})
        return None
    try:
        local = datetime.fromisoformat(at)
    except ValueError:
        errors.append({"field": "at", "reason": "a date and time, YYYY-MM-DD HH:MM"})
        return None
    return naive_utc(local.replace(tzinfo=tz)).isoformat(timespec="minutes")


def _on_form(errors: list[dict]) -> list[dict]:
    return [{**e, "field": FORM_FIELD.get(e["field"], e["field"])} for e in errors]


def _page(
    request: Request,
    user,
    board,
    *,
    values: dict[str, str],
    channels: list[str],
    text: str = "",
    status_code: int = 200,
    errors: list[dict] | None = None,
) -> Response:
    if not text:
        try:
            text = as_yaml(definition_of(values, channels))
        except ValidationFailed:
            text = ""
    with board.ws.uow.session() as s:
        segments = list_segments(s)
        templates = [t["name"] for t in service.listing(s)]
    return render(
        request,
        "campaign_form.html",
        user=user,
        values=values,
        chosen=channels,
        text=text,
        segments=segments,
        template_names=templates,
        channels=CHANNELS,
        timezones=sorted(available_timezones()),
        errors=errors,
        invalid={e["field"] for e in errors or []},
        status_code=status_code,
    )


@router.get("/campaigns/new")
def new_form(request: Request, user: Marketer, board: BoardDep, segment: str = "") -> Response:
    values = {**DEFAULTS, "segment": segment}
    return _page(request, user, board, values=values, channels=["email"])


def _save(board, definition: Any) -> str:
    name = definition.get("name") if isinstance(definition, dict) else None
    with board.ws.uow.session() as s:
        if isinstance(name, str) and campaigns.find(s, name) is not None:
            raise ValidationFailed([{"field": "name", "reason": f"a campaign named {name} already exists"}])
        return campaigns.save(s, definition, now=board.ws.now())["name"]


@router.post("/campaigns/new")
async def create(request: Request, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    values = {k: str(form.get(k) or "") for k in FIELDS}
    channels = [c for c in form.getlist("channels") if isinstance(c, str)]
    text = str(form.get("definition") or "")
    try:
        definition = parse_text(text) if form.get("mode") == "text" else definition_of(values, channels)
        name = await run_in_threadpool(_save, board, definition)
    except BoomerangError as exc:
        errors = _on_form(exc.errors)
        return _page(
            request,
            user,
            board,
            values=values,
            channels=channels,
            text=text,
            status_code=exc.status_code,
            errors=errors,
        )
    return redirect(f"/campaigns/{name}")


@router.post("/campaigns/new/text")
async def as_text(request: Request, user: Marketer) -> Response:
    """The definition the wizard's fields make, as text for its text view, or the errors naming the fields (JSON)."""
    form = await checked_form(request)
    values = {k: str(form.get(k) or "") for k in FIELDS}
    channels = [c for c in form.getlist("channels") if isinstance(c, str)]
    try:
        definition = definition_of(values, channels)
        campaigns.parse(definition)
    except BoomerangError as exc:
        return json_answer({"errors": _on_form(exc.errors)}, exc.status_code)
    return json_answer({"text": as_yaml(definition)}, 200)


def _estimate(board, segment: str, channels: list[str], holdout: float, variants: int, days: float) -> dict:
    with board.ws.uow.session() as s:
        found = reach.segment_reach(s, segment, channels)
        share = reach.buying_share(s, segment, days, now=board.ws.now())
    members = found["members"] or 0
    found["buying_share"] = share
    found["detectable_lift"] = None if share is None else reach.detectable_lift(share, members, holdout, variants)
    found["computed_at"] = found["computed_at"].isoformat() if found["computed_at"] else None
    return found


@router.get("/campaigns/audience.json")
async def audience(
    user: Marketer,
    board: BoardDep,
    segment: str = "",
    channels: list[str] = Query(default=[]),
    holdout_percent: float = Query(default=10, ge=0, lt=100),
    variants: int = Query(default=1, ge=1, le=10),
    attribution_days: float = Query(default=5, gt=0, le=90),
) -> Response:
    """The audience of a segment for the wizard: its members, whom each channel reaches, and what the holdout
    can tell (JSON)."""
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        return json_answer({"errors": [{"field": "channels", "reason": f"unknown channel {unknown[0]!r}"}]}, 400)
    found = await run_in_threadpool(_estimate, board, segment, channels, holdout_percent, variants, attribution_days)
    return json_answer(found, 200)
