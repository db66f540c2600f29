"""Lifecycle stages, derived from each customer's purchase history with the inactivity window W:

- new: from the first purchase; active: after a purchase within W/2 of the one before;
- sleeping: W/2 after the last purchase; churned: W after it;
- reactivated: a purchase after having churned (more than W since the one before).

Every change of stage happens at a known time, so the whole history of transitions is computed
at once (stage, since, and one "Lifecycle Stage Changed" event per transition, with deterministic
message ids: recomputing adds nothing twice).
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
from ibis import _

from boomerang.metrics import source
from boomerang.metrics.activity import WindowQuery, purchase_days, window_of
from boomerang.metrics.base import Data, Metric, as_json, bounds, materialize, register

STAGES = ("new", "active", "sleeping", "churned", "reactivated")
EVENT = "Lifecycle Stage Changed"


def transitions(events: ibis.Table, *, window: int, end) -> ibis.Table:
    """customer_id, at, stage, previous: every stage a customer entered before `end`, consecutive repeats removed."""
    return history(source.purchases(events), window=window, end=end)


def history(purchases: ibis.Table, *, window: int, end) -> ibis.Table:
    """transitions() from the purchases (source.purchases), in one pass over each customer's purchase days.

    Between two purchase days nothing but the first one's sleeping and churned can happen, so every transition follows
    from a day and the gaps around it: on the first purchase day a customer is new; on a later one reactivated when the
    gap before is over W, else active, which is news only after a gap over W/2 or right after new or reactivated;
    W/2 and W after a day with no purchase that long after it, sleeping and churned."""
    days = purchase_days(purchases).filter(_.day < end)
    w = ibis.window(group_by="customer_id", order_by="day")
    gap = lambda later, earlier: (later.epoch_seconds() - earlier.epoch_seconds()) / 86400  # noqa: E731
    days = days.mutate(
        before=gap(days.day, days.day.lag().over(w)),
        before_last=gap(days.day.lag().over(w), days.day.lag(2).over(w)),  # the gap before the day before
        after=gap(days.day.lead().over(w), days.day),
    )
    first, back = days.before.isnull(), days.before > window
    # the stage a purchase day leaves the customer in, and the one the day before left them in
    stage = ibis.cases((first, "new"), (back, "reactivated"), else_="active")
    left = ibis.cases((days.before_last.isnull(), "new"), (days.before_last > window, "reactivated"), else_="active")
    bought = days.filter(first | (days.before > window / 2) | (left != "active")).select(
        "customer_id",
        at=days.day,
        stage=stage,
        previous=ibis.cases(
            (first, ibis.null("string")), (back, "churned"), (days.before > window / 2, "sleeping"), else_=left
        ),
    )
    half, full = ibis.interval(days=window // 2), ibis.interval(days=window)
    quiet = days.after.isnull() | (days.after > window / 2)
    sleeping = days.filter(quiet).select(
        "customer_id", at=days.day + half, stage=ibis.literal("sleeping"), previous=stage
    )
    gone = days.after.isnull() | (days.after > window)
    churned = days.filter(gone).select(
        "customer_id", at=days.day + full, stage=ibis.literal("churned"), previous=ibis.literal("sleeping")
    )
    return bought.union(sleeping).union(churned).filter(_.at < end)


def current(events: ibis.Table, *, window: int, end) -> ibis.Table:
    """customer_id, stage, since, previous: each customer's stage at `end` (their last transition)."""
    return last_stage(transitions(events, window=window, end=end))


def last_stage(steps: ibis.Table) -> ibis.Table:
    """current() from the transitions: per customer the last, in the order transitions() breaks ties in (a
    sleeping or churned at the same time as a purchase comes after it), by one aggregation, not a sort."""
    later = steps.stage.isin(["sleeping", "churned"]).ifelse(1, 0)
    order = steps.at.epoch_seconds() * 2 + later
    return steps.group_by("customer_id").aggregate(
        stage=steps.stage.argmax(order), since=steps.at.max(), previous=steps.previous.argmax(order)
    )


@register
class Lifecycle(Metric):
    name, title = "lifecycle", "Lifecycle stages"
    description = "Customers per stage (new, active, sleeping, churned, reactivated) at the end, and the transitions per interval."
    query_type = WindowQuery
    trait = "lifecycle"

    def calculate(self, data: Data, query: WindowQuery) -> dict[str, Any]:
        start, end = bounds(data, query)
        window = window_of(data, query)
        steps = materialize(history(data.purchases(), window=window, end=end))
        counts = last_stage(steps).group_by("stage").aggregate(n=_.count()).execute().set_index("stage")["n"]
        inside = steps.filter(_.at >= start)
        moves = (
            inside.group_by(bucket=inside.at.truncate({"day": "D", "week": "W", "month": "M"}[query.interval]))
            .aggregate(**{s: (inside.stage == s).ifelse(1, 0).sum() for s in STAGES})
            .order_by("bucket")
            .execute()
        )
        return {
            "metric": self.name,
            "title": self.title,
            "as_of": as_json(end),
            "value": int(counts.sum()),
            "details": {"window_days": window, "transitions": int(moves[list(STAGES)].to_numpy().sum())},
            "stages": {stage: int(counts.get(stage, 0)) for stage in STAGES},
            "series": [
                {"bucket": as_json(pd.Timestamp(row.bucket)), **{s: int(getattr(row, s)) for s in STAGES}}
                for row in moves.itertuples()
            ],
        }

    def per_customer(self, data: Data, query: WindowQuery) -> pd.DataFrame:
        _, end = bounds(data, query)
        steps = history(data.purchases(), window=window_of(data, query), end=end)
        return last_stage(steps).execute().sort_values("customer_id", ignore_index=True)

    @staticmethod
    def events(data: Data, query: WindowQuery) -> pd.DataFrame:
        """The transitions as events for the log (see EventLog.append)."""
        _, end = bounds(data, query)
        steps = history(data.purchases(), window=window_of(data, query), end=end).execute()
        return pd.DataFrame(
            {
                "message_id": [
                    f"lifecycle:{c}:{s}:{pd.Timestamp(a).isoformat()}"
                    for c, s, a in zip(steps["customer_id"], steps["stage"], steps["at"])
                ],
                "customer_id": steps["customer_id"],
                "timestamp": steps["at"],
                "stage": steps["stage"],
                "previous": steps["previous"],
            }
        )
