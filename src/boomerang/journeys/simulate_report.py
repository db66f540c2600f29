"""The simulation's report: entries, outcomes, conversions by group, messages per customer and week, and
what the guards would have suppressed or deferred."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from boomerang.config import GuardSettings
from boomerang.db import UnitOfWork
from boomerang.journeys.simulate_guards import apply_guards, weekly

if TYPE_CHECKING:
    from boomerang.journeys.simulate import Simulator


def report(
    *,
    uow: UnitOfWork,
    guards: GuardSettings,
    sim: Simulator,
    start: datetime,
    end: datetime,
    tick: timedelta | None,
    sample: int,
) -> dict[str, Any]:
    """What the simulated journey (the first run) did, beside the others, with the guards applied to all."""
    runs = sim.runs
    main = runs[0]
    outcomes: Counter = Counter()
    for state in main.states.values():
        if state.status == "done":
            outcomes[state.outcome or "exited"] += 1
        else:
            outcomes[{"approval": "approval_pending", "evaluating": "evaluating"}.get(state.status, "running")] += 1
    first_seen = list(dict.fromkeys(c for c, _, _ in main.entered))
    sent = [msg for msg in main.messages if not msg.held_out]
    everyone = sorted((msg for run in runs for msg in run.messages if not msg.held_out), key=lambda x: (x.at, x.key))
    reached = {msg.customer_id for msg in sent}
    groups = {}
    for control in (False, True):
        entered = sum(1 for _, _, c in main.entered if c == control)
        converted = [rev for _, rev, c in main.conversions if c == control]
        groups["control" if control else "treated"] = {
            "entered": entered,
            "converted": len(converted),
            "revenue": round(sum(converted), 2),
            "conversion_rate": round(len(converted) / entered, 6) if entered else None,
        }
    guarded = apply_guards(uow, guards, everyone, start=start, end=end)
    return {
        "journey": main.name,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "step": None if tick is None else tick.total_seconds(),
        "entered": {
            "count": len(main.entered),
            "customers": len(first_seen),
            "treated": groups["treated"]["entered"],
            "control": groups["control"]["entered"],
            "sample": first_seen[:sample],
        },
        "outcomes": {
            k: outcomes.get(k, 0)
            for k in ("converted", "exited", "rejected", "expired", "approval_pending", "evaluating", "running")
        },
        "conversions": groups,
        "messages": {
            "total": len(sent),
            "held_out": sum(1 for msg in main.messages if msg.held_out),
            "by_node": dict(sorted(Counter(msg.node for msg in sent).items())),
            "per_customer_week": {
                "alone": weekly(sent, start, reached),
                "together": weekly([msg for msg in everyone if msg.customer_id in reached], start, reached),
            },
        },
        "actions": dict(sorted(main.counts.items())),
        "together_with": [run.name for run in runs[1:]],
        "guards": {"journey": guarded.get(main.name, _no_guards()), "all": guarded.get("*", _no_guards())},
        "segment_queries": sim.queries,
    }


def _no_guards() -> dict[str, Any]:
    return {
        "sent": 0,
        "by_channel": {},
        "suppressed": {},
        "deferred": {},
        "deferred_past_end": 0,
        "sent_per_customer_week": weekly([], datetime.min, set()),
    }
