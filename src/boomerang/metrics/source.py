"""The event log seen as the tables metrics start from: purchases and refunds.

Everything here takes and returns Ibis expressions, so it runs on DuckDB, Spark or any other engine
Ibis reaches. A purchase is an Order Completed event whose order was not cancelled; its value is
Segment's `revenue` (merchandise, without shipping and tax) or, when absent, its `total`.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
from ibis import _
from ibis.common.exceptions import IbisError

ORDER_COMPLETED = "Order Completed"
ORDER_CANCELLED = "Order Cancelled"
ORDER_REFUNDED = "Order Refunded"
NPS_ANSWERED = "NPS Survey Answered"


# -- JSON and hashing, per engine -------------------------------------------------------------------
# Ibis 12 compiles JSON access and md5 for DuckDB and Spark but not for ClickHouse, and Spark keeps
# properties as text: each engine gets its own function here, chosen by the backend the table is bound
# to (an unbound table by its column's type: JSON reads as DuckDB, text as Spark). Every engine reads a
# property as its JSON text (a number 5 reads "5"; absent or null reads null) and a number as that text
# cast (null where it is not one), so that the engines agree.


@ibis.udf.scalar.builtin
def get_json_object(json: str, path: str) -> str:
    """Spark's and Hive's JSON path lookup, for engines whose event log keeps properties as text."""


@ibis.udf.scalar.builtin
def json_extract_string(json: dt.json, path: str) -> str:
    """DuckDB's JSON path lookup, as text (its `->>`)."""


@ibis.udf.scalar.builtin(name="json_extract_string")
def json_extract_strings(json: dt.json, path: str) -> list[str]:
    """DuckDB's lookup of every item of a JSON array (path `$.key[*]`), as text."""


@ibis.udf.scalar.builtin(name="JSONExtract")
def json_extract(json: str, key: str, type: str) -> str:
    """ClickHouse's typed JSON lookup, asked for 'Nullable(String)'."""


@ibis.udf.scalar.builtin(name="JSONExtract")
def json_extract_list(json: str, key: str, type: str) -> list[str]:
    """ClickHouse's typed JSON lookup, asked for 'Array(String)'."""


@ibis.udf.scalar.builtin(name="MD5")
def clickhouse_md5(value: str) -> dt.binary:
    """ClickHouse's md5, as 16 bytes."""


@ibis.udf.scalar.builtin(name="hex")
def clickhouse_hex(value: dt.binary) -> str:
    """ClickHouse's hexadecimal spelling of bytes (upper case)."""


def engine(table: ibis.Table) -> str | None:
    """The name of the backend `table` is bound to ("duckdb", "pyspark", "clickhouse"); None when unbound."""
    try:
        return ibis.get_backend(table).name
    except IbisError:
        return None


def _json_engine(table: ibis.Table, column: str) -> str:
    """Whose JSON functions read `column`: its backend's, or for an unbound table DuckDB's when the column is
    JSON and Spark's when it is text."""
    return engine(table) or ("duckdb" if table[column].type().is_json() else "pyspark")


def _raw(events: ibis.Table, key: str, column: str) -> ibis.Value:
    """The property as its JSON text (null when absent or null), in the engine's own words."""
    col = events[column]
    match _json_engine(events, column):
        case "clickhouse":
            return json_extract(col, key, "Nullable(String)")
        case "duckdb":
            return json_extract_string(_as_json(col), _path(key))
        case _:
            return get_json_object(col, f"$.{key}")


def _as_json(col: ibis.Value) -> ibis.Value:
    return col if col.type().is_json() else col.cast("json")


def _path(key: str) -> str:
    """A JSON path to one key, quoted so that any key reads as itself."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number(events: ibis.Table, key: str, column: str = "properties") -> ibis.Value:
    """A numeric event property, or a key of another JSON column (null when absent or not a number)."""
    return _raw(events, key, column).try_cast("float64")


def text(events: ibis.Table, key: str, column: str = "properties") -> ibis.Value:
    """A text event property, or a key of another JSON column (null when absent)."""
    return _raw(events, key, column)


def texts(table: ibis.Table, key: str, column: str = "attributes") -> ibis.Value:
    """A JSON array's items as a list of text (an empty list when the key is absent: ClickHouse has no null
    arrays, so ask `text(...)` whether it is there); an engine that keeps JSON as text (Spark) gives the array's
    JSON text, which `contains` searches as text."""
    match _json_engine(table, column):
        case "clickhouse":
            return json_extract_list(table[column].fill_null("{}"), key, "Array(String)")  # no nullable arrays
        case "duckdb":
            return json_extract_strings(_as_json(table[column]), _path(key) + "[*]")
        case _:
            return _raw(table, key, column)


def percent_rank(value: ibis.Value, *, descending: bool = False) -> ibis.Value:
    """percent_rank() over the whole table ordered by `value`: (rank - 1) / (rows - 1), 0 in a table of one row
    (spelt out for ClickHouse, whose Ibis compiler has no rule for it)."""
    order = value.desc() if descending else value
    if engine(value) != "clickhouse":
        return ibis.percent_rank().over(order_by=order)
    rows = value.isnull().count().over()  # every row: isnull() is never null
    # ClickHouse ranks peers alike only in a RANGE frame (Ibis writes ROWS); ibis.rank() counts from 0
    rank = ibis.rank().over(ibis.window(order_by=order, range=(None, None)))
    return ibis.ifelse(rows > 1, rank / (rows - 1), 0.0)


def md5_hex(table: ibis.Table, value: ibis.Value) -> ibis.Value:
    """The md5 of a text value of `table`, in lower-case hexadecimal."""
    if engine(table) == "clickhouse":
        return clickhouse_hex(clickhouse_md5(value)).lower()
    return value.hexdigest("md5").lower()


def _order_id(events: ibis.Table) -> ibis.Value:
    return text(events, "order_id")


def purchases(events: ibis.Table, since=None, until=None, cancelled: ibis.Table | None = None) -> ibis.Table:
    """customer_id, order_id, ts, value: one row per completed, not cancelled order of a known customer; only the
    orders placed in [since, until) when given (a cancellation counts whenever it came). `cancelled` (order_id) is
    the log's kept list of cancelled orders where it has one (`Reader.cancelled`), read instead of a scan of it."""
    completed = events.filter((_.event == ORDER_COMPLETED) & _.customer_id.notnull())
    if since is not None:
        completed = completed.filter(_.timestamp >= since)
    if until is not None:
        completed = completed.filter(_.timestamp < until)
    completed = completed.select(
        customer_id=_.customer_id,
        order_id=_order_id(completed),
        ts=_.timestamp,
        value=number(completed, "revenue").coalesce(number(completed, "total"), ibis.literal(0.0)),
    )
    if cancelled is None:
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
