"""Predictions on UCI Online Retail: wholesalers push BG/NBD's plain fit to a boundary; the churn evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.events.importers import online_retail
from boomerang.predictions import backtest, service
from boomerang.predictions.mle import FitWarning
from conftest import DATA

pytestmark = pytest.mark.shared_data
CUTOFF = "2011-06-30"


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    """A workspace holding the Online Retail invoices up to 2011-09-30 (~12 s to import)."""
    ws = open_workspace(Settings(home=tmp_path_factory.mktemp("retail") / "ws"))
    online_retail.run(ws.uow, ws.log, DATA / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz", now=ws.now())
    return ws


def test_the_diverging_fit_is_regularised_with_a_warning(retail):
    with pytest.warns(FitWarning, match="BG/NBD: plain maximum likelihood diverged"):
        result = service.fit(retail.uow, retail.log, until=CUTOFF)
    assert result["regularised"]["bgnbd"] and result["penalty"]["bgnbd"] > 0
    assert any("L2-penalised" in w for w in result["warnings"])
    numbers = [*result["bgnbd"].values(), *result["gamma_gamma"].values(), *result["population"].values()]
    assert all(v is not None and math.isfinite(v) and v > 0 for v in numbers)
    with pytest.warns(FitWarning):
        info, frame = service.predict(retail.uow, retail.log, until=CUTOFF, horizon_days=91, churn=False)
    values = frame[
        ["p_alive", "expected_purchases", "purchase_probability", "predicted_spend", "predicted_clv"]
    ].to_numpy()
    assert len(frame) == result["customers"] and np.isfinite(values).all() and (values >= 0).all()
    assert frame["p_alive"].between(0, 1).all() and frame["purchase_probability"].between(0, 1).all()
    with pytest.warns(FitWarning):  # in days: the frequent buyers reach x ~ 90, where 2F1 needs its care
        _, daily = service.predict(
            retail.uow, retail.log, until="2011-09-30", unit="day", horizon_days=365, churn=False
        )
    assert (
        np.isfinite(daily[["expected_purchases", "predicted_clv"]].to_numpy()).all() and daily["frequency"].max() > 50
    )


def test_evaluation_on_a_time_split(retail):
    """Issue 18's bar on Online Retail (fit to 2011-06-30, the 13 weeks after as test)."""
    with pytest.warns(FitWarning):
        result = backtest.evaluate(retail.uow, retail.log, cutoff=CUTOFF, horizon_weeks=13)
    assert result["gradient_boosting"]["fitted"], result["warnings"]
    counts, auc = result["purchases"], result["roc_auc"]
    # The total forecast within 10% of what happened, per-customer correlation at least BG/NBD's.
    assert abs(counts["model"]["error_pct"]) <= 10, counts
    assert counts["model"]["correlation"] >= counts["bgnbd"]["correlation"], counts
    # Who buys: the model ranks above every baseline; p_alive (1 for every one-time buyer) ranks backwards.
    assert all(auc["model"] > v for k, v in auc.items() if k != "model"), auc
    assert auc["p_alive"] < 0.5
    # Calibrated: no bin of the reliability curve is far from what happened.
    calibration = result["calibration"]["model"]
    assert calibration["ece"] < 0.05 and calibration["brier"] <= result["calibration"]["bgnbd"]["brier"]
    assert all(abs(b["predicted"] - b["observed"]) < 0.1 for b in calibration["curve"] if b["customers"] >= 100)
    mae = result["next_purchase_mae_days"]
    assert mae["model"] < mae["interpurchase"] and mae["model"] <= mae["bgnbd"] * 1.05, mae
    assert {"p_alive", "expected_purchases", "rfm_recency_days", "orders_90d", "consent_email"} <= set(
        result["gradient_boosting"]["features"]
    )
