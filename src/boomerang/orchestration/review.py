"""The monthly review: a month's headline KPIs against the month before (metrics.headline, the overview's code),
its three biggest funnel leaks (metrics.funnel), what each journey and campaign changed with intervals beside
what last touch credits them (orchestration.incrementality), the segments that grew or shrank most (from their
Segment Entered/Exited events in the log) and what the guards suppressed; with charts, as one JSON-ready dict.

The KPIs and the funnel cover the month cut at the data's last day (then marked incomplete and compared with the
same days of the month before); journeys, campaigns, segments and guards read the operational store's clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from ibis import _

from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.metrics import headline, periods, rolled, source
from boomerang.metrics.periods import Period
from boomerang.orchestration import incrementality, review_store
from boomerang.orchestration.status import summary
from boomerang.segments.definition import ENTERED, EXITED

Run = Callable[[str, dict[str, Any]], dict[str, Any]]
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
SHOWN = 3  # leaks, growers, shrinkers


def parse_month(text: str | None, *, today: date) -> date | None:
    """The first day of the month `YYYY-MM` names (None for none); a clear error naming `month` otherwise."""
    if text is None or text == "":
        return None
    found = MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise ValidationFailed([{"field": "month", "reason": f"{text!r} is not a month: YYYY-MM, e.g. 2026-05"}])
    first = date(int(found.group(1)), int(found.group(2)), 1)
    if first > today:
        raise ValidationFailed(
            [{"field": "month", "reason": f"{text} is in the future (today is {today.isoformat()})"}]
        )
    return first


def month_end(first: date) -> date:
    """The month's last day."""
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def previous_month(today: date) -> date:
    """The first day of the month before `today`'s."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def _data_days(status: dict[str, Any]) -> tuple[date, date]:
    events = status["events"]
    if not events["last"]:
        raise ValidationFailed([{"field": "events", "reason": "the event log is empty"}])
    return date.fromisoformat(events["first"][:10]), date.fromisoformat(events["last"][:10])


def build(
    uow: UnitOfWork,
    log: EventLog,
    *,
    month: date | None,
    global_control_share: float,
    run: Run | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The review of `month` (its first day), or of the data's last whole month when None."""
    run = run or (lambda name, params: rolled.answer(uow, log, name, params))
    status = status or summary(uow, log)
    first, last = _data_days(status)
    if month is None:
        whole = periods.last_complete_month(first, last)
        if whole is None:
            raise ValidationFailed([{"field": "month", "reason": "the data holds no whole month yet: name one"}])
        month = whole.start
    end = month_end(month)
    current, before = periods.compared(month, end, last)
    comparable = before.start >= first
    measured = headline.measure_both(run, current, before if comparable else None)
    now, then = headline.values(measured[0]), headline.values(measured[1]) if comparable else None
    funnel = run("funnel", {**current.params(), "series": False, "categories": False})  # steps and leaks alone
    since, until = (
        datetime.combine(month, datetime.min.time()),
        datetime.combine(end + timedelta(days=1), datetime.min.time()),
    )
    with uow.session() as session:
        tests = incrementality.overview(
            session,
            global_control_share=global_control_share,
            now=until,
            days=(until - since).days,
            entered_in_period=True,
        )
        guards = review_store.suppressed(session, since=since, until=until)
        titles = review_store.segment_titles(session)
    segments = segment_changes(log, since=since, until=until, titles=titles)
    days = run("average_order_value", {"date_from": before.start, "date_to": current.end, "interval": "day"})
    daily = {
        p: [r for r in days["series"] if p.start <= date.fromisoformat(r["bucket"][:10]) <= p.end]
        for p in (current, before)
    }
    out = {
        "month": month.strftime("%Y-%m"),
        "period": {"label": _label(current), "complete": current.complete, **_days(current)},
        "before": {"label": _label(before), "comparable": comparable, **_days(before)},
        "last_day": last.isoformat(),
        "kpis": headline.tiles(status, now, then),
        "funnel": {
            "steps": funnel["steps"],
            "leaks": funnel["leaks"][:SHOWN],
            "still_open": funnel["details"]["still_open"],
        },
        "tests": [_test(t) for t in tests["tests"] if t["kind"] in ("journey", "campaign")],
        "attribution": {k: tests["attribution"][k] for k in ("orders", "revenue", "by_source", "months")},
        "segments": segments,
        "guards": guards,
    }
    out["charts"] = charts(out, daily[current], daily[before] if comparable else [])
    return out


def _days(p: Period) -> dict[str, str]:
    return {"date_from": p.start.isoformat(), "date_to": p.end.isoformat()}


def _label(p: Period) -> str:
    if p.start.day == 1 and p.end == month_end(p.start):
        return p.start.strftime("%B %Y")
    return f"{p.start.isoformat()} to {p.end.isoformat()}"


