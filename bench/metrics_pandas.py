"""The bench's baseline: every metric in vectorised pandas, from frames of the rows it needs (see metrics.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from boomerang.metrics import activity
from boomerang.metrics.base import period_and_series
from boomerang.metrics.rfm import GROUP_NAMES, GROUPS

FUNNEL = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]  # FunnelQuery's default
FUNNEL_HOURS = 168
HORIZONS = (30, 90, 365)


def load_frames(path: Path) -> dict[str, pd.DataFrame]:
    """The rows the pandas metrics start from, one query each, as a data scientist would export them."""
    con = duckdb.connect(str(path), read_only=True)
    q = lambda sql: con.execute(sql).df()  # noqa: E731
    step = lambda name, extra="": q(  # noqa: E731
        f"SELECT customer_id, timestamp AS ts{extra} FROM events WHERE event = '{name}' AND customer_id IS NOT NULL"
    )
    frames = {
        "orders": q(
            "SELECT customer_id, properties->>'order_id' AS order_id, timestamp AS ts, "
            "coalesce(TRY_CAST(properties->>'revenue' AS DOUBLE), TRY_CAST(properties->>'total' AS DOUBLE), 0) AS value "
            "FROM events WHERE event = 'Order Completed' AND customer_id IS NOT NULL"
        ),
        "cancelled": q("SELECT properties->>'order_id' AS order_id FROM events WHERE event = 'Order Cancelled'"),
        "refunds": q(
            "SELECT customer_id, timestamp AS ts, coalesce(TRY_CAST(properties->>'total' AS DOUBLE), 0) AS value "
            "FROM events WHERE event = 'Order Refunded' AND customer_id IS NOT NULL"
        ),
        "nps": q(
            "SELECT timestamp AS ts, TRY_CAST(properties->>'score' AS DOUBLE) AS score FROM events "
            "WHERE event = 'NPS Survey Answered' AND TRY_CAST(properties->>'score' AS DOUBLE) IS NOT NULL"
        ),
        FUNNEL[0]: step(FUNNEL[0], ", properties->>'category' AS category"),
        **{name: step(name) for name in FUNNEL[1:]},
        "consents": q('SELECT customer_id, channel, granted, "at" FROM consents'),
    }
    con.close()
    return frames


@dataclass
class Period:
    """The query's period [start, end) and its buckets: key 0 is the whole period, keys 1.. the months."""

    start: pd.Timestamp
    end: pd.Timestamp
    buckets: pd.DataFrame  # key, bucket, bucket_end

    @classmethod
    def of(cls, start, end) -> Period:
        return cls(pd.Timestamp(start), pd.Timestamp(end), period_and_series(start, end, "month"))

    def key(self, ts: pd.Series) -> np.ndarray:
        """The series bucket (1..) of times inside the period."""
        starts = self.buckets["bucket"].iloc[1:].to_numpy().astype(ts.dtype)
        return np.searchsorted(starts, ts.to_numpy(), side="right")

    def inside(self, frame: pd.DataFrame, column: str = "ts") -> pd.DataFrame:
        return frame[(frame[column] >= self.start) & (frame[column] < self.end)]

    def keyed(self, frame: pd.DataFrame, column: str = "ts") -> pd.DataFrame:
        """The rows of the period twice: once under key 0 (the whole period), once under their month's key."""
        frame = self.inside(frame, column)
        return pd.concat([frame.assign(key=0), frame.assign(key=self.key(frame[column]))], ignore_index=True)


def _num(x) -> Any:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def reported(counts: pd.DataFrame, period: Period, value: Callable[[pd.Series], Any]) -> dict[str, Any]:
    """value, details and series from counts indexed by key (absent keys counted 0), like the engine's report."""
    counts = counts.reindex(period.buckets["key"]).fillna(0.0).astype(float)
    rows = [{"value": _num(value(row)), **{c: _num(row[c]) for c in counts.columns}} for _, row in counts.iterrows()]
    return {
        "value": rows[0]["value"],
        "details": {k: v for k, v in rows[0].items() if k != "value"},
        "series": rows[1:],
    }


def purchases(f) -> pd.DataFrame:
    """Completed orders of known customers, less the cancelled ones."""
    orders = f["orders"]
    return orders[~orders["order_id"].isin(f["cancelled"]["order_id"])]


