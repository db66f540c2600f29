"""The daily rollup of the event log, kept true at every write: one row per day x customer x event.

Table `rollup_daily` (migrations/events/versions/0003_rollup_daily.py):
- day (DATE, of the event's timestamp), customer_id (NULL for anonymous visitors' events), event;
- events: how many; value: the sum of their value (an order's revenue, else its total, else 0, as
  metrics.source reads a purchase; a refund's total, else 0; any other event's `value`, else its `revenue`,
  else its `total`; NULL when none had one);
- first_at, last_at: the first and the last timestamp among them;
- cancelled, cancelled_value: of an `Order Completed` row, how many of its events belong to an order that an
  `Order Cancelled` event (at any time, of anyone) names, and their value; 0 on every other row. A purchase
  (metrics.source.purchases) is an order of a known customer that is not cancelled: `events - cancelled`.

Beside it, `rollup_cancelled_orders` (order_id) holds the ids of the orders some event cancels, so that a flush
looks its orders up there, not in the log; `rollup_customer` the same counts over all time, one row per known
customer x event (customer_id, event, events, first_at, last_at): what a segment's "ordered twice or more" or "last
order more than 60 days ago" reads for a few customers in milliseconds, where the log has 50M rows to scan; and
`rollup_segments` (day, segment, event, events) the `Segment Entered` and `Segment Exited` events per day and
segment (their `segment` property): how many customers each segment gained and lost, for the monthly review,
without parsing every such event ever logged.

Each write to the log calls one function here inside its own transaction: `add` for the rows an append
inserted, `move` for the profiles it merged, `recompute` around an erasure; `fill` is the migration's backfill
from the whole log, `rebuild` the same over a filled rollup (a repair). Each operation is one function over SQL, so
that another engine's log can port it one by one.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from boomerang.core.vocab import SEGMENT_CHANGES

TABLE = "rollup_daily"
TOTALS = "rollup_customer"  # per known customer x event over all time: events, first_at, last_at
CANCELLED = "rollup_cancelled_orders"  # the ids of the orders some event cancels, kept beside it: no scan of the log
SEGMENTS = "rollup_segments"  # per day x segment x Segment Entered / Exited: events
COLUMNS = ("day", "customer_id", "event", "events", "value", "first_at", "last_at", "cancelled", "cancelled_value")
FRESH = ("message_id", "event", "customer_id", "timestamp", "properties")  # what `add` reads of the new rows
ORDER_COMPLETED, ORDER_CANCELLED, ORDER_REFUNDED = "Order Completed", "Order Cancelled", "Order Refunded"


def _text(key: str) -> str:
    """A property as metrics.source.text reads it: its JSON text (a number 5 reads "5"), NULL when absent."""
    return f"json_extract_string(properties, '$.\"{key}\"')"


def _number(key: str) -> str:
    """A numeric property as metrics.source.number reads it: its text cast, NULL where it is not a number."""
    return f"TRY_CAST({_text(key)} AS DOUBLE)"


ORDER_ID = _text("order_id")
CANCELLED_IN_LOG = f"SELECT DISTINCT {ORDER_ID} AS order_id FROM events WHERE event = '{ORDER_CANCELLED}'"
CANCELLED_KEPT = f"SELECT order_id FROM {CANCELLED}"
VALUE = (
    f"CASE event WHEN '{ORDER_COMPLETED}' THEN coalesce({_number('revenue')}, {_number('total')}, 0.0) "
    f"WHEN '{ORDER_REFUNDED}' THEN coalesce({_number('total')}, 0.0) "
    f"ELSE coalesce({_number('value')}, {_number('revenue')}, {_number('total')}) END"
)


def _aggregated(rows: str, orders: bool = True, cancelled: str = CANCELLED_IN_LOG) -> str:
    """SQL: the rollup's rows of the events `rows` selects (event, customer_id, timestamp, properties), an order
    counted as cancelled when its id is among those `cancelled` selects (order_id; by default, read from the log's
    events); `orders` False: there is no order among them, and the cancellations need no look."""
    if not orders:
        return f"""
        SELECT CAST(timestamp AS DATE) AS day, customer_id, event, count(*) AS events, sum({VALUE}) AS value,
               min(timestamp) AS first_at, max(timestamp) AS last_at, 0 AS cancelled, 0.0 AS cancelled_value
        FROM ({rows}) GROUP BY ALL"""
    return f"""
        WITH picked AS (
            SELECT event, customer_id, timestamp, {VALUE} AS value,
                   CASE WHEN event = '{ORDER_COMPLETED}' THEN {ORDER_ID} END AS order_id
            FROM ({rows})
        ), cancelled_orders AS (
            SELECT order_id FROM ({cancelled}) WHERE order_id IN (SELECT order_id FROM picked)
        ), marked AS (
            SELECT picked.*, order_id IN (SELECT order_id FROM cancelled_orders) IS TRUE AS is_cancelled FROM picked
        )
        SELECT CAST(timestamp AS DATE) AS day, customer_id, event, count(*) AS events, sum(value) AS value,
               min(timestamp) AS first_at, max(timestamp) AS last_at,
               count(*) FILTER (WHERE is_cancelled) AS cancelled,
               coalesce(sum(value) FILTER (WHERE is_cancelled), 0.0) AS cancelled_value
        FROM marked GROUP BY ALL"""


def _segment_counts(rows: str) -> str:
    """SQL: the rows of SEGMENTS counted from the events `rows` selects (event, timestamp, properties)."""
    changes = ", ".join(f"'{name}'" for name in SEGMENT_CHANGES)
    return f"""SELECT CAST(timestamp AS DATE) AS day, {_text("segment")} AS segment, event, count(*) AS events
        FROM ({rows}) WHERE event IN ({changes}) AND {_text("segment")} IS NOT NULL GROUP BY ALL"""


def _merge(conn: duckdb.DuckDBPyConnection, delta: str, totals_delta: str) -> None:
    """Add the rows of the query `delta` (the rollup's columns) to the rollup, and those of `totals_delta` (TOTALS's)
    to the customers' totals, key by key."""
    conn.execute(f"""
        MERGE INTO {TABLE} r USING ({delta}) d
        ON r.day = d.day AND r.customer_id IS NOT DISTINCT FROM d.customer_id AND r.event = d.event
        WHEN MATCHED THEN UPDATE SET
            events = r.events + d.events,
            value = coalesce(r.value + d.value, r.value, d.value),
            first_at = least(r.first_at, d.first_at),
            last_at = greatest(r.last_at, d.last_at),
            cancelled = r.cancelled + d.cancelled,
            cancelled_value = r.cancelled_value + d.cancelled_value
        WHEN NOT MATCHED THEN INSERT ({", ".join(COLUMNS)}) VALUES ({", ".join(f"d.{c}" for c in COLUMNS)})""")
    conn.execute(f"""
        MERGE INTO {TOTALS} r USING ({totals_delta}) d ON r.customer_id = d.customer_id AND r.event = d.event
        WHEN MATCHED THEN UPDATE SET
            events = r.events + d.events, first_at = least(r.first_at, d.first_at), last_at = greatest(r.last_at, d.last_at)
        WHEN NOT MATCHED THEN INSERT VALUES (d.customer_id, d.event, d.events, d.first_at, d.last_at)""")


