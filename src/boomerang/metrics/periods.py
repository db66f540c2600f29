"""Which days a headline number covers, and the earlier days it is compared with.

A period asked for may run past the data (this month, five days old): it is cut at the data's last day
and marked incomplete, and it is compared with the same number of days of the period before, so that
five days are never set against a whole month. The period before a run of whole calendar months is
the same number of months before it; before any other run of days, the same number of days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal


@dataclass(frozen=True)
class Period:
    """Days `start` to `end`, both included; `complete` is False when the period asked for ran past the data."""

    start: date
    end: date
    complete: bool = True

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def params(self) -> dict[str, date]:
        return {"date_from": self.start, "date_to": self.end}


def _shift_months(day: date, months: int) -> date:
    month = day.year * 12 + day.month - 1 - months
    return date(month // 12, month % 12 + 1, 1)


def _months(start: date, end: date) -> int:
    """How many whole calendar months [start, end] is, or 0 when it is not a run of whole months."""
    if start.day != 1 or (end + timedelta(days=1)).day != 1:
        return 0
    return (end.year - start.year) * 12 + end.month - start.month + 1


def previous_start(start: date, end: date) -> date:
    """The first day of the period of equal length before [start, end] (in months for whole months)."""
    months = _months(start, end)
    return _shift_months(start, months) if months else start - timedelta(days=(end - start).days + 1)


def within(start: date, end: date, last: date) -> Period:
    """The days asked for, cut at the data's `last` day (then incomplete)."""
    if end <= last:
        return Period(start, end)
    return Period(start, max(start, last), complete=False)


def compared(start: date, end: date, last: date) -> tuple[Period, Period]:
    """The period asked for (cut at `last`) and the one it is compared with: the same days of the period before."""
    current = within(start, end, last)
    before, latest = previous_start(start, end), start - timedelta(days=1)
    if current.complete:
        return current, Period(before, latest)
    return current, Period(before, min(latest, before + timedelta(days=current.days - 1)))


def last_complete_month(first: date, last: date) -> Period | None:
    """The latest calendar month that the data, from day `first` to day `last`, covers whole."""
    month = last.replace(day=1) if (last + timedelta(days=1)).day == 1 else _shift_months(last, 1)
    if month < first:
        return None
    return Period(month, _shift_months(month, -1) - timedelta(days=1))


Better = Literal["up", "down"]


def change(current: float | None, before: float | None, *, better: Better = "up", rate: bool = False) -> dict[str, Any]:
    """How `current` moved from `before`: the difference, the relative change (not for rates, whose
    difference is in points), the direction and whether that direction is good news."""
    if current is None or before is None:
        return {"before": before, "delta": None, "relative": None, "direction": None, "good": None}
    delta = current - before
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    relative = None if rate or not before else delta / abs(before)
    good = None if direction == "flat" else direction == better
    return {"before": before, "delta": delta, "relative": relative, "direction": direction, "good": good}
