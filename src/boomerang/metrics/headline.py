"""The headline KPIs of a period, each by its own metric's formula, and set against the period before: what the
overview's tiles and the monthly review show. `run(name, params)` runs a metric (the service's `run`, or a
cached one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from boomerang.metrics import periods
from boomerang.metrics.base import REGISTRY, as_json
from boomerang.metrics.periods import Period

Run = Callable[[str, dict[str, Any]], dict[str, Any]]


def measure(run: Run, p: Period) -> dict[str, dict[str, Any]]:
    """The three metric runs the headline numbers come from."""
    params = p.params()
    return {
        "aov": run("average_order_value", {**params, "interval": "month"}),
        "activity": run("retention_rate", {**params, "interval": "month"}),
        "nps": run("nps", {**params, "interval": "month"}),
    }


def values(m: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline numbers from three metric runs, each by its metric's own formula."""
    aov, activity, nps = m["aov"]["details"], m["activity"]["details"], m["nps"]
    known = activity.get("full_history", True)  # else those active at the start are not all known yet
    return {
        "new": activity.get("new"),
        "orders": aov.get("orders"),
        "revenue": aov.get("revenue"),
        "aov": m["aov"]["value"],
        "repeat": as_json(REGISTRY["repeat_purchase_rate"].value(aov)) if aov.get("customers") else None,
        "retention": m["activity"]["value"] if known else None,
        "churn": as_json(REGISTRY["churn_rate"].value(activity)) if known else None,
        "known": known,
        "nps": nps["value"],
        "answers": nps["details"].get("answers"),
        "window": activity.get("window_days"),
    }


def tile(label: str, value, before, *, kind: str, better: periods.Better = "up", hint: str = "") -> dict[str, Any]:
    rate = kind in ("pct", "points")  # rates move in points, not in percent of themselves
    change = periods.change(value, before, better=better, rate=rate)
    return {"label": label, "value": value, "kind": kind, "hint": hint, "change": change}


def tiles(status: dict[str, Any], now: dict[str, Any], then: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The KPI tiles: this period's values against those of the period before (None: no whole one in the data)."""
    was = then or {}
    customers = status["customers"]
    activity_hint = f"{now['window']}-day window"
    if not now["known"]:
        activity_hint = f"needs {now['window']} days of purchases before the period"
    shown = [
        {
            "label": "Customers",
            "value": customers["total"],
            "kind": "num",
            "hint": f"all time: {customers['identified']:,} identified, {customers['anonymous']:,} anonymous",
            "change": None,
        },
        tile("New customers", now["new"], was.get("new"), kind="num", hint="first purchase in the period"),
        tile("Orders", now["orders"], was.get("orders"), kind="num"),
        tile("Revenue", now["revenue"], was.get("revenue"), kind="money", hint="orders' value, before refunds"),
        tile("Average order value", now["aov"], was.get("aov"), kind="money"),
        tile("Repeat purchase rate", now["repeat"], was.get("repeat"), kind="pct", hint="bought twice in the period"),
        tile("Retention rate", now["retention"], was.get("retention"), kind="pct", hint=activity_hint),
        tile("Churn rate", now["churn"], was.get("churn"), kind="pct", better="down", hint=activity_hint),
        tile("NPS", now["nps"], was.get("nps"), kind="points", hint=f"{now['answers'] or 0:,} answers"),
    ]
    if then is None:  # no whole earlier period in the data: the page says so once, the tiles set nothing against it
        for t in shown:
            t["change"] = None
    return shown
