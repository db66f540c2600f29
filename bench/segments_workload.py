"""The segment bench's shop: metrics_workload's event log and consent history, plus what segments read
beside the log in a workspace (see segments.py).

Added to the same DuckDB file, all in SQL from hash() with the seed, so the file is the same on
every run with the same arguments:
- profiles (the schema of boomerang.segments.profiles): one per customer id of the log (customers
  without events too), external id = the log's user id, email for 60%, phone for 35%, Telegram for
  15%, city for 85%, birthday for 70%, first_seen_at/last_seen_at from the log, created_at;
- profile_consents: each customer's current consent per channel (the last change of `consents`);
- trait_lifecycle (customer_id, stage, since): buyers' stage from their orders as of the end (new,
  active, reactivated, sleeping, churned);
- trait_predictions (customer_id, p_alive, churn_probability, expected_purchases, predicted_clv):
  buyers' p_alive falls with the days since their last order against their own rhythm, the CLV
  follows what they spent (rounded to cents, so that ties occur as in real predictions).
"Now" for the bench is END, the end of the generated period.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from datetime import datetime
from pathlib import Path

import duckdb

from metrics_workload import END, START, _ms, connect
from metrics_workload import generate as generate_log

AS_OF = datetime.fromisoformat(END)  # rules are evaluated at the end of the log
CITIES = [
    ("Kyiv", "UA", 0.30),
    ("Lviv", "UA", 0.12),
    ("Odesa", "UA", 0.10),
    ("Kharkiv", "UA", 0.10),
    ("Dnipro", "UA", 0.09),
    ("Vinnytsia", "UA", 0.05),
    ("Poltava", "UA", 0.04),
    ("Chernihiv", "UA", 0.03),
    ("Ivano-Frankivsk", "UA", 0.04),
    ("Zaporizhzhia", "UA", 0.05),
    ("Warsaw", "PL", 0.05),
    ("Berlin", "DE", 0.03),
]
FIRST_NAMES = [
    "Olena",
    "Andrii",
    "Iryna",
    "Oleksandr",
    "Natalia",
    "Dmytro",
    "Kateryna",
    "Serhii",
    "Yulia",
    "Maksym",
    "Anna",
    "Taras",
    "Sofiia",
    "Bohdan",
    "Mariia",
    "Ivan",
]
LAST_NAMES = [
    "Shevchenko",
    "Kovalenko",
    "Bondarenko",
    "Tkachenko",
    "Kravchenko",
    "Melnyk",
    "Boiko",
    "Oliinyk",
    "Koval",
    "Lysenko",
    "Marchenko",
    "Rudenko",
]
SEGMENT_TABLES = ("profiles", "profile_consents", "trait_lifecycle", "trait_predictions")


def _list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def add_segment_tables(path: Path, customers: int, seed: int) -> dict[str, float]:
    """Profiles, current consents and traits beside the log already at `path`; returns seconds per step."""
    con, run, steps = connect(path, seed)  # the same macros and seed: the same customers and ids
    span = f"(DATE '{END}' - DATE '{START}')"
    cum = []
    total = 0.0
    for name, country, share in CITIES:
        total += share
        cum.append(f"WHEN x < {total:.4f} THEN ['{name}', '{country}']")
    run("""CREATE TEMP TABLE seen AS SELECT customer_id, min(timestamp) AS first, max(timestamp) AS last
            FROM events WHERE customer_id IS NOT NULL GROUP BY 1""")
    run(
        f"""CREATE TABLE profiles AS
        WITH c AS (
          SELECT range AS c, cust_id(range) AS customer_id, u(range, 100) AS x,
                 TIMESTAMP '{START}' + {_ms(f"pow(u(range, 1), 0.8) * {span}")} AS signed_up
          FROM range({customers})
        ), placed AS (SELECT *, CASE WHEN u(c, 111) < 0.85 THEN CASE {" ".join(cum)} END END AS place FROM c)
        SELECT p.customer_id, CAST(500000 + c AS VARCHAR) AS external_id,
               CASE WHEN u(c, 101) < 0.60 THEN printf('c%d@mail.example', c) END AS email,
               CASE WHEN u(c, 102) < 0.35 THEN printf('+38050%07d', c) END AS phone,
               CASE WHEN u(c, 103) < 0.15 THEN CAST(700000000 + c AS VARCHAR) END AS telegram_chat_id,
               CASE WHEN u(c, 104) < 0.70 THEN {_list(FIRST_NAMES)}[1 + CAST(floor(u(c, 105) * {len(FIRST_NAMES)}) AS INTEGER)] END
                 AS first_name,
               CASE WHEN u(c, 104) < 0.55 THEN {_list(LAST_NAMES)}[1 + CAST(floor(u(c, 106) * {len(LAST_NAMES)}) AS INTEGER)] END
                 AS last_name,
               place[1] AS city, place[2] AS country,
               CASE WHEN place[2] = 'UA' THEN 'Europe/Kyiv' WHEN place[2] = 'PL' THEN 'Europe/Warsaw'
                    WHEN place[2] = 'DE' THEN 'Europe/Berlin' END AS timezone,
               CASE WHEN place IS NULL THEN NULL WHEN u(c, 107) < 0.8 THEN 'uk-UA' ELSE 'en-US' END AS locale,
               CASE WHEN u(c, 108) < 0.70
                    THEN DATE '1950-01-01' + CAST(floor(u(c, 109) * (DATE '2007-01-01' - DATE '1950-01-01')) AS INTEGER) END
                 AS birthday,
               seen.first AS first_seen_at, seen.last AS last_seen_at, coalesce(seen.first, signed_up) AS created_at,
               CASE WHEN u(c, 110) < 0.2 THEN json_object('source', 'instagram') ELSE '{{}}' END::JSON AS attributes
        FROM placed p LEFT JOIN seen USING (customer_id)
        ORDER BY c""",
        "profiles",
    )
    run(
        """CREATE TABLE profile_consents AS
        SELECT customer_id, channel, arg_max(granted, "at") AS granted FROM consents GROUP BY 1, 2 ORDER BY 1, 2""",
        "profile_consents",
    )
    run(f"""CREATE TEMP TABLE buys AS
        SELECT customer_id, count(*) AS n, min(timestamp) AS first, max(timestamp) AS last,
               sum(coalesce(TRY_CAST(properties->>'revenue' AS DOUBLE), TRY_CAST(properties->>'total' AS DOUBLE), 0)) AS spent,
               date_diff('second', max(timestamp), TIMESTAMP '{END}') / 86400 AS idle,
               date_diff('second', min(timestamp), TIMESTAMP '{END}') / 86400 AS age
        FROM events WHERE event = 'Order Completed' AND customer_id IS NOT NULL GROUP BY 1""")
    run(
        """CREATE TABLE trait_lifecycle AS
        SELECT customer_id,
               CASE WHEN idle > 180 THEN 'churned' WHEN idle > 90 THEN 'sleeping' WHEN age <= 30 THEN 'new'
                    WHEN n > 1 AND u(hash(customer_id), 120) < 0.15 THEN 'reactivated' ELSE 'active' END AS stage,
               CASE WHEN idle > 180 THEN last + INTERVAL 180 DAY WHEN idle > 90 THEN last + INTERVAL 90 DAY
                    ELSE last END AS since
        FROM buys ORDER BY 1""",
        "trait_lifecycle",
    )
    # p_alive: the chance the customer has not left, falling with idle days against their own rhythm
    # (their mean gap, or a shop-wide 60 days for one-time buyers), and lower for one-time buyers.
    run(
        """CREATE TABLE trait_predictions AS
        WITH p AS (
          SELECT customer_id, spent, n,
                 least(0.999, greatest(0.02, exp(-idle / (CASE WHEN n > 1 THEN 2 * (age - idle) / (n - 1) + 30 ELSE 150 END))
                                              * (CASE WHEN n > 1 THEN 0.95 ELSE 0.7 END)
                                              * (0.85 + 0.15 * u(hash(customer_id), 121)))) AS p_alive
          FROM buys
        )
        SELECT customer_id, round(p_alive, 6) AS p_alive, round(1 - p_alive, 6) AS churn_probability,
               round(p_alive * (0.3 + n * 0.4), 4) AS expected_purchases,
               round(p_alive * (0.3 + n * 0.4) * spent / n, 2) AS predicted_clv
        FROM p ORDER BY 1""",
        "trait_predictions",
    )
    con.close()
    return steps


def generate(path: Path, customers: int, events: int, seed: int) -> tuple[dict[str, int], dict[str, float]]:
    counts, steps = generate_log(path, customers, events, seed)
    steps.update(add_segment_tables(path, customers, seed))
    con = duckdb.connect(str(path), read_only=True)
    for table in SEGMENT_TABLES:
        counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    con.close()
    return counts, steps


def _generate_child(path: str, customers: int, events: int, seed: int, queue) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # DuckDB draws its progress bar on stdout; errors still reach stderr
    started = time.perf_counter()
    counts, steps = generate(Path(path), customers, events, seed)
    queue.put((counts, steps, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def generate_apart(
    path: Path, customers: int, events: int, seed: int
) -> tuple[dict[str, int], dict[str, float], float, float]:
    """Generate in a child process (its time and peak memory stay out of the figures), into a
    temporary name renamed at the end, so that an interrupted run leaves no half file to reuse."""
    part = path.with_name(path.name + ".part")
    for stale in (part, part.with_name(part.name + ".wal")):
        stale.unlink(missing_ok=True)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_generate_child, args=(str(part), customers, events, seed, queue))
    child.start()
    counts, steps, seconds, peak_kb = queue.get()  # before join: a large message would block the child
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generation failed (exit code {child.exitcode})")
    os.replace(part, path)
    return counts, steps, seconds, peak_kb / 1024


def describe(path: Path) -> list[str]:
    """What the segment tables look like."""
    con = duckdb.connect(str(path), read_only=True)
    one = lambda sql: con.execute(sql).fetchone()  # noqa: E731
    n, email, phone, tg, city, birthday, seen = (
        one("""SELECT count(*), count(email), count(phone), count(telegram_chat_id),
        count(city), count(birthday), count(first_seen_at) FROM profiles""")
    )
    consents = con.execute("""SELECT channel, count(*) FILTER (WHERE granted), count(*) FROM profile_consents
        GROUP BY 1 ORDER BY 1""").fetchall()
    stages = con.execute("SELECT stage, count(*) FROM trait_lifecycle GROUP BY 1 ORDER BY 2 DESC").fetchall()
    p = one("""SELECT count(*), avg(p_alive), quantile_cont(predicted_clv, 0.5), quantile_cont(predicted_clv, 0.9),
        count(*) FILTER (WHERE churn_probability >= 0.5) FROM trait_predictions""")
    con.close()
    pct = lambda k: f"{k / n:.0%}"  # noqa: E731
    return [
        f"profiles: {n:,} (email {pct(email)}, phone {pct(phone)}, Telegram {pct(tg)}, city {pct(city)}, "
        f"birthday {pct(birthday)}, with events {pct(seen)})",
        "consents granted now: " + ", ".join(f"{ch} {g:,} of {t:,}" for ch, g, t in consents),
        "lifecycle: "
        + ", ".join(f"{s} {k:,}" for s, k in stages)
        + f"; predictions: {p[0]:,} buyers, mean p_alive {p[1]:.2f}, CLV median {p[2]:.2f} p90 {p[3]:.2f}, "
        f"churn_probability >= 0.5: {p[4]:,}",
    ]
