"""Recommendations: training seconds per algorithm, serving p50/p99 per block, against plain pandas/scipy/numpy.

Training, on two data sets:
- Online Retail: the shared UCI file's purchases (datasets.online_retail: returns and lines without a customer
  dropped), all of them or those before --until; weight 1 per line, as `reco train` learns them;
- a simulated shop (defaults: 20,000 products in a three-level category tree with brands, 1,000,000 interactions
  of 50,000 customers over a year: purchases in baskets, cart additions and views; power-law popularity within
  categories, every customer with a favourite category and staples bought again), made with numpy (seed 42).
Each algorithm of algorithms.catalogue() is fitted on Interactions.from_frame of the shop's purchases, carts and
views weighted as model.WEIGHTS (Online Retail: purchases only); then PersonalChain.fit and .rank of every
customer, and the whole model.train (with its steps). Beside each, in the same run, the same computation in plain
pandas/scipy/numpy/sklearn where one exists, its seconds and the ratio ours/theirs, and a check that both found the
same thing:
- interactions: pd.factorize + scipy coo_matrix (same shape and non-zeros);
- popularity: numpy lexsort + bincount (same scores);
- top_frequency: pandas groupby nunique of orders per customer and product (same counts);
- bought_together: a pandas self-merge of order lines on the order id, lift, the 50 best per product by sort
  (share of our neighbour pairs it also found);
- item_knn: sklearn NearestNeighbors(metric="cosine", algorithm="brute") over the binary product x customer matrix
  (share of our 100 neighbours it also found);
- ease: Steck's reference, dense X.T @ X and np.linalg.inv, where the dense X fits in 2 GB (largest weight
  difference). EASE keeps the `max_items` (8,000) most popular products: the report says when that cap applies.

Serving: Filler(CatalogIndex.build(catalog), model).fill(block, Context(...)) for every ready-made block, --requests
each, one after another in this process, on a demo-sized simulated shop (300 products, 7,000 customers), on the
simulated shop above, and on the real demo workspace; contexts as the API makes them: random known customers (with
what they bought in the block's exclude_bought_days, and their last order where the block uses it), anonymous
visitors (with 0-3 recently viewed products), random products (half by popularity) and carts of 1-5 products.
The first 50 requests of each block warm up and are not counted. p50/p99/max in ms, beside a naive per request
baseline: every product scored densely (ALS user x item dot for a customer, the co-purchase and co-view rows of the
product or cart, else trending), masked by the block's filters and sorted whole with np.argsort.
Then the whole HTTP path at the demo scale: `boomerang demo --no-serve --json` into a temporary folder,
`boomerang reco train`, `boomerang serve` on loopback in a child process, and GET /api/recommendations/{block}
with the demo's secret key through one httpx client: p50/p99 per block. Aim (from the issue): p99 at most 10 ms at
the demo scale, in a single process.

    python bench/reco.py [--quick] [--online-retail PATH] [--until YYYY-MM-DD] [--products 20000]
                         [--interactions 1000000] [--customers 50000] [--requests 2000] [--seed 42]
                         [--demo-customers 5000] [--demo-days 365] [--skip-http] [--skip-online-retail]
                         [--retail-customers N] [--http]

--quick: Online Retail before 2011-04-01 for 600 customers drawn at random (the algorithms alone), a demo-sized
simulated shop (300 products, 1,000 customers, 26,000 interactions) for the chain, model.train and serving, 200
requests per block, and no HTTP path unless --http (the demo and `reco train` alone take a minute or more). Progress
goes to stderr, the tables to stdout. Without --quick and with --skip-http, a demo-sized simulated shop (300
products, 7,000 customers, 180,000 interactions) stands in for the demo workspace.
"""

from __future__ import annotations

import argparse
import inspect
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp

from boomerang.recommendations import algorithms, chains, datasets
from boomerang.recommendations import model as trained
from boomerang.recommendations.blocks import READY_MADE, Block
from boomerang.recommendations.catalog_index import CatalogIndex
from boomerang.recommendations.interactions import Interactions
from boomerang.recommendations.serving import Context, Filler

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = SHARED / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz"
RETAIL_NOW = datetime(2011, 10, 1)  # the file's "today" (its README)
AIM_P99_MS = 10.0
WARM_UP = 50
DENSE_LIMIT = 2 * 2**30  # bytes of a dense matrix a baseline may make
STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


# -- a simulated shop ------------------------------------------------------------------------------------------

WORDS = "tea coffee mug kettle candle lamp towel blanket pillow vase frame clock bowl plate glass knife board apron "
WORDS += "basket box jar soap brush mat spoon tray scarf glove sock cup"
WORDS = WORDS.split()
TOPS = ["Kitchen", "Home", "Garden", "Bath", "Tea", "Coffee", "Toys", "Books", "Beauty", "Sport", "Pets", "Office"]


@dataclass
class Shop:
    catalog: pd.DataFrame  # sku, name, category, brand, price, in_stock, image_url, url, currency, was
    purchases: pd.DataFrame  # customer_id, sku, at, basket, weight
    signals: pd.DataFrame  # customer_id, sku, at, kind (view or cart)
    now: datetime
    traffic: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per catalog row: its share of views

    def describe(self) -> str:
        customers = pd.concat([self.purchases["customer_id"], self.signals["customer_id"]]).nunique()
        kinds = self.signals["kind"].value_counts()
        cats = self.catalog["category"].nunique()
        return (
            f"{len(self.catalog):,} products ({cats:,} leaf categories, {self.catalog['brand'].nunique():,} brands), "
            f"{customers:,} customers, {len(self.purchases) + len(self.signals):,} interactions: "
            f"{len(self.purchases):,} purchased lines in {self.purchases['basket'].nunique():,} orders, "
            f"{kinds.get('cart', 0):,} cart additions, {kinds.get('view', 0):,} views"
        )


