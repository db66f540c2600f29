"""The segment bench's baselines: every ready-made segment as one hand-written DuckDB query, and in
vectorised pandas from frames of the rows it needs (see segments.py).

Both follow the rule of the segment's YAML as the engine reads it (boomerang.segments.compile):
windows are [as_of - N days, as_of), `last ... more_than_days_ago N` is last < as_of - N days,
`top_percent` keeps percent_rank() over the trait, highest first, below the share, and every member
is a profile first seen (or created) before as_of. Order Completed is the raw event (the library's
rules count completed orders, cancelled or not).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

# -- hand-written SQL --------------------------------------------------------------------------------


def birthday_days(as_of: datetime, days: int) -> list[tuple[int, int]]:
    """(month, day) of today and the next `days` days; 29 February counts on 28 February."""
    out = {(d.month, d.day) for d in (as_of.date() + timedelta(days=i) for i in range(days + 1))}
    return sorted(out | ({(2, 29)} if (2, 28) in out else set()))


def sql_queries(as_of: datetime) -> dict[str, str]:
    """One query per ready-made segment: one scan of the log where it can, GROUP BY ... HAVING."""
    now = f"TIMESTAMP '{as_of.isoformat(sep=' ')}'"
    ago = lambda days: f"({now} - INTERVAL {days} DAY)"  # noqa: E731
    base = (
        f"customer_id IN (SELECT customer_id FROM profiles WHERE coalesce(first_seen_at, created_at) IS NULL "
        f"OR coalesce(first_seen_at, created_at) < {now})"
    )
    orders = f"event = 'Order Completed' AND customer_id IS NOT NULL AND timestamp < {now}"

    def by_order(having):
        return f"SELECT customer_id FROM events WHERE {orders} GROUP BY customer_id HAVING {having} AND {base}"

    mmdd = ", ".join(str(m * 100 + d) for m, d in birthday_days(as_of, 6))
    high_value = (
        "SELECT customer_id, churn_probability, percent_rank() OVER (ORDER BY predicted_clv DESC) AS r "
        "FROM trait_predictions WHERE predicted_clv IS NOT NULL"
    )
    return {
        "active_repeat_buyers": by_order(f"count(*) >= 2 AND max(timestamp) >= {ago(90)}"),
        "birthday_this_week": (
            f"SELECT customer_id FROM profiles WHERE month(birthday) * 100 + day(birthday) IN ({mmdd}) AND {base}"
        ),
        "cart_abandoners": (
            f"SELECT customer_id FROM events WHERE event IN ('Product Added', 'Order Completed') "
            f"AND customer_id IS NOT NULL AND timestamp >= {ago(2)} AND timestamp < {now} GROUP BY customer_id "
            f"HAVING count(*) FILTER (WHERE event = 'Product Added') > 0 "
            f"AND count(*) FILTER (WHERE event = 'Order Completed') = 0 AND {base}"
        ),
        "category_viewers": (
            f"SELECT DISTINCT customer_id FROM events WHERE event = 'Product Viewed' AND customer_id IS NOT NULL "
            f"AND timestamp >= {ago(7)} AND timestamp < {now} AND properties->>'category' IS NOT NULL "
            f"AND customer_id NOT IN (SELECT customer_id FROM events WHERE event = 'Order Completed' "
            f"AND customer_id IS NOT NULL AND timestamp >= {ago(7)} AND timestamp < {now}) AND {base} "
            f"GROUP BY customer_id, properties->>'category' HAVING count(*) >= 3"
        ),
        "churned": f"SELECT customer_id FROM trait_lifecycle WHERE stage = 'churned' AND {base}",
        "high_value": f"SELECT customer_id FROM ({high_value}) WHERE r < 0.1 AND {base}",
        "high_value_at_risk": f"SELECT customer_id FROM ({high_value}) WHERE r < 0.1 AND churn_probability >= 0.5 AND {base}",
        "new_customers": by_order(f"min(timestamp) >= {ago(30)}"),
        "one_time_buyers_30_days": by_order(
            f"count(*) = 1 AND max(timestamp) < {ago(30)} AND max(timestamp) >= {ago(37)}"
        ),
        "sleeping": by_order(f"max(timestamp) < {ago(60)} AND max(timestamp) >= {ago(90)}"),
    }


# -- pandas ------------------------------------------------------------------------------------------


def load_frames(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The rows the pandas rules start from, one query each, with customer ids as integer codes into
    frames["ids"] (DuckDB casts them to an ENUM of the profiles' ids, so pandas groups integers)."""
    con.execute("CREATE OR REPLACE TEMP TYPE bench_customer AS ENUM (SELECT customer_id FROM profiles)")
    ids = con.execute("SELECT unnest(enum_range(NULL::bench_customer))").fetchnumpy()
    ids = np.asarray(ids[next(iter(ids))], dtype=object)
    q = lambda sql: con.execute(sql).df()  # noqa: E731
    cid = "CAST(customer_id AS bench_customer) AS customer_id"
    step = lambda name, extra="": q(  # noqa: E731
        f"SELECT {cid}, timestamp AS ts{extra} FROM events WHERE event = '{name}' AND customer_id IS NOT NULL"
    )
    frames = {
        "profiles": q(f"SELECT {cid}, first_seen_at, created_at, birthday FROM profiles"),
        "orders": step("Order Completed"),
        "added": step("Product Added"),
        "viewed": step("Product Viewed", ", properties->>'category' AS category"),
        "lifecycle": q(f"SELECT {cid}, stage FROM trait_lifecycle"),
        "predictions": q(f"SELECT {cid}, predicted_clv, churn_probability FROM trait_predictions"),
    }
    for frame in frames.values():
        frame["customer_id"] = frame["customer_id"].cat.codes.astype(np.int32)
    frames["viewed"]["category"] = frames["viewed"]["category"].astype("category")
    frames["lifecycle"]["stage"] = frames["lifecycle"]["stage"].astype("category")
    con.execute("DROP TYPE bench_customer")
    frames["ids"] = ids
    return frames


