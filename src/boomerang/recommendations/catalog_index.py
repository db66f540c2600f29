"""The catalog as serving reads it: one row per product, with what filters ask (stock, image, price, discount,
category, brand) as arrays, and content similarity (category path, brand, name in any script, price band) that
needs no training, so a product is recommendable as soon as a catalog sync brings it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from boomerang.recommendations.algorithms import BoughtTogether
from boomerang.recommendations.interactions import Interactions

CONTENT_WEIGHT, PRICE_WEIGHT = 0.8, 0.2  # of a content similarity: the words, then how close the prices are


def _text(frame: pd.DataFrame) -> pd.Series:
    """What a product is, in words: its category path (twice, it says the most), brand and name."""
    category = frame["category"].fillna("").str.replace(">", " ", regex=False)
    return (category + " " + category + " " + frame["brand"].fillna("") + " " + frame["name"].fillna("")).str.lower()


def _shown(frame: pd.DataFrame) -> list[dict]:
    keep = ["sku", "name", "category", "brand", "price", "currency", "url", "image_url"]
    out = frame[keep].astype(object).where(frame[keep].notna(), None)
    return [dict(zip(keep, row)) for row in out.itertuples(index=False)]


@dataclass
class CatalogIndex:
    """Products by row number; `version` tells when the catalog changed."""

    skus: pd.Index
    name: np.ndarray
    category: np.ndarray  # "" where none
    brand: np.ndarray  # codes, -1 where none
    price: np.ndarray  # nan where none
    in_stock: np.ndarray
    has_image: np.ndarray
    discounted: np.ndarray
    sold: np.ndarray  # orders with the product: what best sellers are before a model is trained
    shown: list[dict]  # what a recommendation shows of each product: name, price, currency, url, image_url...
    version: tuple = ()
    together: sp.csr_matrix | None = field(default=None, repr=False)  # row x row lift of being in the same order
    _words: sp.csr_matrix | None = field(default=None, repr=False)
    _categories: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, frame: pd.DataFrame, version: tuple = (), baskets: pd.DataFrame | None = None) -> CatalogIndex:
        """From products: `sku`, `name`, `category`, `brand`, `price`, `in_stock`, `image_url`, `was` (the price
        before a discount, from the product's `compare_at_price` or `regular_price` attribute) and `sold`; and
        bought together from `baskets` (`basket`, `sku`, `at`: order lines), so new orders count without training."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        frame = frame.reset_index(drop=True)
        price = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=float)
        was = pd.to_numeric(frame["was"], errors="coerce").to_numpy(dtype=float)
        index = cls(
            skus=pd.Index(frame["sku"].astype(str)),
            name=frame["name"].fillna(frame["sku"]).to_numpy(dtype=object),
            category=frame["category"].fillna("").to_numpy(dtype=object),
            brand=pd.factorize(frame["brand"].fillna("").replace("", None))[0],
            price=price,
            in_stock=frame["in_stock"].fillna(True).to_numpy(dtype=bool),
            has_image=frame["image_url"].fillna("").astype(bool).to_numpy(),
            discounted=np.nan_to_num(was, nan=0.0) > np.nan_to_num(price, nan=np.inf),
            sold=pd.to_numeric(frame["sold"], errors="coerce").fillna(0).to_numpy(dtype=float),
            shown=_shown(frame),
            version=version,
        )
        if len(frame):
            # character n-grams within words: Cyrillic and Latin alike, plurals and typos still overlap
            vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), min_df=1, sublinear_tf=True)
            index._words = vectoriser.fit_transform(_text(frame)).tocsr()
        if baskets is not None and len(baskets):
            lines = baskets.assign(customer_id=baskets["basket"], weight=1.0)
            data = Interactions.from_frame(lines, items=index.skus)
            index.together = BoughtTogether().fit(data).similar
        index.similar_to = lru_cache(maxsize=4096)(index._similar_to)
        return index

    def __len__(self) -> int:
        return len(self.skus)

    def rows(self, skus) -> np.ndarray:
        """Row numbers of these skus (-1 for those not in the catalog)."""
        return self.skus.get_indexer(pd.Index([str(s) for s in skus]))

    def in_categories(self, prefixes: list[str] | tuple[str, ...]) -> np.ndarray:
        """Products in any of these categories or below them."""
        found = np.zeros(len(self), dtype=bool)
        if not prefixes:
            return ~found
        for prefix in prefixes:
            found |= self._in_category(prefix)
        return found

    def _in_category(self, prefix: str) -> np.ndarray:
        if prefix not in self._categories:  # a few hundred categories at most: each worked out once
            cats = pd.Series(self.category, dtype=object)
            self._categories[prefix] = ((cats == prefix) | cats.str.startswith(prefix + " >")).to_numpy()
        return self._categories[prefix]

    def _similar_to(self, row: int) -> np.ndarray:
        """Content similarity of every product to one (itself 0): words, then price closeness."""
        if self._words is None or row < 0:
            return np.zeros(len(self))
        words = (self._words @ self._words[row].T).toarray().ravel()
        price = self.price
        if np.isfinite(price[row]) and price[row] > 0:
            ratio = np.abs(np.log(np.where(price > 0, price, np.nan) / price[row]))
            close = np.nan_to_num(np.exp(-ratio), nan=0.0)
        else:
            close = np.zeros(len(self))
        out = CONTENT_WEIGHT * words + PRICE_WEIGHT * close * (words > 0)  # price alone does not make alike
        out[row] = 0.0
        out.setflags(write=False)  # cached and shared between requests
        return out