def pd_order_kpis(f, period: Period, value) -> dict[str, Any]:
    p = period.keyed(purchases(f))
    per = p.groupby(["key", "customer_id"])["value"].agg(["size", "sum"])
    counts = per.groupby(level="key").agg(
        customers=("size", "size"),
        repeaters=("size", lambda s: (s >= 2).sum()),
        orders=("size", "sum"),
        revenue=("sum", "sum"),
    )
    return reported(counts, period, value)


def pd_revenue_new_vs_returning(f, period: Period) -> dict[str, Any]:
    p = purchases(f)
    p = p.assign(first=p.groupby("customer_id")["ts"].transform("min"))
    p = period.keyed(p)
    new = p["first"] >= p["key"].map(period.buckets.set_index("key")["bucket"])
    counts = (
        p.assign(new=p["value"].where(new, 0.0), returning=p["value"].where(~new, 0.0))
        .groupby("key")[["new", "returning"]]
        .sum()
    )
    total = lambda r: r["new"] + r["returning"]  # noqa: E731
    return reported(counts, period, lambda r: r["returning"] / total(r) if total(r) else None)


def pd_historical_ltv(f, period: Period) -> dict[str, Any]:
    p, refunds = purchases(f), f["refunds"]
    firsts = np.sort(p.groupby("customer_id")["ts"].min().to_numpy())
    ends = period.buckets["bucket_end"].to_numpy().astype(firsts.dtype)
    bought = p.sort_values("ts")
    refunded = refunds.sort_values("ts")
    cum = lambda t: np.concatenate([[0.0], t["value"].cumsum().to_numpy()])[np.searchsorted(t["ts"].to_numpy(), ends)]  # noqa: E731
    counts = pd.DataFrame(
        {"customers": np.searchsorted(firsts, ends), "net_revenue": cum(bought) - cum(refunded)},
        index=period.buckets["key"],
    )
    return reported(counts, period, lambda r: r["net_revenue"] / r["customers"] if r["customers"] else None)


def pd_nps(f, period: Period) -> dict[str, Any]:
    a = period.keyed(f["nps"])
    counts = (
        a.assign(promoters=a["score"] >= 9, detractors=a["score"] <= 6)
        .groupby("key")
        .agg(answers=("score", "size"), promoters=("promoters", "sum"), detractors=("detractors", "sum"))
    )
    return reported(
        counts, period, lambda r: 100 * (r["promoters"] - r["detractors"]) / r["answers"] if r["answers"] else None
    )


def _purchase_days(f) -> pd.DataFrame:
    p = purchases(f)
    return pd.DataFrame({"customer_id": p["customer_id"], "day": p["ts"].dt.floor("D")}).drop_duplicates()


def pd_activity(f, period: Period, window: int, value) -> dict[str, Any]:
    days = _purchase_days(f)
    codes, _ = pd.factorize(days["customer_id"])
    day = days["day"].to_numpy()
    w = np.timedelta64(window, "D")
    active = {}  # edge -> the customers (codes) with a purchase day in [edge - window, edge)

    def at(edge) -> np.ndarray:
        edge = np.datetime64(edge).astype(day.dtype)
        if edge not in active:
            active[edge] = np.unique(codes[(day >= edge - w) & (day < edge)])
        return active[edge]

    firsts = days.groupby("customer_id")["day"].min()
    rows = []
    for b in period.buckets.itertuples():
        s, e = at(b.bucket), at(b.bucket_end)
        rows.append(
            {
                "key": b.key,
                "at_start": len(s),
                "at_end": len(e),
                "new": int(((firsts >= b.bucket) & (firsts < b.bucket_end)).sum()),
                "lost": len(np.setdiff1d(s, e, assume_unique=True)),
                "gained": len(np.setdiff1d(e, s, assume_unique=True)),
            }
        )
    result = reported(pd.DataFrame(rows).set_index("key"), period, value)
    result["details"]["window_days"] = window
    return result


def pd_inactivity_window(f) -> int:
    days = _purchase_days(f).sort_values(["customer_id", "day"])
    gaps = days.groupby("customer_id")["day"].diff().dropna().dt.total_seconds() / 86400
    if gaps.empty:
        return activity.DEFAULT_WINDOW
    return int(min(activity.MAX_WINDOW, max(activity.MIN_WINDOW, round(float(gaps.quantile(0.9))))))


