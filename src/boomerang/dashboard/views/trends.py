"""What the analytics pages share: period names, a chart's incomplete buckets marked (drawn lighter or dashed by
app.js), and a problem worth saying instead of numbers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from boomerang.core.errors import BoomerangError
from boomerang.metrics.periods import Period


def _day(d: date) -> str:
    return f"{d:%b} {d.day}"


def span_label(p: Period) -> str:
    """ "Oct 2026", "Nov 1–5, 2026 (incomplete)", "Dec 7, 2025 – Dec 7, 2026"."""
    whole_month = p.start.day == 1 and (p.end + timedelta(days=1)).day == 1 and p.start.month == p.end.month
    if whole_month and p.start.year == p.end.year:
        text = f"{p.start:%b %Y}"
    elif p.start == p.end:
        text = f"{_day(p.start)}, {p.start.year}"
    elif (p.start.year, p.start.month) == (p.end.year, p.end.month):
        text = f"{_day(p.start)}–{p.end.day}, {p.end.year}"
    elif p.start.year == p.end.year:
        text = f"{_day(p.start)} – {_day(p.end)}, {p.end.year}"
    else:
        text = f"{_day(p.start)}, {p.start.year} – {_day(p.end)}, {p.end.year}"
    return text if p.complete else f"{text} (incomplete)"


def bucket_label(bucket: str, interval: str) -> str:
    """A series bucket as a chart's axis names it: 2026-11 for a month, the first day otherwise."""
    return bucket[:7] if interval == "month" else bucket[:10]


def _bucket_span(start: str, end: date, interval: str) -> str:
    first = date.fromisoformat(start[:10])
    return f"{bucket_label(start, interval)} ({_day(first)}–{_day(end) if end.month != first.month else end.day})"


def marked(chart: dict[str, Any], rows: list[dict[str, Any]], interval: str, to: str) -> dict[str, Any]:
    """The chart with `partial` (one flag per bucket: it does not cover its whole calendar interval) and a note
    naming those buckets, so that a short month is not read as a bad one."""
    partial = [not row.get("complete", True) for row in rows]
    if not any(partial):
        return chart
    ends = [date.fromisoformat(r["bucket"][:10]) - timedelta(days=1) for r in rows[1:]] + [date.fromisoformat(to)]
    named = [_bucket_span(r["bucket"], end, interval) for r, end, p in zip(rows, ends, partial) if p]
    note = f"Incomplete {interval}{'s' if len(named) > 1 else ''}, drawn lighter: {', '.join(named)}."
    return {**chart, "partial": partial, "notes": [*chart.get("notes", []), note]}


def problem_of(exc: BoomerangError) -> tuple[str, int]:
    """What the page says instead of numbers, and its status: bad input (a date, a range) is the asker's error
    and names its field; an empty event log is no error."""
    errors = getattr(exc, "errors", None) or [{"field": exc.field, "reason": exc.message}]
    if all(e.get("field") == "events" for e in errors):
        return exc.message, 200
    return "; ".join(f"{e['field']}: {e['reason']}" if e.get("field") else e["reason"] for e in errors), exc.status_code
