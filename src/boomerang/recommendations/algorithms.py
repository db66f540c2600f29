"""Recommenders behind one interface: `fit` on interactions, then `scores` for some customers (rows) over every
product (columns); higher is better. Each is small and written for the job with numpy/scipy, except ALS, which is
the `implicit` library's.

- `Popularity`: customers who bought each product, recent ones weighing more (the baseline everyone beats).
- `TopFrequency`: the customer's own most bought products (the repeat baseline).
- `BoughtTogether`: products in the same orders as the customer's, by lift.
- `ItemKNN`: cosine similarity of products over customers, the nearest `neighbours` kept.
- `EASE`: Steck's closed-form linear item model (2019), on the `max_items` most popular products.
- `ALS`: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) through `implicit`.
- `TIFU`: TIFU-KNN (Hu et al. 2020), the personal repurchase model: the customer's baskets with older ones
  decaying, blended with their nearest customers'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from boomerang.recommendations.interactions import Interactions


class Recommender(Protocol):
    name: str

    def fit(self, data: Interactions) -> Recommender: ...

    def scores(self, users: np.ndarray) -> np.ndarray:
        """len(users) x products."""
        ...


def _row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms) @ m


def _keep_top(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's `k` largest values (the rest dropped)."""
    m = m.tocsr()
    rows, cols, vals = [], [], []
    for i in range(m.shape[0]):
        start, end = m.indptr[i], m.indptr[i + 1]
        if end - start > k:
            top = np.argpartition(-m.data[start:end], k)[:k] + start
        else:
            top = np.arange(start, end)
        rows.append(np.full(len(top), i))
        cols.append(m.indices[top])
        vals.append(m.data[top])
    if not rows:
        return m
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)


@dataclass
class Popularity:
    half_life_days: float = 60.0
    name: str = "popularity"
    _scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, data: Interactions) -> Popularity:
        e = data.events
        age = (e["at"].max() - e["at"]).dt.total_seconds().to_numpy() / 86400 if len(e) else np.zeros(0)
        decay = 0.5 ** (age / self.half_life_days)
        once = e.assign(decay=decay).groupby(["user", "item"])["decay"].max()  # a customer counts once per product
        self._scores = np.bincount(
            once.index.get_level_values("item"), weights=once.to_numpy(), minlength=data.shape[1]
        )
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self._scores, (len(users), 1))


@dataclass
class TopFrequency:
    name: str = "top_frequency"
    _orders: sp.csr_matrix | None = None
    _popular: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, data: Interactions) -> TopFrequency:
        baskets = data.events.drop_duplicates(["user", "item", "basket"])
        self._orders = sp.csr_matrix(
            (np.ones(len(baskets)), (baskets["user"], baskets["item"])), shape=data.shape
        )  # orders each customer bought each product in (duplicates summed)
        self._popular = Popularity().fit(data)._scores
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        ties = self._popular / (self._popular.max() or 1.0) * 1e-3  # ties broken by popularity
        return self._orders[users].toarray() + ties


@dataclass
class BoughtTogether:
    """Item-to-item lift over baskets, P(b | a) / P(b), with older baskets counting less (`half_life_days`) and
    pairs seen in fewer than `min_support` baskets dropped; a customer's score sums it over what they bought."""

    neighbours: int = 50
    min_support: int = 2
    half_life_days: float = 180.0
    name: str = "bought_together"
    _similar: sp.csr_matrix | None = None
    _bought: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> BoughtTogether:
        b, times = data.baskets()
        age = (times.max() - times) / np.timedelta64(1, "D") if len(times) else np.zeros(0)
        weight = 0.5 ** (np.asarray(age, dtype=float) / self.half_life_days)
        weighted = sp.diags(weight) @ b
        seen = (b.T @ b).tocsr()  # baskets with both, undecayed: the support
        co = (b.T @ weighted).tocsr()
        co.setdiag(0)
        co = co.multiply(seen >= self.min_support).tocoo()
        count = np.asarray(weighted.sum(axis=0)).ravel()
        lift = co.data * max(weight.sum(), 1e-9) / (count[co.row] * count[co.col])
        self._similar = _keep_top(sp.csr_matrix((lift, (co.row, co.col)), shape=co.shape), self.neighbours)
        self._bought = data.matrix(binary=True)
        return self

    @property
    def similar(self) -> sp.csr_matrix:
        """Product x product lift, each row's `neighbours` best kept."""
        return self._similar

    def related(self, items: np.ndarray) -> np.ndarray:
        """Scores of every product for a context of products (a product page, a cart)."""
        return np.asarray(self._similar[items].sum(axis=0)).ravel()

    def scores(self, users: np.ndarray) -> np.ndarray:
        return (self._bought[users] @ self._similar).toarray()


