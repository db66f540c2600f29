"""The learned second stage of the personal chain. Per customer, candidates: every product they bought before and
the best new products of popularity and of each explore model; each described by what is known at a moment (how
often and how lately they bought it against its repurchase cycle, the product's repurchase rate, the customer's
habits, each model's score), and scored by a gradient-boosted classifier trained on the same features one window
earlier, with what was bought in the window as the label. One probability for repeat and new products alike is
what lets them share one list."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from boomerang.recommendations.algorithms import TIFU, Popularity, Recommender
from boomerang.recommendations.interactions import Interactions

BATCH = 512  # customers scored at once
REPEAT = "repeat"  # the source of a product the customer bought before
POPULAR = "popularity"
DAY = np.timedelta64(1, "D")
CUSTOMER = ["user_orders", "user_items", "user_gap", "user_days_since_last", "user_repeat_share"]
BASE = [
    "past",
    "orders",
    "order_share",
    "orders_4w",
    "orders_13w",
    "orders_26w",
    "quantity",
    "days_since_last",
    "days_since_first",
    "cycle",
    "own_cycle",
    "due",
    "own_due",
    "repurchase_rate",
    *CUSTOMER,
    "popularity",
    "popularity_rank",
    "tifu",
]


def before(data: Interactions, moment: datetime) -> Interactions:
    """The same customers and products, with only the interactions before `moment`."""
    return Interactions(data.customers, data.items, data.events[data.events["at"] < moment])


def products(data: Interactions, now: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per customer and product bought: orders, days since the first and last purchase, and the repurchase cycle:
    the median gap in days between a customer's purchase days of the product, over every customer (`cycle`,
    trusted from 3 gaps, as the replenishment journey learns it) and over the customer's own (`own_cycle`); and
    per product: the cycle and the share of its buyers who bought it in more than one order."""
    days = data.events.assign(day=data.events["at"].dt.floor("D"))[["user", "item", "day", "basket", "weight"]]
    once = days.drop_duplicates(["user", "item", "basket"])
    orders = once.groupby(["user", "item"]).size().rename("orders")
    age = (pd.Timestamp(now) - once["day"]) / DAY
    recent = {
        f"orders_{w}w": (age < 7 * w).groupby([once["user"], once["item"]]).sum() for w in (4, 13, 26)
    }  # recent habit, which counts alone blur
    days = days.drop_duplicates(["user", "item", "day"]).sort_values(["user", "item", "day"])
    days["gap"] = days.groupby(["user", "item"])["day"].diff() / DAY
    gaps = days[days["gap"] > 0]
    stats = gaps.groupby("item")["gap"].agg(["median", "size"])
    item = pd.DataFrame(
        {"cycle": stats["median"].where(stats["size"] >= 3), "repurchase_rate": (orders > 1).groupby("item").mean()}
    ).rename_axis("item")
    pairs = days.groupby(["user", "item"]).agg(first=("day", "min"), last=("day", "max"), quantity=("weight", "sum"))
    pairs = pairs.join(orders).join(pd.DataFrame(recent))
    pairs = pairs.join(gaps.groupby(["user", "item"])["gap"].median().rename("own_cycle")).reset_index()
    today = pd.Timestamp(now).floor("D")
    pairs["days_since_last"] = (today - pairs.pop("last")) / DAY
    pairs["days_since_first"] = (today - pairs.pop("first")) / DAY
    return pairs, item


def customers(data: Interactions, now: datetime) -> pd.DataFrame:
    """Per customer: orders, distinct products, the median gap between orders, days since the last order and the
    share of their products bought in more than one order."""
    e = data.events
    orders = e.groupby(["user", "basket"])["at"].min().reset_index().sort_values(["user", "at"])
    gap = orders.groupby("user")["at"].diff() / DAY
    per_item = e.groupby(["user", "item"])["basket"].nunique()
    return pd.DataFrame(
        {
            "user_orders": orders.groupby("user").size(),
            "user_items": per_item.groupby("user").size(),
            "user_gap": gap.groupby(orders["user"]).median(),
            "user_days_since_last": (pd.Timestamp(now) - orders.groupby("user")["at"].max()) / DAY,
            "user_repeat_share": (per_item > 1).groupby("user").mean(),
        }
    ).rename_axis("user")


