"""The bench's simulated shop: an event log and a consents table generated inside DuckDB (see metrics.py)."""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from boomerang.events import rollups

START, END = "2023-01-01", "2025-01-01"  # the log's two years, [START, END)
CATEGORIES = [
    "Coffee > Beans",
    "Coffee > Ground",
    "Coffee > Capsules",
    "Coffee > Instant",
    "Tea > Green",
    "Tea > Black",
    "Tea > Herbal",
    "Tea > Oolong",
    "Home > Mugs",
    "Home > Kettles",
    "Home > Grinders",
    "Home > Filters",
    "Sweets > Chocolate",
    "Sweets > Biscuits",
    "Cosmetics > Care",
    "Cosmetics > Soap",
    "Gifts",
    "Gifts > Boxes",
    "Accessories > Bags",
    "Accessories > Cups",
    "Syrups > Vanilla",
    "Syrups > Caramel",
    "Milk > Oat",
    "Milk > Almond",
]
AGENTS = "['Mozilla/5.0 (iPhone)', 'Mozilla/5.0 (Windows NT 10.0)', 'Mozilla/5.0 (Macintosh)', 'Mozilla/5.0 (Linux; Android 14)']"
GENERATION_MEMORY = "8GB"  # DuckDB's limit while generating (it spills beyond): the machine may be shared


def _ms(days: str) -> str:
    """SQL: an interval of `days` (a SQL expression, may be fractional) at millisecond precision."""
    return f"to_milliseconds(CAST(({days}) * 86400000 AS BIGINT))"


def connect(path: Path, seed: int) -> tuple[duckdb.DuckDBPyConnection, Callable[..., Any], dict[str, float]]:
    """A generating connection with the seeded random macros, `run(sql, step=None)` that times the named
    steps, and the seconds per step it fills."""
    con = duckdb.connect(str(path), config={"memory_limit": GENERATION_MEMORY})
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def run(sql: str, step: str | None = None):
        result = con.execute(sql)
        if step:
            now = time.perf_counter()
            steps[step] = now - clock[0]
            clock[0] = now
        return result

    s = int(seed)
    # Uniform [0, 1) numbers from hash(), so that the result does not depend on threads or plan order.
    run(f"CREATE TEMP MACRO u(a, salt) AS ((hash(a, salt, {s}) >> 11)::DOUBLE / 9007199254740992.0)")
    run(f"CREATE TEMP MACRO u2(a, b, salt) AS ((hash(a, b, salt, {s}) >> 11)::DOUBLE / 9007199254740992.0)")
    run("CREATE TEMP MACRO ex(a, salt) AS (-ln(1 - u(a, salt)))")  # exponential, mean 1
    run("CREATE TEMP MACRO ex2(a, b, salt) AS (-ln(1 - u2(a, b, salt)))")
    run("CREATE TEMP MACRO nrm(a, salt) AS (sqrt(-2 * ln(1 - u(a, salt))) * cos(2 * pi() * u(a, salt + 1)))")
    run(f"CREATE TEMP MACRO cust_id(c) AS printf('cus_%016x%06x', hash(c, 'customer', {s}), c)")
    return con, run, steps


