"""Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): the value a customer spends per purchase.

A customer's purchase values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers, independent
of how often they buy. It is fitted on customers with at least one repeat purchase, from x (their
repeat purchases) and m (the mean value of those repeat purchases).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.special import gammaln

from boomerang.predictions import mle

PARAMS = ("p", "q", "gamma")


def log_likelihood(params, x, m) -> np.ndarray:
    """Each customer's log-likelihood of the mean m of x purchase values."""
    p, q, gamma = params
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


def fit(x, m) -> mle.Fit:
    """Maximum likelihood on the customers with x > 0 and m > 0 (penalised, with a FitWarning, where it diverges)."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) == 0:
        raise ValueError("no customer with a repeat purchase of positive value")
    # Values in units of their mean: gamma is then of order 1 in any currency (yen or pounds), which the
    # divergence check and the penalty rely on; gamma scales back by the same factor.
    scale = float(np.mean(m))
    scaled = mle.fit(
        "Gamma-Gamma",
        PARAMS,
        lambda params: -np.sum(log_likelihood(params, x, m / scale)),
        len(x),
        start=(1.0, 1.0, 1.0),
    )
    params = {**scaled.params, "gamma": scaled.params["gamma"] * scale}
    return replace(scaled, params=params, log_likelihood=float(np.sum(log_likelihood(tuple(params.values()), x, m))))


def population_mean(params) -> float:
    """E[value per purchase] of a customer we know nothing about: p * gamma / (q - 1); inf when q <= 1."""
    p, q, gamma = params
    return p * gamma / (q - 1) if q > 1 else np.inf


def expected_spend(params, x, m) -> np.ndarray:
    """E[value per purchase | x, m]: a weighted mean of the population mean and the customer's own mean.

    With x = 0 (or no positive m) it is the population mean.
    """
    p, q, gamma = params
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    known = (x > 0) & (m > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = p * (gamma + np.where(known, m, 0) * x) / (p * x + q - 1)
    return np.where(known, own, population_mean(params))
