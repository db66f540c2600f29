"""Who responds: a two-model (T-learner) uplift estimate per variant, cross-fitted by a stable hash of the unit, and
its Qini curve on the units it never saw. Pure numpy and scikit-learn.

For a variant v against the control, one model learns the outcome of v's units and one the control's, from the
features; a unit's uplift is the difference of their predictions. Cross-fitting: the units fall into `folds` by a
hash of their key; each fold is scored by models fitted on the others, so every score (the stored trait too) and
every Qini figure is out of sample.

The Qini curve (Radcliffe 2007): units ranked by predicted uplift, at each share x of them targeted,
Q(x) = Y_t(x) - Y_c(x) * N_t(x) / N_c(x), divided here by all treated units, so Q(1) is the average effect per unit
and random targeting is the line x * Q(1). The Qini coefficient is the area between the curve and that line
(0 for random targeting, positive when the ranking finds those the variant moves).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

FOLDS = 2
CURVE_POINTS = 20  # the curve at 0, 5 %, ..., 100 % targeted
TOP = (10, 20, 30)  # shares targeted whose uplift is reported
RESAMPLES = 200  # bootstrap of the Qini coefficient
MAX_LEVELS = 20  # a text feature's most frequent values become indicators; the rest share one


@dataclass
class Scored:
    """Out-of-fold predicted uplift of every unit, per variant."""

    scores: dict[str, np.ndarray]
    folds: np.ndarray


def design(features: pd.DataFrame) -> np.ndarray:
    """Features as a standardised matrix: numbers (and log1p of skewed non-negative ones) with blanks as the median
    plus an indicator; text as indicators of its most frequent values."""
    columns = []
    for name in features.columns:
        col = features[name]
        if col.dtype == object:
            top = col.value_counts().index[:MAX_LEVELS]
            columns += [(col == level).to_numpy(dtype=float) for level in top]
            continue
        values = col.to_numpy(dtype=float)
        blank = np.isnan(values)
        if blank.all():
            continue
        values = np.where(blank, np.nanmedian(values), values)
        columns.append(values)
        if blank.any():
            columns.append(blank.astype(float))
        if values.min() >= 0 and len(np.unique(values[:5000])) > 2:
            columns.append(np.log1p(values))
    if not columns:
        return np.zeros((len(features), 1))
    x = np.column_stack(columns)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def folds_of(keys: np.ndarray, folds: int = FOLDS, salt: str = "uplift") -> np.ndarray:
    """A unit's fold from a hash of its key: the same unit lands in the same fold every time."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(f"{salt}:{k}".encode(), digest_size=4).digest(), "big") % folds for k in keys),
        dtype=np.int64,
        count=len(keys),
    )


def fit_scores(
    x: np.ndarray, y: np.ndarray, arm: np.ndarray, *, control: str, variants: list[str], binary: bool, folds: np.ndarray
) -> Scored:
    """Each unit's out-of-fold uplift for each variant (every unit is scored, whichever group it was in)."""
    scores = {v: np.zeros(len(y)) for v in variants}
    with threadpool_limits(1):  # a busy machine: no oversubscription
        for k in np.unique(folds):
            train, test = folds != k, folds == k
            base = _fit(x[train & (arm == control)], y[train & (arm == control)], binary)
            p_control = _predict(base, x[test], binary)
            for v in variants:
                model = _fit(x[train & (arm == v)], y[train & (arm == v)], binary)
                scores[v][test] = _predict(model, x[test], binary) - p_control
    return Scored(scores, folds)


def _fit(x: np.ndarray, y: np.ndarray, binary: bool):
    from sklearn.linear_model import LogisticRegression, Ridge  # here: a fit is rare, the import costs every command

    if binary and len(np.unique(y)) < 2:
        return float(y.mean()) if len(y) else 0.0  # one class only: a constant
    if binary:
        return LogisticRegression(C=1.0, max_iter=300).fit(x, y)
    return Ridge(alpha=1.0).fit(x, y)


def _predict(model, x: np.ndarray, binary: bool) -> np.ndarray:
    if isinstance(model, float):
        return np.full(len(x), model)
    return model.predict_proba(x)[:, 1] if binary else model.predict(x)


def qini(score: np.ndarray, y: np.ndarray, treated: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """The Qini curve of a ranking on treated and control units, its coefficient with a bootstrap interval, the
    uplift in the top shares against the average."""
    order = np.argsort(-score, kind="stable")
    y, t = y[order].astype(float), treated[order].astype(float)
    curve = _curve(y, t, np.ones(len(y)))
    n = len(y)
    x = np.arange(1, n + 1) / n
    coefficient = _area(curve, x)
    rng = np.random.default_rng(seed)
    draws = [_area(_curve(y, t, rng.poisson(1.0, n).astype(float)), x) for _ in range(RESAMPLES)]
    low, high = np.percentile(draws, [2.5, 97.5])
    marks = np.linspace(0, 1, CURVE_POINTS + 1)
    at = np.clip(np.ceil(marks * n).astype(int) - 1, 0, n - 1)
    points = [
        {"share": round(float(m), 4), "model": 0.0 if m == 0 else round(float(curve[i]), 6)} for m, i in zip(marks, at)
    ]
    for p in points:
        p["random"] = round(p["share"] * float(curve[-1]), 6)
    average = _uplift(y, t)
    return {
        "units": n,
        "average_uplift": _round(average),
        "qini_coefficient": round(coefficient, 6),
        "qini_interval": [round(float(low), 6), round(float(high), 6)],
        "random_coefficient": 0.0,
        "auuc": round(float(np.trapezoid(np.concatenate([[0.0], curve]), np.concatenate([[0.0], x]))), 6),
        "auuc_random": round(float(curve[-1]) / 2, 6),
        "top": [
            {
                "percent": p,
                "uplift": _round(_uplift(y[: max(1, n * p // 100)], t[: max(1, n * p // 100)])),
                "times_average": _ratio(_uplift(y[: max(1, n * p // 100)], t[: max(1, n * p // 100)]), average),
            }
            for p in TOP
        ],
        "curve": points,
    }


def _curve(y: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Q(x) per treated unit, at every prefix of the ranking (weights w: a bootstrap's)."""
    nt, nc = np.cumsum(w * t), np.cumsum(w * (1 - t))
    yt, yc = np.cumsum(w * y * t), np.cumsum(w * y * (1 - t))
    q = yt - yc * np.divide(nt, nc, out=np.zeros_like(nt), where=nc > 0)
    return q / max(nt[-1], 1.0)


def _area(curve: np.ndarray, x: np.ndarray) -> float:
    """The area between the curve and random targeting's line, from 0 to 1."""
    xs, qs = np.concatenate([[0.0], x]), np.concatenate([[0.0], curve])
    return float(np.trapezoid(qs - xs * curve[-1], xs))


def _uplift(y: np.ndarray, t: np.ndarray) -> float | None:
    nt, nc = t.sum(), (1 - t).sum()
    if nt == 0 or nc == 0:
        return None
    return float((y * t).sum() / nt - (y * (1 - t)).sum() / nc)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _ratio(value: float | None, average: float | None) -> float | None:
    return None if value is None or not average else round(value / average, 3)
