"""The intervals checked by simulation on real spend: many A/A splits of the CDNOW customers (their spend in the
first half of 1998, the covariate their spend in 1997) cover zero at the stated rate; a marketer who peeks
twenty times is fooled by fixed intervals and not by the confidence sequence; a planted effect is found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boomerang.experiments import readout, stats
from boomerang.experiments.stats import Moments

CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
SPLITS = 1000


@pytest.fixture(scope="module")
def spend() -> tuple[np.ndarray, np.ndarray]:
    """y: each customer's spend from 1998-01-01 to 1998-06-30; x: in 1997 (23,570 customers, 83 % spend nothing)."""
    log = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str, "date": str})
    log["year"] = log["date"].str[:4]
    by = log.pivot_table(index="customer_id", columns="year", values="dollar_value", aggfunc="sum", fill_value=0.0)
    return by["1998"].to_numpy(), by["1997"].to_numpy()


def _split(rng, n: int) -> np.ndarray:
    return rng.random(n) < 0.5


def test_a_a_splits_cover_zero_at_the_stated_rate(spend):
    y, x = spend
    rng = np.random.default_rng(7)
    covered = {"fixed": 0, "fixed, CUPED": 0, "sequential": 0}
    widths = {"fixed": [], "fixed, CUPED": []}
    for _ in range(SPLITS):
        a = _split(rng, len(y))
        plain = stats.difference(Moments.of(y[a]), Moments.of(y[~a]), sequential=False)
        cuped = stats.difference(Moments.of(y[a], x[a]), Moments.of(y[~a], x[~a]), sequential=False)
        sequence = stats.difference(Moments.of(y[a], x[a]), Moments.of(y[~a], x[~a]))
        for name, i in (("fixed", plain), ("fixed, CUPED", cuped), ("sequential", sequence)):
            covered[name] += i.low <= 0 <= i.high
        widths["fixed"].append(plain.high - plain.low)
        widths["fixed, CUPED"].append(cuped.high - cuped.low)
    assert abs(covered["fixed"] / SPLITS - 0.95) <= 0.02
    assert abs(covered["fixed, CUPED"] / SPLITS - 0.95) <= 0.02
    assert covered["sequential"] / SPLITS >= 0.95  # valid at every look, so more than that at one
    assert np.mean(widths["fixed, CUPED"]) < 0.9 * np.mean(widths["fixed"])  # the past explains some of the spend


def test_peeking_every_day_fools_fixed_intervals_but_not_the_sequence():
    rng = np.random.default_rng(11)
    looks, runs, n = 20, 400, 8000
    fooled = {False: 0, True: 0}
    for _ in range(runs):
        y = rng.random(n) < 0.04  # an A/A test of a 4 % conversion
        a = _split(rng, n)
        for sequential in (False, True):
            for look in range(1, looks + 1):
                k = n * look // looks
                t, b = y[:k][a[:k]], y[:k][~a[:k]]
                i = stats.difference(
                    Moments.count(int(t.sum()), len(t)), Moments.count(int(b.sum()), len(b)), sequential=sequential
                )
                if i.verdict != "unclear":
                    fooled[sequential] += 1
                    break
    assert fooled[False] / runs > 0.1  # a peeker with fixed intervals "finds" a winner far more than 5 % of the time
    assert fooled[True] / runs <= 0.05 + 0.02


def test_a_planted_effect_is_found(spend):
    y, x = spend
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(50):
        a = _split(rng, len(y))
        lifted = np.where(a & (rng.random(len(y)) < 0.05), y + 100, y)  # 5 % of the treated spend 100 more: +5 each
        i = stats.difference(Moments.of(lifted[a], x[a]), Moments.of(lifted[~a], x[~a]))
        found += i.verdict == "better" and i.low <= 5.0 <= i.high
    assert found >= 40


def test_bootstrap_agrees_with_the_normal_interval_on_a_large_sample(spend):
    y, x = spend
    a = _split(np.random.default_rng(5), len(y))
    normal = stats.difference(Moments.of(y[a], x[a]), Moments.of(y[~a], x[~a]), sequential=False)
    boot = stats.bootstrap(y[a], y[~a], x[a], x[~a], resamples=400)
    assert boot.effect == pytest.approx(normal.effect)
    assert (boot.high - boot.low) == pytest.approx(normal.high - normal.low, rel=0.15)
    assert boot.method == "bootstrap, CUPED" and not boot.sequential


def test_sample_size_and_detectable_effect_agree():
    sd = np.sqrt(0.05 * 0.95)
    n = stats.sample_size(sd, 0.01)
    assert stats.detectable_effect(sd, n / 2, n / 2) <= 0.01 < stats.detectable_effect(sd, n / 2 - 1, n / 2 - 1)
    assert 14_000 < n < 16_000  # the textbook figure for 5 % -> 6 % at 95 % / 80 %
    assert stats.sample_size(sd, 0.01, sequential=True) > n  # peeking safely costs sample


def test_the_sample_ratio_alarm_and_what_is_still_needed():
    assert readout.sample_ratio({"a": 900, "b": 100}, {"a": 0.9, "b": 0.1})["alarm"] is False
    broken = readout.sample_ratio({"a": 850, "b": 150}, {"a": 0.9, "b": 0.1})
    assert broken["alarm"] is True and broken["expected"] == {"a": 900.0, "b": 100.0}
    t, b = Moments.count(60, 1000), Moments.count(50, 1000)
    i = stats.difference(t, b)
    more = stats.more_needed(t, b, i)
    bigger = stats.difference(
        Moments.count(60 * (1000 + more) // 1000, 1000 + more), Moments.count(50 * (1000 + more) // 1000, 1000 + more)
    )
    assert i.verdict == "unclear" and bigger.verdict == "better"


def test_a_report_says_not_enough_data_for_tiny_groups_and_names_the_winner():
    small = readout.report(
        {"a": readout.Arm.of([1] * 10, [5.0] * 10), "b": readout.Arm.of([0] * 10, [0.0] * 10)}, [("a", "b")]
    )
    assert small["comparisons"][0]["verdict"] == "not enough data"
    rng = np.random.default_rng(0)
    conv_a, conv_b = rng.random(5000) < 0.12, rng.random(5000) < 0.08
    arms = {"a": readout.Arm.of(conv_a, conv_a * 50.0), "b": readout.Arm.of(conv_b, conv_b * 50.0)}
    result = readout.report(arms, [("a", "b")])["comparisons"][0]
    assert result["verdict"] == "better" and result["says"].startswith("a converts better than b")
    assert result["incremental_conversions"]["low"] > 0
