"""What a test says, in numbers and in words: the arms' outcomes, each treated arm against a baseline (the
holdout, the global control group, the first variant), with intervals, a verdict and what is still needed.

Every source of a test (a journey and its control group, a split node's variants, a campaign's variants and
holdout, a recommendation block against its popularity control, an imported experiment) reduces its units to
`Unit` rows or straight to `Arm` moments; this module alone turns them into the report, so every page, command
and answer reads the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from boomerang.experiments import stats
from boomerang.experiments.stats import Interval, Moments

MIN_UNITS = 30  # an arm smaller than this gives no interval at all


@dataclass(frozen=True)
class Arm:
    """One group's outcomes: who converted (a rate) and what each unit spent (with the pre-period covariate)."""

    units: int
    converted: Moments
    revenue: Moments

    @classmethod
    def of(cls, converted, revenue, pre_revenue=None) -> Arm:
        converted = np.asarray(converted, dtype=float)
        return cls(
            len(converted), Moments.count(int(converted.sum()), len(converted)), Moments.of(revenue, pre_revenue)
        )

    @classmethod
    def empty(cls) -> Arm:
        return cls(0, Moments.count(0, 0), Moments(0))

    def __add__(self, other: Arm) -> Arm:
        return Arm(self.units + other.units, self.converted + other.converted, self.revenue + other.revenue)

    def summary(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "converted": int(self.converted.sy),
            "conversion_rate": round(float(self.converted.mean), 6) if self.units else None,
            "revenue": round(float(self.revenue.sy), 2),
            "revenue_per_unit": round(float(self.revenue.mean), 4) if self.units else None,
        }


@dataclass
class Units:
    """Rows of a test: a group per unit, whether it converted, its revenue and its pre-period revenue, and the
    day it entered (for the lift over time)."""

    group: list[str] = field(default_factory=list)
    converted: list[bool] = field(default_factory=list)
    revenue: list[float] = field(default_factory=list)
    pre: list[float] = field(default_factory=list)
    day: list[date] = field(default_factory=list)

    def add(self, group: str, converted: bool, revenue: float, pre: float, day: date) -> None:
        self.group.append(group)
        self.converted.append(converted)
        self.revenue.append(revenue)
        self.pre.append(pre)
        self.day.append(day)

    def arms(self, groups: Iterable[str] | None = None) -> dict[str, Arm]:
        g = np.asarray(self.group, dtype=object)
        c, r, p = (np.asarray(a, dtype=float) for a in (self.converted, self.revenue, self.pre))
        names = list(dict.fromkeys(groups if groups is not None else self.group))
        return {name: Arm.of(c[g == name], r[g == name], p[g == name]) for name in names}

    def over_time(self, treated: str, baseline: str, *, confidence: float = stats.CONFIDENCE) -> list[dict[str, Any]]:
        """The cumulative difference in conversion (and its always-valid interval) after each day units entered."""
        frame = pd.DataFrame({"group": self.group, "day": self.day, "converted": np.asarray(self.converted, float)})
        frame = frame[frame["group"].isin([treated, baseline])]
        if frame.empty:
            return []
        daily = frame.groupby(["day", "group"])["converted"].agg(["count", "sum"]).unstack("group", fill_value=0)
        sofar = daily.cumsum()
        out = []
        for day, row in sofar.iterrows():
            n_t, n_b = int(row.get(("count", treated), 0)), int(row.get(("count", baseline), 0))
            if min(n_t, n_b) >= MIN_UNITS:
                t = Moments.count(int(row[("sum", treated)]), n_t)
                b = Moments.count(int(row[("sum", baseline)]), n_b)
                i = stats.difference(t, b, confidence=confidence)
                out.append({"day": day.isoformat(), "units": n_t + n_b, **i.as_dict()})
        return out


