"""The trained model serving reads: everything the algorithms learned from the shop's purchases, carts and views,
in one object saved with its training time. Serving works from it and the live catalog; training makes a new one
beside it and swaps it in, so serving never waits for training."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from boomerang.recommendations import chains, ranker
from boomerang.recommendations.algorithms import ALS, ItemKNN, Popularity
from boomerang.recommendations.interactions import Interactions

FORMAT = 1  # bumped when the saved shape changes: an older file is trained again, not misread
# how much each kind of interaction says about wanting a product, next to buying it (1)
WEIGHTS = {"purchase": 1.0, "cart": 0.3, "view": 0.05}
PERSONAL = 60  # products kept per customer
RECENT = 20  # products kept of what each customer viewed last
TRENDING_DAYS = 7


@dataclass
class Model:
    trained_at: datetime
    items: pd.Index  # column number -> sku
    customers: pd.Index  # row number -> customer id
    popular: np.ndarray  # per item
    trending: np.ndarray  # per item, 0 where not growing
    coviewed: sp.csr_matrix  # item x item cosine over the visitors who viewed both
    neighbours: sp.csr_matrix  # item x item cosine over the customers who bought or carted both (ItemKNN)
    user_factors: np.ndarray  # ALS, per customer row
    item_factors: np.ndarray  # ALS, per item
    personal: np.ndarray  # customer row x PERSONAL item numbers, -1 padded: the personal chain
    personal_repeat: np.ndarray  # same shape, True where the product came from the repeat model
    bought: sp.csr_matrix  # customer row x item: orders containing it
    viewed: dict[str, np.ndarray]  # customer id -> items viewed last, latest first
    quality: list[dict] = field(default_factory=list)  # offline evaluation on the shop's own purchases
    counts: dict[str, int] = field(default_factory=dict)
    data_until: datetime | None = None  # the latest interaction learned from
    format: int = FORMAT

    def row(self, customer_id: str | None) -> int:
        """The customer's row number; -1 for one the model does not know."""
        if "_rows" not in self.__dict__:  # built on first use after loading: a dict answers in a microsecond
            self._rows = {c: i for i, c in enumerate(self.customers)}
        return self._rows.get(customer_id, -1) if customer_id else -1


def _trending(purchases: pd.DataFrame, items: pd.Index, now: datetime) -> np.ndarray:
    """Buyers in the last week against the weekly average of the four before, as a z-score; 0 where not growing."""
    at = pd.to_datetime(purchases["at"])
    item = items.get_indexer(purchases["sku"].astype(str))
    recent_start, base_start = now - timedelta(days=TRENDING_DAYS), now - timedelta(days=5 * TRENDING_DAYS)
    recent = purchases[(at >= recent_start)].assign(item=item[at >= recent_start])
    base = purchases[(at >= base_start) & (at < recent_start)].assign(
        item=item[(at >= base_start) & (at < recent_start)]
    )
    r = np.bincount(recent.drop_duplicates(["customer_id", "item"])["item"], minlength=len(items)).astype(float)
    b = np.bincount(base.drop_duplicates(["customer_id", "item"])["item"], minlength=len(items)) / 4.0
    return np.clip((r - b) / np.sqrt(b + 1.0), 0.0, None) * np.log1p(r)


def _recent_views(signals: pd.DataFrame) -> dict[str, np.ndarray]:
    views = signals[signals["kind"] == "view"].sort_values("at", ascending=False)
    views = views.drop_duplicates(["customer_id", "item"])
    views = views[views.groupby("customer_id").cumcount() < RECENT]
    return {cid: group["item"].to_numpy(dtype=np.int64) for cid, group in views.groupby("customer_id", sort=False)}


