"""The time-split evaluation: fit on the purchases up to a cut-off, compare each forecast of the weeks after
with what happened, beside BG/NBD, recency and frequency baselines; the last one kept in the workspace."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.predictions import bgnbd, churn, clv, evaluation, forecast, service, summary


class Evaluation(BaseModel):
    """A time-split evaluation: fit on the purchases up to `cutoff`, check the weeks after."""

    model_config = ConfigDict(extra="forbid")

    cutoff: date
    horizon_weeks: int = Field(default=13, ge=1, le=520)
    unit: Literal["day", "week"] = "week"


def _baselines(data: service.History, models: clv.Models, now: pd.DataFrame, cut: date, days: int) -> dict:
    """The simple forecasts each model is measured against, per customer of `now`."""
    unit_days = summary.UNIT_DAYS[models.unit]
    params = tuple(models.bgnbd.params.values())
    x, t_x, T = (now[c].to_numpy() for c in ("frequency", "recency", "T"))
    last_period = forecast.window(data.daily, now.index, churn.shifted(cut, days), days).purchases
    age_days = np.maximum(T * unit_days, days)
    gap = now["mean_gap_days"].fillna(now["mean_gap_days"].median())
    return {
        "purchases": {
            "bgnbd": now["expected_purchases"].to_numpy(),
            "last_period": last_period,  # the horizon before the cut-off, repeated
            "frequency": (x + 1) / age_days * days,  # the customer's rate since their first purchase
        },
        "buy": {
            "bgnbd": now["purchase_probability"].to_numpy(),
            "recency": -now["rfm_recency_days"].to_numpy(),
            "frequency": x,
            "p_alive": now["p_alive"].to_numpy(),  # what churn_probability was (1 - p_alive) before issue 18
        },
        "wait": {
            "bgnbd": bgnbd.wait_given_purchase(params, days / unit_days, x, t_x, T) * unit_days,
            "interpurchase": (gap - now["rfm_recency_days"]).clip(1, days).to_numpy(),
        },
    }


def evaluate(uow: UnitOfWork, log: EventLog, **params: Any) -> dict[str, Any]:
    """Purchases, 'buys in the horizon' (ROC AUC, calibration) and the next purchase's day after `cutoff`."""
    opts = service.parse(Evaluation, params)
    started = time.perf_counter()
    days = opts.horizon_weeks * 7
    data, cut = service.history(uow, log, opts.cutoff, field="cutoff", features_back=days)
    last = data.purchases["ts"].max().date()
    if cut + timedelta(days=days) > last:
        reason = f"{cut} + {days} days runs past the last purchase ({last}): nothing to check against"
        raise ValidationFailed([{"field": "horizon_weeks", "reason": reason}])
    models = clv.fit(data.daily, cut, opts.unit)
    now = service.features(data, models, cut, days, churn.top_categories(data.lines))
    actual = forecast.window(data.daily, now.index, cut, days)
    bought = (actual.purchases > 0).astype(int)
    base = _baselines(data, models, now, cut, days)
    fitted, reason = service.forecaster(data, cut, days, opts.unit)
    ours = forecast.apply(fitted, now) if fitted is not None else None
    purchases = ({"model": ours["expected_purchases"].to_numpy()} if ours is not None else {}) | base["purchases"]
    buy = ({"model": ours["purchase_probability"].to_numpy()} if ours is not None else {}) | base["buy"]
    wait = ({"model": ours["next_purchase_days"].to_numpy()} if ours is not None else {}) | base["wait"]
    probabilities = {k: buy[k] for k in ("model", "bgnbd") if k in buy}
    fit_info = clv.describe(models)
    return {
        "cutoff": cut.isoformat(),
        "horizon_weeks": opts.horizon_weeks,
        "customers": int(len(now)),
        "buyers": int(bought.sum()),
        "actual_purchases": int(actual.purchases.sum()),
        "purchases": {k: evaluation.purchases(actual.purchases, v) for k, v in purchases.items()},
        "roc_auc": evaluation.ranking(bought, buy),
        "calibration": {k: evaluation.calibration(bought, p) for k, p in probabilities.items()},
        "next_purchase_mae_days": {k: evaluation.wait_error(actual.first_day, v) for k, v in wait.items()},
        "gradient_boosting": {"fitted": fitted is not None, "reason": reason, "features": list(now.columns)},
        "bgnbd": fit_info["bgnbd"],
        "gamma_gamma": fit_info["gamma_gamma"],
        "warnings": fit_info["warnings"] + ([reason] if reason else []),
        "seconds": round(time.perf_counter() - started, 3),
    }


def path(home: Path) -> Path:
    """Where a workspace keeps its last evaluation."""
    return home / "predictions" / "evaluation.json"


def save(home: Path, result: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Keep `result` as the workspace's last evaluation, stamped with `at`; the stamped result."""
    stamped = {**result, "evaluated_at": at.isoformat(timespec="seconds")}
    target = path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(stamped))
    temporary.replace(target)  # readers never see half a file
    return stamped


def last(home: Path) -> dict[str, Any] | None:
    """The workspace's last evaluation, or None."""
    try:
        return json.loads(path(home).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