def pandas_versions(as_of: datetime) -> dict[str, Callable[[dict], np.ndarray]]:
    """Each segment's members (customer id strings) from the frames."""
    now = pd.Timestamp(as_of)
    ago = lambda days: now - pd.Timedelta(days=days)  # noqa: E731

    def existing(f) -> np.ndarray:
        p = f["profiles"]
        seen = p["first_seen_at"].fillna(p["created_at"])
        return p["customer_id"].to_numpy()[(seen.isna() | (seen < now)).to_numpy()]

    def named(f, codes) -> np.ndarray:
        """Members among the existing profiles, as ids."""
        return f["ids"][np.intersect1d(np.unique(codes), existing(f), assume_unique=True)]

    def per_buyer(f) -> pd.DataFrame:
        o = f["orders"]
        return o[o["ts"] < now].groupby("customer_id")["ts"].agg(["size", "min", "max"])

    def within(frame: pd.DataFrame, days: int) -> pd.DataFrame:
        return frame[(frame["ts"] >= ago(days)) & (frame["ts"] < now)]

    def active_repeat_buyers(f):
        b = per_buyer(f)
        return named(f, b.index[(b["size"] >= 2) & (b["max"] >= ago(90))])

    def birthday_this_week(f):
        p = f["profiles"]
        days = [m * 100 + d for m, d in birthday_days(as_of, 6)]
        b = pd.to_datetime(p["birthday"])
        return named(f, p["customer_id"][(b.dt.month * 100 + b.dt.day).isin(days)])

    def cart_abandoners(f):
        added = within(f["added"], 2)["customer_id"].unique()
        return named(f, np.setdiff1d(added, within(f["orders"], 2)["customer_id"].to_numpy()))

    def category_viewers(f):
        v = within(f["viewed"], 7).dropna(subset=["category"])
        counts = v.groupby(["customer_id", "category"], observed=True).size()
        often = counts[counts >= 3].index.get_level_values("customer_id").unique().to_numpy()
        return named(f, np.setdiff1d(often, within(f["orders"], 7)["customer_id"].to_numpy()))

    def churned(f):
        t = f["lifecycle"]
        return named(f, t["customer_id"][t["stage"] == "churned"])

    def top_clv(f) -> pd.DataFrame:
        t = f["predictions"].dropna(subset=["predicted_clv"])
        rank = t["predicted_clv"].rank(method="min", ascending=False)  # percent_rank: (rank - 1) / (n - 1)
        return t[((rank - 1) / max(len(t) - 1, 1)) < 0.1]

    def high_value(f):
        return named(f, top_clv(f)["customer_id"])

    def high_value_at_risk(f):
        t = top_clv(f)
        return named(f, t["customer_id"][t["churn_probability"] >= 0.5])

    def new_customers(f):
        b = per_buyer(f)
        return named(f, b.index[b["min"] >= ago(30)])

    def one_time_buyers_30_days(f):
        b = per_buyer(f)
        return named(f, b.index[(b["size"] == 1) & (b["max"] < ago(30)) & (b["max"] >= ago(37))])

    def sleeping(f):
        b = per_buyer(f)
        return named(f, b.index[(b["max"] < ago(60)) & (b["max"] >= ago(90))])

    return {
        fn.__name__: fn
        for fn in (
            active_repeat_buyers,
            birthday_this_week,
            cart_abandoners,
            category_viewers,
            churned,
            high_value,
            high_value_at_risk,
            new_customers,
            one_time_buyers_30_days,
            sleeping,
        )
    }
