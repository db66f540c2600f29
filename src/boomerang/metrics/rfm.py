"""RFM: recency, frequency and monetary value of every customer as of the period's end, scored in
quintiles (5 is best) and named by the usual R x F segment map.

Scores come from percent ranks, so tied customers always get the same score on every engine (a
plain NTILE would split ties arbitrarily): score = 1 + floor(5 * percent_rank), capped at 5.
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
from ibis import _

from boomerang.metrics import source
from boomerang.metrics.base import Data, Metric, Query, as_json, bounds, register

GROUPS = (  # (name, recency scores, frequency scores), first match wins
    ("champions", (5,), (4, 5)),
    ("loyal", (3, 4, 5), (4, 5)),
    ("cant_lose_them", (1, 2), (5,)),
    ("at_risk", (1, 2), (3, 4)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("need_attention", (3,), (3,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("new", (5,), (1,)),
    ("promising", (4,), (1,)),
    ("lost", (1,), (1,)),
    ("hibernating", (1, 2), (1, 2)),
)
GROUP_NAMES = tuple(name for name, _, _ in GROUPS)


def _score(value: ibis.Value, *, ascending: bool) -> ibis.Value:
    rank = source.percent_rank(value, descending=not ascending)
    return ibis.least((rank * 5).floor().cast("int8") + 1, 5)


def _group(r: ibis.Value, f: ibis.Value) -> ibis.Value:
    cases = [(r.isin(rs) & f.isin(fs), name) for name, rs, fs in GROUPS]
    return ibis.cases(*cases, else_="hibernating")


def scores(events: ibis.Table, end) -> ibis.Table:
    """customer_id, recency_days, frequency, monetary, r_score, f_score, m_score, rfm_group as of `end`."""
    return scored(source.purchases(events), end)


def scored(purchases: ibis.Table, end) -> ibis.Table:
    """scores() from the purchases (source.purchases)."""
    purchases = purchases.filter(_.ts < end)
    per = purchases.group_by("customer_id").aggregate(last=_.ts.max(), frequency=_.count(), monetary=_.value.sum())
    per = per.mutate(recency_days=(ibis.literal(end).epoch_seconds() - per.last.epoch_seconds()) / 86400)
    per = per.mutate(
        r_score=_score(per.recency_days, ascending=False),
        f_score=_score(per.frequency, ascending=True),
        m_score=_score(per.monetary, ascending=True),
    )
    return per.mutate(rfm_group=_group(per.r_score, per.f_score)).drop("last")


@register
class Rfm(Metric):
    name, title = "rfm", "RFM groups"
    description = "Customers per RFM group (champions ... lost) and per recency x frequency score, as of the end."
    trait = "rfm"

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        per = scored(data.purchases(), end)
        cells = (
            per.group_by(["rfm_group", "r_score", "f_score"])
            .aggregate(
                customers=_.count(),
                recency_days=_.recency_days.sum(),
                frequency=_.frequency.sum(),
                monetary=_.monetary.sum(),
            )
            .execute()
        )
        groups = cells.groupby("rfm_group")[["customers", "recency_days", "frequency", "monetary"]].sum()
        groups["revenue"] = groups["monetary"]
        for mean in ("recency_days", "frequency", "monetary"):
            groups[mean] = groups[mean] / groups["customers"]
        grid = cells.groupby(["r_score", "f_score"], as_index=False)["customers"].sum()
        total = int(groups["customers"].sum()) if len(groups) else 0
        rows = [
            {
                "group": name,
                "customers": int(groups.loc[name, "customers"]) if name in groups.index else 0,
                "share": as_json(groups.loc[name, "customers"] / total) if name in groups.index and total else 0.0,
                **{
                    k: as_json(float(groups.loc[name, k])) if name in groups.index else None
                    for k in ("recency_days", "frequency", "monetary", "revenue")
                },
            }
            for name in GROUP_NAMES
        ]
        cells = {
            (int(r), int(f)): int(n) for r, f, n in grid[["r_score", "f_score", "customers"]].itertuples(index=False)
        }
        return {
            "metric": self.name,
            "title": self.title,
            "as_of": as_json(end),
            "value": total,
            "details": {"customers": total},
            "groups": rows,
            "grid": [
                [cells.get((r, f), 0) for f in range(1, 6)] for r in range(5, 0, -1)
            ],  # rows: R 5..1, columns: F 1..5
        }

    def per_customer(self, data: Data, query: Query) -> pd.DataFrame:
        _, end = bounds(data, query)
        frame = scored(data.purchases(), end).execute()
        return frame.assign(as_of=pd.Timestamp(end)).sort_values("customer_id", ignore_index=True)