@dataclass
class ItemKNN:
    neighbours: int = 100
    name: str = "item_knn"
    _similar: sp.csr_matrix | None = None
    _bought: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> ItemKNN:
        x = data.matrix(binary=True)
        items = _row_normalised(x.T.tocsr())
        sim = (items @ items.T).tocsr()
        sim.setdiag(0)
        sim.eliminate_zeros()
        self._similar = _keep_top(sim, self.neighbours)
        self._bought = x
        return self

    @property
    def similar(self) -> sp.csr_matrix:
        """Product x product cosine, each row's `neighbours` nearest kept."""
        return self._similar

    def scores(self, users: np.ndarray) -> np.ndarray:
        return (self._bought[users] @ self._similar.T).toarray()


@dataclass
class EASE:
    regularisation: float = 250.0
    max_items: int = 8000  # the inverse is items x items, dense
    name: str = "ease"
    _weights: np.ndarray | None = None
    _columns: np.ndarray | None = None
    _bought: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> EASE:
        x = data.matrix(binary=True)
        counts = np.asarray(x.sum(axis=0)).ravel()
        self._columns = np.sort(np.argsort(-counts)[: self.max_items])
        xs = x[:, self._columns]
        gram = (xs.T @ xs).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.regularisation
        p = np.linalg.inv(gram)
        b = p / -np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self._weights = b.astype(np.float32)
        self._bought = xs
        self._items = data.shape[1]
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        out = np.zeros((len(users), self._items), dtype=np.float32)
        out[:, self._columns] = self._bought[users] @ self._weights
        return out


@dataclass
class ALS:
    factors: int = 64
    regularisation: float = 0.05
    iterations: int = 15
    alpha: float = 10.0
    seed: int = 7
    name: str = "als"
    _model: object | None = None

    def fit(self, data: Interactions) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        x = data.matrix()
        x.data = 1.0 + self.alpha * np.log1p(x.data)  # confidence grows with the amount bought
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS's would fight them
            self._model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularisation,
                iterations=self.iterations,
                random_state=self.seed,
            )
            self._model.fit(x.astype(np.float32), show_progress=False)
        return self

    @property
    def learned(self) -> tuple[np.ndarray, np.ndarray]:
        """The customers' and the products' factors, float32."""
        return (
            np.asarray(self._model.user_factors, dtype=np.float32),
            np.asarray(self._model.item_factors, dtype=np.float32),
        )

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self._model.user_factors[users] @ self._model.item_factors.T


@dataclass
class TIFU:
    """Each customer is the decayed average of their baskets (the latest weighs most: `basket_decay` per basket
    back), blended with the average of their `neighbours` most similar customers: `alpha` own, the rest theirs."""

    basket_decay: float = 0.9
    neighbours: int = 300
    alpha: float = 0.7
    name: str = "tifu_knn"
    _vectors: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> TIFU:
        e = data.events.drop_duplicates(["user", "item", "basket"])
        if e.empty:  # nothing bought yet: every customer's vector is empty
            self._vectors = self._unit = sp.csr_matrix(data.shape)
            return self
        order = e.groupby(["user", "basket"])["at"].min().reset_index()
        order["back"] = order.groupby("user")["at"].rank(method="first", ascending=False) - 1
        e = e.merge(order[["user", "basket", "back"]], on=["user", "basket"])
        baskets = order.groupby("user").size()
        weight = self.basket_decay ** e["back"].to_numpy()
        norm = np.asarray([sum(self.basket_decay**i for i in range(n)) for n in range(baskets.max() + 1)])
        weight = weight / norm[baskets.reindex(e["user"]).to_numpy()]
        v = sp.csr_matrix((weight, (e["user"], e["item"])), shape=data.shape)
        v.sum_duplicates()
        self._vectors = v
        self._unit = _row_normalised(v)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        own = self._vectors[users].toarray()
        sim = (self._unit[users] @ self._unit.T).toarray()
        sim[np.arange(len(users)), users] = 0.0  # not themselves
        k = min(self.neighbours, sim.shape[1] - 1)
        if k <= 0:
            return own
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        alike = np.take_along_axis(sim, top, axis=1) > 0  # only customers with something in common
        share = alike / np.maximum(alike.sum(axis=1, keepdims=True), 1)
        pick = sp.csr_matrix(
            (share.ravel(), (np.repeat(np.arange(len(users)), k), top.ravel())),
            shape=(len(users), self._vectors.shape[0]),
        )
        return self.alpha * own + (1 - self.alpha) * (pick @ self._vectors).toarray()


def catalogue() -> dict[str, Recommender]:
    """Every algorithm with its default settings, by name."""
    found: list[Recommender] = [Popularity(), TopFrequency(), BoughtTogether(), ItemKNN(), EASE(), ALS(), TIFU()]
    return {r.name: r for r in found}
