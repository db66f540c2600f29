"""The simulated shop and the helpers of bench/reco.py: progress lines, peak memory, timing, and a shop of
`--products` products in a three-level category tree with brands and `--interactions` purchases, carts and views
(power-law popularity within categories, customers with a favourite category and staples bought again)."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
