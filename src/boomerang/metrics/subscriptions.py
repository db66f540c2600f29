"""Subscriber retention per channel: of the customers who first subscribed (granted consent) in the
period, the share still subscribed 30, 90 and 365 days later.

Only subscribers whose grant is at least that many days before the end of the data count for a
horizon, so recent sign-ups do not flatter the figure. A withdrawal is the first one after the grant.
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd
from ibis import _

from boomerang.metrics.base import Data, Metric, Query, as_json, bounds, period_and_series, periods_table, register

HORIZONS = (30, 90, 365)


def subscribers(consents: ibis.Table) -> ibis.Table:
    """customer_id, channel, granted_at, withdrawn_at: each customer's first subscription per channel."""
    grants = consents.filter(_.granted).group_by(["customer_id", "channel"]).aggregate(granted_at=_.at.min())
    withdrawals = consents.filter(~_.granted)
    joined = grants.left_join(
        withdrawals,
        [
            grants.customer_id == withdrawals.customer_id,
            grants.channel == withdrawals.channel,
            withdrawals.at > grants.granted_at,
        ],
    )
    return joined.group_by([grants.customer_id, grants.channel, grants.granted_at]).aggregate(
        withdrawn_at=withdrawals.at.min()
    )


@register
class SubscriberRetention(Metric):
    name, title = "subscriber_retention", "Subscribers still subscribed after 30, 90 and 365 days"
    description = (
        "Per channel: of the customers who first subscribed in the period, the share still subscribed N days later."
    )
    needs_consents = True

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        periods = periods_table(start, end, query.interval)
        subs = subscribers(data.consents)
        subs = subs.join(periods, [subs.granted_at >= periods.bucket, subs.granted_at < periods.bucket_end])
        metrics = {"subscribers": _.count()}
        for days in HORIZONS:
            due = subs.granted_at + ibis.interval(days=days)
            eligible = due <= ibis.literal(end)
            kept = eligible & (subs.withdrawn_at.isnull() | (subs.withdrawn_at > due))
            metrics[f"eligible_{days}"] = eligible.sum()
            metrics[f"kept_{days}"] = kept.sum()
        counts = subs.group_by(["key", "channel"]).aggregate(**metrics).execute()
        buckets = period_and_series(start, end, query.interval)
        channels = sorted(counts["channel"].unique())
        rows = {}
        for key, group in counts.groupby("key"):
            rows[key] = {row["channel"]: self._channel(row) for _, row in group.iterrows()}
        return {
            "metric": self.name,
            "title": self.title,
            "from": as_json(start.date()),
            "to": as_json((end - pd.Timedelta(days=1)).date()),
            "interval": query.interval,
            "channels": rows.get(0, {}),
            "value": None,
            "series": [
                {"bucket": as_json(b.bucket), "channels": rows.get(b.key, {})}
                for b in buckets.iloc[1:].itertuples()
                if rows.get(b.key)
            ]
            if channels
            else [],
        }

    @staticmethod
    def _channel(row) -> dict[str, Any]:
        out = {"subscribers": int(row["subscribers"])}
        for days in HORIZONS:
            eligible, kept = int(row[f"eligible_{days}"]), int(row[f"kept_{days}"])
            out[f"after_{days}_days"] = as_json(kept / eligible) if eligible else None
            out[f"eligible_{days}_days"] = eligible
        return out
