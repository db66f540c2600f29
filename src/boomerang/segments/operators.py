"""A rule's operators as tests of Ibis values (eq, gte, in, contains, within_last_days...), and whether a constant
passes one (the value of the customers a condition did not see)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import ibis


def compare(v: ibis.Value, op: str, value: Any, kind: str, *, as_of: datetime) -> ibis.Value:
    """`v op value` for a value of this kind (text, number, date, list...); days counted back or on from `as_of`."""
    if op == "exists":
        return v.notnull()
    if op == "not_exists":
        return v.isnull()
    if kind == "date":
        return _date(v, op, value, as_of)
    if kind == "list":
        if op == "is_empty":
            return v.length() == 0
        return v.contains(str(value)) if op == "contains" else ~v.contains(str(value))
    if kind == "number":
        value = [_number(x) for x in value] if isinstance(value, list) else _number(value)
    simple = {"eq": v.__eq__, "ne": v.__ne__, "gt": v.__gt__, "gte": v.__ge__, "lt": v.__lt__, "lte": v.__le__}
    if op in simple:
        return simple[op](value)
    if op == "in":
        return v.isin(value)
    if op == "not_in":
        return ~v.isin(value)
    if op == "between":
        return v.between(*value)
    if op == "contains":
        return v.contains(str(value))
    if op == "starts_with":
        return v.startswith(str(value))
    if op == "ends_with":
        return v.endswith(str(value))
    raise ValueError(f"operator {op!r} is not known")


def _date(v: ibis.Value, op: str, value: Any, as_of: datetime) -> ibis.Value:
    day = lambda x: datetime.combine(date.fromisoformat(str(x)[:10]), datetime.min.time())  # noqa: E731
    one = timedelta(days=1)
    if op == "before":
        return v < day(value)
    if op == "after":
        return v >= day(value) + one
    if op == "on":
        return (v >= day(value)) & (v < day(value) + one)
    if op == "between":
        return (v >= day(value[0])) & (v < day(value[1]) + one)
    if op == "within_last_days":
        return (v >= as_of - timedelta(days=value)) & (v < as_of)
    if op == "more_than_days_ago":
        return v < as_of - timedelta(days=value)
    if op == "within_next_days":
        return (v >= as_of) & (v < as_of + timedelta(days=value))
    raise ValueError(f"operator {op!r} does not fit a date")


_SCALARS = threading.Lock()


@functools.cache
def _scalars() -> ibis.BaseBackend:
    return ibis.duckdb.connect()  # evaluates tests on constants


_PASSES: dict[tuple[str, str, str], bool] = {}  # (condition, default, value type) -> answer


def passes_default(describe: str, default: Any, kind: str, test: Callable[[ibis.Value], ibis.Value]) -> bool:
    """Whether `default` (of this type) passes `test`, kept by the condition's description (its operator and value),
    the default and the type."""
    key = (describe, repr(default), str(ibis.dtype(kind).copy(nullable=True)))
    if key not in _PASSES:
        one = ibis.memtable({"value": [default]}, schema={"value": ibis.dtype(kind).copy(nullable=True)})
        with _SCALARS:
            _PASSES[key] = bool(_scalars().execute(one.select(ok=test(one.value).fill_null(False)))["ok"].iloc[0])
    return _PASSES[key]


def _number(x: Any) -> int | float:
    """A rule's number, whole numbers kept whole (a count compared with 1, not with a decimal 1.0)."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x)
