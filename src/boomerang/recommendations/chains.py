"""Chains: rankings of several algorithms combined into one list. The personal chain gives each customer as many
slots for products they bought before as their own habit asks (the share of their past purchases that were
repeats), filled by the repeat model, then new products from the explore model, then popular ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from boomerang.recommendations.interactions import Interactions


def repeat_share(data: Interactions) -> np.ndarray:
    """Per customer: of their purchases after their first order, the share of products they had bought before."""
    e = data.events.drop_duplicates(["user", "item", "basket"]).sort_values("at")
    first = e.groupby(["user", "item"])["at"].transform("min")
    start = e.groupby("user")["at"].transform("min")
    later = e[e["at"] > start]
    repeated = (later["at"] > first[later.index]).groupby(later["user"]).mean()
    return pd.Series(repeated).reindex(range(data.shape[0])).fillna(0.5).to_numpy()


def personal(
    repeat: np.ndarray,
    explore: np.ndarray,
    popular: np.ndarray,
    history: list[set[int]],
    share: np.ndarray,
    k: int = 20,
) -> np.ndarray:
    """Per customer (rows of the rankings, best first): round(k x share) of the repeat ranking's products they
    bought before, then the explore ranking's products new to them, then popular ones; k products, no repeats."""
    out = np.empty((len(history), k), dtype=np.int64)
    for i, bought in enumerate(history):
        mine = [x for x in repeat[i] if x in bought][: int(round(k * share[i]))]
        taken = set(mine)
        for source, new_only in ((explore[i], True), (repeat[i], False), (popular[i], False)):
            for x in source:
                if len(mine) == k:
                    break
                if x not in taken and not (new_only and x in bought):
                    mine.append(x)
                    taken.add(x)
        out[i, : len(mine)] = mine
        out[i, len(mine) :] = -1
    return out
