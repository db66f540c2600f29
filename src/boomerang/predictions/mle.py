"""Maximum likelihood over positive parameters, with an L2-penalised fallback when the plain fit diverges.

Parameters are optimised on the log scale, so positivity is free and a divergence shows as a parameter
running past 1e4 or below 1e-4 (the models hand in data scaled to order 1, so no meaningful value lies out
there). When that happens (or the likelihood is not finite),
the fit is redone with a penalty `lam * sum(log(theta)**2)` on the mean negative log-likelihood,
which pulls the parameters towards 1; `lam` grows tenfold until the fit stays inside the box.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

LOG_BOUND = 15.0  # the box the optimiser searches
EDGE = float(np.log(1e4))  # a ridge running off to infinity is flat: optimisers stop anywhere past here
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class FitWarning(UserWarning):
    """The plain maximum likelihood diverged and the parameters come from a penalised fit."""


@dataclass(frozen=True)
class Fit:
    """Fitted parameters, the log-likelihood at them and how they were reached."""

    params: dict[str, float]
    log_likelihood: float
    customers: int
    penalty: float = 0.0  # 0: plain maximum likelihood
    warnings: list[str] = field(default_factory=list)

    @property
    def regularised(self) -> bool:
        return self.penalty > 0


def _minimise(objective: Callable[[np.ndarray], float], start: np.ndarray):
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    first = minimize(
        objective, start, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9}
    )
    if np.any(np.abs(first.x) >= EDGE):  # diverging: no point polishing a ridge that runs off to infinity
        return first.x, float(first.fun)
    # Nelder-Mead from there polishes what numerical gradients leave (a few 1e-4 on flat ridges).
    polish = minimize(
        objective, first.x, method="Nelder-Mead", bounds=bounds, options={"xatol": 1e-6, "fatol": 1e-12, "maxfev": 1500}
    )
    best = polish if np.isfinite(polish.fun) and polish.fun <= first.fun else first
    return best.x, float(best.fun)


def _diverged(names: Sequence[str], x: np.ndarray, value: float) -> list[str]:
    if not np.isfinite(value) or not np.all(np.isfinite(x)):
        return ["the likelihood is not finite"]
    return [f"{n} ran to {np.exp(v):.3g}" for n, v in zip(names, x) if abs(v) >= EDGE]


def fit(
    model: str,
    names: Sequence[str],
    negll: Callable[[np.ndarray], np.ndarray],
    customers: int,
    start: Sequence[float] | None = None,
) -> Fit:
    """Minimise the summed negative log-likelihood `negll(params)`; penalise and warn when it diverges."""
    n = max(customers, 1)

    def objective(log_params: np.ndarray, lam: float = 0.0) -> float:
        value = float(negll(np.exp(log_params))) / n + lam * float(np.sum(log_params**2))
        return value if np.isfinite(value) else 1e300

    x0 = np.log(np.asarray(start, dtype=float)) if start is not None else np.zeros(len(names))
    x, value = _minimise(objective, x0)
    problems = _diverged(names, x, value if value < 1e300 else np.inf)
    if not problems:
        return Fit(dict(zip(names, map(float, np.exp(x)))), -value * n, customers)
    for lam in PENALTIES:
        x, value = _minimise(lambda v: objective(v, lam), np.zeros(len(names)))
        if value < 1e300 and not _diverged(names, x, value):
            break
    message = (
        f"{model}: plain maximum likelihood diverged ({'; '.join(problems)}); "
        f"parameters are from an L2-penalised fit on log-parameters (penalty {lam:g})"
    )
    warnings.warn(message, FitWarning, stacklevel=3)
    params = dict(zip(names, map(float, np.exp(x))))
    return Fit(params, -float(negll(np.exp(x))), customers, penalty=lam, warnings=[message])