def compare(
    arms: dict[str, Arm],
    treated: str,
    baseline: str,
    *,
    confidence: float = stats.CONFIDENCE,
    sequential: bool = True,
    rows: Units | None = None,
    min_units: int = MIN_UNITS,
) -> dict[str, Any]:
    """One treated arm against its baseline: conversion and revenue per unit with intervals, the incremental
    conversions and revenue over the treated arm, a verdict and a sentence. With `rows` and `sequential` off,
    revenue gets a bootstrap interval instead of the normal one."""
    t, b = arms[treated], arms[baseline]
    out: dict[str, Any] = {"treated": treated, "baseline": baseline, "units": [t.units, b.units]}
    if min(t.units, b.units) < max(min_units, 1):
        smaller = baseline if b.units < t.units else treated
        return {
            **out,
            "verdict": "not enough data",
            "says": f"Not enough data yet: {smaller} has {min(t.units, b.units):,} of the {min_units} needed.",
        }
    conversion = stats.difference(t.converted, b.converted, confidence=confidence, sequential=sequential)
    if rows is not None and not sequential:
        revenue = _bootstrap(rows, treated, baseline, confidence)
    else:
        revenue = stats.difference(t.revenue, b.revenue, confidence=confidence, sequential=sequential)
    more = stats.more_needed(t.converted, b.converted, conversion)
    verdict = conversion.verdict if conversion.verdict != "unclear" else revenue.verdict
    return {
        **out,
        "conversion": conversion.as_dict(),
        "revenue_per_unit": revenue.as_dict(4),
        "incremental_conversions": conversion.scaled(t.units).as_dict(1),
        "incremental_revenue": revenue.scaled(t.units).as_dict(2),
        "verdict": verdict,
        "more_needed": more,
        "says": says(treated, baseline, conversion, revenue, more),
    }


def _bootstrap(rows: Units, treated: str, baseline: str, confidence: float) -> Interval:
    g = np.asarray(rows.group, dtype=object)
    r, p = np.asarray(rows.revenue, dtype=float), np.asarray(rows.pre, dtype=float)
    t, b = g == treated, g == baseline
    return stats.bootstrap(r[t], r[b], p[t], p[b], confidence=confidence)


def says(treated: str, baseline: str, conversion: Interval, revenue: Interval, more: int | None) -> str:
    """The result as a marketer reads it."""
    kind = "always-valid" if conversion.sequential else "fixed-horizon"
    level = f"{conversion.confidence:.0%} {kind} interval"
    points = f"{conversion.effect * 100:+.2f} points ({conversion.low * 100:+.2f} to {conversion.high * 100:+.2f})"
    money = f"{revenue.effect:+.2f} per customer ({revenue.low:+.2f} to {revenue.high:+.2f})"
    if conversion.verdict == "better":
        return f"{treated} converts better than {baseline}: {points}, {level}; revenue {money}."
    if conversion.verdict == "worse":
        return f"{treated} converts worse than {baseline}: {points}, {level}; revenue {money}."
    if revenue.verdict != "unclear":
        word = "more" if revenue.verdict == "better" else "less"
        return f"{treated} brings {word} revenue than {baseline}: {money}; conversion {points}, {level}."
    if more is None:
        return f"No difference between {treated} and {baseline} shows yet: conversion {points}, {level}."
    return (
        f"Not enough data yet: conversion {points}, {level}; about {more:,} more per group would tell "
        f"a difference this size from chance."
    )


def winner(report: dict[str, Any], first: str) -> str | None:
    """The variant that wins a test of variants against the `first`, only where the intervals say so: the one
    with the largest conversion lift among those better than the first, or the first when all others are worse;
    None while any is unclear (or the split is broken)."""
    if report.get("sample_ratio") and report["sample_ratio"]["alarm"]:
        return None
    against = [c for c in report["comparisons"] if c["baseline"] == first]
    if not against:
        return None
    better = [c for c in against if c["verdict"] == "better"]
    if better:
        return max(better, key=lambda c: c.get("conversion", {}).get("effect", 0.0))["treated"]
    return first if all(c["verdict"] == "worse" for c in against) else None


def sample_ratio(counts: dict[str, int], shares: dict[str, float]) -> dict[str, Any] | None:
    """Whether the groups' sizes (as assigned) match the split they were given (None when there is nothing to
    check)."""
    names = [n for n in shares if n in counts]
    observed = [counts[n] for n in names]
    p = stats.sample_ratio(observed, [shares[n] for n in names])
    if p is None:
        return None
    total = sum(observed)
    return {
        "p_value": round(p, 6),
        "alarm": bool(p < stats.SRM_ALARM),
        "observed": dict(zip(names, observed, strict=True)),
        "expected": {n: round(shares[n] / sum(shares[k] for k in names) * total, 1) for n in names},
    }


def report(
    arms: dict[str, Arm],
    comparisons: Sequence[tuple[str, str]],
    *,
    shares: dict[str, float] | None = None,
    rows: Units | None = None,
    sequential: bool = True,
    confidence: float = stats.CONFIDENCE,
) -> dict[str, Any]:
    """Every arm's summary, each (treated, baseline) comparison, and the sample-ratio check."""
    return {
        "groups": {name: arm.summary() for name, arm in arms.items()},
        "comparisons": [
            compare(arms, t, b, confidence=confidence, sequential=sequential, rows=rows)
            for t, b in comparisons
            if t in arms and b in arms
        ],
        "sample_ratio": sample_ratio({n: a.units for n, a in arms.items()}, shares) if shares else None,
    }