def train(
    purchases: pd.DataFrame, signals: pd.DataFrame, *, now: datetime, progress: Callable[[str], None] = lambda _: None
) -> Model:
    """From purchases (`customer_id`, `sku`, `at`, `basket`, `weight`) and signals (`customer_id`, `sku`, `at`,
    `kind`: view or cart), as of `now`."""
    purchases = purchases.assign(weight=WEIGHTS["purchase"])
    weighted = pd.concat(
        [purchases, signals.assign(weight=signals["kind"].map(WEIGHTS).fillna(0.0))], ignore_index=True
    )
    data = Interactions.from_frame(weighted)
    bought = Interactions.from_frame(purchases, items=data.items, customers=data.customers)  # rows line up
    signals = signals.assign(item=data.items.get_indexer(signals["sku"].astype(str)))
    progress("popularity")
    popular = Popularity().fit(bought)._scores
    progress("co-views and neighbours")
    views = Interactions(data.customers, data.items, data.events[data.events["weight"] == WEIGHTS["view"]])
    coviewed = ItemKNN(neighbours=50).fit(views)
    neighbours = ItemKNN(neighbours=100).fit(
        Interactions(data.customers, data.items, data.events[data.events["weight"] >= WEIGHTS["cart"]])
    )
    progress("matrix factorisation (ALS)")
    als = ALS().fit(data)
    progress("personal chain")
    ranked = chains.PersonalChain().fit(bought, now=now).rank(np.arange(data.shape[0]), PERSONAL)
    return Model(
        trained_at=now,
        items=data.items,
        customers=data.customers,
        popular=popular,
        trending=_trending(purchases, data.items, now),
        coviewed=coviewed.similar,
        neighbours=neighbours.similar,
        user_factors=als.learned[0],
        item_factors=als.learned[1],
        personal=ranked.items.astype(np.int32),
        personal_repeat=ranked.sources == ranker.REPEAT,
        bought=bought.matrix(),
        viewed=_recent_views(signals[signals["item"] >= 0]),
        counts={
            "customers": data.shape[0],
            "products": data.shape[1],
            "purchases": len(purchases),
            "views": int((signals["kind"] == "view").sum()),
            "carts": int((signals["kind"] == "cart").sum()),
        },
    )


def forget(model: Model, customer_ids: list[str]) -> int:
    """Take erased customers out of the model: their rows emptied, their ids gone; how many it held."""
    rows = [model.row(c) for c in customer_ids]
    rows = [r for r in rows if r >= 0]
    for c in customer_ids:
        model.viewed.pop(c, None)
    if not rows:
        return 0
    model.personal[rows] = -1
    model.personal_repeat[rows] = False
    model.user_factors[rows] = 0.0
    bought = model.bought.tolil()
    bought[rows] = 0
    model.bought = bought.tocsr()
    model.bought.eliminate_zeros()
    names = model.customers.to_numpy(dtype=object).copy()
    names[rows] = [f"erased:{r}" for r in rows]
    model.customers = pd.Index(names)
    model.__dict__.pop("_rows", None)
    return len(rows)


def save(model: Model, path: Path) -> None:
    """Written beside and renamed over, so a reader sees the old model or the new, never half of one; with a
    small summary beside it (`summary`) that pages and the schedule read without loading the model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    until = model.data_until.isoformat() if model.data_until else None
    about = {"trained_at": model.trained_at.isoformat(), "data_until": until, "counts": model.counts}
    about["quality"] = model.quality
    path.with_suffix(".json").write_text(json.dumps(about, default=float))
    os.replace(partial, path)


def summary(path: Path) -> dict | None:
    """When the saved model was trained, what from, and its offline quality; None before the first training."""
    try:
        about = json.loads(path.with_suffix(".json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return about | {"trained_at": datetime.fromisoformat(about["trained_at"])}


def load(path: Path) -> Model | None:
    """The saved model; None when there is none yet or it is of an older format (it is trained again)."""
    try:
        with path.open("rb") as f:
            model = pickle.load(f)  # noqa: S301 - the workspace's own file, written by `save`
    except (FileNotFoundError, EOFError, pickle.UnpicklingError, AttributeError, ModuleNotFoundError):
        return None
    return model if getattr(model, "format", None) == FORMAT else None
