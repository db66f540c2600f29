"""Offline evaluation, honest: a time split (learn from what happened before `cutoff`, score the purchases of the
`weeks` after it), full ranking over every product (no sampled negatives), Recall@k and NDCG@k reported separately
for products the customer had bought before (repeat) and products new to them (explore). Customers are those who
bought both before and after the cutoff; a customer counts in the repeat (explore) figures when they bought at
least one repeat (new) product after it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from boomerang.recommendations import chains
from boomerang.recommendations.algorithms import Recommender
from boomerang.recommendations.interactions import Interactions

BATCH = 512  # customers scored at once


@dataclass(frozen=True)
class Split:
    train: Interactions
    users: np.ndarray  # row numbers of the customers evaluated
    repeat: list[set[int]]  # per evaluated customer: products bought after the cutoff that they had bought before
    explore: list[set[int]]  # and those new to them
    cutoff: datetime | None = None  # where the past ends: the personal chain learns up to it
    weeks: int = 13


def split(frame: pd.DataFrame, cutoff: datetime, weeks: int = 13) -> Split:
    at = pd.to_datetime(frame["at"])
    train = Interactions.from_frame(frame[at < cutoff])
    later = frame[(at >= cutoff) & (at < cutoff + timedelta(weeks=weeks))]
    users = train.customers.get_indexer(later["customer_id"].astype(str))
    items = train.items.get_indexer(later["sku"].astype(str))
    later = pd.DataFrame({"user": users, "item": items})
    later = later[(later.user >= 0) & (later.item >= 0)].drop_duplicates()  # products unseen before cannot be ranked
    bought = train.matrix(binary=True).tolil().rows
    evaluated, repeat, explore = [], [], []
    for user, group in later.groupby("user"):
        before = set(bought[user])
        wanted = set(group["item"])
        evaluated.append(user)
        repeat.append(wanted & before)
        explore.append(wanted - before)
    return Split(train, np.asarray(evaluated, dtype=np.int64), repeat, explore, cutoff, weeks)


def _ranking_metrics(top: np.ndarray, relevant: list[set[int]], k: int) -> tuple[float, float, int]:
    """Mean Recall@k and NDCG@k over the customers with something relevant; and how many they are."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for row, wanted in zip(top, relevant):
        if not wanted:
            continue
        hits = np.fromiter((item in wanted for item in row[:k]), dtype=bool)  # shorter for a smaller catalogue
        ideal = discount[: min(len(wanted), k)].sum()
        recalls.append(hits.sum() / min(len(wanted), k))
        ndcgs.append((discount[: len(hits)] * hits).sum() / ideal)
    n = len(recalls)
    return (float(np.mean(recalls)) if n else 0.0, float(np.mean(ndcgs)) if n else 0.0, n)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's k best columns, best first (all of them, for fewer than k)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def rankings(model: Recommender, users: np.ndarray, k: int) -> np.ndarray:
    return np.vstack([top_k(model.scores(users[i : i + BATCH]), k) for i in range(0, len(users), BATCH)])


def score(top: np.ndarray, data: Split, k: int) -> dict[str, float | int]:
    r_recall, r_ndcg, r_n = _ranking_metrics(top, data.repeat, k)
    e_recall, e_ndcg, e_n = _ranking_metrics(top, data.explore, k)
    a_recall, a_ndcg, a_n = _ranking_metrics(top, [r | e for r, e in zip(data.repeat, data.explore)], k)
    return {
        "recall": round(a_recall, 4),
        "ndcg": round(a_ndcg, 4),
        "repeat_recall": round(r_recall, 4),
        "repeat_ndcg": round(r_ndcg, 4),
        "explore_recall": round(e_recall, 4),
        "explore_ndcg": round(e_ndcg, 4),
        "customers": a_n,
        "repeat_customers": r_n,
        "explore_customers": e_n,
    }


def evaluate(
    data: Split, models: Sequence[Recommender], *, k: int = 20, progress: Callable[[str], None] | None = None
) -> list[dict]:
    """Fit each model on the split's past, rank every product for each customer, score the top k; then the personal
    chain (its learned ranker over repeat, explore and popular candidates), which learns from the past alone."""
    out = []
    for model in models:
        if progress:
            progress(model.name)
        started = time.perf_counter()
        model.fit(data.train)
        fitted = time.perf_counter() - started
        top = rankings(model, data.users, k)
        out.append(_row(model.name, "algorithm", top, data, k, fitted, time.perf_counter() - started))
    if data.cutoff is not None:
        started = time.perf_counter()
        chain = chains.PersonalChain(weeks=data.weeks).fit(data.train, now=data.cutoff)
        fitted = time.perf_counter() - started
        top = chain.rank(data.users, k).items
        out.append(_row(chain.name, "chain", top, data, k, fitted, time.perf_counter() - started))
    return out


def _row(name: str, kind: str, top: np.ndarray, data: Split, k: int, fitted: float, seconds: float) -> dict:
    return {
        "name": name,
        "kind": kind,
        **score(top, data, k),
        "fit_seconds": round(fitted, 2),
        "seconds": round(seconds, 2),
    }
