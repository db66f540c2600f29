"""Gradient-boosted forecasts on the churn features: whether a customer buys in the horizon, how many times,
and how soon; their level set by BG/NBD (pure numpy, pandas and scikit-learn).

Like the churn classifier, the models learn on a time split: features one horizon before the cut-off,
targets from the horizon that follows. One such window teaches who buys and how often relative to others,
but not the level: the share of customers who buy moves with the season (on Online Retail 54.6% of the
customers bought in the training quarter, 50.3% in the next, and a plain Poisson model forecast 18% too
many purchases). BG/NBD, fitted on the whole calibration period, gives the level instead: the
probabilities are shifted on the logit scale to BG/NBD's mean purchase probability, and the purchases
are BG/NBD's expectation times a learnt factor, rescaled to BG/NBD's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from threadpoolctl import threadpool_limits

from boomerang.predictions import churn

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

FLOOR = 0.01  # BG/NBD expectations below this are taken as this, so that the factor stays finite
MIN_BUYERS = 10  # fewer buyers than this leave no next-purchase day to learn


@dataclass
class Window:
    """What each customer did in the `days` days after `after`: transaction days, and the first one (days after)."""

    purchases: np.ndarray
    first_day: np.ndarray  # NaN where none


def window(daily: pd.DataFrame, customers: pd.Index, after: date, days: int) -> Window:
    """Each customer's transaction days (summary.transactions rows) in the `days` days after `after`."""
    start = pd.Timestamp(after) + pd.Timedelta(days=1)
    inside = daily[(daily["day"] >= start) & (daily["day"] < start + pd.Timedelta(days=days))]
    per = inside.groupby("customer_id")["day"]
    first = (per.min() - pd.Timestamp(after)).dt.days.astype(float)
    return Window(
        per.size().reindex(customers, fill_value=0).to_numpy(dtype=float),
        first.reindex(customers).to_numpy(dtype=float),
    )


@dataclass
class Forecaster:
    """The three models of one training window."""

    buy: HistGradientBoostingClassifier
    factor: HistGradientBoostingRegressor  # purchases / BG/NBD's expectation
    wait: HistGradientBoostingRegressor | None  # days to the first purchase, among those who bought
    horizon_days: int


def _regressor(features: pd.DataFrame, y: np.ndarray, weight: np.ndarray | None, **params):
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(**churn.BOOSTING, min_samples_leaf=40, early_stopping=False, **params)
    with threadpool_limits(1, user_api="openmp"):
        return model.fit(features[churn.useful(features)], y, sample_weight=weight)


def fit(features: pd.DataFrame, target: Window, horizon_days: int) -> Forecaster:
    """Fit on features as of a training day and what the customers did in the horizon after it (ValueError when too few bought)."""
    buy = churn.train(features, (target.purchases > 0).astype(int))
    expected = np.maximum(features["expected_purchases"].to_numpy(), FLOOR)
    # Poisson deviance on purchases/expected weighted by expected = a Poisson model with log(expected) as offset.
    factor = _regressor(features, target.purchases / expected, expected, loss="poisson", max_iter=100)
    bought = np.isfinite(target.first_day)
    wait = None
    if bought.sum() >= MIN_BUYERS:
        wait = _regressor(features[bought], target.first_day[bought], None, max_iter=200)
    return Forecaster(buy, factor, wait, horizon_days)


def _predict(model, features: pd.DataFrame) -> np.ndarray:
    with threadpool_limits(1, user_api="openmp"):
        return model.predict(features[model.feature_names_in_])


def level_probability(p: np.ndarray, target_mean: float) -> np.ndarray:
    """`p` shifted on the logit scale so that its mean is `target_mean` (the order stays)."""
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    if len(p) == 0 or not 0 < target_mean < 1:
        return p
    z = logit(p)
    shift = brentq(lambda d: float(np.mean(expit(z + d))) - target_mean, -30, 30)
    return expit(z + shift)


def apply(model: Forecaster, features: pd.DataFrame) -> pd.DataFrame:
    """purchase_probability, expected_purchases and next_purchase_days (given a purchase in the horizon) per row."""
    bgnbd_expected = features["expected_purchases"].to_numpy()
    probability = level_probability(churn.buy_probability(model.buy, features), features["purchase_probability"].mean())
    raw = np.maximum(bgnbd_expected, FLOOR) * _predict(model.factor, features)
    expected = raw * (bgnbd_expected.sum() / raw.sum()) if raw.sum() > 0 else bgnbd_expected
    wait = np.full(len(features), np.nan)
    if model.wait is not None:
        wait = np.clip(_predict(model.wait, features), 1, model.horizon_days)
    return pd.DataFrame(
        {"purchase_probability": probability, "expected_purchases": expected, "next_purchase_days": wait},
        index=features.index,
    )
