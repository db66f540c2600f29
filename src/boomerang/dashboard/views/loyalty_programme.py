"""Loyalty tiers and the programme's settings: the tiers as defined and how many customers hold each, the latest
tier changes (`Loyalty Tier Changed` events), the customers in their grace, the tier review on demand, and the
settings the environment gives the programme (read-only: BOOMERANG_LOYALTY__...)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.config import LoyaltySettings
from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, redirect, render
from boomerang.events import debugger, effects
from boomerang.loyalty import tiers

router = APIRouter()
CHANGES = 20  # latest tier changes shown
GRACE = 50  # customers in their grace shown
ENV = "BOOMERANG_LOYALTY__"
_REVIEWED = re.compile(r"^(\d{1,9})-(\d{1,9})-(\d{1,9})$")


def _days(value: float) -> str:
    return f"{value:g} day" + ("" if value == 1 else "s")


# The settings the programme page lists, in order: (field of LoyaltySettings, label, how its value reads).
SETTINGS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("unit_name", "Name of the unit", str),
    ("point_value", "What one unit pays", lambda v: f"{v:,.2f} of an order, in the shop's currency"),
    ("cashback_percent", "Cashback", lambda v: f"{v:g} % of an order's paid amount"),
    ("pending_days", "Pending", lambda v: f"{_days(v)} after the order" if v else "spendable at once"),
    ("expiry_days", "Expiry", lambda v: f"{_days(v)} after becoming spendable" if v else "never"),
    ("max_redeem_share", "Most of an order points may pay", lambda v: f"{v * 100:g} %"),
    ("hold_ttl_minutes", "Checkout hold lasts", lambda v: f"{v:g} minutes"),
    ("tier_period_days", "Tier qualification period", lambda v: f"the last {_days(v)}"),
    ("tier_grace_days", "Tier grace", lambda v: f"{_days(v)} below a tier before moving down"),
    ("expiry_notice_days", "Expiry notice", lambda v: f"{_days(v)} before points expire" if v else "not announced"),
)


def programme_rows(settings: LoyaltySettings) -> list[dict[str, Any]]:
    """Each setting as the page shows it: label, value as it reads, its variable, what it does, default or not."""
    fields = LoyaltySettings.model_fields
    return [
        {
            "name": name,
            "label": label,
            "value": shown(getattr(settings, name)),
            "variable": ENV + name.upper(),
            "description": fields[name].description or "",
            "default": getattr(settings, name) == fields[name].default,
        }
        for name, label, shown in SETTINGS
    ]


def tiers_json(settings: LoyaltySettings) -> str:
    """The tiers as BOOMERANG_LOYALTY__TIERS takes them (what is set now, defaults left out)."""
    return json.dumps([t.model_dump(exclude_defaults=True) for t in settings.tiers], indent=2, ensure_ascii=False)


def qualifying(tier: dict[str, Any], unit_spend: str = "paid") -> str:
    """How a tier is reached, in words."""
    ways = []
    if tier["min_spend"]:
        ways.append(f"{tier['min_spend']:,.2f} {unit_spend}")
    if tier["min_orders"]:
        ways.append(f"{tier['min_orders']:,} order" + ("" if tier["min_orders"] == 1 else "s"))
    return " or ".join(ways) if ways else "everyone"


def benefits(tier: dict[str, Any]) -> list[str]:
    given = tier.get("benefits") or {}
    out = ["free shipping"] if given.get("free_shipping") else []
    if given.get("birthday_gift"):
        out.append(f"birthday: {given['birthday_gift']}")
    return out


# -- tiers -----------------------------------------------------------------------------------------


def _changes(board) -> tuple[list[dict[str, Any]], str | None]:
    """The latest tier changes, from the events loyalty wrote (still in the inbox or in the log)."""
    filters = debugger.Filters(event=tiers.CHANGED, source="all")
    try:
        with board.ws.uow.session() as s:
            rows, _ = debugger.latest(s, board.ws.log, filters, limit=CHANGES)
    except BoomerangError as exc:
        return [], exc.message
    out = []
    for row in rows:
        props = row["properties"] if isinstance(row["properties"], dict) else {}
        out.append(
            {
                "at": row["timestamp"],
                "customer_id": row["customer_id"],
                "from": props.get("from"),
                "to": props.get("to"),
                "direction": props.get("direction"),
                "spend": props.get("spend"),
                "orders": props.get("orders"),
            }
        )
    return out, None


def _tiers_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    settings = board.ws.settings.loyalty
    with board.ws.uow.session() as s:
        levels = tiers.distribution(s, settings)
        grace, in_grace = tiers.in_grace(s, settings, limit=GRACE)
    counted = sum(t["customers"] for t in levels)
    for t in levels:
        t.update(
            qualifying=qualifying(t), benefit_list=benefits(t), share=t["customers"] / counted if counted else None
        )
    changes, changes_problem = _changes(board)
    chart = {
        "type": "bar",
        "labels": [t["name"] for t in levels],
        "datasets": [{"label": "Customers", "data": [t["customers"] for t in levels]}],
    }
    return render(
        request,
        "loyalty_tiers.html",
        user=user,
        settings=settings,
        levels=levels,
        counted=counted,
        chart=chart,
        changes=changes,
        changes_problem=changes_problem,
        grace=grace,
        in_grace=in_grace,
        status_code=status_code,
        **context,
    )


@router.get("/loyalty/tiers")
def tiers_page(request: Request, user: Viewer, board: BoardDep, reviewed: str = "") -> Response:
    found = _REVIEWED.match(reviewed)
    done = dict(zip(("up", "down", "expiring"), map(int, found.groups()), strict=True)) if found else None
    return _tiers_page(request, user, board, reviewed=done)


def _review(board) -> dict[str, int]:
    return tiers.review_round(
        board.ws.uow,
        board.ws.now(),
        spending=effects.order_spending,
        emit=effects.log_loyalty_notices,
        settings=board.ws.settings.loyalty,
    )


@router.post("/loyalty/tiers/review")
async def review(request: Request, user: Marketer, board: BoardDep) -> Response:
    """The scheduled tier review, now: recounts, moves down those whose grace is over, announces expiring points."""
    await checked_form(request)
    try:
        done = await run_in_threadpool(_review, board)
    except BoomerangError as exc:
        return _tiers_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"/loyalty/tiers?reviewed={done['up']}-{done['down']}-{done['expiring']}")


# -- the programme ---------------------------------------------------------------------------------


@router.get("/loyalty/programme")
def programme_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    settings = board.ws.settings.loyalty
    levels = [t.model_dump() for t in settings.tiers]
    for t in levels:
        t.update(qualifying=qualifying(t), benefit_list=benefits(t))
    return render(
        request,
        "loyalty_programme.html",
        user=user,
        rows=programme_rows(settings),
        levels=levels,
        tiers_variable=ENV + "TIERS",
        tiers_value=tiers_json(settings),
        settings=settings,
    )
