"""Cohort retention: customers grouped by the month of their first purchase, and the share of each
cohort who bought in each later month (month 0 is the first purchase itself), with revenue.

The query's period picks the cohorts (first purchases in it); their purchases count up to its end. When the
end falls inside a month, that month is incomplete: every cohort's last cell is in it (`last_month_complete`
false) and the average curve counts only whole months, so five days of a month are never
averaged with whole ones. A period that starts inside a month has a partial first cohort (`first_cohort_partial`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from ibis import _

from boomerang.metrics.base import Data, Metric, Query, as_json, bounds, register


def _month_number(ts) -> Any:
    return ts.year() * 12 + ts.month()


@register
class Cohorts(Metric):
    name, title = "cohorts", "Cohort retention by month of first purchase"
    description = "Per cohort: its size, and per month since the first purchase the share who bought and their revenue."

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        purchases = data.purchases().filter(_.ts < end)
        firsts = purchases.group_by("customer_id").aggregate(first=_.ts.min())
        firsts = firsts.filter((firsts.first >= start) & (firsts.first < end))
        rows = purchases.join(firsts, "customer_id")
        rows = rows.select(
            "customer_id",
            "value",
            cohort=rows.first.truncate("M"),
            offset=_month_number(rows.ts) - _month_number(rows.first),
        )
        cells = (
            rows.group_by(["cohort", "offset"])
            .aggregate(customers=_.customer_id.nunique(), revenue=_.value.sum())
            .execute()
        )
        return self._matrix(cells, query, start, end)

    def _matrix(self, cells: pd.DataFrame, query: Query, start, end) -> dict[str, Any]:
        cohorts = []
        last = pd.Timestamp(end) - pd.Timedelta(days=1)
        for cohort, group in cells.sort_values(["cohort", "offset"]).groupby("cohort", sort=True):
            group = group.set_index("offset")
            size = int(group.loc[0, "customers"]) if 0 in group.index else 0
            cohort = pd.Timestamp(cohort)
            months = (last.year * 12 + last.month) - (cohort.year * 12 + cohort.month) + 1  # the months it has lived
            cohorts.append(
                {
                    "cohort": cohort.strftime("%Y-%m"),
                    "customers": size,
                    "revenue": as_json(float(group["revenue"].sum())),
                    "retention": [
                        as_json(float(group.loc[k, "customers"]) / size) if k in group.index and size else 0.0
                        for k in range(months)
                    ],
                    "buyers": [int(group.loc[k, "customers"]) if k in group.index else 0 for k in range(months)],
                    "revenue_by_month": [
                        as_json(float(group.loc[k, "revenue"])) if k in group.index else 0.0 for k in range(months)
                    ],
                }
            )
        total = sum(c["customers"] for c in cohorts)
        width = max((len(c["retention"]) for c in cohorts), default=0)
        whole_last = pd.Timestamp(end).day == 1  # the period ends with a whole month
        average = []  # weighted by cohort size, over the cohorts that have lived the whole of month k
        for k in range(width):
            alive = [c for c in cohorts if len(c["buyers"]) > k + (0 if whole_last else 1)]
            size = sum(c["customers"] for c in alive)
            average.append(as_json(sum(c["buyers"][k] for c in alive) / size) if size else None)
        return {
            "metric": self.name,
            "title": self.title,
            "from": as_json(start.date()),
            "to": as_json((end - pd.Timedelta(days=1)).date()),
            "value": average[1] if width > 1 else None,
            "details": {
                "customers": total,
                "cohorts": len(cohorts),
                "average_retention": average,
                "last_month_complete": whole_last,
                "first_cohort_partial": pd.Timestamp(start).day != 1,
            },
            "cohorts": cohorts,
        }