def pd_cohorts(f, period: Period) -> dict[str, Any]:
    p = purchases(f)
    p = p[p["ts"] < period.end]
    first = p.groupby("customer_id")["ts"].transform("min")
    rows = p[(first >= period.start) & (first < period.end)]
    first = first[rows.index]
    cohort = first.dt.to_period("M")
    offset = (rows["ts"].dt.year * 12 + rows["ts"].dt.month) - (first.dt.year * 12 + first.dt.month)
    cells = (
        rows.assign(cohort=cohort, offset=offset)
        .groupby(["cohort", "offset"])
        .agg(customers=("customer_id", "nunique"), revenue=("value", "sum"))
    )
    buyers = cells["customers"].unstack(fill_value=0)
    revenue = cells["revenue"].unstack(fill_value=0.0)
    last = (period.end - pd.Timedelta(days=1)).to_period("M")
    lived = pd.Series([(last - c).n + 1 for c in buyers.index], index=buyers.index)
    width = int(lived.max()) if len(lived) else 0
    buyers = buyers.reindex(columns=range(width), fill_value=0)
    revenue = revenue.reindex(columns=range(width), fill_value=0.0)
    sizes = buyers[0]
    alive = np.arange(width)[None, :] < lived.to_numpy()[:, None]
    average = buyers.where(alive, 0).sum() / (alive * sizes.to_numpy()[:, None]).sum(axis=0)
    cohorts = [
        {
            "cohort": str(c),
            "customers": int(sizes[c]),
            "revenue": float(revenue.loc[c].sum()),
            "buyers": buyers.loc[c].iloc[:n].astype(int).tolist(),
            "retention": (buyers.loc[c].iloc[:n] / sizes[c]).tolist(),
            "revenue_by_month": revenue.loc[c].iloc[:n].tolist(),
        }
        for c, n in lived.items()
    ]
    return {
        "value": _num(average.iloc[1]) if width > 1 else None,
        "details": {"customers": int(sizes.sum()), "cohorts": len(cohorts), "average_retention": average.tolist()},
        "cohorts": cohorts,
    }


RFM_SCORES = (("r_score", "recency_days", False), ("f_score", "frequency", True), ("m_score", "monetary", True))


def quintile(s: pd.Series, ascending: bool) -> pd.Series:
    """1 + floor(5 * percent rank), capped at 5: ties share the lowest rank."""
    n = len(s)
    rank = (s.rank(method="min", ascending=ascending) - 1) / (n - 1) if n > 1 else s * 0.0
    return np.minimum(np.floor(rank * 5) + 1, 5).astype("int8")


def pd_rfm_scores(f, end) -> pd.DataFrame:
    p = purchases(f)
    p = p[p["ts"] < end]
    per = p.groupby("customer_id").agg(last=("ts", "max"), frequency=("value", "size"), monetary=("value", "sum"))
    per["recency_days"] = (pd.Timestamp(end) - per["last"]).dt.total_seconds() / 86400
    for column, value, ascending in RFM_SCORES:
        per[column] = quintile(per[value], ascending)
    per["rfm_group"] = np.select(
        [per["r_score"].isin(rs) & per["f_score"].isin(fs) for _, rs, fs in GROUPS],
        [name for name, _, _ in GROUPS],
        "hibernating",
    )
    return per.drop(columns="last").reset_index()


