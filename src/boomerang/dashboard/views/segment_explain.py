"""Explaining a rule for one customer, saved or not: the tree of conditions with the values seen, as text."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from boomerang.core.errors import ValidationFailed
from boomerang.customers import service as customers
from boomerang.dashboard.views.common import parse_day

ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def shown(value: Any) -> str:
    """A value seen by explain, as text: moments to the minute (days alone at midnight), short floats, JSON lists."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{round(value, 4):,}"
    if isinstance(value, str) and ISO_MOMENT.fullmatch(value):
        moment = datetime.fromisoformat(value)
        return moment.date().isoformat() if moment.time() == datetime.min.time() else moment.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _with_shown(node: dict[str, Any]) -> dict[str, Any]:
    out = {**node, "children": [_with_shown(c) for c in node.get("children", [])]}
    if node["op"] == "condition":
        out["shown"] = shown(node.get("value"))
    return out


def explain(board, wanted: str | dict[str, Any], who: str, as_of: str | None) -> dict[str, Any]:
    """Why the customer (id, external id or email) is in or out of a saved segment (by name) or an unsaved
    definition, condition by condition with the values seen; errors name the field."""
    day = parse_day(as_of, "as_of")
    with board.ws.uow.session() as s:
        customer = customers.lookup(s, who)
        if customer is None:
            raise ValidationFailed(
                [{"field": "customer", "reason": f"no customer with the id, external id or email {who.strip()!r}"}]
            )
        label = customer.email or customer.external_id or customer.id
    result = board.ws.segments.explain(wanted, customer.id, as_of=day)
    return {**result, "rule": _with_shown(result["rule"]), "label": label}
