"""BG/NBD (Fader, Hardie & Lee 2005): how many purchases a customer makes and whether they are still around.

A customer buys at a Poisson rate lambda ~ Gamma(r, alpha) while alive and, after each purchase, leaves
for good with probability p ~ Beta(a, b). Each customer is summarised by x (repeat purchases), t_x (time
of the last purchase since the first) and T (time from the first purchase to the end of calibration),
all in one unit (days or weeks); alpha is in that unit too. Everything here is numpy in, numpy out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.special import betaln, expit, gammaln, hyp2f1

from boomerang.predictions import mle

PARAMS = ("r", "alpha", "a", "b")
MAX_WAIT_UNITS = {"day": 3653.0, "week": 3653.0 / 7}  # next purchases later than ten years are reported as none


def _arrays(*values):
    return [np.asarray(v, dtype=float) for v in values]


def log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood (equation 6 of the paper, summed in log space)."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    stayed = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(stayed, left)


def fit(x, t_x, T) -> mle.Fit:
    """Maximum likelihood (L2-penalised on log-parameters, with a FitWarning, where it diverges)."""
    x, t_x, T = _arrays(x, t_x, T)
    if len(x) == 0:
        raise ValueError("no customers to fit")
    # Times in units of the mean T: alpha is then of order 1 whatever the unit, which the divergence
    # check and the penalty (towards 1) rely on; alpha scales back by the same factor.
    scale = float(np.mean(T)) if np.mean(T) > 0 else 1.0
    # Collapse identical customers: the likelihood then costs one evaluation per distinct summary.
    rows, weights = np.unique(np.column_stack([x, t_x / scale, T / scale]), axis=0, return_counts=True)
    ux, ut, uT = rows.T
    scaled = mle.fit(
        "BG/NBD", PARAMS, lambda p: -np.sum(weights * log_likelihood(p, ux, ut, uT)), len(x), start=(1.0, 1.0, 1.0, 1.0)
    )
    params = {**scaled.params, "alpha": scaled.params["alpha"] * scale}
    return replace(
        scaled, params=params, log_likelihood=float(np.sum(log_likelihood(tuple(params.values()), x, t_x, T)))
    )


def _log_left_odds(params, x, t_x, T) -> np.ndarray:
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x): the odds of 'left after the last purchase'."""
    r, alpha, a, b = params
    return np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))


def p_alive(params, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T); 1 for customers with no repeat purchase (the model's convention)."""
    x, t_x, T = _arrays(x, t_x, T)
    return np.where(x > 0, expit(-_log_left_odds(params, x, t_x, T)), 1.0)


def expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (equation 10 of the paper).

    The paper's (alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z) is rewritten with Euler's
    transformation as (1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z): the same number, but a series whose
    terms shrink fast for every x, where the original overflows for frequent buyers.
    """
    r, alpha, a, b = params
    t, x, t_x, T = _arrays(t, x, t_x, T)
    if abs(a - 1) < 1e-8:  # the closed form is 0/0 at a = 1; its limit is continuous
        a = 1 + 1e-8
    z = t / (alpha + T + t)
    c = a + b + x - 1
    gone = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    alive_part = c / (a - 1) * (1 - gone)
    return alive_part * p_alive(params, x, t_x, T)


def expected_purchases_new(params, t) -> np.ndarray:
    """E[purchases in (0, t]] of a customer who has just made a first purchase (equation 9)."""
    r, alpha, a, b = params
    (t,) = _arrays(t)
    if abs(a - 1) < 1e-8:
        a = 1 + 1e-8
    z = t / (alpha + t)
    # Euler's transformation again: (alpha/(alpha+t))^r 2F1(r, b; a+b-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b-1; z).
    return (a + b - 1) / (a - 1) * (1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z))


def p_purchase(params, t, x, t_x, T) -> np.ndarray:
    """P(at least one purchase in (T, T + t] | x, t_x, T).

    Alive at T, lambda ~ Gamma(r + x, alpha + T) and no dropout can happen before the next purchase,
    so P(none in t | alive) = ((alpha + T) / (alpha + T + t))^(r + x).
    """
    r, alpha, a, b = params
    t, x, t_x, T = _arrays(t, x, t_x, T)
    return p_alive(params, x, t_x, T) * -np.expm1((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))


def next_purchase_wait(params, x, t_x, T, max_wait: float = np.inf) -> np.ndarray:
    """Time after T by which the customer has bought again with probability 1/2: the median of the next
    purchase time, counting the chance that they have left. NaN where that chance never reaches 1/2
    (p_alive <= 1/2) or only after `max_wait`.
    """
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    alive = p_alive(params, x, t_x, T)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Solve alive * (1 - ((alpha+T)/(alpha+T+w))^(r+x)) = 1/2 for w.
        log_ratio = np.log1p(-0.5 / alive)
        wait = (alpha + T) * np.expm1(-log_ratio / (r + x))
    return np.where((alive > 0.5) & np.isfinite(wait) & (wait <= max_wait), wait, np.nan)


def wait_given_purchase(params, t, x, t_x, T) -> np.ndarray:
    """Median time after T of the next purchase, given that there is one in (T, T + t].

    Only the living buy, so p_alive cancels: with S(w) = ((alpha+T)/(alpha+T+w))^(r+x) the chance of no
    purchase by w, solve (1 - S(w)) / (1 - S(t)) = 1/2.
    """
    r, alpha, a, b = params
    t, x, t_x, T = _arrays(t, x, t_x, T)
    none_by_t = ((alpha + T) / (alpha + T + t)) ** (r + x)
    return (alpha + T) * np.expm1(-np.log((1 + none_by_t) / 2) / (r + x))