def pd_rfm(f, period: Period) -> dict[str, Any]:
    per = pd_rfm_scores(f, period.end)
    groups = (
        per.groupby("rfm_group")
        .agg(
            customers=("customer_id", "size"),
            recency_days=("recency_days", "mean"),
            frequency=("frequency", "mean"),
            monetary=("monetary", "mean"),
            revenue=("monetary", "sum"),
        )
        .reindex(list(GROUP_NAMES))
    )
    total = len(per)
    grid = (
        per.groupby(["r_score", "f_score"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=range(5, 0, -1), columns=range(1, 6), fill_value=0)
    )
    return {
        "value": total,
        "details": {"customers": total},
        "groups": [
            {
                "group": g,
                "customers": int(0 if np.isnan(r.customers) else r.customers),
                "share": float(r.customers / total) if total and not np.isnan(r.customers) else 0.0,
                "recency_days": _num(r.recency_days),
                "frequency": _num(r.frequency),
                "monetary": _num(r.monetary),
                "revenue": _num(r.revenue),
            }
            for g, r in groups.iterrows()
        ],
        "grid": grid.to_numpy().tolist(),
    }


def pd_transitions(f, end, window: int) -> pd.DataFrame:
    days = _purchase_days(f)
    days = days[days["day"] < end].sort_values(["customer_id", "day"])
    by = days.groupby("customer_id")["day"]
    before = (days["day"] - by.shift()).dt.total_seconds() / 86400
    after = (by.shift(-1) - days["day"]).dt.total_seconds() / 86400
    bought = days.rename(columns={"day": "at"}).assign(
        stage=np.select(
            [before.isna(), before > window, before > window / 2], ["new", "reactivated", "active"], "bought"
        )
    )
    quiet, gone = after.isna() | (after > window / 2), after.isna() | (after > window)
    sleeping = pd.DataFrame(
        {
            "customer_id": days["customer_id"][quiet],
            "at": days["day"][quiet] + pd.Timedelta(days=window // 2),
            "stage": "sleeping",
        }
    )
    churned = pd.DataFrame(
        {
            "customer_id": days["customer_id"][gone],
            "at": days["day"][gone] + pd.Timedelta(days=window),
            "stage": "churned",
        }
    )
    steps = pd.concat([bought, sleeping, churned], ignore_index=True)
    steps = steps[steps["at"] < end]
    steps = steps.assign(late=steps["stage"].isin(["sleeping", "churned"])).sort_values(["customer_id", "at", "late"])
    previous = steps.groupby("customer_id")["stage"].shift()
    steps["stage"] = steps["stage"].mask((steps["stage"] == "bought") & previous.isin(["new", "reactivated"]), "active")
    steps = steps[steps["stage"] != "bought"]
    steps = steps.assign(previous=steps.groupby("customer_id")["stage"].shift())
    return steps[steps["previous"].isna() | (steps["previous"] != steps["stage"])].drop(columns="late")


def pd_lifecycle(f, period: Period, window: int) -> dict[str, Any]:
    steps = pd_transitions(f, period.end, window)
    current = steps.drop_duplicates("customer_id", keep="last")  # sorted by customer and time
    counts = current["stage"].value_counts()
    inside = steps[steps["at"] >= period.start]
    moves = inside.groupby([inside["at"].dt.to_period("M").dt.start_time, "stage"]).size().unstack(fill_value=0)
    stages = ("new", "active", "sleeping", "churned", "reactivated")
    return {
        "value": len(current),
        "details": {"window_days": window, "transitions": len(inside)},
        "stages": {s: int(counts.get(s, 0)) for s in stages},
        "series": [
            {"bucket": b.date().isoformat(), **{s: int(row.get(s, 0)) for s in stages}} for b, row in moves.iterrows()
        ],
    }


def pd_lifecycle_per_customer(f, period: Period, window: int) -> pd.DataFrame:
    steps = pd_transitions(f, period.end, window)
    current = steps.drop_duplicates("customer_id", keep="last")
    return current.rename(columns={"at": "since"})[["customer_id", "stage", "since", "previous"]].reset_index(drop=True)


def pd_funnel(f, period: Period) -> dict[str, Any]:
    views = period.keyed(f[FUNNEL[0]]).sort_values("ts", kind="stable")
    anchors = views.drop_duplicates(["key", "customer_id"])  # each customer's first view per period
    top = anchors["category"].str.partition(" > ")[0]
    reached = pd.DataFrame(
        {
            "key": anchors["key"],
            "customer_id": anchors["customer_id"],
            "category": top.where(anchors["category"].notna(), "(none)"),
            "start": anchors["ts"],
            "at": anchors["ts"],
        }
    )
    window = pd.Timedelta(hours=FUNNEL_HOURS)
    counts = [reached.groupby("key").size()]
    whole = [reached[reached["key"] == 0].groupby("category").size()]
    for name in FUNNEL[1:]:
        later = f[name].sort_values("ts").rename(columns={"ts": "next"})
        hit = pd.merge_asof(
            reached.sort_values("at"), later, left_on="at", right_on="next", by="customer_id", direction="forward"
        )  # each customer's first step at or after the previous one
        hit = hit[hit["next"] <= hit["start"] + window]
        reached = hit.drop(columns="at").rename(columns={"next": "at"})
        counts.append(reached.groupby("key").size())
        whole.append(reached[reached["key"] == 0].groupby("category").size())
    table = pd.concat(counts, axis=1).reindex(period.buckets["key"]).fillna(0).astype(int)
    by_category = pd.concat(whole, axis=1).fillna(0).astype(int).sort_index()
    steps = lambda row: [{"customers": int(n)} for n in row]  # noqa: E731
    first, last = table.iloc[0, 0], table.iloc[0, -1]
    return {
        "value": float(last / first) if first else None,
        "steps": steps(table.iloc[0]),
        "series": [{"steps": steps(row)} for _, row in table.iloc[1:].iterrows()],
        "by_category": [{"category": c, "steps": steps(row)} for c, row in by_category.iterrows()],
    }


def pd_subscriber_retention(f, period: Period) -> dict[str, Any]:
    c = f["consents"]
    grants = (
        c[c["granted"]]
        .groupby(["customer_id", "channel"], as_index=False)["at"]
        .min()
        .rename(columns={"at": "granted_at"})
    )
    withdrawals = c[~c["granted"]].rename(columns={"at": "withdrawn_at"})[["customer_id", "channel", "withdrawn_at"]]
    subs = pd.merge_asof(
        grants.sort_values("granted_at"),
        withdrawals.sort_values("withdrawn_at"),
        left_on="granted_at",
        right_on="withdrawn_at",
        by=["customer_id", "channel"],
        direction="forward",
        allow_exact_matches=False,
    )  # the first withdrawal after the grant
    subs = period.keyed(subs, "granted_at")
    columns = {}
    for days in HORIZONS:
        due = subs["granted_at"] + pd.Timedelta(days=days)
        eligible = due <= period.end
        columns[f"eligible_{days}"] = eligible
        columns[f"kept_{days}"] = eligible & (subs["withdrawn_at"].isna() | (subs["withdrawn_at"] > due))
    counts = (
        subs.assign(**columns)
        .groupby(["key", "channel"])
        .agg(subscribers=("customer_id", "size"), **{k: (k, "sum") for k in columns})
    )

    def channel(row) -> dict[str, Any]:
        out = {"subscribers": int(row["subscribers"])}
        for days in HORIZONS:
            eligible, kept = int(row[f"eligible_{days}"]), int(row[f"kept_{days}"])
            out[f"after_{days}_days"] = kept / eligible if eligible else None
            out[f"eligible_{days}_days"] = eligible
        return out

    rows = {
        key: {ch: channel(row) for ch, row in g.droplevel("key").iterrows()} for key, g in counts.groupby(level="key")
    }
    return {
        "channels": rows.get(0, {}),
        "series": [{"channels": rows[k]} for k in period.buckets["key"].iloc[1:] if k in rows],
    }


def pandas_versions(window: int) -> dict[str, Callable]:
    kpi = lambda value: lambda f, p: pd_order_kpis(f, p, value)  # noqa: E731
    act = lambda value: lambda f, p: pd_activity(f, p, window, value)  # noqa: E731
    return {
        "average_order_value": kpi(lambda r: r["revenue"] / r["orders"] if r["orders"] else None),
        "purchase_frequency": kpi(lambda r: r["orders"] / r["customers"] if r["customers"] else None),
        "repeat_purchase_rate": kpi(lambda r: r["repeaters"] / r["customers"] if r["customers"] else None),
        "revenue_new_vs_returning": pd_revenue_new_vs_returning,
        "historical_ltv": pd_historical_ltv,
        "nps": pd_nps,
        "retention_rate": act(lambda r: (r["at_end"] - r["gained"]) / r["at_start"] if r["at_start"] else None),
        "churn_rate": act(lambda r: r["lost"] / r["at_start"] if r["at_start"] else None),
        "cohorts": pd_cohorts,
        "rfm": pd_rfm,
        "lifecycle": lambda f, p: pd_lifecycle(f, p, window),
        "funnel": pd_funnel,
        "subscriber_retention": pd_subscriber_retention,
    }