def _test(t: dict[str, Any]) -> dict[str, Any]:
    """A journey or campaign: its first comparison against its own control (the holdout), and what last touch
    credits it with in the month."""
    first = t["comparisons"][0] if t["comparisons"] else None
    inc = first.get("incremental_revenue") if first else None
    attributed = t.get("attributed") or {}
    return {
        "kind": t["kind"],
        "name": t["name"],
        "title": t["title"],
        "status": t["status"],
        "link": t["link"],
        "units": t["units"],
        "compared": f"{first['treated']} vs {first['baseline']}" if first else None,
        "incremental_revenue": inc,
        "verdict": first["verdict"] if first else "not enough data",
        "says": first["says"] if first else "No one has entered yet.",
        "attributed_revenue": attributed.get("revenue"),
        "attributed_orders": attributed.get("orders"),
        "sample_ratio_alarm": bool((t.get("sample_ratio") or {}).get("alarm")),
    }


def segment_changes(log: EventLog, *, since: datetime, until: datetime, titles: dict[str, str]) -> dict[str, Any]:
    """Each segment's size at the month's start and end, counted from its Segment Entered/Exited events (every
    change of membership writes one), and the segments that grew and shrank most. Read from the log's count of them
    per day (`r.segment_changes`) when the period runs midnight to midnight, else from the events."""
    with log.reader() as r:
        kept = r.segment_changes
        if kept is not None and since.time() == until.time() == datetime.min.time():
            e = kept.filter(kept.day < until.date()).mutate(earlier=kept.day < since.date())
            n = e.events.sum()
        else:
            e = r.events.filter(r.events.event.isin([ENTERED, EXITED]) & (r.events.timestamp < until))
            e = e.mutate(segment=source.text(e, "segment"), earlier=e.timestamp < since)
            n = e.count()
        frame = (
            e.group_by(["segment", "event", "earlier"])
            .aggregate(n=n)
            .filter(_.segment.notnull())
            .order_by(["segment", "event", "earlier"])
            .execute()
        )
    sizes: dict[str, dict[str, int]] = {}
    for name, event, earlier, n in zip(frame["segment"], frame["event"], frame["earlier"], frame["n"]):
        row = sizes.setdefault(name, {"start": 0, "entered": 0, "exited": 0})
        sign = 1 if event == ENTERED else -1
        if earlier:
            row["start"] += sign * int(n)
        else:
            row["entered" if sign > 0 else "exited"] += int(n)
    rows = []
    for name, s in sorted(sizes.items()):
        end = s["start"] + s["entered"] - s["exited"]
        change = end - s["start"]
        relative = round(change / s["start"], 4) if s["start"] else None
        rows.append(
            {"segment": name, "title": titles.get(name, name), **s, "end": end, "change": change, "relative": relative}
        )
    moved = [r for r in rows if r["change"]]
    return {
        "grew": sorted((r for r in moved if r["change"] > 0), key=lambda r: (-r["change"], r["segment"]))[:SHOWN],
        "shrank": sorted((r for r in moved if r["change"] < 0), key=lambda r: (r["change"], r["segment"]))[:SHOWN],
        "all": rows,
    }


def charts(review: dict[str, Any], daily: list[dict[str, Any]], daily_before: list[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard's Chart.js specs (static/app.js draws them)."""
    days = max(len(daily), len(daily_before))
    revenue = {
        "type": "line",
        "labels": [str(d + 1) for d in range(days)],
        "datasets": [
            {"label": review["period"]["label"], "data": [row.get("revenue") for row in daily]},
            {
                "label": review["before"]["label"],
                "data": [row.get("revenue") for row in daily_before],
                "borderDash": [4, 4],
            },
        ],
    }
    funnel = {
        "type": "bar",
        "labels": [s["step"] for s in review["funnel"]["steps"]],
        "datasets": [{"label": "Customers", "data": [s["customers"] for s in review["funnel"]["steps"]]}],
    }
    tests = [t for t in review["tests"] if t["incremental_revenue"]]
    incremental = {
        "type": "bar",
        "labels": [t["title"] for t in tests],
        "datasets": [
            {"label": "Incremental revenue", "data": [t["incremental_revenue"]["effect"] for t in tests]},
            {
                "label": "Low",
                "type": "line",
                "showLine": False,
                "data": [t["incremental_revenue"]["low"] for t in tests],
            },
            {
                "label": "High",
                "type": "line",
                "showLine": False,
                "data": [t["incremental_revenue"]["high"] for t in tests],
            },
            {"label": "Attributed (last touch)", "data": [t["attributed_revenue"] or 0 for t in tests]},
        ],
    }
    moved = review["segments"]["grew"] + review["segments"]["shrank"]
    segments = {
        "type": "bar",
        "labels": [s["title"] for s in moved],
        "datasets": [{"label": "Members gained or lost", "data": [s["change"] for s in moved]}],
    }
    guards = {
        "type": "bar",
        "labels": [g["guard"] for g in review["guards"]["by_guard"]],
        "datasets": [{"label": "Messages suppressed", "data": [g["messages"] for g in review["guards"]["by_guard"]]}],
    }
    return {"revenue": revenue, "funnel": funnel, "incremental": incremental, "segments": segments, "guards": guards}