def _best_new(scores: np.ndarray, bought: np.ndarray, n: int) -> np.ndarray:
    """Each row's `n` best columns among those not bought, best first."""
    scores = np.where(bought, -np.inf, scores)
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def candidates(
    data: Interactions, now: datetime, users: np.ndarray, explore: Sequence[Recommender], per_source: int = 50
) -> pd.DataFrame:
    """user, item, source and the features of each customer's candidates; `explore`: models fitted on `data`. A
    product several sources propose keeps the first: repeat, popularity, then the explore models in order."""
    bought = data.matrix(binary=True).tocsr()
    popular = Popularity().fit(data)._scores
    tifu = TIFU().fit(data)
    frames = []
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        mine = bought[batch].toarray() > 0
        rows, cols = np.nonzero(mine)
        parts = [pd.DataFrame({"user": batch[rows], "item": cols, "source": REPEAT})]
        scores = {POPULAR: np.broadcast_to(popular, mine.shape)} | {m.name: m.scores(batch) for m in explore}
        for name, s in scores.items():
            top = _best_new(s, mine, per_source)
            parts.append(pd.DataFrame({"user": np.repeat(batch, top.shape[1]), "item": top.ravel(), "source": name}))
        c = pd.concat(parts, ignore_index=True).drop_duplicates(["user", "item"])
        row, item = pd.Index(batch).get_indexer(c["user"]), c["item"].to_numpy()
        c["tifu"] = tifu.scores(batch)[row, item]
        for m in explore:  # the score, and its share of the customer's best, so customers compare
            s = scores[m.name]
            c[f"{m.name}_score"] = s[row, item]
            c[f"{m.name}_relative"] = s[row, item] / np.maximum(s.max(axis=1), 1e-9)[row]
        frames.append(c)
    if not frames:  # nobody to rank (a window with no buyers): the same columns, no rows
        columns = ["user", "item", "source", "tifu"] + [f"{m.name}_{x}" for m in explore for x in ("score", "relative")]
        types = {"user": np.int64, "item": np.int64, "source": object}
        frames = [pd.DataFrame({c: pd.Series(dtype=types.get(c, float)) for c in columns})]
    c = pd.concat(frames, ignore_index=True)
    order = np.empty(len(popular))
    order[np.argsort(-popular, kind="stable")] = np.arange(1, len(popular) + 1)
    c["past"] = (c["source"] == REPEAT).astype(float)
    c["popularity"] = popular[c["item"].to_numpy()]
    c["popularity_rank"] = order[c["item"].to_numpy()]
    pairs, item = products(data, now)
    c = c.merge(pairs, on=["user", "item"], how="left").join(item, on="item").join(customers(data, now), on="user")
    for col in ("orders", "orders_4w", "orders_13w", "orders_26w", "quantity"):
        c[col] = c[col].fillna(0)
    c["order_share"] = c["orders"] / c["user_orders"]  # how habitual the product is for this customer
    c["due"] = c["days_since_last"] / c["cycle"]  # about 1: the customer would run out about now
    c["own_due"] = c["days_since_last"] / c["own_cycle"]
    return c


def features(explore: Sequence[Recommender]) -> list[str]:
    return BASE + [f"{m.name}_{x}" for m in explore for x in ("score", "relative")]


@dataclass(frozen=True)
class Training:
    rows: pd.DataFrame  # candidates and features as of the window's start, `label` 1 where bought in the window
    customers: pd.DataFrame  # their `customers` features, and how many products they then bought: repeat, new


def training_set(
    data: Interactions,
    now: datetime,
    weeks: int,
    explore: Sequence[Recommender],
    *,
    per_source: int = 50,
    max_customers: int = 4000,
    seed: int = 7,
) -> Training:
    """Candidates and features as of `weeks` before `now`, from what happened before then only, labelled with
    what was bought from then to `now`; for customers who bought in both, as the offline evaluation counts them."""
    start = pd.Timestamp(now) - timedelta(weeks=weeks)
    past = before(data, start)
    at = data.events["at"]
    window = data.events[(at >= start) & (at < now)][["user", "item"]].drop_duplicates()
    users = np.intersect1d(past.events["user"].unique(), window["user"].unique())
    if len(users) > max_customers:  # enough to learn from; the rest only costs time
        users = np.sort(np.random.default_rng(seed).choice(users, max_customers, replace=False))
    window = window[window["user"].isin(users)]
    models = [copy.deepcopy(m).fit(past) for m in explore]
    rows = candidates(past, start, users, models, per_source)
    rows = rows.merge(window.assign(label=1), on=["user", "item"], how="left")
    rows["label"] = rows["label"].fillna(0).astype(int)
    had = past.events[["user", "item"]].drop_duplicates().assign(repeat=1)
    window = window.merge(had, on=["user", "item"], how="left").fillna({"repeat": 0})
    counts = window.groupby("user")["repeat"].agg(repeat="sum", new=lambda r: int((r == 0).sum()))
    return Training(rows, customers(past, start).join(counts, how="inner"))
