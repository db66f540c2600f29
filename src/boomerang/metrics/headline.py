"""The headline KPIs of a period, each by its own metric's formula, and set against the period before: what the
overview's tiles and the monthly review show. `run(name, params)` runs a metric (the service's `run`, or a
cached one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
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


def measure_both(
    run: Run, current: Period, before: Period | None, *, reach: Period | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]] | None]:
    """`measure` of the period and of the one before (None: nothing to compare with). Two whole calendar months in a
    row, the overview's and the review's default, are each a month of one run over both, which gives the same numbers
    in one query per metric; the retention's from the run by month over `reach` when it covers them (the overview's
    chart asks for that run anyway)."""
    if (
        before is None
        or not (_whole_month(before) and _whole_month(current))
        or before.end + timedelta(1) != current.start
    ):
        return measure(run, current), measure(run, before) if before is not None else None
    both = {"date_from": before.start, "date_to": current.end, "interval": "month"}
    covers = reach is not None and reach.start <= before.start and reach.end >= current.end
    runs = {
        "aov": run("average_order_value", both),
        "activity": run("retention_rate", {**reach.params(), "interval": "month"} if covers else both),
        "nps": run("nps", both),
    }
    return _month_of(runs, current.start), _month_of(runs, before.start)


def _whole_month(p: Period) -> bool:
    return p.complete and p.start.day == 1 and (p.end + timedelta(1)).day == 1 and p.start.month == p.end.month


def _month_of(runs: dict[str, dict[str, Any]], first: date) -> dict[str, dict[str, Any]]:
    """Each run's interval that starts on `first`, as a run of that month alone would answer (its counts as details)."""
    out = {}
    for key, result in runs.items():
        row = next(r for r in result["series"] if date.fromisoformat(str(r["bucket"])[:10]) == first)
        out[key] = {"value": row["value"], "details": {**result["details"], **row}}
    return out


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