def generate(path: Path, customers: int, events: int, seed: int) -> tuple[dict[str, int], dict[str, float]]:
    """Write the event log and the consents table to `path`, all in SQL; returns the counts of what it made
    and the seconds each step took."""
    con, run, steps = connect(path, seed)
    s = int(seed)
    span = f"(DATE '{END}' - DATE '{START}')"  # days
    cats = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    run(f"""CREATE TEMP TABLE products AS
        SELECT range AS p, 'SKU-' || lpad(CAST(range AS VARCHAR), 5, '0') AS sku,
               {cats}[1 + CAST(floor(u(range, 1) * {len(CATEGORIES)}) AS INTEGER)] AS category,
               round(3 + exp(ln(12) + 0.6 * nrm(range, 2)), 2) AS price
        FROM range(2000)""")
    # Customers: first seen over the two years (more of them later), a loyalty tier (q: the chance of
    # buying again after each order), their own rhythm between orders, and a browsing weight.
    run(f"""CREATE TEMP TABLE cust AS
        SELECT c, seen, buyer, q, rhythm, n_orders,
               exp(0.9 * nrm(c, 30)) * (0.4 + CASE WHEN buyer THEN n_orders ELSE 0 END)
                 * (epoch(TIMESTAMP '{END}') - epoch(seen)) / 86400 AS weight
        FROM (
          SELECT c, seen, buyer, q, rhythm,
                 CAST(least(200, 1 + floor(ln(1 - u(c, 4)) / ln(q))) AS INTEGER) AS n_orders
          FROM (
            SELECT range AS c,
                   TIMESTAMP '{START}' + {_ms(f"pow(u(range, 1), 0.8) * {span}")} AS seen,
                   u(range, 2) < 0.62 AS buyer,
                   CASE WHEN u(range, 3) < 0.65 THEN 0.25 WHEN u(range, 3) < 0.92 THEN 0.6 ELSE 0.88 END AS q,
                   CASE WHEN u(range, 3) >= 0.92 THEN exp(ln(10) + u(range, 5) * ln(4.5))
                        ELSE exp(ln(15) + u(range, 5) * ln(10)) END AS rhythm
            FROM range({customers})))""")
    # Orders: the first one days after being first seen, then exponential gaps around the customer's rhythm.
    run(
        f"""CREATE TEMP TABLE orders AS
        WITH k AS (
          SELECT c, seen, rhythm, unnest(range(n_orders)) AS k FROM cust WHERE buyer
        ), t AS (
          SELECT c, k, seen + {
            _ms(
                "ex(c, 6) * 7 + sum(CASE WHEN k = 0 THEN 0 ELSE greatest(0.05, rhythm * ex2(c, k, 7)) END) "
                "OVER (PARTITION BY c ORDER BY k)"
            )
        } AS ts
          FROM k
        )
        SELECT c, k, ts, 'ord_' || CAST(10000000 + row_number() OVER (ORDER BY ts, c) AS VARCHAR) AS order_id,
               round(exp(ln(38) + 0.55 * nrm(c * 1000 + k, 8)), 2) AS revenue,
               u2(c, k, 10) < 0.02 AS no_revenue,
               1 + CAST(floor(ex2(c, k, 11) * 0.8) AS INTEGER) AS items,
               CAST(floor(2000 * pow(u2(c, k, 12), 2.2)) AS INTEGER) AS p,
               u2(c, k, 13) < 0.03 AS cancelled, u2(c, k, 14) < 0.05 AS refunded, u2(c, k, 15) < 0.06 AS surveyed
        FROM t WHERE ts < TIMESTAMP '{END}'""",
        "customers, orders",
    )
    run(
        "CREATE TEMP TABLE order_events (uid BIGINT, kind VARCHAR, c BIGINT, anon BIGINT, ts TIMESTAMP, "
        "src VARCHAR, properties JSON)"
    )
    # The path to each purchase: views (sometimes days earlier), an add, a checkout, then the order.
    run(
        f"""INSERT INTO order_events
        WITH o AS (
          SELECT *, 1 + least(7, CAST(floor(ex2(c, k, 20) * 1.8) AS INTEGER)) AS views,
                 (4 + ex2(c, k, 21) * 25) / 1440 AS minutes_step,
                 CASE WHEN u2(c, k, 22) < 0.2 THEN 1 + u2(c, k, 23) * 5 ELSE 0 END AS days_before
          FROM orders
        ), e AS (SELECT *, unnest(range(views + 3)) AS j FROM o)
        SELECT 1000000000 * (1 + k) + c * 16 + j AS uid,
               CASE WHEN j < views THEN 'Product Viewed' WHEN j = views THEN 'Product Added'
                    WHEN j = views + 1 THEN 'Checkout Started' ELSE 'Order Completed' END AS kind,
               c, NULL, ts - {_ms("(views + 2 - j) * minutes_step + CASE WHEN j < views THEN days_before ELSE 0 END")},
               CASE WHEN j = views + 2 THEN 'shop' ELSE 'web' END,
               CASE WHEN j = views + 2 THEN
                      CASE WHEN no_revenue THEN json_object('order_id', order_id, 'currency', 'USD',
                                                            'total', round(revenue * 1.08 + 4.99, 2))
                      ELSE json_object('order_id', order_id, 'revenue', revenue,
                                       'shipping', CASE WHEN revenue > 50 THEN 0 ELSE 4.99 END,
                                       'tax', round(revenue * 0.08, 2),
                                       'total', round(revenue * 1.08 + CASE WHEN revenue > 50 THEN 0 ELSE 4.99 END, 2),
                                       'currency', 'USD',
                                       'products', to_json(list_transform(range(items), lambda i: {{
                                           'sku': 'SKU-' || lpad(CAST((e.p + i * 7) % 2000 AS VARCHAR), 5, '0'),
                                           'quantity': 1}})))
                      END
                    WHEN j = views + 1 THEN json_object('value', revenue, 'currency', 'USD')
                    ELSE json_object('sku', pr.sku, 'category', pr.category, 'price', pr.price)
               END
        FROM e JOIN products pr
          ON pr.p = CASE WHEN j = 0 OR j = views THEN e.p
                         ELSE CAST(floor(2000 * pow(u2(e.c * 1000 + e.k, j, 24), 2.2)) AS INTEGER) END""",
        "paths to purchase",
    )
    # Cancellations and refunds of real orders, NPS answers after some of the others.
    run(
        f"""INSERT INTO order_events
        SELECT 1000000000 * (1 + k) + c * 16 + 12, 'Order Cancelled', c, NULL, ts + {_ms("(1 + ex2(c, k, 30) * 10) / 24")},
               'shop',
               json_object('order_id', order_id, 'reason', 'customer request')
        FROM orders WHERE cancelled
        UNION ALL
        SELECT 1000000000 * (1 + k) + c * 16 + 13, 'Order Refunded', c, NULL, ts + {_ms("3 + ex2(c, k, 31) * 12")},
               'shop',
               json_object('order_id', order_id,
                           'total', CASE WHEN u2(c, k, 32) < 0.7 THEN revenue ELSE round(revenue * u2(c, k, 33), 2) END,
                           'currency', 'USD')
        FROM orders WHERE refunded AND NOT cancelled
        UNION ALL
        SELECT 1000000000 * (1 + k) + c * 16 + 14, 'NPS Survey Answered', c, NULL, ts + {_ms("3 + ex2(c, k, 34) * 4")},
               'survey',
               json_object('score', CASE WHEN x < 0.03 THEN 0 WHEN x < 0.05 THEN 1 WHEN x < 0.07 THEN 2 WHEN x < 0.10 THEN 3
                                         WHEN x < 0.13 THEN 4 WHEN x < 0.18 THEN 5 WHEN x < 0.25 THEN 6 WHEN x < 0.40 THEN 7
                                         WHEN x < 0.60 THEN 8 WHEN x < 0.78 THEN 9 ELSE 10 END, 'survey', 'nps-2023')
        FROM (SELECT *, u2(c, k, 35) AS x FROM orders) WHERE surveyed AND NOT cancelled""",
        "cancellations, refunds, NPS",
    )
    run(f"DELETE FROM order_events WHERE ts < TIMESTAMP '{START}' OR ts >= TIMESTAMP '{END}'")
    fixed = run("SELECT count(*) FROM order_events").fetchone()[0]
    rest = events - fixed
    if rest < 0:
        raise SystemExit(f"{events:,} events are too few for the orders of {customers:,} customers ({fixed:,} needed)")
    # Browsing sessions fill the rest: 8% anonymous, the others spread over customers by weight (an
    # ASOF join on the cumulative weights), 1 to 12 events each, cut to exactly the events asked for.
    sessions = rest // 3 + 1000
    run("CREATE TEMP TABLE cum AS SELECT c, seen, sum(weight) OVER (ORDER BY c) - weight AS lo FROM cust")
    total_weight = run("SELECT sum(weight) FROM cust").fetchone()[0]
    run(f"""CREATE TEMP TABLE browse AS
        WITH s AS (
          SELECT range AS sid, u(range, 40) < 0.08 AS anonymous, u(range, 41) * {total_weight} AS pick,
                 1 + least(11, CAST(floor(ex(range, 42) * 3.5) AS INTEGER)) AS n, u(range, 43) AS when_,
                 CAST(floor(2000 * pow(u(range, 44), 2.2)) AS INTEGER) AS p0
          FROM range({sessions})
        ), owned AS (
          SELECT s.*, cum.c, cum.seen FROM s ASOF JOIN cum ON s.pick >= cum.lo
        ), placed AS (
          SELECT sid, CASE WHEN anonymous THEN NULL ELSE c END AS c, CASE WHEN anonymous THEN sid END AS anon, n, p0,
                 CASE WHEN anonymous THEN TIMESTAMP '{START}' ELSE seen END AS from_,
                 sum(n) OVER (ORDER BY sid) - n AS pos, when_
          FROM owned
        )
        SELECT *, from_ + {_ms(f"when_ * greatest(0, epoch(TIMESTAMP '{END}') - epoch(from_) - 3600) / 86400")} AS t0
        FROM placed WHERE pos < {rest}""")
    run(
        f"""INSERT INTO order_events
        WITH e AS (SELECT *, unnest(range(n)) AS j FROM browse),
        k AS (
          SELECT *, pos + j AS seq,
                 CASE WHEN j = 0 THEN (CASE WHEN u2(sid, j, 50) < 0.45 THEN 'Page Viewed' ELSE 'Product Viewed' END)
                      ELSE (CASE WHEN u2(sid, j, 50) < 0.68 THEN 'Product Viewed'
                                 WHEN u2(sid, j, 50) < 0.82 THEN 'Product Added'
                                 WHEN u2(sid, j, 50) < 0.88 THEN 'Cart Viewed'
                                 WHEN u2(sid, j, 50) < 0.92 THEN 'Checkout Started'
                                 ELSE 'Page Viewed' END) END AS kind,
                 CASE WHEN u2(sid, j, 51) < 0.6 THEN p0 ELSE CAST(floor(2000 * pow(u2(sid, j, 52), 2.2)) AS INTEGER) END AS p
          FROM e WHERE pos + j < {rest}
        )
        SELECT seq, kind, c, anon, least(t0 + {_ms("j * (20 + ex2(sid, j, 53) * 90) / 86400")},
                                          TIMESTAMP '{END}' - INTERVAL 1 SECOND), 'web',
               CASE kind WHEN 'Page Viewed' THEN json_object('path', CASE WHEN j = 0 THEN '/' ELSE '/c/' || (p % 40) END,
                                                             'title', 'Shop')
                         WHEN 'Product Viewed' THEN
                           CASE WHEN u2(sid, j, 54) < 0.03 THEN json_object('sku', pr.sku, 'price', pr.price)
                                ELSE json_object('sku', pr.sku, 'category', pr.category, 'price', pr.price) END
                         WHEN 'Product Added' THEN json_object('sku', pr.sku, 'price', pr.price, 'quantity', 1)
                         WHEN 'Checkout Started' THEN json_object('value', pr.price, 'currency', 'USD')
                         ELSE json_object('cart_id', 'cart_' || sid) END
        FROM k JOIN products pr USING (p)""",
        "browsing sessions",
    )
    made = run("SELECT count(*) FROM order_events").fetchone()[0]
    if made != events:
        raise SystemExit(f"generated {made:,} events instead of {events:,}")
    run("""CREATE TABLE events (message_id VARCHAR PRIMARY KEY, type VARCHAR NOT NULL, event VARCHAR NOT NULL,
            customer_id VARCHAR, anonymous_id VARCHAR, user_id VARCHAR, timestamp TIMESTAMP NOT NULL,
            received_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL, properties JSON, context JSON)""")
    # Appended in time order, as the pipeline's flushes append; known customers carry their device's anonymous id.
    run(
        f"""INSERT INTO events
        SELECT printf('msg_%011x%012x', epoch_ms(e.ts), e.uid),
               CASE WHEN kind = 'Page Viewed' THEN 'page' ELSE 'track' END, kind,
               CASE WHEN e.c IS NULL THEN NULL ELSE cust_id(e.c) END,
               CASE WHEN e.c IS NULL THEN printf('anon_%016x', hash(e.anon, 'anon', {s}))
                    WHEN src = 'web' THEN printf('anon_%016x', hash(e.c, 'device', {s})) END,
               CASE WHEN e.c IS NOT NULL AND cust.buyer THEN CAST(500000 + e.c AS VARCHAR) END,
               e.ts, e.ts + {_ms("0.2 + u(e.uid, 60) * 3")} / 86400, src, properties,
               CASE WHEN src = 'web' THEN json_object(
                      'library', json_object('name', 'analytics.js', 'version', '5.2.1'),
                      'ip', printf('10.%d.%d.%d', hash(e.c, e.anon, 61) % 256, hash(e.c, e.anon, 62) % 256,
                                   hash(e.c, e.anon, 63) % 256),
                      'userAgent', {AGENTS}[1 + CAST(hash(e.c, e.anon, 64) % 4 AS INTEGER)])
                    ELSE '{{"library":{{"name":"boomerang-shop","version":"1.4.0"}}}}' END
        FROM order_events e LEFT JOIN cust ON cust.c = e.c
        ORDER BY e.ts, e.uid""",
        "events table (time order, primary key)",
    )
    # Consents: email, SMS and Telegram grants some days after first seen, some re-confirmed, some
    # withdrawn later (and some granted again after that), a few opt-outs with no grant before.
    run(
        f"""CREATE TABLE consents AS
        WITH ch(channel, n, share) AS (VALUES ('email', 1, 0.45), ('sms', 2, 0.18), ('telegram', 3, 0.12)),
        g AS (
          SELECT c, channel, n, seen + {_ms("ex2(c, n, 70) * 20")} AS granted_at,
                 u2(c, n, 71) < 0.35 AS withdraws, u2(c, n, 72) < 0.3 AS again
          FROM cust, ch WHERE u2(c, n, 73) < share
        ), w AS (SELECT *, granted_at + {_ms("1 + ex2(c, n, 74) * 120")} AS withdrawn_at FROM g WHERE withdraws),
        rows AS (
          SELECT c, channel, true AS granted, granted_at AS "at" FROM g
          UNION ALL SELECT c, channel, true, granted_at + {_ms("1 + ex2(c, n, 75) * 200")} FROM g WHERE u2(c, n, 76) < 0.1
          UNION ALL SELECT c, channel, false, withdrawn_at FROM w
          UNION ALL SELECT c, channel, true, withdrawn_at + {_ms("1 + ex2(c, n, 77) * 60")} FROM w WHERE again
          UNION ALL SELECT c, channel, false, seen + {_ms("ex2(c, n, 78) * 30")} FROM cust, ch WHERE u2(c, n, 79) < 0.01
        )
        SELECT cust_id(c) AS customer_id, channel, granted, "at" FROM rows WHERE "at" < TIMESTAMP '{END}' ORDER BY 4""",
        "consents",
    )
    counts = dict(run("SELECT event, count(*) FROM events GROUP BY 1").fetchall())
    counts["consents"] = run("SELECT count(*) FROM consents").fetchone()[0]
    con.close()
    return counts, steps


