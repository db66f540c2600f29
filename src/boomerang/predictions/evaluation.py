"""How forecasts compare with what happened: totals and correlation of purchase counts, ROC AUC, calibration
(Brier score, expected calibration error, reliability curve), and the next purchase's error in days.
Pure numpy: arrays in, JSON-ready dicts out.
"""

from __future__ import annotations

import numpy as np

from boomerang.predictions.churn import auc

BINS = 10  # equal-width probability bins of the reliability curve


def _round(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def purchases(actual: np.ndarray, forecast: np.ndarray) -> dict:
    """The forecast total against the actual one, its error in percent, and the per-customer Pearson correlation."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    total, happened = float(forecast.sum()), float(actual.sum())
    spread = np.std(actual) > 0 and np.std(forecast) > 0
    return {
        "total": round(total, 1),
        "error_pct": _round(100 * (total - happened) / happened, 2) if happened else None,
        "correlation": _round(np.corrcoef(actual, forecast)[0, 1]) if spread else None,
        "mean_absolute_error": _round(np.mean(np.abs(forecast - actual))),
    }


def reliability(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per non-empty probability bin: its range, the customers in it, their mean forecast and the share who bought."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            curve.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "customers": int(inside.sum()),
                    "predicted": _round(p[inside].mean()),
                    "observed": _round(y[inside].mean()),
                }
            )
    return curve


def calibration(y: np.ndarray, p: np.ndarray) -> dict:
    """Brier score, expected calibration error (bin-weighted |forecast - observed|), mean forecast, reliability curve."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    curve = reliability(y, p)
    ece = sum(b["customers"] * abs(b["predicted"] - b["observed"]) for b in curve) / max(len(y), 1)
    return {
        "brier": _round(np.mean((p - y) ** 2)),
        "ece": _round(ece),
        "mean_predicted": _round(p.mean()) if len(p) else None,
        "observed_rate": _round(y.mean()) if len(y) else None,
        "curve": curve,
    }


def ranking(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, float | None]:
    """ROC AUC of each score for y (higher score, more likely 1)."""
    return {name: (None if (v := auc(y, s)) is None else round(v, 4)) for name, s in scores.items()}


def wait_error(actual_days: np.ndarray, predicted_days: np.ndarray) -> float | None:
    """Mean absolute error in days over the customers who did buy (actual known) and have a forecast."""
    actual, predicted = np.asarray(actual_days, dtype=float), np.asarray(predicted_days, dtype=float)
    both = np.isfinite(actual) & np.isfinite(predicted)
    return _round(np.mean(np.abs(predicted[both] - actual[both])), 2) if both.any() else None


def rows(result: dict) -> list[dict]:
    """An evaluation's measures as one row per forecast (None where a forecast has no such measure)."""
    names = dict.fromkeys([*result["purchases"], *result["roc_auc"], *result["next_purchase_mae_days"]])
    return [
        {
            "name": name,
            **{k: result["purchases"].get(name, {}).get(k) for k in ("total", "error_pct", "correlation")},
            "auc": result["roc_auc"].get(name),
            "brier": result["calibration"].get(name, {}).get("brier"),
            "ece": result["calibration"].get(name, {}).get("ece"),
            "mae_days": result["next_purchase_mae_days"].get(name),
        }
        for name in names
    ]
