"""What recommenders learn from: who interacted with which product, when and how strongly, as a sparse customer x
product matrix with the ids on both sides. Built from a frame of interactions (`customer_id`, `sku`, `at`,
`weight`), such as order lines (weight = quantity, or 1 per order) or views and carts with smaller weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

COLUMNS = ("customer_id", "sku", "at", "weight")


@dataclass(frozen=True)
class Interactions:
    """Customers and products as row and column numbers, the interactions between them and their times."""

    customers: pd.Index  # row number -> customer id
    items: pd.Index  # column number -> sku
    events: pd.DataFrame  # user, item (numbers), at, weight, basket: one row per interaction

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, items: pd.Index | None = None, customers: pd.Index | None = None
    ) -> Interactions:
        """From `customer_id`, `sku`, `at`, `weight` and optionally `basket` (an order id); `items` and `customers`
        fix the columns and rows (interactions of products or customers not among them are dropped)."""
        missing = [c for c in COLUMNS if c not in frame]
        if missing:
            raise ValueError(f"interactions need the columns {', '.join(missing)}")
        frame = frame.dropna(subset=["customer_id", "sku"])
        if customers is None:
            customers = pd.Index(sorted(frame["customer_id"].astype(str).unique()))
        items = items if items is not None else pd.Index(sorted(frame["sku"].astype(str).unique()))
        item = items.get_indexer(frame["sku"].astype(str))
        user = customers.get_indexer(frame["customer_id"].astype(str))
        keep = (item >= 0) & (user >= 0)
        moment = frame["customer_id"].astype(str) + "@" + pd.to_datetime(frame["at"]).dt.strftime("%Y-%m-%dT%H:%M")
        # an interaction with no order (a view, a cart) is a basket of its customer's minute
        basket = (
            frame["basket"].astype(object).where(frame["basket"].notna(), moment).astype(str)
            if "basket" in frame
            else moment
        )
        events = pd.DataFrame(
            {
                "user": user[keep],
                "item": item[keep],
                "at": pd.to_datetime(frame["at"]).to_numpy()[keep],
                "weight": frame["weight"].astype(float).to_numpy()[keep],
                "basket": basket.to_numpy()[keep],
            }
        )
        return cls(customers, items, events)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customers), len(self.items)

    def matrix(self, *, binary: bool = False) -> sp.csr_matrix:
        """Customers x products: the summed weights (or 1 where any interaction)."""
        data = np.ones(len(self.events)) if binary else self.events["weight"].to_numpy()
        m = sp.csr_matrix((data, (self.events["user"], self.events["item"])), shape=self.shape)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def baskets(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """Baskets (orders) x products, 1 where the product is in the basket; and each basket's time."""
        codes, _ = pd.factorize(self.events["basket"])
        m = sp.csr_matrix(
            (np.ones(len(codes)), (codes, self.events["item"].to_numpy())),
            shape=(int(codes.max()) + 1 if len(codes) else 0, self.shape[1]),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        times = pd.Series(self.events["at"].to_numpy()).groupby(codes).min().to_numpy() if len(codes) else np.zeros(0)
        return m, times
