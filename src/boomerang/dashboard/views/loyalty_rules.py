"""Loyalty, the earn rules: the rules in force in words, a form to change them (no YAML: rows for category and
brand cashback, campaigns, a field per bonus, caps and exclusions), a dry run of the form's rules against a past
period beside the rules in force (as a table and a chart), saving them as a new version, and the versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, redirect, render
from boomerang.loyalty import rule_versions, rules
from boomerang.orchestration import loyalty_dry_run

router = APIRouter()
SPARE_ROWS = 3  # empty rows under the cashback and campaign rows, to add one
DAYS = 90


def form_of(r: rules.EarnRules) -> dict[str, Any]:
    """The form's fields for `r`."""
    return {
        "base_percent": r.base_percent,
        "cashback": [
            {"target": "brand" if c.brand else "category", "name": c.brand or c.category, "percent": c.percent}
            for c in r.cashback
        ],
        "campaigns": [
            {
                "name": c.name,
                "multiplier": c.multiplier,
                "starts": c.starts.strftime("%Y-%m-%d"),
                "ends": c.ends.strftime("%Y-%m-%d"),
                "categories": ", ".join(c.categories),
            }
            for c in r.campaigns
        ],
        "bonuses": {b.kind: b.points for b in r.bonuses},
        "per_order": r.caps.per_order or "",
        "per_day": r.caps.per_day or "",
        "gift_cards": r.exclude.gift_cards,
        "discounted_items": r.exclude.discounted_items,
        "exclude_categories": "\n".join(r.exclude.categories),
        "exclude_skus": "\n".join(r.exclude.skus),
    }


def _rows(form, prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    """The filled rows of a repeated group (`cashback-0-name`...), in order."""
    indices = sorted({int(k.split("-")[1]) for k in form if k.startswith(prefix + "-") and k.split("-")[1].isdigit()})
    rows = [{n: str(form.get(f"{prefix}-{i}-{n}", "")).strip() for n in names} for i in indices]
    return [r for r in rows if any(v for k, v in r.items() if k not in ("target",))]


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def _number(value: str) -> str | None:
    return value.strip() or None


def typed_of(form) -> dict[str, Any]:
    """The form as typed (shown again as it was when it does not make valid rules)."""
    return {
        "base_percent": str(form.get("base_percent", "")),
        "cashback": _rows(form, "cashback", ("target", "name", "percent")),
        "campaigns": _rows(form, "campaign", ("name", "multiplier", "starts", "ends", "categories")),
        "bonuses": {kind: str(form.get(f"bonus-{kind}", "")).strip() for kind in rules.BONUS_TRIGGERS},
        "per_order": str(form.get("per_order", "")),
        "per_day": str(form.get("per_day", "")),
        "gift_cards": form.get("gift_cards") == "on",
        "discounted_items": form.get("discounted_items") == "on",
        "exclude_categories": str(form.get("exclude_categories", "")),
        "exclude_skus": str(form.get("exclude_skus", "")),
    }


def rules_of(typed: dict[str, Any]) -> rules.EarnRules:
    """The rules the typed form describes; ValidationFailed naming each field."""
    raw = {
        "base_percent": _number(typed["base_percent"]),
        "cashback": [
            {"brand" if c["target"] == "brand" else "category": c["name"] or None, "percent": _number(c["percent"])}
            for c in typed["cashback"]
        ],
        "campaigns": [
            {
                "name": c["name"],
                "multiplier": _number(c["multiplier"]),
                "starts": _number(c["starts"]),
                "ends": _number(c["ends"]),
                "categories": _list(c["categories"]),
            }
            for c in typed["campaigns"]
        ],
        "bonuses": [
            {"kind": kind, "points": points} for kind, points in typed["bonuses"].items() if points not in ("", "0")
        ],
        "caps": {"per_order": _number(typed["per_order"]), "per_day": _number(typed["per_day"])},
        "exclude": {
            "gift_cards": typed["gift_cards"],
            "discounted_items": typed["discounted_items"],
            "categories": _list(typed["exclude_categories"]),
            "skus": _list(typed["exclude_skus"]),
        },
    }
    return rules.parse(raw)


def comparison_chart(data: dict[str, Any]) -> dict[str, Any]:
    months = [m["month"] for m in data["current"]["by_month"]]
    return {
        "type": "bar",
        "labels": months,
        "datasets": [
            {
                "label": f"In force (v{data['current_version']})",
                "data": [m["points"] for m in data["current"]["by_month"]],
            },
            {"label": "Proposed", "data": [m["points"] for m in data["proposed"]["by_month"]]},
        ],
    }


def _page(request: Request, user, board, *, form: dict, status_code: int = 200, **extra) -> Response:
    with board.ws.uow.session() as s:
        version, current = rule_versions.current(s, board.ws.settings.loyalty)
        versions = rule_versions.listing(s)
    return render(
        request,
        "loyalty_rules.html",
        user=user,
        status_code=status_code,
        version=version,
        current=current,
        versions=versions,
        form=form,
        kinds=rules.BONUS_TRIGGERS,
        spare=SPARE_ROWS,
        unit=board.ws.settings.loyalty.unit_name,
        **extra,
    )


@router.get("/loyalty/rules")
def rules_page(request: Request, user: Viewer, board: BoardDep, saved: int | None = None) -> Response:
    with board.ws.uow.session() as s:
        _, current = rule_versions.current(s, board.ws.settings.loyalty)
    return _page(request, user, board, form=form_of(current), saved=saved, days=DAYS)


@router.post("/loyalty/rules")
async def rules_post(request: Request, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    days = str(form.get("days", DAYS)).strip()
    typed = typed_of(form)
    try:
        proposed = rules_of(typed)
    except ValidationFailed as exc:
        return _page(request, user, board, form=typed, errors=exc.errors, status_code=400, days=days)
    if form.get("action") == "save":
        with board.ws.uow.session() as s:
            saved = rule_versions.save(
                s, proposed, note=str(form.get("note", ""))[:500], author=user.username, now=board.ws.now()
            )
            s.commit()
        return redirect(f"/loyalty/rules?saved={saved['version']}")
    try:
        period = int(days)
        if not 1 <= period <= loyalty_dry_run.MAX_DAYS:
            raise ValueError
    except ValueError:
        errors = [{"field": "days", "reason": f"a whole number of days, 1 to {loyalty_dry_run.MAX_DAYS}"}]
        return _page(request, user, board, form=typed, errors=errors, status_code=400, days=days)
    until = board.ws.now()
    try:
        data = await run_in_threadpool(
            loyalty_dry_run.run,
            board.ws.uow,
            board.ws.log,
            proposed,
            since=until - timedelta(days=period),
            until=until,
            settings=board.ws.settings.loyalty,
        )
    except BoomerangError as exc:
        return _page(request, user, board, form=typed, errors=exc.errors, status_code=400, days=days)
    return _page(request, user, board, form=typed, dry=data, chart=comparison_chart(data), days=days)