def _totals(daily: str, where: str = "TRUE") -> str:
    """SQL: the customers' totals (TOTALS's columns) of the daily rows of table `daily` that match `where`."""
    return f"""SELECT customer_id, event, sum(events)::BIGINT AS events, min(first_at) AS first_at, max(last_at) AS last_at
        FROM {daily} WHERE customer_id IS NOT NULL AND ({where}) GROUP BY customer_id, event"""


def add(conn: duckdb.DuckDBPyConnection, fresh: pa.Table) -> None:
    """Count the events an append has just inserted (`fresh`: their event, customer_id, timestamp, properties and
    message_id), and the orders their cancellations cancel among the events logged before them."""
    if not fresh.num_rows:
        return
    conn.register("rollup_fresh", fresh)
    try:
        if pc.any(pc.equal(fresh["event"], ORDER_CANCELLED)).as_py():
            _cancel(conn)
        orders = bool(pc.any(pc.equal(fresh["event"], ORDER_COMPLETED)).as_py())
        rows = "SELECT event, customer_id, timestamp, properties FROM rollup_fresh"
        counted = """SELECT customer_id, event, count(*) AS events, min(timestamp) AS first_at, max(timestamp) AS last_at
            FROM rollup_fresh WHERE customer_id IS NOT NULL GROUP BY customer_id, event"""
        _merge(conn, _aggregated(rows, orders, CANCELLED_KEPT), counted)
        if pc.any(pc.is_in(fresh["event"], pa.array(SEGMENT_CHANGES, fresh["event"].type))).as_py():
            conn.execute(f"""
                MERGE INTO {SEGMENTS} r USING ({_segment_counts(rows)}) d
                ON r.day = d.day AND r.segment = d.segment AND r.event = d.event
                WHEN MATCHED THEN UPDATE SET events = r.events + d.events
                WHEN NOT MATCHED THEN INSERT VALUES (d.day, d.segment, d.event, d.events)""")
    finally:
        conn.unregister("rollup_fresh")


