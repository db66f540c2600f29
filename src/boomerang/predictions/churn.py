"""Who buys again in the next N days: features as of a cut-off, a gradient-boosting classifier, and ROC AUCs.

Pure pandas and scikit-learn; the service gathers the frames. The classifier is fitted with a time
split: features as of `cutoff - horizon` labelled by purchases in (cutoff - horizon, cutoff], then
applied to features as of `cutoff`. Nothing after a snapshot's day feeds its features.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier

TOP_CATEGORIES = 8
MIN_CLASS = 10  # fewer buyers (or non-buyers) than this leave nothing to learn from
# Depth-3 trees, big leaves, slow learning: a few thousand customers overfit deeper ones (0.746 vs 0.763
# ROC AUC on Online Retail at 2011-06-30, 13 weeks); stacking older windows added nothing there.
BOOSTING = {"learning_rate": 0.03, "max_depth": 3, "l2_regularization": 1.0, "random_state": 0}


def _top(category: pd.Series) -> pd.Series:
    """Top-level category ("Music > CDs" -> "Music"); missing stays missing (an all-null column reads as float)."""
    return category.astype("string").str.split(" > ").str[0]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:30] or "other"


def top_categories(lines: pd.DataFrame, k: int = TOP_CATEGORIES) -> list[str]:
    """The k top-level categories with the most order lines (Online Retail has none: empty)."""
    return _top(lines["category"]).dropna().value_counts().index[:k].tolist()


def order_features(purchases: pd.DataFrame, end: date) -> pd.DataFrame:
    """Per customer: counts, values and gaps of their orders up to `end` (included), in days."""
    end_ts = pd.Timestamp(end) + pd.Timedelta(days=1)
    p = purchases[purchases["ts"] < end_ts].sort_values(["customer_id", "ts"])
    gaps = p.groupby("customer_id")["ts"].diff().dt.total_seconds() / 86400
    p = p.assign(gap=gaps, age=(end_ts - p["ts"]).dt.total_seconds() / 86400)
    g = p.groupby("customer_id")
    frame = pd.DataFrame(
        {
            "orders": g.size(),
            "tenure_days": g["age"].max(),
            "mean_value": g["value"].mean(),
            "max_value": g["value"].max(),
            "std_value": g["value"].std(),
            "mean_gap_days": g["gap"].mean(),
            "last_gap_days": g["gap"].last(),
        }
    )
    for days in (30, 90):
        recent = p[p["age"] <= days].groupby("customer_id")
        frame[f"orders_{days}d"] = recent.size().reindex(frame.index, fill_value=0)
        frame[f"value_{days}d"] = recent["value"].sum().reindex(frame.index, fill_value=0.0)
    return frame


def line_features(lines: pd.DataFrame, end: date, categories: list[str]) -> pd.DataFrame:
    """Per customer: items and distinct products per order, distinct categories, share of lines per top category."""
    end_ts = pd.Timestamp(end) + pd.Timedelta(days=1)
    lines = lines[lines["ts"] < end_ts]
    top = _top(lines["category"])
    g = lines.groupby("customer_id")
    orders = g["order_id"].nunique()
    frame = pd.DataFrame(
        {
            "items_per_order": g["quantity"].sum() / orders,
            "products_per_order": g["sku"].nunique() / orders,
            "categories": top.groupby(lines["customer_id"]).nunique(),
        }
    )
    for name in categories:
        frame[f"category_{_slug(name)}"] = (top == name).groupby(lines["customer_id"]).mean()
    return frame


def channel_features(consents: pd.DataFrame, end: date, channels: tuple[str, ...]) -> pd.DataFrame:
    """Per customer: 1 where a channel's consent stood granted at the end of `end`, else 0 (from the change history)."""
    changes = consents[consents["at"] < pd.Timestamp(end) + pd.Timedelta(days=1)].sort_values("at")
    state = changes.groupby(["customer_id", "channel"])["granted"].last().unstack("channel")
    return pd.DataFrame(
        {f"consent_{c}": state[c].astype(float) if c in state else pd.Series(dtype=float) for c in channels},
        index=state.index,
    ).fillna(0.0)


def assemble(base: pd.DataFrame, *parts: pd.DataFrame) -> pd.DataFrame:
    """The feature matrix: `base` (indexed by customer_id, all customers) left-joined with the other parts."""
    frame = base
    for part in parts:
        frame = frame.join(part, how="left")
    # Columns all-NaN in one snapshot and not another would change the matrix: absent means none.
    fill = [c for c in frame if c.startswith(("consent_", "category_", "orders_", "value_"))]
    frame[fill] = frame[fill].fillna(0.0)
    return frame.astype(float)


def bought(purchases: pd.DataFrame, after: date, days: int) -> pd.Series:
    """The customers with a purchase in the `days` days after `after` (customer_id index, True)."""
    start = pd.Timestamp(after) + pd.Timedelta(days=1)
    window = purchases[(purchases["ts"] >= start) & (purchases["ts"] < start + pd.Timedelta(days=days))]
    return pd.Series(True, index=pd.Index(window["customer_id"].unique(), name="customer_id"))


def labels(customers: pd.Index, purchases: pd.DataFrame, after: date, days: int) -> np.ndarray:
    """1 for the customers who buy in the `days` days after `after`, else 0."""
    return customers.isin(bought(purchases, after, days).index).astype(int)


def train(features: pd.DataFrame, y: np.ndarray) -> HistGradientBoostingClassifier:
    """A gradient-boosting classifier of 'buys in the horizon'; ValueError when a class is (almost) empty."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # a second's import that `clv fit` does without

    buyers = int(np.sum(y))
    if min(buyers, len(y) - buyers) < MIN_CLASS:
        raise ValueError(f"{buyers} of {len(y)} customers bought in the training window: too few of one kind to learn")
    model = HistGradientBoostingClassifier(**BOOSTING, max_iter=150, min_samples_leaf=80, early_stopping=False)
    # One OpenMP thread: on a few thousand rows more threads only wait on each other (25 s instead of 0.2 s
    # where the container shows more cores than it has).
    with threadpool_limits(1, user_api="openmp"):
        return model.fit(features[useful(features)], y)


def useful(features: pd.DataFrame) -> list[str]:
    """Columns with two distinct values at least: the others carry nothing (and break the binning; CDNOW has no lines)."""
    return [c for c in features if features[c].nunique() > 1]


def buy_probability(model: HistGradientBoostingClassifier, features: pd.DataFrame) -> np.ndarray:
    """P(buys in the horizon) for each row of `features` (which hold the columns the model was trained on)."""
    with threadpool_limits(1, user_api="openmp"):
        return model.predict_proba(features[model.feature_names_in_])[:, 1]


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of a score for 'buys in the horizon'; None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if y.min() == y.max():
        return None
    score = np.asarray(score, dtype=float)
    finite = score[np.isfinite(score)]
    floor = finite.min() - 1 if len(finite) else 0.0  # no score ranks below every score
    return float(roc_auc_score(y, np.where(np.isfinite(score), score, floor)))


def shifted(cutoff: date, days: int) -> date:
    """The training snapshot's day: one horizon before the cut-off."""
    return cutoff - timedelta(days=days)