def simulate(products: int, interactions: int, customers: int, seed: int, days: int = 365) -> Shop:
    """20% purchased lines (baskets of 1 + Poisson(2)), 15% cart additions (most before a purchase), the rest views;
    each line from the customer's staples (repeat habit) or by popularity in their favourite categories."""
    rng = np.random.default_rng(seed)
    now = datetime(2026, 1, 1)
    leaves = [
        (
            c,
            f"{top} > {WORDS[(c * 7 + s) % len(WORDS)].title()} > {WORDS[(c * 5 + s * 3 + t) % len(WORDS)].title()} {t}",
        )
        for c, top in enumerate(TOPS)
        for s in range(int(rng.integers(3, 7)))
        for t in range(int(rng.integers(2, 6)))
    ]
    leaf_top = np.array([c for c, _ in leaves])
    leaf_path = np.array([p for _, p in leaves], dtype=object)
    weights = rng.pareto(1.5, len(leaves)) + 0.2
    leaf = np.sort(rng.choice(len(leaves), products, p=weights / weights.sum()))
    top = leaf_top[leaf]  # products in category order
    n_brands = max(products // 25, 8)
    brand_top = rng.integers(0, len(TOPS), n_brands)
    brand = rng.integers(0, n_brands, products)
    for c in range(len(TOPS)):  # a brand makes products of one top category
        own = np.flatnonzero(brand_top == c)
        idx = np.flatnonzero(top == c)
        if len(own):
            brand[idx] = rng.choice(own, len(idx))
    price = np.round(np.exp(rng.normal(2.5 + 0.15 * top, 0.6)), 2)
    skus = np.array([f"P{i:06d}" for i in range(products)], dtype=object)
    word = rng.integers(0, len(WORDS), products)
    catalog = pd.DataFrame(
        {
            "sku": skus,
            "name": [f"Brand{b} {WORDS[w]} no. {i}" for i, (b, w) in enumerate(zip(brand, word))],
            "category": leaf_path[leaf],
            "brand": [f"Brand{b}" for b in brand],
            "price": price,
            "in_stock": rng.random(products) < 0.95,
            "image_url": np.where(rng.random(products) < 0.9, "https://shop.example/i.jpg", None),
            "url": "https://shop.example/p",
            "currency": "EUR",
            "was": np.where(rng.random(products) < 0.15, np.round(price * rng.uniform(1.1, 1.6, products), 2), np.nan),
        }
    )
    # power-law popularity as one cdf: top category c spans [c, c + 1)
    pop = 1.0 / (rng.permutation(products) + 1.0) ** 0.9
    cdf = np.zeros(products)
    bounds = np.searchsorted(top, np.arange(len(TOPS) + 1))
    for c in range(len(TOPS)):
        s, e = bounds[c], bounds[c + 1]
        if e > s:
            cdf[s:e] = c + np.cumsum(pop[s:e]) / pop[s:e].sum()
    share = np.bincount(top, weights=pop, minlength=len(TOPS))
    share /= share.sum()
    present = np.flatnonzero(np.bincount(top, minlength=len(TOPS)) > 0)

    def draw(cats: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, cats + rng.random(len(cats)) * 0.999999), products - 1)

    def some(n: int) -> np.ndarray:  # categories by their popularity
        return rng.choice(len(TOPS), n, p=share)

    activity = rng.pareto(1.2, customers) + 1.0
    activity /= activity.sum()
    favourite = some(2 * customers).reshape(customers, 2)
    favourite = np.where(np.isin(favourite, present), favourite, present[0])
    staples = draw(np.repeat(favourite[:, 0], 6)).reshape(customers, 6)
    ids = np.array([f"cus_{i:07d}" for i in range(customers)], dtype=object)
    start = np.datetime64(now - timedelta(days=days), "s")

    def lines(who: np.ndarray, repeat: float) -> np.ndarray:
        n = len(who)
        cats = np.where(rng.random(n) < 0.75, favourite[who, rng.integers(0, 2, n)], some(n))
        return np.where(rng.random(n) < repeat, staples[who, rng.integers(0, 6, n)], draw(cats))

    n_purchase, n_cart = int(interactions * 0.2), int(interactions * 0.15)
    orders = int(n_purchase / 3.0) + 1
    size = 1 + rng.poisson(2.0, orders)
    order = np.repeat(np.arange(orders), size)[:n_purchase]
    buyer = rng.choice(customers, orders, p=activity)
    placed = start + (rng.random(orders) ** 0.9 * days * 86400).astype("timedelta64[s]")
    who = buyer[order]
    item = lines(who, 0.45)
    purchases = pd.DataFrame(
        {"customer_id": ids[who], "sku": skus[item], "at": placed[order], "basket": order, "weight": 1.0}
    )
    purchases["basket"] = "o" + purchases["basket"].astype(str)
    carted = rng.random(len(purchases)) < 0.6  # carted before buying; the other cart additions were abandoned
    abandoned = n_cart - int(carted.sum())
    cart_who = rng.choice(customers, abandoned, p=activity)
    n_view = interactions - len(purchases) - n_cart
    view_who = rng.choice(customers, n_view, p=activity)
    minutes = lambda n: (rng.integers(1, 30, n) * 60).astype("timedelta64[s]")  # noqa: E731
    uniform = lambda n: start + (rng.random(n) * days * 86400).astype("timedelta64[s]")  # noqa: E731
    signals = pd.DataFrame(
        {
            "customer_id": np.concatenate([ids[who[carted]], ids[cart_who], ids[view_who]]),
            "sku": np.concatenate([skus[item[carted]], skus[lines(cart_who, 0.2)], skus[lines(view_who, 0.15)]]),
            "at": np.concatenate(
                [placed[order][carted] - minutes(int(carted.sum())), uniform(abandoned), uniform(n_view)]
            ),
            "kind": np.repeat(["cart", "cart", "view"], [int(carted.sum()), abandoned, n_view]),
        }
    )
    traffic = np.bincount(pd.Index(skus).get_indexer(signals["sku"]), minlength=products).astype(float)
    sold = purchases.drop_duplicates(["basket", "sku"]).groupby("sku").size()
    catalog["sold"] = sold.reindex(catalog["sku"]).fillna(0).to_numpy()  # orders with it, as the store counts
    return Shop(catalog, purchases, signals, now, traffic / max(traffic.sum(), 1.0))


