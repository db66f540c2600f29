"""The rules of the groups the analytics pages count, so that a marketer can act on what a chart shows: an RFM
group or cell, a cohort or one of its months, a funnel leak. Each gives a segment rule and a name to save it
under; the segment builder opens with it, shows its live size and sample, and saves it.

The rules read the same data as the pages, with one difference said where it matters: a segment's event rule
counts every Order Completed event, while the pages leave out orders cancelled later."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

PURCHASE = "Order Completed"  # metrics.source.ORDER_COMPLETED


def _month(first: date, months: int) -> tuple[date, date]:
    """The first and last day of the month `months` after the month of `first`."""
    index = first.year * 12 + first.month - 1 + months
    start = date(index // 12, index % 12 + 1, 1)
    following = date((index + 1) // 12, (index + 1) % 12 + 1, 1)
    return start, following - timedelta(days=1)


def rfm_group(group: str) -> dict[str, Any]:
    return {"trait": "rfm_group", "op": "eq", "value": group}


def rfm_cell(r: int, f: int) -> dict[str, Any]:
    return {"all": [{"trait": "r_score", "op": "eq", "value": r}, {"trait": "f_score", "op": "eq", "value": f}]}


def traits(
    *, rfm: str | None = None, stage: str | None = None, churn: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Customers of an RFM group, a lifecycle stage and a churn risk in [low, high), as the customer list filters
    them (any of the three left out)."""
    rules: list[dict[str, Any]] = []
    if rfm:
        rules.append(rfm_group(rfm))
    if stage:
        rules.append({"trait": "lifecycle_stage", "op": "eq", "value": stage})
    if churn:
        low, high = churn
        rules.append({"trait": "churn_probability", "op": "gte", "value": low})
        if high != float("inf"):
            rules.append({"trait": "churn_probability", "op": "lt", "value": high})
    return rules[0] if len(rules) == 1 else {"all": rules}


def cohort(month: date, offset: int | None = None) -> dict[str, Any]:
    """Customers whose first purchase fell in `month`; with `offset`, those of them who bought again
    `offset` months later (M0 is the month of the first purchase)."""
    start, end = _month(month, 0)
    first = {"event": PURCHASE, "measure": "first", "op": "between", "value": [start.isoformat(), end.isoformat()]}
    if not offset:
        return first
    later = _month(month, offset)
    return {"all": [first, {"event": PURCHASE, "between": [later[0].isoformat(), later[1].isoformat()]}]}


def funnel_leak(
    step: str, next_step: str, start: date, end: date, *, category: str | None = None, window_days: int = 7
) -> dict[str, Any]:
    """Customers who did `step` between `start` and `end` (in `category` or below it) and not `next_step` by
    `window_days` after `end`: the customers the leak lost."""
    did: dict[str, Any] = {"event": step, "between": [start.isoformat(), end.isoformat()]}
    if category:
        did["where"] = [{"property": "category", "op": "starts_with", "value": category}]
    until = end + timedelta(days=window_days)
    return {"all": [did, {"not": {"event": next_step, "between": [start.isoformat(), until.isoformat()]}}]}


def name_for(*parts: Any) -> str:
    """A segment name from words: lowercase letters, digits and _, starting with a letter."""
    text = "_".join(str(p) for p in parts if p not in (None, ""))
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (slug if slug[:1].isalpha() else f"s_{slug}")[:63].rstrip("_")
