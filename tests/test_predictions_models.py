"""BG/NBD and Gamma-Gamma in the pure core: the published CDNOW estimates, closed forms, simulations, divergence."""

from __future__ import annotations

import warnings
from datetime import date

import mpmath
import numpy as np
import pandas as pd
import pytest

from boomerang.predictions import bgnbd, clv, gamma_gamma, summary
from boomerang.predictions.mle import FitWarning
from conftest import DATA

CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005), table 1
CDNOW_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # Fader, Hardie & Lee, "RFM and CLV" (2005) / Hardie's note


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """The CDNOW sample's 39-week calibration summary, read straight from the file (the service path is tested apart)."""
    raw = pd.read_csv(
        DATA / "cdnow" / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_id", "date", "cds", "value"],
        dtype={"customer_id": str, "date": str},
    )
    purchases = pd.DataFrame(
        {"customer_id": raw["customer_id"], "ts": pd.to_datetime(raw["date"], format="%Y%m%d"), "value": raw["value"]}
    )
    return summary.summarise(summary.transactions(purchases), date(1997, 9, 30), "week")


@pytest.mark.shared_data
def test_cdnow_reproduces_the_published_estimates(cdnow):
    assert len(cdnow) == 2357 and int((cdnow["frequency"] > 0).sum()) == 946
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        bg = bgnbd.fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
        repeat = cdnow[cdnow["frequency"] > 0]
        gg = gamma_gamma.fit(repeat["frequency"], repeat["monetary_value"])
    for got, published in ((bg.params, CDNOW_BGNBD), (gg.params, CDNOW_GG)):
        assert {k: sig3(v) for k, v in got.items()} == {k: sig3(v) for k, v in published.items()}
        assert got == pytest.approx(published, abs=0.0051)  # and to the digits printed in the papers
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.05) and not bg.regularised
    # The paper's worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the next 39 weeks.
    assert float(bgnbd.expected_purchases(tuple(bg.params.values()), 39, 2, 30.43, 38.86)) == pytest.approx(
        1.226, abs=1e-3
    )


PARAMS = (0.243, 4.414, 0.793, 2.426)
CASES = [(0, 0, 38.86), (1, 5.0, 30.0), (2, 30.43, 38.86), (7, 20.0, 38.0), (29, 35.0, 38.9), (150, 300.0, 310.0)]


def _p_alive_paper(params, x, t_x, T):
    r, alpha, a, b = (mpmath.mpf(v) for v in params)
    if x == 0:
        return mpmath.mpf(1)
    return 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def _expected_paper(params, t, x, t_x, T):
    """Equation 10 of the paper as printed, in 50-digit arithmetic."""
    mpmath.mp.dps = 50
    r, alpha, a, b = (mpmath.mpf(v) for v in params)
    z = t / (alpha + T + t)
    body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * mpmath.hyp2f1(r + x, b + x, a + b + x - 1, z)
    return (a + b + x - 1) / (a - 1) * body * _p_alive_paper(params, x, t_x, T)


@pytest.mark.parametrize(("x", "t_x", "T"), CASES)
def test_p_alive_and_expected_purchases_match_the_closed_forms(x, t_x, T):
    assert float(bgnbd.p_alive(PARAMS, x, t_x, T)) == pytest.approx(float(_p_alive_paper(PARAMS, x, t_x, T)), rel=1e-10)
    for t in (1.0, 39.0, 520.0):
        got = float(bgnbd.expected_purchases(PARAMS, t, x, t_x, T))
        assert got == pytest.approx(float(_expected_paper(PARAMS, t, x, t_x, T)), rel=1e-8)


def test_the_new_customer_curve_is_the_conditional_one_at_zero():
    t = np.array([1.0, 10.0, 78.0])
    expected = [float(_expected_paper(PARAMS, tt, 0, 0, 0)) for tt in t]
    assert bgnbd.expected_purchases_new(PARAMS, t) == pytest.approx(expected, rel=1e-8)


def test_next_purchase_is_the_median_and_absent_for_the_likely_gone():
    x, t_x, T = np.array([0, 2, 10, 3]), np.array([0, 30.43, 38.0, 2.0]), np.array([38.86, 38.86, 38.5, 38.86])
    wait = bgnbd.next_purchase_wait(PARAMS, x, t_x, T)
    alive = bgnbd.p_alive(PARAMS, x, t_x, T)
    for i in range(len(x)):
        if alive[i] > 0.5:
            assert float(bgnbd.p_purchase(PARAMS, wait[i], x[i], t_x[i], T[i])) == pytest.approx(0.5, abs=1e-9)
        else:
            assert np.isnan(wait[i])
    assert np.isnan(wait[3]) and alive[3] < 0.5  # three purchases early on, silent since: likely gone
    assert wait[2] < wait[1]  # the frequent, recent buyer comes back sooner


