"""Chains: several algorithms combined into one list. The personal chain proposes, for each customer, every
product they bought before (repeat) and the best new ones of popularity and of an explore model; a learned ranker
(see `ranker`) gives each the probability that the customer buys it in the next weeks, and the list is ordered by
what each product adds to the customer's expected recall: its probability over how many repeat (or new) products
the customer is expected to buy, so a likely rebuy of a customer who rebuys little counts for more."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from boomerang.recommendations import ranker
from boomerang.recommendations.algorithms import ItemKNN, Recommender
from boomerang.recommendations.interactions import Interactions

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor


@dataclass(frozen=True)
class Ranked:
    items: np.ndarray  # customers x k product numbers, best first (-1 where the catalogue is smaller than k)
    sources: np.ndarray  # the same shape: what proposed each, "repeat", an explore model's name or "popularity"


# Gradient boosting's OpenMP threads spin while they wait: on a machine whose cores are busy (serve, the pipeline,
# another training) a fit took 33 s with them and 7 s on one thread (Online Retail, 2 cores).
ONE_THREAD = threadpool_limits.wrap(limits=1, user_api="openmp")


def _known(features: pd.DataFrame) -> pd.DataFrame:
    """Features with the columns that are missing throughout set to 0: gradient boosting bins each column and
    fails on one with no value at all (a small shop's first months: no product bought twice yet)."""
    empty = features.columns[features.isna().all()]
    return features.fillna(dict.fromkeys(empty, 0.0)) if len(empty) else features


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    """The ranker: the probability of a purchase in the window, from a candidate's features."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # a second's import the rest does without

    return HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=50, random_state=seed
    )


def _counter(seed: int) -> HistGradientBoostingRegressor:
    """How many products (repeat or new) a customer buys in the window, from their habits."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(loss="poisson", max_iter=100, min_samples_leaf=20, random_state=seed)


@dataclass
class PersonalChain:
    """`fit(interactions, now)` learns from what happened before `now`; `rank(users, k)` lists the products.
    `explore_weight` is what a unit of recall over new products is worth against one over repeat ones."""

    explore: Sequence[Recommender] = field(default_factory=lambda: [ItemKNN()])
    weeks: int = 13  # the window the ranker learns to predict, ending at `now`
    per_source: int = 50  # new products each source proposes per customer
    explore_weight: float = 1.0
    seed: int = 7
    name: str = "personal chain"

    @ONE_THREAD
    def fit(self, data: Interactions, now: datetime) -> PersonalChain:
        """Learn from the interactions before `now` only: the ranker one window back, the sources as of `now`."""
        self._data, self._now = ranker.before(data, now), now
        train = ranker.training_set(self._data, now, self.weeks, self.explore, per_source=self.per_source)
        self._features = ranker.features(self.explore)
        rows, people = train.rows, train.customers
        self._model = (
            _classifier(self.seed).fit(_known(rows[self._features]), rows["label"])
            if rows["label"].nunique() > 1
            else None
        )
        # how many repeat and new products a customer will buy, and how many customers buy any: recall's divisors
        self._counts, self._shares = {}, {}
        for kind in ("repeat", "new"):
            y = people[kind] if len(people) else pd.Series([1.0])
            enough = len(people) >= 50 and y.nunique() > 1
            self._counts[kind] = (
                _counter(self.seed).fit(_known(people[ranker.CUSTOMER]), y) if enough else float(y.mean())
            )
            self._shares[kind] = max(float((y > 0).mean()), 0.01)
        self._models = [copy.deepcopy(m).fit(self._data) for m in self.explore]
        return self

    def _expected(self, kind: str, people: pd.DataFrame) -> np.ndarray:
        """Per customer: how many `kind` products they are expected to buy in the coming window."""
        counter = self._counts[kind]
        return np.full(len(people), counter) if isinstance(counter, float) else counter.predict(people[ranker.CUSTOMER])

    @ONE_THREAD
    def rank(self, users: np.ndarray, k: int = 20) -> Ranked:
        """Each customer's (row numbers) k products, best first, and the source of each."""
        users = np.asarray(users, dtype=np.int64)
        c = ranker.candidates(self._data, self._now, users, self._models, max(self.per_source, k))
        if self._model is not None:
            p = self._model.predict_proba(c[self._features])[:, 1]
        else:  # too little history to learn from: the customer's habit, then popularity
            p = c["order_share"].fillna(0).to_numpy() + 1e-3 * c["popularity"].to_numpy() / max(
                c["popularity"].max(), 1e-9
            )
        people = ranker.customers(self._data, self._now).reindex(users)
        past = (c["source"] == ranker.REPEAT).to_numpy()
        divisor = np.where(
            past,
            self._expected("repeat", people)[pd.Index(users).get_indexer(c["user"])],
            self._expected("new", people)[pd.Index(users).get_indexer(c["user"])],
        )
        gain = p / np.clip(1 + np.maximum(divisor, 0) - p, 1, k)  # about P(hit) / the products it shares recall with
        gain /= np.where(past, self._shares["repeat"], self._shares["new"] / self.explore_weight)
        gain = np.where(c["popularity"].to_numpy() > 0, gain, -1.0)  # never bought by anyone: last
        c = c.assign(gain=gain).sort_values(["user", "gain"], ascending=[True, False], kind="stable")
        c = c[c.groupby("user").cumcount() < k]
        row, col = pd.Index(users).get_indexer(c["user"]), c.groupby("user").cumcount().to_numpy()
        items = np.full((len(users), k), -1, dtype=np.int64)
        sources = np.full((len(users), k), ranker.POPULAR, dtype=object)
        items[row, col] = c["item"].to_numpy()
        sources[row, col] = c["source"].to_numpy()
        return Ranked(items, sources)