def _cancel(conn: duckdb.DuckDBPyConnection) -> None:
    """Keep the ids of the orders the fresh events cancel, and count as cancelled the earlier events of those that
    no earlier event had cancelled."""
    conn.execute(f"""CREATE OR REPLACE TEMP TABLE rollup_newly AS
        SELECT DISTINCT {ORDER_ID} AS order_id FROM rollup_fresh
        WHERE event = '{ORDER_CANCELLED}' AND {ORDER_ID} IS NOT NULL
        EXCEPT SELECT order_id FROM {CANCELLED}""")
    conn.execute(f"INSERT INTO {CANCELLED} SELECT order_id FROM rollup_newly")
    if not conn.execute("SELECT count(*) FROM rollup_newly").fetchall()[0][0]:
        return
    conn.execute(f"""
        MERGE INTO {TABLE} r USING (
            SELECT CAST(timestamp AS DATE) AS day, customer_id, event, count(*) AS cancelled,
                   sum({VALUE}) AS cancelled_value
            FROM events
            WHERE event = '{ORDER_COMPLETED}' AND {ORDER_ID} IN (SELECT order_id FROM rollup_newly)
              AND message_id NOT IN (SELECT message_id FROM rollup_fresh)
            GROUP BY ALL
        ) d
        ON r.day = d.day AND r.customer_id IS NOT DISTINCT FROM d.customer_id AND r.event = d.event
        WHEN MATCHED THEN UPDATE SET
            cancelled = r.cancelled + d.cancelled, cancelled_value = r.cancelled_value + d.cancelled_value""")
    conn.execute("DROP TABLE rollup_newly")


def move(conn: duckdb.DuckDBPyConnection, merges: Iterable[tuple[str, str]]) -> None:
    """After merges (from, into), applied to the log in that order, give each moved profile's rows to the
    profile its events are in now."""
    where: dict[str, str] = {}  # each profile's rows before the merges -> the profile they are in after them
    for from_id, into_id in merges:
        where.setdefault(from_id, from_id)
        for held, at in list(where.items()):
            if at == from_id:
                where[held] = into_id
    moved = {k: v for k, v in where.items() if k != v}
    if not moved:
        return
    conn.register("rollup_moves", pa.table({"from_id": list(moved), "into_id": list(moved.values())}))
    try:
        conn.execute(f"""CREATE OR REPLACE TEMP TABLE rollup_moved AS
            SELECT day, m.into_id AS customer_id, event, sum(events) AS events, sum(value) AS value,
                   min(first_at) AS first_at, max(last_at) AS last_at, sum(cancelled) AS cancelled,
                   sum(cancelled_value) AS cancelled_value
            FROM {TABLE} JOIN rollup_moves m ON customer_id = m.from_id GROUP BY ALL""")
        for table in (TABLE, TOTALS):
            conn.execute(f"DELETE FROM {table} WHERE customer_id IN (SELECT from_id FROM rollup_moves)")
        _merge(conn, "SELECT * FROM rollup_moved", _totals("rollup_moved"))
        conn.execute("DROP TABLE rollup_moved")
    finally:
        conn.unregister("rollup_moves")


