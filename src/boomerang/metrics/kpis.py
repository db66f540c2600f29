"""The headline retention KPIs, each over the whole period and per interval.

Definitions (a "customer" is anyone with a purchase; periods are [start, end)):
- repeat purchase rate: of the customers who bought in the period, the share who bought at least twice in it;
- purchase frequency: orders per buying customer; average order value: revenue per order;
- revenue new vs returning: revenue from customers whose first purchase falls in the period, and from the others;
- historical LTV: net revenue (purchases less refunds) up to the end, per customer acquired by then;
- NPS: % promoters (9-10) - % detractors (0-6) among the answers in the period.
"""

from __future__ import annotations

from typing import Any

import ibis
from ibis import _

from boomerang.metrics import source
from boomerang.metrics.base import Data, Metric, Query, bounds, periods_table, register, report


def _bucketed(t: ibis.Table, periods: ibis.Table, column: str = "ts") -> ibis.Table:
    """Each row of `t` once per period (the whole one and its interval) that contains its time."""
    return t.join(periods, [t[column] >= periods.bucket, t[column] < periods.bucket_end]).select(t, periods.key)


def _per_customer(data: Data, periods: ibis.Table) -> ibis.Table:
    orders = _bucketed(data.purchases(), periods)
    return orders.group_by(["key", "customer_id"]).aggregate(orders=_.count(), revenue=_.value.sum())


class _OrderKpi(Metric):
    """The KPIs computed from orders per customer and period."""

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        periods = periods_table(start, end, query.interval)
        per = (
            _per_customer(data, periods)
            .group_by("key")
            .aggregate(
                customers=_.count(), repeaters=(_.orders >= 2).sum(), orders=_.orders.sum(), revenue=_.revenue.sum()
            )
        )
        return report(self, query, start, end, per.execute(), self.value)

    @staticmethod
    def value(row) -> float | None:
        raise NotImplementedError


@register
class RepeatPurchaseRate(_OrderKpi):
    name, title = "repeat_purchase_rate", "Repeat purchase rate"
    description = "Share of the period's buying customers who bought at least twice in it."

    @staticmethod
    def value(row):
        return row["repeaters"] / row["customers"] if row["customers"] else None


@register
class PurchaseFrequency(_OrderKpi):
    name, title = "purchase_frequency", "Purchase frequency"
    description = "Orders per buying customer in the period."

    @staticmethod
    def value(row):
        return row["orders"] / row["customers"] if row["customers"] else None


@register
class AverageOrderValue(_OrderKpi):
    name, title = "average_order_value", "Average order value"
    description = "Revenue per order in the period."

    @staticmethod
    def value(row):
        return row["revenue"] / row["orders"] if row["orders"] else None


@register
class RevenueNewVsReturning(Metric):
    name, title = "revenue_new_vs_returning", "Revenue from new and returning customers"
    description = "Revenue of customers whose first purchase is in the period (new) and of the others (returning)."

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        periods = periods_table(start, end, query.interval)
        purchases = data.purchases()
        firsts = purchases.group_by("customer_id").aggregate(first=_.ts.min())
        orders = _bucketed(purchases, periods).join(firsts, "customer_id").join(periods, "key")
        new = orders.first >= orders.bucket
        per = orders.group_by("key").aggregate(
            new=new.ifelse(orders.value, 0.0).sum(), returning=(~new).ifelse(orders.value, 0.0).sum()
        )
        return report(self, query, start, end, per.execute(), self.value)

    @staticmethod
    def value(row):
        total = row["new"] + row["returning"]
        return row["returning"] / total if total else None


@register
class HistoricalLtv(Metric):
    name, title = "historical_ltv", "Historical LTV"
    description = "Net revenue (purchases less refunds) up to the end of the period, per customer acquired by then."

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        periods = periods_table(start, end, query.interval)
        purchases, refunds = data.purchases(), data.refunds()

        def upto_end(t: ibis.Table, name: str) -> ibis.Table:
            return t.join(periods, [t.ts < periods.bucket_end]).group_by("key").aggregate(**{name: _.value.sum()})

        firsts = purchases.group_by("customer_id").aggregate(first=_.ts.min())
        acquired = (
            firsts.join(periods, [firsts.first < periods.bucket_end]).group_by("key").aggregate(customers=_.count())
        )
        bought, refunded = upto_end(purchases, "bought"), upto_end(refunds, "refunded")
        per = acquired.left_join(bought, "key").select(acquired.key, "customers", "bought")
        per = per.left_join(refunded, "key").select(
            per.key, "customers", net_revenue=_.bought.coalesce(0.0) - _.refunded.coalesce(0.0)
        )
        return report(self, query, start, end, per.execute(), self.value)

    @staticmethod
    def value(row):
        return row["net_revenue"] / row["customers"] if row["customers"] else None


def _answers(events: ibis.Table) -> ibis.Table:
    answers = events.filter(_.event == source.NPS_ANSWERED)
    return answers.select(ts=_.timestamp, score=source.number(answers, "score")).filter(_.score.notnull())


def answers(data: Data) -> ibis.Table:
    """ts, score: the NPS answers with a score, extracted once per Data."""
    return data.keep("nps_answers", _answers)


@register
class Nps(Metric):
    name, title = "nps", "Net Promoter Score"
    description = "% promoters (9-10) minus % detractors (0-6) among the NPS answers in the period."

    def calculate(self, data: Data, query: Query) -> dict[str, Any]:
        start, end = bounds(data, query)
        periods = periods_table(start, end, query.interval)
        per = (
            _bucketed(answers(data), periods)
            .group_by("key")
            .aggregate(answers=_.count(), promoters=(_.score >= 9).sum(), detractors=(_.score <= 6).sum())
        )
        return report(self, query, start, end, per.execute(), self.value)

    @staticmethod
    def value(row):
        return 100.0 * (row["promoters"] - row["detractors"]) / row["answers"] if row["answers"] else None
