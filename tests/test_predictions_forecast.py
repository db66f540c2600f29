"""The pieces of the gradient-boosted forecasts and their evaluation: levelling, BG/NBD's conditional wait, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from boomerang.predictions import bgnbd, evaluation, forecast

PARAMS = (0.243, 4.414, 0.793, 2.426)  # CDNOW in weeks (Fader, Hardie & Lee 2005)


def test_levelling_keeps_the_order_and_reaches_the_mean():
    p = np.random.default_rng(0).uniform(0.05, 0.95, 500)
    levelled = forecast.level_probability(p, 0.3)
    assert levelled.mean() == pytest.approx(0.3, abs=1e-9)
    assert (np.argsort(levelled, kind="stable") == np.argsort(p, kind="stable")).all()


def test_the_conditional_wait_is_the_median_of_the_first_purchase_within_the_horizon():
    x, t_x, T, t = np.array([0.0, 2.0, 7.0]), np.array([0.0, 10.0, 30.0]), np.array([20.0, 30.0, 35.0]), 13.0
    wait = bgnbd.wait_given_purchase(PARAMS, t, x, t_x, T)
    assert ((wait > 0) & (wait < t)).all()
    # P(purchase by w) / P(purchase by t) = 1/2, where p_purchase counts p_alive (which cancels).
    assert bgnbd.p_purchase(PARAMS, wait, x, t_x, T) / bgnbd.p_purchase(PARAMS, t, x, t_x, T) == pytest.approx(0.5)


def test_the_window_counts_transaction_days_and_the_first_one():
    daily = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "day": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-20", "2024-01-02"]),
            "value": 1.0,
        }
    )
    seen = forecast.window(daily, pd.Index(["a", "b", "c"]), pd.Timestamp("2024-01-01").date(), 7)
    assert seen.purchases.tolist() == [1.0, 1.0, 0.0]
    assert seen.first_day[:2].tolist() == [2.0, 1.0] and np.isnan(seen.first_day[2])


def test_metrics():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p = np.array([0.1, 0.15, 0.8, 0.85, 0.6, 0.55, 0.95, 0.05])
    calibrated = evaluation.calibration(y, p)
    assert sum(b["customers"] for b in calibrated["curve"]) == len(y)
    assert calibrated["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-4)
    assert evaluation.ranking(y, {"p": p, "backwards": -p}) == {"p": 1.0, "backwards": 0.0}
    counts = evaluation.purchases(np.array([0, 1, 3]), np.array([0.5, 1.0, 2.0]))
    assert counts["total"] == 3.5 and counts["error_pct"] == pytest.approx(-12.5)
    assert evaluation.wait_error(np.array([5.0, np.nan, 10.0]), np.array([7.0, 3.0, 4.0])) == 4.0
