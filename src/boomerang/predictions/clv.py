"""BG/NBD and Gamma-Gamma fitted together on one calibration period, and the per-customer predictions
they give (pure: frames in, frames and numbers out).

- p_alive: P(still a customer at the end of calibration). It is 1 for every customer without a repeat purchase
  (the model's convention), so 1 - p_alive ranks one-time buyers backwards and is no churn score.
- expected_purchases: E[transactions in the next `horizon` days]; purchase_probability: P(at least one);
  churn_probability = 1 - purchase_probability, P(no purchase in the horizon).
- predicted_spend: E[value per transaction] (Gamma-Gamma); predicted_clv = expected_purchases * predicted_spend,
  undiscounted, over the horizon.
- expected_next_purchase: the day by which the customer has bought again with probability 1/2, counting
  the chance that they have left (see bgnbd.next_purchase_wait); empty where that never happens within
  ten years, which is the case for every customer more likely gone than not (p_alive <= 1/2).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from boomerang.predictions import bgnbd, gamma_gamma, mle, summary


@dataclass
class Models:
    """The two fits on one calibration period, with the customers' summaries they were fitted on."""

    until: date
    unit: str
    customers: pd.DataFrame  # summary.summarise()
    bgnbd: mle.Fit
    gamma_gamma: mle.Fit | None
    fallback_spend: float  # E[value per transaction] where Gamma-Gamma has nothing to say
    warnings: list[str] = field(default_factory=list)


def _mean_transaction(daily: pd.DataFrame, end: date) -> float:
    values = daily.loc[daily["day"] <= pd.Timestamp(end), "value"]
    return float(values.mean()) if len(values) else 0.0


def fit(daily: pd.DataFrame, until: date, unit: str) -> Models:
    """Fit both models on the transactions up to `until` (included); ValueError when there are none."""
    customers = summary.summarise(daily, until, unit)
    if customers.empty:
        raise ValueError("no purchase up to the end of calibration")
    bg = bgnbd.fit(customers["frequency"], customers["recency"], customers["T"])
    notes = list(bg.warnings)
    fallback = _mean_transaction(daily, until)
    try:
        gg = gamma_gamma.fit(customers["frequency"], customers["monetary_value"])
        notes += gg.warnings
        if gamma_gamma.population_mean(tuple(gg.params.values())) == np.inf:
            notes.append(
                f"Gamma-Gamma: q = {gg.params['q']:.3g} <= 1 gives no finite mean spend; customers "
                f"without repeat purchases get the mean transaction value ({fallback:.2f})"
            )
    except ValueError as exc:
        gg = None
        notes.append(f"Gamma-Gamma not fitted ({exc}); predicted_spend is the mean transaction value ({fallback:.2f})")
        warnings.warn(notes[-1], mle.FitWarning, stacklevel=2)
    return Models(until, unit, customers, bg, gg, fallback, notes)


def _spend(models: Models) -> np.ndarray:
    c = models.customers
    if models.gamma_gamma is None:
        return np.full(len(c), models.fallback_spend)
    spend = gamma_gamma.expected_spend(tuple(models.gamma_gamma.params.values()), c["frequency"], c["monetary_value"])
    return np.where(np.isfinite(spend) & (spend >= 0), spend, models.fallback_spend)


def predict(models: Models, horizon_days: int) -> pd.DataFrame:
    """One row per customer of the calibration period, with the predictions described in the module docstring."""
    c = models.customers
    params = tuple(models.bgnbd.params.values())
    args = (c["frequency"].to_numpy(), c["recency"].to_numpy(), c["T"].to_numpy())
    t = horizon_days / summary.UNIT_DAYS[models.unit]
    alive = bgnbd.p_alive(params, *args)
    purchase_probability = bgnbd.p_purchase(params, t, *args)
    expected = bgnbd.expected_purchases(params, t, *args)
    spend = _spend(models)
    wait = bgnbd.next_purchase_wait(params, *args, max_wait=bgnbd.MAX_WAIT_UNITS[models.unit])
    wait_days = np.ceil(wait * summary.UNIT_DAYS[models.unit])
    end = pd.Timestamp(models.until)
    next_day = pd.to_datetime([end + pd.Timedelta(days=float(w)) if np.isfinite(w) else pd.NaT for w in wait_days])
    return pd.DataFrame(
        {
            "customer_id": c["customer_id"].astype(str),
            "frequency": c["frequency"],
            "recency": c["recency"],
            "T": c["T"],
            "monetary_value": c["monetary_value"],
            "p_alive": alive,
            "churn_probability": 1 - purchase_probability,
            "expected_purchases": expected,
            "purchase_probability": purchase_probability,
            "predicted_spend": spend,
            "predicted_clv": expected * spend,
            "expected_next_purchase": next_day.astype("datetime64[us]"),
            "last_purchase": pd.to_datetime(c["last"]).astype("datetime64[us]"),
        }
    )


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def describe(models: Models) -> dict:
    """The fit as JSON: parameters, log-likelihoods, whether each was regularised, and warnings."""
    bg, gg = models.bgnbd, models.gamma_gamma
    r, alpha, a, b = bg.params.values()
    return {
        "until": models.until.isoformat(),
        "unit": models.unit,
        "customers": int(len(models.customers)),
        "repeat_customers": int((models.customers["frequency"] > 0).sum()),
        "bgnbd": {k: _number(v) for k, v in bg.params.items()},
        "gamma_gamma": {k: _number(v) for k, v in gg.params.items()} if gg else None,
        "log_likelihood": {
            "bgnbd": _number(bg.log_likelihood),
            "gamma_gamma": _number(gg.log_likelihood) if gg else None,
        },
        "regularised": {"bgnbd": bg.regularised, "gamma_gamma": bool(gg and gg.regularised)},
        "penalty": {"bgnbd": bg.penalty, "gamma_gamma": gg.penalty if gg else None},
        "population": {  # the fitted distributions' means, to read the parameters by
            f"purchase_rate_per_{models.unit}": _number(r / alpha),
            "dropout_per_purchase": _number(a / (a + b)),
            "spend_per_purchase": _number(
                gamma_gamma.population_mean(tuple(gg.params.values())) if gg else models.fallback_spend
            ),
        },
        "warnings": list(models.warnings),
    }
