"""An imported experiment's report: each variant against the control, per outcome, through `readout` (a finished
test is read once: fixed-horizon intervals, a bootstrap for money), and how much the covariate narrowed money."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from boomerang.experiments import readout, stats
from boomerang.experiments.imports import Parsed
from boomerang.experiments.readout import Units
from boomerang.experiments.stats import Moments

HEADLINE = ("conversion", "converted", "purchase", "purchased", "order", "ordered")  # the outcome readout calls
# its conversion, when the file names several 0/1 outcomes


def build(parsed: Parsed, *, control: str, outcomes: dict[str, str], equal_split: bool) -> dict[str, Any]:
    """Groups with each outcome's mean, comparisons per outcome (variant vs control), the sample-ratio check, the
    headline sentence and the covariate's narrowing of each money outcome's interval."""
    names = [control, *parsed.variants]
    pairs = [(v, control) for v in parsed.variants]
    binary = [o for o, kind in outcomes.items() if kind == "binary"]
    money = [o for o, kind in outcomes.items() if kind == "money"]
    headline = next((o for o in binary if o.lower() in HEADLINE), binary[-1] if binary else None)
    zeros = np.zeros(len(parsed))
    pre = parsed.covariate if parsed.covariate is not None else zeros
    per_outcome: dict[str, list[dict[str, Any]]] = {}
    says: dict[str, str] = {}
    for outcome in binary:
        units = _units(parsed, parsed.outcomes[outcome], zeros, zeros)
        rep = readout.report(units.arms(names), pairs, sequential=False)
        per_outcome[outcome] = [_entry(c, "conversion", outcome) for c in rep["comparisons"]]
    for outcome in money:
        converted = parsed.outcomes[headline] if headline else zeros
        units = _units(parsed, converted, parsed.outcomes[outcome], pre)
        rep = readout.report(units.arms(names), pairs, sequential=False, rows=units)
        per_outcome[outcome] = [_entry(c, "revenue_per_unit", outcome) for c in rep["comparisons"]]
        if outcome == money[0] and headline:
            says = {c["treated"]: c["says"] for c in rep["comparisons"]}
    arms = _units(parsed, zeros, zeros, zeros).arms(names)
    return {
        "groups": {
            g: {
                "units": arms[g].units,
                "means": {o: round(float(parsed.outcomes[o][parsed.arm == g].mean()), 6) for o in outcomes},
            }
            for g in names
        },
        "outcomes": outcomes,
        "headline": {"conversion": headline, "revenue": money[0] if money else None},
        "comparisons": per_outcome,
        "says": says,
        "sample_ratio": readout.sample_ratio({g: arms[g].units for g in names}, dict.fromkeys(names, 1.0))
        if equal_split
        else None,
        "covariate": _narrowing(parsed, pairs, money) if parsed.covariate is not None else None,
    }


def _units(parsed: Parsed, converted: np.ndarray, revenue: np.ndarray, pre: np.ndarray) -> Units:
    return Units(group=list(parsed.arm), converted=list(converted), revenue=list(revenue), pre=list(pre))


def _entry(comparison: dict[str, Any], key: str, outcome: str) -> dict[str, Any]:
    """One variant vs the control on one outcome: the interval as readout gives it."""
    out = {"treated": comparison["treated"], "baseline": comparison["baseline"], "units": comparison["units"]}
    if key not in comparison:
        return {**out, "verdict": comparison["verdict"], "says": comparison["says"]}
    return {**out, "outcome": outcome, **comparison[key]}


def _narrowing(parsed: Parsed, pairs: list[tuple[str, str]], money: list[str]) -> dict[str, Any]:
    """Per money outcome and variant: the fixed normal interval's width without and with the covariate (CUPED),
    and the share it narrowed by. Normal widths, not bootstrap ones: the bootstrap's own noise is larger than a
    weak covariate's gain."""
    out: dict[str, Any] = {}
    for outcome in money:
        y = parsed.outcomes[outcome]
        rows = []
        for treated, baseline in pairs:
            t, b = parsed.arm == treated, parsed.arm == baseline
            x = parsed.covariate
            plain = stats.difference(Moments.of(y[t]), Moments.of(y[b]), sequential=False)
            cuped = stats.difference(Moments.of(y[t], x[t]), Moments.of(y[b], x[b]), sequential=False)
            wide, narrow = plain.high - plain.low, cuped.high - cuped.low
            both = y[t | b], x[t | b]
            rows.append(
                {
                    "treated": treated,
                    "width_without": round(wide, 6),
                    "width_with": round(narrow, 6),
                    "narrowed_by": round(1 - narrow / wide, 6) if wide else None,
                    "correlation": _correlation(*both),
                }
            )
        out[outcome] = rows
    return out


def _correlation(y: np.ndarray, x: np.ndarray) -> float | None:
    if len(y) < 2 or y.std() == 0 or x.std() == 0:
        return None
    r = float(np.corrcoef(y, x)[0, 1])
    return round(r, 4) if math.isfinite(r) else None