# -- training ---------------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    seconds: float | None
    baseline: str = ""
    base_seconds: float | None = None
    check: str = ""
    note: str = ""


def weighted(purchases: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """Purchases, carts and views in one frame weighted as model.train weighs them; a cart addition or a view is in
    a basket of the customer's day (a session), not in one basket of every signal, as a NaN basket would make."""
    session = signals["customer_id"].astype(str) + "@" + pd.to_datetime(signals["at"]).dt.strftime("%Y-%m-%d")
    return pd.concat(
        [
            purchases.assign(weight=trained.WEIGHTS["purchase"]),
            signals.assign(weight=signals["kind"].map(trained.WEIGHTS).fillna(0.0), basket=session).drop(
                columns="kind"
            ),
        ],
        ignore_index=True,
    )


def base_interactions(frame: pd.DataFrame) -> sp.csr_matrix:
    users, _ = pd.factorize(frame["customer_id"].astype(str))
    items, _ = pd.factorize(frame["sku"].astype(str))
    m = sp.coo_matrix((frame["weight"].to_numpy(float), (users, items))).tocsr()
    m.sum_duplicates()
    return m


def base_popularity(data: Interactions, half_life: float) -> np.ndarray:
    e = data.events
    at = e["at"].to_numpy()
    decay = 0.5 ** ((at.max() - at) / np.timedelta64(1, "D") / half_life)
    key = e["user"].to_numpy(np.int64) * data.shape[1] + e["item"].to_numpy(np.int64)
    order = np.lexsort((decay, key))
    last = np.r_[key[order][1:] != key[order][:-1], True]  # the latest (largest decay) of each customer and product
    pick = order[last]
    return np.bincount(e["item"].to_numpy()[pick], weights=decay[pick], minlength=data.shape[1])


def base_top_frequency(data: Interactions) -> pd.Series:
    return data.events.groupby(["user", "item"])["basket"].nunique()


def top_pairs(a: np.ndarray, b: np.ndarray, score: np.ndarray, k: int) -> pd.DataFrame:
    """Each a's k best b by score, by a sort."""
    frame = pd.DataFrame({"a": a, "b": b, "s": score}).sort_values(["a", "s"], ascending=[True, False])
    return frame[frame.groupby("a").cumcount() < k]


def base_bought_together(
    data: Interactions, neighbours: int, min_support: int, half_life: float | None
) -> pd.DataFrame:
    """Lift over orders (each order weighing 0.5 ** (age / half_life) when the model decays them), by a self-merge."""
    lines = data.events[["basket", "item", "at"]]
    when = lines.groupby("basket")["at"].min()
    age = (when.max() - when) / np.timedelta64(1, "D")
    weight = 0.5 ** (age / half_life) if half_life else age * 0 + 1.0
    lines = lines[["basket", "item"]].drop_duplicates()
    pairs = lines.merge(lines, on="basket")
    pairs = pairs[pairs["item_x"] != pairs["item_y"]]
    pairs["w"] = weight.reindex(pairs["basket"]).to_numpy()
    grouped = pairs.groupby(["item_x", "item_y"])["w"]
    co = grouped.sum()[grouped.size() >= min_support]
    count = (
        lines.assign(w=weight.reindex(lines["basket"]).to_numpy())
        .groupby("item")["w"]
        .sum()
        .reindex(range(data.shape[1]))
    )
    a, b = co.index.get_level_values(0).to_numpy(), co.index.get_level_values(1).to_numpy()
    lift = co.to_numpy() * weight.sum() / (count.to_numpy()[a] * count.to_numpy()[b])
    return top_pairs(a, b, lift, neighbours)


def base_item_knn(data: Interactions, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    x = data.matrix(binary=True).T.tocsr()
    seen = np.flatnonzero(x.getnnz(axis=1) > 0)  # products nobody touched have no direction
    k = min(neighbours + 1, len(seen))
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(x[seen])
    dist, idx = nn.kneighbors(x[seen])
    return seen, np.where(dist < 1.0 - 1e-12, seen[idx], -1)  # cosine 0: not a neighbour


def pair_overlap(ours: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> float:
    """Share of our (row, column) pairs that the baseline found too."""
    mine = ours.tocoo()
    key_ours = set((mine.row.astype(np.int64) * ours.shape[1] + mine.col).tolist())
    key_theirs = set((a.astype(np.int64) * ours.shape[1] + b).tolist())
    return len(key_ours & key_theirs) / max(len(key_ours), 1)


def base_ease(data: Interactions, columns: np.ndarray, regularisation: float) -> np.ndarray:
    x = data.matrix(binary=True)[:, columns].toarray()
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += regularisation
    p = np.linalg.inv(gram)
    b = p / -np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def train_all(
    label: str, purchases: pd.DataFrame, signals: pd.DataFrame, now: datetime, *, chain: bool = True, sample: int = 2000
) -> tuple[list[Row], trained.Model | None, list[tuple[str, float]]]:
    """Every algorithm with its baseline; with `chain`, PersonalChain (ranking `sample` customers) and model.train."""
    rows: list[Row] = []
    frame = weighted(purchases, signals) if len(signals) else purchases.assign(weight=1.0)
    say(f"{label}: Interactions.from_frame of {len(frame):,} rows")
    data, s = timed(lambda: Interactions.from_frame(frame))
    base, b = timed(lambda: base_interactions(frame))
    mine = data.matrix()
    check = (
        "same" if base.shape == mine.shape and base.nnz == mine.nnz else f"{base.shape} {base.nnz:,} vs {mine.nnz:,}"
    )
    rows.append(
        Row(
            "Interactions.from_frame",
            s,
            "pd.factorize + coo_matrix",
            b,
            check,
            f"{data.shape[0]:,} x {data.shape[1]:,}",
        )
    )
    for name, model in algorithms.catalogue().items():
        say(f"{label}: fit {name}")
        try:
            _, s = timed(lambda: model.fit(data))
        except Exception as e:  # noqa: BLE001 - a broken algorithm is reported, the rest still measured
            rows.append(Row(name, None, note=f"ERROR {type(e).__name__}: {e}"[:120]))
            continue
        row = Row(name, s)
        if name == "popularity":
            theirs, row.base_seconds = timed(lambda: base_popularity(data, model.half_life_days))
            row.baseline = "numpy lexsort + bincount"
            row.check = "same" if np.allclose(theirs, model._scores) else "DIFFERENT"
        elif name == "top_frequency":
            theirs, row.base_seconds = timed(lambda: base_top_frequency(data))
            row.baseline = "pandas groupby nunique"
            got = model._orders.tocoo()
            same = len(theirs) == got.nnz and np.isclose(theirs.sum(), got.data.sum())
            row.check = "same" if same else f"{len(theirs):,} vs {got.nnz:,}"
            row.note = "includes a popularity fit"
        elif name == "bought_together":
            pairs = int(data.events.groupby("basket").size().pow(2).sum())
            if pairs * 24 > DENSE_LIMIT:
                row.note = f"self-merge skipped: {pairs:,} pairs"
            else:
                say(f"{label}: baseline pandas self-merge of {pairs:,} pairs")
                theirs, row.base_seconds = timed(
                    lambda: base_bought_together(
                        data, model.neighbours, model.min_support, getattr(model, "half_life_days", None)
                    )
                )
                row.baseline = "pandas self-merge on order"
                row.check = f"{pair_overlap(model._similar, theirs['a'].to_numpy(), theirs['b'].to_numpy()):.1%} pairs"
        elif name == "item_knn":
            say(f"{label}: baseline sklearn NearestNeighbors")
            (seen, idx), row.base_seconds = timed(lambda: base_item_knn(data, model.neighbours))
            row.baseline = "sklearn NearestNeighbors"
            a, b_ = np.repeat(seen, idx.shape[1]), idx.ravel()
            keep = (b_ >= 0) & (a != b_)
            row.check = f"{pair_overlap(model._similar, a[keep], b_[keep]):.1%} pairs"
        elif name == "ease":
            cols = len(model._columns)
            row.note = f"{cols:,} of {data.shape[1]:,} products" + (" (max_items cap)" if cols < data.shape[1] else "")
            if data.shape[0] * cols * 8 > DENSE_LIMIT:
                row.note += f"; dense X {data.shape[0] * cols * 8 / 2**30:.1f} GB: no baseline"
            else:
                say(f"{label}: baseline dense EASE")
                theirs, row.base_seconds = timed(lambda: base_ease(data, model._columns, model.regularisation))
                row.baseline = "numpy dense X, inv"
                row.check = f"max diff {np.abs(theirs - model._weights).max():.1e}"
        elif name == "als":
            row.note = f"implicit, {model.factors} factors, {model.iterations} iterations"
        rows.append(row)
    if not chain:
        return rows, None, []
    bought = Interactions.from_frame(purchases.assign(weight=1.0), items=data.items, customers=data.customers)
    say(f"{label}: PersonalChain.fit")
    try:
        fitted, s = timed(lambda: chains.PersonalChain().fit(bought, now=now))
        rows.append(Row("PersonalChain.fit", s, note=f"as of {now:%Y-%m-%d}"))
        users = np.arange(bought.shape[0])
        if len(users) > sample:
            users = np.sort(np.random.default_rng(7).choice(users, sample, replace=False))
        say(f"{label}: PersonalChain.rank of {len(users):,} customers")
        _, s = timed(lambda: fitted.rank(users, trained.PERSONAL))
        rows.append(
            Row(
                "PersonalChain.rank",
                s,
                note=f"{len(users):,} of {bought.shape[0]:,} customers, k={trained.PERSONAL}: "
                f"{s / len(users) * 1000:.1f} s per 1,000",
            )
        )
    except Exception as e:  # noqa: BLE001
        rows.append(Row("PersonalChain", None, note=f"ERROR {type(e).__name__}: {e}"[:120]))
    steps: list[tuple[str, float]] = []
    mark = [time.perf_counter(), "interactions"]

    def progress(step: str) -> None:
        steps.append((str(mark[1]), time.perf_counter() - float(mark[0])))
        mark[:] = [time.perf_counter(), step]
        say(f"{label}: model.train: {step}")

    say(f"{label}: model.train")
    try:
        model, s = timed(lambda: trained.train(purchases, signals, now=now, progress=progress))
        steps.append((str(mark[1]), time.perf_counter() - float(mark[0])))
        rows.append(Row("model.train (all)", s, note=f"{len(steps)} steps, below"))
    except Exception as e:  # noqa: BLE001
        model = None
        rows.append(Row("model.train", None, note=f"ERROR {type(e).__name__}: {e}"[:120]))
    return rows, model, steps


def print_training(title: str, rows: list[Row], steps: list[tuple[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'':26} {'ours s':>8}  {'baseline':28} {'theirs s':>8} {'ours/theirs':>11}  {'check':16} note")
    for r in rows:
        ours = f"{r.seconds:8.2f}" if r.seconds is not None else f"{'-':>8}"
        theirs = f"{r.base_seconds:8.2f}" if r.base_seconds is not None else f"{'-':>8}"
        ratio = f"{r.seconds / r.base_seconds:11.2f}" if r.seconds is not None and r.base_seconds else f"{'-':>11}"
        print(f"  {r.name:26} {ours}  {r.baseline or '-':28} {theirs} {ratio}  {r.check or '-':16} {r.note}")
    if steps:
        print("  model.train steps: " + ", ".join(f"{name} {s:.2f} s" for name, s in steps))


# -- serving ----------------------------------------------------------------------------------------------------


@dataclass
class Requests:
    """Who asks: known customers with their purchases, skus by traffic."""

    customers: np.ndarray  # ids the model knows
    skus: np.ndarray  # catalog skus
    traffic: np.ndarray  # per sku, the chance a page shows it
    bought: dict[str, list[tuple[np.datetime64, str, str]]]  # customer -> (at, order, sku)
    now: datetime

    @classmethod
    def of(cls, purchases: pd.DataFrame, customers, skus, traffic: np.ndarray | None, now: datetime) -> Requests:
        p = purchases.sort_values("at")
        bought: dict[str, list] = {}
        for cid, at, basket, sku in zip(p["customer_id"], p["at"].to_numpy(), p["basket"], p["sku"]):
            bought.setdefault(str(cid), []).append((at, str(basket), str(sku)))
        skus = np.asarray(skus, dtype=object)
        if traffic is None or len(traffic) != len(skus) or not traffic.sum():
            traffic = np.ones(len(skus))
        return cls(np.asarray(customers, dtype=object), skus, traffic / traffic.sum(), bought, now)

    def contexts(self, block: Block, n: int, rng: np.random.Generator) -> list[Context]:
        out = []
        for _ in range(n):
            known = {"product": 0.5, "cart": 0.6, "customer": 0.75, "none": 0.0}[block.context]
            known = 1.0 if block.name == "email" else known
            cid = str(rng.choice(self.customers)) if rng.random() < known and len(self.customers) else None
            product = self.sku(rng) if block.context == "product" else None
            cart = tuple(self.sku(rng) for _ in range(rng.integers(1, 6))) if block.context == "cart" else ()
            recent = () if cid else tuple(self.sku(rng) for _ in range(rng.integers(0, 4)))
            days = block.filters.exclude_bought_days
            history = self.bought.get(cid, []) if cid else []
            since = np.datetime64(self.now - timedelta(days=days or 0))
            recently = frozenset(s for at, _, s in history if days and at >= since)
            together = "bought_together" in block.chain and not (product or cart) and history
            last = tuple(s for _, o, s in history if o == history[-1][1]) if together else ()
            out.append(
                Context(
                    customer_id=cid,
                    product=product,
                    cart=cart,
                    recent=recent,
                    bought_recently=recently,
                    last_order=last,
                )
            )
        return out

    def sku(self, rng: np.random.Generator) -> str:
        if rng.random() < 0.5:
            return str(self.skus[rng.choice(len(self.skus), p=self.traffic)])
        return str(self.skus[rng.integers(len(self.skus))])


class Naive:
    """Every product scored densely per request, masked and sorted whole: the computation serving avoids."""

    def __init__(self, filler: Filler) -> None:
        self.f, m = filler, filler.model
        self.rows = filler._to_row  # model item -> catalog row
        together = getattr(filler.catalog, "together", None)  # catalog rows (now), or model items (before)
        self.together_rows = together is not None
        together = together if together is not None else getattr(m, "together", None)
        self.together = together.tocsr() if together is not None else None
        self.coviewed = m.coviewed.tocsr()

    def fill(self, block: Block, context: Context) -> list[int]:
        f, m = self.f, self.f.model
        user = m.row(context.customer_id)
        anchors = [s for s in ((context.product,) if context.product else context.cart)]
        items = m.items.get_indexer(pd.Index(anchors)) if anchors else np.zeros(0, dtype=np.int64)
        items = items[items >= 0]
        extra = np.zeros(len(f.catalog))
        if len(items):
            scores = np.asarray(self.coviewed[items].toarray().sum(axis=0)).ravel()
            if self.together is not None and self.together_rows:
                rows = f.catalog.rows(anchors)
                extra = np.asarray(self.together[rows[rows >= 0]].toarray().sum(axis=0)).ravel()
            elif self.together is not None:
                scores = scores + np.asarray(self.together[items].toarray().sum(axis=0)).ravel()
        elif user >= 0:
            scores = m.item_factors @ m.user_factors[user]
        else:
            scores = m.trending + 1e-6 * m.popular
        full = np.full(len(f.catalog), -np.inf)
        known = self.rows >= 0
        full[self.rows[known]] = scores[known]
        full += extra
        allowed = f._static_mask(block).copy()
        skip = f.catalog.rows(list(context.cart) + list(context.bought_recently) + [context.product or ""])
        allowed[skip[skip >= 0]] = False
        full[~allowed] = -np.inf
        order = np.argsort(-full, kind="stable")
        return [int(r) for r in order[: block.size]]


@dataclass
class Latency:
    block: str
    ms: np.ndarray
    naive: np.ndarray | None = None
    short: int = 0  # lists shorter than the block's size

    def stats(self, which: np.ndarray) -> tuple[float, float, float]:
        return float(np.percentile(which, 50)), float(np.percentile(which, 99)), float(which.max())


def serve_all(filler: Filler, requests: Requests, n: int, seed: int, label: str) -> list[Latency]:
    rng = np.random.default_rng(seed)
    naive = Naive(filler) if filler.model is not None else None
    out = []
    for block in READY_MADE.values():
        contexts = requests.contexts(block, n + WARM_UP, rng)
        say(f"{label}: {n:,} fills of {block.name}")
        times, short = [], 0
        for i, context in enumerate(contexts):
            started = time.perf_counter_ns()
            picks = filler.fill(block, context)
            elapsed = time.perf_counter_ns() - started
            if i >= WARM_UP:
                times.append(elapsed / 1e6)
                short += len(picks) < block.size
        naive_ms = None
        if naive is not None:
            try:
                naive_ms = []
                for context in contexts[WARM_UP:]:
                    started = time.perf_counter_ns()
                    naive.fill(block, context)
                    naive_ms.append((time.perf_counter_ns() - started) / 1e6)
                naive_ms = np.asarray(naive_ms)
            except Exception as e:  # noqa: BLE001 - the model's shape moved: ours is still measured
                say(f"{label}: the naive baseline failed: {type(e).__name__}: {e}")
                naive_ms = None
        out.append(Latency(block.name, np.asarray(times), naive_ms, short))
    return out


def print_serving(title: str, results: list[Latency], aim: bool) -> None:
    print(f"\n{title}")
    print(
        f"  {'block':16} {'chain':52} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  "
        f"{'naive p50':>9} {'naive p99':>9} {'p50 ratio':>9} {'p99 ratio':>9}  short" + ("  aim" if aim else "")
    )
    for r in results:
        p50, p99, top = r.stats(r.ms)
        chain = " > ".join(READY_MADE[r.block].chain)
        line = f"  {r.block:16} {chain:52} {p50:7.2f} {p99:7.2f} {top:7.2f}  "
        if r.naive is not None:
            n50, n99, _ = r.stats(r.naive)
            line += f"{n50:9.2f} {n99:9.2f} {p50 / n50:9.2f} {p99 / n99:9.2f}"
        else:
            line += f"{'-':>9} {'-':>9} {'-':>9} {'-':>9}"
        line += f"  {r.short:5}"
        if aim:
            line += "  met" if p99 <= AIM_P99_MS else f"  MISSED ({p99:.1f} > {AIM_P99_MS:.0f} ms)"
        print(line)
    print("  ratio: ours / naive (below 1: serving is faster than scoring everything); short: lists under the size")


# -- the HTTP path at the demo scale ----------------------------------------------------------------------------


def build_catalog(frame: pd.DataFrame, baskets: pd.DataFrame | None) -> CatalogIndex:
    """CatalogIndex.build, with the order lines bought-together is learned from where it takes them."""
    if baskets is not None and "baskets" in inspect.signature(CatalogIndex.build).parameters:
        return CatalogIndex.build(frame, baskets=baskets)
    return CatalogIndex.build(frame)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "boomerang", "--home", str(home), *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"boomerang {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Demo:
    summary: dict
    train: dict
    demo_s: float
    train_s: float
    filler: Filler
    requests: Requests
    http: list[Latency] = field(default_factory=list)


def demo_path(home: Path, customers: int, days: int, n: int, seed: int) -> Demo:
    import httpx
    import orjson
    import sqlalchemy as sa

    from boomerang.bootstrap import open_workspace
    from boomerang.config import Settings
    from boomerang.orchestration import reco_training
    from boomerang.recommendations.service import _catalog_frame

    say(f"demo: boomerang demo --no-serve --customers {customers} --days {days} into {home}")
    summary, demo_s = timed(
        lambda: orjson.loads(
            cli(home, "demo", "--no-serve", "--json", "--customers", str(customers), "--days", str(days))
        )
    )
    say("demo: boomerang reco train")
    result, train_s = timed(lambda: orjson.loads(cli(home, "reco", "train", "--json")))
    ws = open_workspace(Settings(home=home))
    model = trained.load(ws.settings.reco_model_path)
    from boomerang.recommendations import service

    with ws.uow.session() as session:
        baskets = service._baskets(session) if hasattr(service, "_baskets") else None
        catalog = build_catalog(_catalog_frame(session), baskets)
    purchases, signals = reco_training.read(ws.log, now=ws.now(), history_days=ws.settings.recommendations.history_days)
    traffic = catalog.skus.get_indexer(signals["sku"].astype(str))
    traffic = np.bincount(traffic[traffic >= 0], minlength=len(catalog)).astype(float)
    with ws.uow.session() as session:
        from boomerang.customers.models import Customer

        ids = set(session.scalars(sa.select(Customer.id)))
    known = [c for c in model.customers if c in ids]
    requests = Requests.of(purchases, known, catalog.skus, traffic, ws.now())
    ws.engine.dispose()
    filler = Filler(catalog, model)
    demo = Demo(summary, result, demo_s, train_s, filler, requests)

    port = _port()
    env = {**os.environ, "BOOMERANG_HOME": str(home)}
    say(f"demo: boomerang serve on 127.0.0.1:{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "boomerang", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        rng = np.random.default_rng(seed + 1)
        headers = {"Authorization": f"Bearer {summary['secret_key']}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for block in READY_MADE.values():
                say(f"demo: {n:,} GET /api/recommendations/{block.name}")
                times, short = [], 0
                for i, context in enumerate(requests.contexts(block, n + WARM_UP, rng)):
                    params: dict[str, Any] = {}
                    if context.customer_id:
                        params["customer"] = context.customer_id
                    if context.product:
                        params["product"] = context.product
                    if context.cart:
                        params["cart"] = ",".join(context.cart)
                    started = time.perf_counter_ns()
                    r = client.get(f"/api/recommendations/{block.name}", params=params)
                    elapsed = time.perf_counter_ns() - started
                    if r.status_code != 200:
                        raise RuntimeError(f"GET {block.name} {params}: {r.status_code} {r.text[:300]}")
                    if i >= WARM_UP:
                        times.append(elapsed / 1e6)
                        short += len(r.json()["items"]) < block.size
                demo.http.append(Latency(block.name, np.asarray(times), None, short))
    finally:
        proc.terminate()
        proc.wait()
    return demo


# -- the run ----------------------------------------------------------------------------------------------------


def retail_purchases(path: Path, until: str | None, customers: int | None, seed: int) -> tuple[pd.DataFrame, datetime]:
    frame = datasets.online_retail(path)
    now = RETAIL_NOW
    if until:
        now = datetime.strptime(until, "%Y-%m-%d")
        frame = frame[frame["at"] < now]
    ids = frame["customer_id"].unique()
    if customers and customers < len(ids):
        chosen = np.random.default_rng(seed).choice(ids, customers, replace=False)
        frame = frame[frame["customer_id"].isin(chosen)]
    return frame.reset_index(drop=True), now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small scale, under a minute")
    parser.add_argument("--online-retail", type=Path, default=RETAIL, help=f"the UCI file (default: {RETAIL})")
    parser.add_argument("--until", default=None, help="Online Retail: purchases before this day only (YYYY-MM-DD)")
    parser.add_argument("--retail-customers", type=int, default=None, help="Online Retail: a sample of customers")
    parser.add_argument("--products", type=int, default=None, help="simulated shop (default 20,000; quick 300)")
    parser.add_argument("--interactions", type=int, default=None, help="(default 1,000,000; quick 26,000)")
    parser.add_argument("--customers", type=int, default=None, help="(default interactions / 20; quick 1,000)")
    parser.add_argument("--requests", type=int, default=None, help="fills per block (default 2,000; quick 200)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--demo-customers", type=int, default=None, help="boomerang demo (default 5,000; quick 300)")
    parser.add_argument("--demo-days", type=int, default=None, help="(default 365; quick 120)")
    parser.add_argument("--skip-http", action="store_true", help="skip the demo workspace and its HTTP path")
    parser.add_argument("--http", action="store_true", help="with --quick: run the demo's HTTP path too (minutes)")
    parser.add_argument("--skip-online-retail", action="store_true")
    args = parser.parse_args()
    q = args.quick
    products = args.products or (300 if q else 20_000)
    interactions = args.interactions or (26_000 if q else 1_000_000)
    customers = args.customers or (1_000 if q else max(interactions // 20, 100))
    n = args.requests or (200 if q else 2_000)
    until = args.until or ("2011-04-01" if q else None)
    sample = args.retail_customers or (600 if q else None)
    http = args.http if q else not args.skip_http
    demo_customers, demo_days = args.demo_customers or (300 if q else 5_000), args.demo_days or (120 if q else 365)
    warnings.simplefilter("ignore")  # sklearn and implicit warn about threads; not what is measured

    machine = (
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}; load average at the start {os.getloadavg()[0]:.1f}"
        + ("; --quick" if q else "")
    )
    say(machine)
    out: list[Callable[[], None]] = []  # printed at the end, to stdout

    if not args.skip_online_retail and args.online_retail.exists():
        say(f"Online Retail: reading {args.online_retail}")
        retail, now = retail_purchases(args.online_retail, until, sample, args.seed)
        empty = pd.DataFrame({"customer_id": [], "sku": [], "at": pd.to_datetime([]), "kind": []})
        rows, _, steps = train_all("online retail", retail, empty, now, chain=not q)
        title = (
            f"training on Online Retail ({args.online_retail.name}"
            + (f", before {until}" if until else "")
            + (f", {sample:,} customers drawn at random" if sample else "")
            + f"): {len(retail):,} purchased lines, {retail['customer_id'].nunique():,} customers, "
            f"{retail['sku'].nunique():,} products, {retail['basket'].nunique():,} orders; as of {now:%Y-%m-%d}"
            + ("; --quick: no PersonalChain or model.train here" if q else "")
        )
        out.append(lambda rows=rows, steps=steps, title=title: print_training(title, rows, steps))
    elif not args.skip_online_retail:
        say(f"Online Retail: {args.online_retail} not found, skipped")

    say(f"simulating a shop of {products:,} products, {interactions:,} interactions, {customers:,} customers")
    shop, gen_s = timed(lambda: simulate(products, interactions, customers, args.seed))
    say(f"simulated in {gen_s:.1f} s: {shop.describe()}")
    rows, model, steps = train_all("simulated", shop.purchases, shop.signals, shop.now)
    title = f"training on the simulated shop (generated in {gen_s:.1f} s, seed {args.seed}): {shop.describe()}"
    out.append(lambda rows=rows, steps=steps, title=title: print_training(title, rows, steps))

    serving: list[tuple[str, list[Latency], bool]] = []
    demo = None
    try:
        if model is not None:
            say("simulated: CatalogIndex.build")
            catalog, cat_s = timed(lambda: build_catalog(shop.catalog, shop.purchases[["basket", "sku", "at"]]))
            requests = Requests.of(shop.purchases, model.customers, catalog.skus, shop.traffic, shop.now)
            demo_sized = len(catalog) <= 1000
            serving.append(
                (
                    f"serving on the simulated shop ({len(catalog):,} products, {len(model.customers):,} customers; "
                    f"CatalogIndex.build {cat_s:.2f} s): Filler.fill, {n:,} requests per block after {WARM_UP} warm-up",
                    serve_all(Filler(catalog, model), requests, n, args.seed, "simulated"),
                    demo_sized,
                )
            )

        if not q and not http:  # the demo scale without the demo: a simulated shop of its size
            say("simulating a demo-sized shop: 300 products, 7,000 customers, 180,000 interactions")
            small = simulate(300, 180_000, 7_000, args.seed + 1)
            small_model, small_s = timed(lambda: trained.train(small.purchases, small.signals, now=small.now))
            small_catalog = build_catalog(small.catalog, small.purchases[["basket", "sku", "at"]])
            small_requests = Requests.of(
                small.purchases, small_model.customers, small_catalog.skus, small.traffic, small.now
            )
            serving.append(
                (
                    f"serving on a demo-sized simulated shop ({small.describe()}; model.train {small_s:.1f} s): "
                    f"Filler.fill, {n:,} requests per block",
                    serve_all(Filler(small_catalog, small_model), small_requests, n, args.seed, "demo-sized"),
                    True,
                )
            )

        if http:
            with tempfile.TemporaryDirectory(prefix="reco-bench-") as tmp:
                try:
                    demo = demo_path(Path(tmp) / "ws", demo_customers, demo_days, n, args.seed)
                except RuntimeError as e:  # `reco train` failing is a finding, not the end of the report
                    say(f"demo: {e}")
                    failed = str(e).splitlines()[0][:300] + " ... " + str(e).strip().splitlines()[-1][:300]
                    out.append(lambda failed=failed: print(f"\nthe HTTP path at the demo scale: FAILED: {failed}"))
            if demo is not None:
                m = demo.filler.model
                serving.append(
                    (
                        f"serving on the demo workspace ({len(demo.filler.catalog):,} products, {len(m.customers):,} "
                        f"customers): Filler.fill in this process, {n:,} requests per block",
                        serve_all(demo.filler, demo.requests, n, args.seed, "demo"),
                        True,
                    )
                )

    except Exception as e:  # noqa: BLE001 - what was measured is still reported
        import traceback

        traceback.print_exc()
        out.append(lambda e=e: print(f"\nFAILED while serving: {type(e).__name__}: {e} (traceback on stderr)"))

    # the report
    print(machine)
    for show in out:
        show()
    for title, results, aim in serving:
        print_serving(title, results, aim)
    if demo is not None:
        s = demo.summary
        counts = demo.train.get("counts", {})
        print(
            f"\nthe HTTP path at the demo scale: boomerang demo --no-serve ({demo_customers:,} customers, "
            f"{demo_days} days: {s['customers']['total']:,} customers, {s['products']['total']:,} products, "
            f"{s['orders']:,} orders, {s['events']['total']:,} events) in {demo.demo_s:.1f} s; boomerang reco train "
            f"in {demo.train_s:.1f} s (its own count {demo.train.get('seconds', 0):.1f} s, on {counts.get('purchases', 0):,} "
            f"purchased lines, {counts.get('carts', 0):,} carts, {counts.get('views', 0):,} views)"
        )
        print(
            f"  GET /api/recommendations/{{block}}, boomerang serve on loopback, one client, {n:,} requests per block"
        )
        print(f"  {'block':16} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  {'fill p50':>8} {'fill p99':>8}  short  aim")
        fills = {r.block: r for title, results, _ in serving[-1:] for r in results}
        for r in demo.http:
            p50, p99, top = r.stats(r.ms)
            f50, f99, _ = fills[r.block].stats(fills[r.block].ms)
            aim = "met" if p99 <= AIM_P99_MS else f"MISSED ({p99:.1f} > {AIM_P99_MS:.0f} ms)"
            print(f"  {r.block:16} {p50:7.2f} {p99:7.2f} {top:7.2f}  {f50:8.2f} {f99:8.2f}  {r.short:5}  {aim}")
        print("  fill: Filler.fill alone on the same model and catalog (above); the rest is HTTP, auth and the store")
    print(
        f"\npeak memory of this process: {peak_mb():,.0f} MB; total {time.perf_counter() - STARTED:.0f} s; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores)"
    )


if __name__ == "__main__":
    main()