def _generate_child(path: str, customers: int, events: int, seed: int, queue) -> None:
    started = time.perf_counter()
    counts, steps = generate(Path(path), customers, events, seed)
    queue.put((counts, steps, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def generate_apart(
    path: Path, customers: int, events: int, seed: int
) -> tuple[dict[str, int], dict[str, float], float, float]:
    """Generate in a child process: its time and peak memory stay out of the metrics' figures."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_generate_child, args=(str(path), customers, events, seed, queue))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generation failed (exit code {child.exitcode})")
    counts, steps, seconds, peak_kb = queue.get()
    return counts, steps, seconds, peak_kb / 1024


def count_rollup(path: Path) -> float | None:
    """The log's daily rollup and cancelled orders counted into the file (as migration e0003 fills an existing log);
    the seconds it took, or None when the file has them already."""
    with duckdb.connect(str(path)) as conn:
        if conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [rollups.TABLE]
        ).fetchone()[0]:
            return None
        started = time.perf_counter()
        everything = "SELECT event, customer_id, timestamp, properties FROM events"
        conn.execute(
            f"CREATE TABLE {rollups.CANCELLED} AS "
            f"SELECT order_id FROM ({rollups.CANCELLED_IN_LOG}) WHERE order_id IS NOT NULL"
        )
        conn.execute(
            f"CREATE TABLE {rollups.TABLE} AS "
            f"{rollups._aggregated(everything, True, rollups.CANCELLED_KEPT)} ORDER BY event, day"
        )
        conn.execute("CHECKPOINT")
        return time.perf_counter() - started


def count_rollup_apart(path: Path) -> float | None:
    """count_rollup in a child process: its memory stays out of the metrics' figures."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=lambda: queue.put(count_rollup(path)))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"counting the rollup failed (exit code {child.exitcode})")
    return queue.get()


def describe(path: Path) -> list[str]:
    """A few figures showing the shop looks like a shop."""
    con = duckdb.connect(str(path), read_only=True)
    one = lambda sql: con.execute(sql).fetchone()  # noqa: E731
    known, anonymous, buyers = one("""SELECT count(DISTINCT customer_id), count(*) FILTER (WHERE customer_id IS NULL),
        (SELECT count(DISTINCT customer_id) FROM events WHERE event = 'Order Completed') FROM events""")
    hist = con.execute("""SELECT CASE WHEN n >= 10 THEN '10+' WHEN n >= 5 THEN '5-9' ELSE CAST(n AS VARCHAR) END AS orders,
        count(*) FROM (SELECT customer_id, count(*) AS n FROM events WHERE event = 'Order Completed' GROUP BY 1)
        GROUP BY 1 ORDER BY min(n)""").fetchall()
    gaps = one("""SELECT quantile_cont(g, [0.25, 0.5, 0.9]) FROM (
        SELECT date_diff('day', lag(timestamp) OVER (PARTITION BY customer_id ORDER BY timestamp), timestamp) AS g
        FROM events WHERE event = 'Order Completed') WHERE g IS NOT NULL""")[0]
    revenue = one("SELECT avg(CAST(properties->>'revenue' AS DOUBLE)) FROM events WHERE event = 'Order Completed'")[0]
    size = path.stat().st_size / 2**20
    con.close()
    total = sum(n for _, n in hist)
    return [
        f"customers with events: {known:,} ({buyers:,} buyers); events of anonymous visitors: {anonymous:,}; file: {size:,.0f} MB",
        "orders per buyer: "
        + ", ".join(f"{k}: {n / total:.1%}" for k, n in hist)
        + f"; days between orders: p25 {gaps[0]:.0f}, median {gaps[1]:.0f}, p90 {gaps[2]:.0f}; mean revenue {revenue:.2f}",
    ]
