"""Filling a block: each algorithm of its chain offers products best first, each with why (the customer's or the
context's product that led to it); the block's filters drop what may not be shown; the next algorithm fills the
slots left. The chain ends in the shop's best sellers and then the rest of the catalog, so a block is never empty
while the catalog has a product its filters let through. Pure: the model, the catalog and the request come in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from boomerang.recommendations.blocks import Block
from boomerang.recommendations.catalog_index import CatalogIndex
from boomerang.recommendations.model import Model

CANDIDATES = 200  # products each algorithm offers at most
Offer = tuple[int, int]  # a catalog row, and the catalog row that led to it (-1: none)


@dataclass(frozen=True)
class Context:
    """What is known at the request: who (their id in the model), where (a product, a category, a cart), what they
    viewed last on this device, and what they bought lately (for `exclude_bought_days`)."""

    customer_id: str | None = None
    product: str | None = None
    category: str | None = None
    cart: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    bought_recently: frozenset[str] = frozenset()
    last_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pick:
    row: int
    source: str
    because: int  # catalog row, or -1


@dataclass
class Filler:
    """One model and one catalog, with the mappings between their product numbers worked out once."""

    catalog: CatalogIndex
    model: Model | None
    _to_row: np.ndarray = field(init=False)  # model item -> catalog row (-1: no longer in the catalog)
    _to_item: np.ndarray = field(init=False)  # catalog row -> model item (-1: new since training)
    _masks: dict = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        model = self.model
        self._to_row = self.catalog.rows(model.items) if model is not None else np.zeros(0, dtype=np.int64)
        self._to_item = (
            model.items.get_indexer(self.catalog.skus) if model is not None else np.full(len(self.catalog), -1)
        )
        popular = self.catalog.sold.copy()  # before a model: orders per product
        if model is not None:
            popular[:] = 0.0
            known = self._to_item >= 0
            popular[known] = model.popular[self._to_item[known]]
        self._popular = np.argsort(-popular, kind="stable")  # ties (never sold) in catalog order

    # -- the chain ---------------------------------------------------------------------------------------

    def fill(self, block: Block, context: Context, *, control: bool = False) -> list[Pick]:
        """Up to `block.size` products for the context, in order; `control` serves best sellers alone."""
        allowed = self._static_mask(block)
        anchor = self.catalog.rows([context.product])[0] if context.product else -1
        skip = set(self.catalog.rows(context.bought_recently)) if block.filters.exclude_bought_days else set()
        if block.filters.exclude_cart:
            skip |= set(self.catalog.rows(context.cart))
        skip.add(anchor)
        price_ok = self._price_window(block, anchor)
        brands: dict[int, int] = {}
        picks: list[Pick] = []
        chain = ["popular"] if control else [*block.chain, "popular"]
        for source in chain:
            for row, because in self._offers(source, context, anchor):
                if len(picks) == block.size:
                    return picks
                if row < 0 or row in skip or not allowed[row] or not price_ok[row]:
                    continue
                brand = self.catalog.brand[row]
                if block.filters.max_per_brand and brand >= 0:
                    if brands.get(brand, 0) >= block.filters.max_per_brand:
                        continue
                    brands[brand] = brands.get(brand, 0) + 1
                skip.add(row)
                picks.append(Pick(int(row), source, int(because)))
        return picks

    def _offers(self, source: str, context: Context, anchor: int) -> Iterator[Offer]:
        if source == "popular":
            yield from ((int(r), -1) for r in self._popular)
            return
        yield from getattr(self, f"_{source}")(context, anchor)

    def _static_mask(self, block: Block) -> np.ndarray:
        f = block.filters
        key = (f.in_stock, f.has_image, f.discounted_only, tuple(f.categories))
        if key not in self._masks:
            c = self.catalog
            mask = c.in_categories(f.categories)
            mask &= c.in_stock if f.in_stock else True
            mask &= c.has_image if f.has_image else True
            mask &= c.discounted if f.discounted_only else True
            self._masks[key] = mask
        return self._masks[key]

    def _price_window(self, block: Block, anchor: int) -> np.ndarray:
        low, high = block.filters.price_min_ratio, block.filters.price_max_ratio
        price = self.catalog.price
        if anchor < 0 or (low is None and high is None) or not np.isfinite(price[anchor]):
            return np.ones(len(self.catalog), dtype=bool)
        with np.errstate(invalid="ignore"):
            ok = np.ones(len(self.catalog), dtype=bool)
            if low is not None:
                ok &= price >= low * price[anchor]
            if high is not None:
                ok &= price <= high * price[anchor]
        return ok | ~np.isfinite(price)  # a product with no price is not judged by it

    # -- the algorithms: each offers catalog rows best first ----------------------------------------------

    def _ranked(self, scores: np.ndarray, because: np.ndarray | None = None) -> Iterator[Offer]:
        """Model items by score (positive only) as catalog rows."""
        n = min(CANDIDATES, int((scores > 0).sum()))
        if n == 0:
            return
        top = np.argpartition(-scores, n - 1)[:n]
        for item in top[np.argsort(-scores[top], kind="stable")]:
            yield int(self._to_row[item]), (int(because[item]) if because is not None else -1)

    def _rows_of(self, skus) -> np.ndarray:
        rows = self.catalog.rows(skus)
        return rows[rows >= 0]

    def _items_of(self, rows: np.ndarray) -> np.ndarray:
        items = self._to_item[rows]
        return items[items >= 0]

    def _customer(self, context: Context) -> int:
        return self.model.row(context.customer_id) if self.model is not None else -1

    def _from_items(self, matrix, anchors: np.ndarray) -> Iterator[Offer]:
        """Summed item-to-item scores from anchor items; each product's reason is the anchor that gave it most."""
        if self.model is None or not len(anchors):
            return
        rows = matrix[anchors].toarray()
        best = rows.argmax(axis=0)
        yield from self._ranked(rows.sum(axis=0), self._to_row[anchors][best])

    def _personal(self, context: Context, anchor: int, *, repeat_only: bool = False) -> Iterator[Offer]:
        user = self._customer(context)
        if user < 0:
            return
        history = self.model.bought[user].indices
        links = self.model.neighbours[history].toarray() if len(history) else None  # history x items, once
        for item, again in zip(self.model.personal[user], self.model.personal_repeat[user]):
            if item < 0 or (repeat_only and not again):
                continue
            if again:  # bought before: the reason is itself
                yield int(self._to_row[item]), int(self._to_row[item])
            elif links is not None and links[:, item].max() > 0:
                yield int(self._to_row[item]), int(self._to_row[history[links[:, item].argmax()]])
            else:
                yield int(self._to_row[item]), -1

    def _repeat(self, context: Context, anchor: int) -> Iterator[Offer]:
        return self._personal(context, anchor, repeat_only=True)

    def _als(self, context: Context, anchor: int) -> Iterator[Offer]:
        user = self._customer(context)
        if user >= 0:
            yield from self._ranked(self.model.item_factors @ self.model.user_factors[user])

    def _item_knn(self, context: Context, anchor: int) -> Iterator[Offer]:
        user = self._customer(context)
        if user >= 0:
            yield from self._from_items(self.model.neighbours, self.model.bought[user].indices)

    def _bought_together(self, context: Context, anchor: int) -> Iterator[Offer]:
        together = self.catalog.together
        if together is None:
            return
        for skus in ((context.product,) if context.product else (), context.cart, context.last_order):
            rows = self._rows_of(skus)
            if len(rows):
                scores = together[rows].toarray()
                best = scores.argmax(axis=0)
                total = scores.sum(axis=0)
                n = min(CANDIDATES, int((total > 0).sum()))
                top = np.argsort(-total, kind="stable")[:n]
                yield from ((int(r), int(rows[best[r]])) for r in top)
                return

    def _similar(self, context: Context, anchor: int) -> Iterator[Offer]:
        if anchor < 0:  # no product on the page: like what they viewed last
            viewed = self._rows_of(self._recent(context)[:1])
            anchor = int(viewed[0]) if len(viewed) else -1
        if anchor < 0:
            return
        scores = np.array(self.catalog.similar_to(anchor))
        item = self._to_item[anchor]
        if self.model is not None and item >= 0:  # alike products viewed by the same visitors rank higher
            row = self.model.coviewed[item].toarray().ravel()
            known = self._to_row >= 0
            views = np.zeros(len(self.catalog))
            views[self._to_row[known]] = row[known] / (row.max() or 1.0)
            scores = scores * (1.0 + views)  # a boost, not a reason: co-viewed but unlike is not "similar"
        n = min(CANDIDATES, int((scores > 0).sum()))
        if n == 0:
            return
        top = np.argpartition(-scores, n - 1)[:n]
        yield from ((int(r), anchor) for r in top[np.argsort(-scores[top], kind="stable")])

    def _recent(self, context: Context) -> list[str]:
        seen = list(context.recent)
        user = self._customer(context)
        if user >= 0 and context.customer_id in self.model.viewed:
            seen += [self.model.items[i] for i in self.model.viewed[context.customer_id]]
        return list(dict.fromkeys(seen))

    def _recently_viewed(self, context: Context, anchor: int) -> Iterator[Offer]:
        yield from ((int(r), -1) for r in self._rows_of(self._recent(context)))

    def _popular_in_category(self, context: Context, anchor: int) -> Iterator[Offer]:
        category = (
            context.category or (self.catalog.category[anchor] if anchor >= 0 else "") or self._favourite(context)
        )
        while category:  # the category, then the one above it when it runs out
            inside = self.catalog.in_categories([category])
            yield from ((int(r), -1) for r in self._popular if inside[r])
            category = category.rpartition(" > ")[0]

    def _favourite(self, context: Context) -> str:
        """The category the customer bought most in."""
        user = self._customer(context)
        if user < 0:
            return ""
        bought = self.model.bought[user]
        rows = self._to_row[bought.indices]
        cats = [self.catalog.category[r] for r, k in zip(rows, bought.data) for _ in range(int(k)) if r >= 0]
        return max(set(cats), key=cats.count) if cats else ""

    def _trending(self, context: Context, anchor: int) -> Iterator[Offer]:
        if self.model is not None:
            yield from self._ranked(self.model.trending)