def simulate_bgnbd(params, n, rng):
    """x, t_x, T of n customers drawn from the BG/NBD story (dropout after each repeat purchase)."""
    r, alpha, a, b = params
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    T = rng.uniform(26, 52, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break
    return x, t_x, T


def test_bgnbd_recovers_simulated_parameters():
    truth = (0.5, 6.0, 0.7, 3.0)
    x, t_x, T = simulate_bgnbd(truth, 12000, np.random.default_rng(7))
    got = bgnbd.fit(x, t_x, T)
    r, alpha, a, b = got.params.values()
    assert r == pytest.approx(0.5, rel=0.1) and alpha == pytest.approx(6.0, rel=0.15)
    assert a / (a + b) == pytest.approx(0.7 / 3.7, rel=0.2) and not got.regularised
    # Predictions at the fitted parameters match the simulated mean repeat count.
    assert float(np.mean(bgnbd.expected_purchases_new(tuple(got.params.values()), T))) == pytest.approx(
        x.mean(), rel=0.05
    )


def test_gamma_gamma_recovers_simulated_parameters():
    rng = np.random.default_rng(11)
    n = 6000
    nu = rng.gamma(4.0, 1 / 15.0, n)
    x = rng.integers(1, 10, n)
    m = np.array([rng.gamma(6.0, 1 / nu[i], x[i]).mean() for i in range(n)])
    got = gamma_gamma.fit(x, m).params
    assert got["p"] == pytest.approx(6.0, rel=0.1) and got["q"] == pytest.approx(4.0, rel=0.15)
    assert gamma_gamma.population_mean(tuple(got.values())) == pytest.approx(6.0 * 15 / 3, rel=0.05)
    spend = gamma_gamma.expected_spend(tuple(got.values()), np.array([0, 1, 50]), np.array([0.0, 100.0, 100.0]))
    assert spend[0] == pytest.approx(gamma_gamma.population_mean(tuple(got.values())))
    assert spend[0] < spend[1] < spend[2] < 100  # shrunk towards the population mean, less so with more purchases


def test_a_diverging_fit_is_regularised_warned_and_finite():
    # Everyone keeps buying to the very end: no one ever leaves, so a / (a + b) -> 0 and a runs off to 0.
    rng = np.random.default_rng(3)
    x = rng.integers(3, 30, 500).astype(float)
    T = rng.uniform(30, 40, 500)
    with pytest.warns(FitWarning, match="BG/NBD: plain maximum likelihood diverged"):
        got = bgnbd.fit(x, T - rng.uniform(0, 0.3, 500), T)
    assert got.regularised and got.warnings and all(np.isfinite(v) and v > 0 for v in got.params.values())
    assert np.isfinite(got.log_likelihood)
    assert np.all(np.isfinite(bgnbd.expected_purchases(tuple(got.params.values()), 13, x, T, T)))


def test_summary_follows_the_btyd_convention():
    purchases = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "C"],
            "ts": pd.to_datetime(
                ["2024-01-01 09:00", "2024-01-01 18:00", "2024-01-08", "2024-01-22", "2024-01-15", "2024-02-01"],
                format="ISO8601",
            ),
            "value": [10.0, 5.0, 20.0, 40.0, 7.0, 9.0],
        }
    )
    daily = summary.transactions(purchases)
    assert len(daily) == 5  # A's two purchases on 1 January are one transaction of 15
    s = summary.summarise(daily, date(2024, 1, 29), "week").set_index("customer_id")
    assert list(s.index) == ["A", "B"]  # C bought after the end
    assert s.loc["A", ["frequency", "recency", "T", "monetary_value"]].tolist() == [2, 3, 4, 30]
    assert s.loc["B", ["frequency", "recency", "T", "monetary_value"]].tolist() == [0, 0, 2, 0]
    assert summary.summarise(daily, date(2024, 1, 29), "day").loc[0, "T"] == 28


def test_predictions_frame_is_finite_and_consistent():
    x, t_x, T = simulate_bgnbd((0.5, 6.0, 0.7, 3.0), 800, np.random.default_rng(5))
    start, rng = pd.Timestamp("2024-01-01"), np.random.default_rng(6)
    rows = []
    for i in range(len(x)):  # purchases at whole days matching the simulated summary
        first = start + pd.Timedelta(days=int(round((52 - T[i]) * 7)))
        days = (
            [0] + sorted(np.random.default_rng(i).choice(np.arange(1, max(int(t_x[i] * 7), 1) + 1), int(x[i])))
            if x[i]
            else [0]
        )
        rows += [(f"c{i}", first + pd.Timedelta(days=int(d)), float(rng.gamma(3.0, 10.0))) for d in days]
    purchases = pd.DataFrame(rows, columns=["customer_id", "ts", "value"])
    models = clv.fit(summary.transactions(purchases), date(2024, 12, 29), "week")
    frame = clv.predict(models, 90)
    numbers = frame[
        [
            "p_alive",
            "churn_probability",
            "expected_purchases",
            "purchase_probability",
            "predicted_spend",
            "predicted_clv",
        ]
    ]
    assert np.isfinite(numbers.to_numpy()).all()
    # The churn score is P(no purchase in the horizon); only the living buy, so it is never below 1 - p_alive.
    assert np.allclose(frame["churn_probability"], 1 - frame["purchase_probability"])
    assert (frame["churn_probability"] >= 1 - frame["p_alive"] - 1e-12).all()
    assert np.allclose(frame["predicted_clv"], frame["expected_purchases"] * frame["predicted_spend"])
    later = frame["expected_next_purchase"].dropna()
    assert len(later) and (later > pd.Timestamp("2024-12-29")).all()
    assert frame.loc[frame["p_alive"] <= 0.5, "expected_next_purchase"].isna().all()
    described = clv.describe(models)
    assert set(described["bgnbd"]) == {"r", "alpha", "a", "b"} and set(described["gamma_gamma"]) == {"p", "q", "gamma"}