def keys_of(conn: duckdb.DuckDBPyConnection, where: str) -> pa.Table:
    """day, customer_id: the rollup's keys that the events matching the SQL condition `where` count in."""
    return conn.sql(
        f"SELECT DISTINCT CAST(timestamp AS DATE) AS day, customer_id FROM events WHERE {where}"
    ).to_arrow_table()


def recompute(conn: duckdb.DuckDBPyConnection, keys: pa.Table, also: str | None = None) -> None:
    """Count the rows of these keys (day, customer_id), and of their days under customer `also`, again from the
    events (after a rewrite of those events: an erasure moves them to a pseudonym). The segments' changes stay as
    they are: an erased event keeps its `segment` (core.privacy.ANALYTICS_PROPERTIES)."""
    if not keys.num_rows:
        return
    conn.register("rollup_keys", keys)
    try:
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE rollup_recount AS SELECT day, customer_id FROM rollup_keys "
            "UNION SELECT DISTINCT day, CAST(? AS VARCHAR) FROM rollup_keys WHERE ? IS NOT NULL",
            [also, also],
        )
        same = "k.day = {t}.day AND k.customer_id IS NOT DISTINCT FROM {t}.customer_id"
        conn.execute(f"DELETE FROM {TABLE} WHERE EXISTS (SELECT 1 FROM rollup_recount k WHERE {same.format(t=TABLE)})")
        theirs = (
            "SELECT event, customer_id, timestamp, properties FROM events e WHERE CAST(timestamp AS DATE) IN "
            "(SELECT day FROM rollup_recount) AND EXISTS (SELECT 1 FROM rollup_recount k "
            "WHERE k.day = CAST(e.timestamp AS DATE) AND k.customer_id IS NOT DISTINCT FROM e.customer_id)"
        )
        conn.execute(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) {_aggregated(theirs, True, CANCELLED_KEPT)}")
        recounted = "customer_id IN (SELECT customer_id FROM rollup_recount)"
        conn.execute(f"DELETE FROM {TOTALS} WHERE {recounted}")
        conn.execute(f"INSERT INTO {TOTALS} {_totals(TABLE, recounted)}")
        conn.execute("DROP TABLE rollup_recount")
    finally:
        conn.unregister("rollup_keys")


def fill() -> list[str]:
    """SQL statements: fill the (empty) rollup and cancelled orders from the whole log; the rollup by event and day, so
    that a read of one event's rows (purchases) skips the others' row groups, and a flush's merge, of recent days,
    most of the old ones (then `fill_totals` and `fill_segments`)."""
    everything = _aggregated("SELECT event, customer_id, timestamp, properties FROM events", True, CANCELLED_KEPT)
    return [
        f"INSERT INTO {CANCELLED} SELECT order_id FROM ({CANCELLED_IN_LOG}) WHERE order_id IS NOT NULL",
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) {everything} ORDER BY event, day",
    ]


def fill_totals() -> str:
    """SQL: fill the (empty) customers' totals from the daily rollup, by event (a read of one event's totals skips the
    others' row groups)."""
    return f"INSERT INTO {TOTALS} {_totals(TABLE)} ORDER BY event, customer_id"


def fill_segments() -> str:
    """SQL: fill the (empty) segments' changes from the whole log."""
    return f"INSERT INTO {SEGMENTS} {_segment_counts('SELECT event, timestamp, properties FROM events')} ORDER BY day"


def rebuild(conn: duckdb.DuckDBPyConnection) -> int:
    """Count the whole log again (a repair; the migrations run `fill`, `fill_totals` and `fill_segments`); returns
    the rollup's rows."""
    for table in (TABLE, CANCELLED, TOTALS, SEGMENTS):
        conn.execute(f"DELETE FROM {table}")
    for statement in [*fill(), fill_totals(), fill_segments()]:
        conn.execute(statement)
    return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0]
