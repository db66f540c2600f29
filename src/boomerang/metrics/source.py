"""The event log seen as the tables metrics start from: purchases and refunds.

Everything here takes and returns Ibis expressions, so it runs on DuckDB, Spark or any other engine
Ibis reaches. A purchase is an Order Completed event whose order was not cancelled; its value is
Segment's `revenue` (merchandise, without shipping and tax) or, when absent, its `total`.
"""

from __future__ import annotations

import ibis
from ibis import _

ORDER_COMPLETED = "Order Completed"
ORDER_CANCELLED = "Order Cancelled"
ORDER_REFUNDED = "Order Refunded"
NPS_ANSWERED = "NPS Survey Answered"


@ibis.udf.scalar.builtin
def get_json_object(json: str, path: str) -> str:
    """Spark's and Hive's JSON path lookup, for engines whose event log keeps properties as text."""


def _raw(events: ibis.Table, key: str, column: str) -> ibis.Value | None:
    """The property as text where the engine has no JSON type (Spark: GET_JSON_OBJECT), else None."""
    if events[column].type().is_json():
        return None
    return get_json_object(events[column], f"$.{key}")


def number(events: ibis.Table, key: str, column: str = "properties") -> ibis.Value:
    """A numeric event property, or a key of another JSON column (null when absent or not a number)."""
    raw = _raw(events, key, column)
    return events[column][key].float if raw is None else raw.try_cast("float64")


def text(events: ibis.Table, key: str, column: str = "properties") -> ibis.Value:
    """A text event property, or a key of another JSON column (null when absent)."""
    raw = _raw(events, key, column)
    return events[column][key].str if raw is None else raw


def _order_id(events: ibis.Table) -> ibis.Value:
    return text(events, "order_id")


def purchases(events: ibis.Table) -> ibis.Table:
    """customer_id, order_id, ts, value: one row per completed, not cancelled order of a known customer."""
    completed = events.filter((_.event == ORDER_COMPLETED) & _.customer_id.notnull())
    completed = completed.select(
        customer_id=_.customer_id,
        order_id=_order_id(completed),
        ts=_.timestamp,
        value=number(completed, "revenue").coalesce(number(completed, "total"), ibis.literal(0.0)),
    )
    cancelled = events.filter(_.event == ORDER_CANCELLED)
    cancelled = cancelled.select(order_id=_order_id(cancelled)).distinct()
    return completed.anti_join(cancelled, "order_id")


def refunds(events: ibis.Table) -> ibis.Table:
    """customer_id, order_id, ts, value: refunded amounts, at the time of the refund."""
    refunded = events.filter((_.event == ORDER_REFUNDED) & _.customer_id.notnull())
    return refunded.select(
        customer_id=_.customer_id,
        order_id=_order_id(refunded),
        ts=_.timestamp,
        value=number(refunded, "total").coalesce(ibis.literal(0.0)),
    )


def order_lines(events: ibis.Table, end) -> ibis.Table:
    """customer_id, order_id, ts, sku, category, quantity: the products of purchases before `end`."""
    completed = events.filter((_.event == ORDER_COMPLETED) & _.customer_id.notnull() & (_.timestamp < end))
    rows = completed.select(
        "customer_id",
        order_id=text(completed, "order_id"),
        ts=_.timestamp,
        product=completed.properties["products"].array,
    ).unnest("product")
    rows = rows.select(
        "customer_id",
        "order_id",
        "ts",
        sku=rows["product"]["sku"].str,
        category=rows["product"]["category"].str,
        quantity=rows["product"]["quantity"].float,
    )
    return rows.semi_join(purchases(events).select("order_id"), "order_id")
