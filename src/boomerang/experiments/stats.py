"""Intervals for the difference between a treated group and its baseline: pure numpy and scipy.

An arm is summarised by its moments (`Moments`): the count, sums and sums of squares of the outcome y and of a
pre-period covariate x (the customer's revenue before the test), so the database can compute them and nothing
needs the rows. The difference of the arms' means is adjusted by the covariate, CUPED-style (Deng et al. 2013):
y - theta * (x - mean x) with theta = cov(x, y) / var(x) pooled over both arms. The adjustment keeps the
estimate unbiased (the arms are randomised, so x has the same mean in both) and removes the share of the
variance the customers' past explains.

Two intervals:
- `sequential` (the default, what a dashboard shows): an asymptotic confidence sequence (Waudby-Smith et al.
  2023, "Time-uniform central limit theory and asymptotic confidence sequences"; the normal-mixture boundary
  GrowthBook also uses). It holds at every moment at once: a marketer may look every day and stop when it
  excludes zero, and is still wrong at most 1 - confidence of the time. It is wider than a fixed interval,
  and tuned to be narrowest near `tuning` units.
- fixed: the usual normal interval, right only when read once at a sample size chosen in advance; or, with
  the rows at hand, a bootstrap (`bootstrap`) that does not lean on normality for heavy-tailed revenue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
POWER = 0.8
TUNING = 5000  # the total sample near which the confidence sequence is narrowest
SRM_ALARM = 0.001  # a sample-ratio p-value below this says the split is broken, not unlucky


@dataclass(frozen=True)
class Moments:
    """One arm: n units, the sums of y, y², and of a covariate x, x², x·y (zeros without one)."""

    n: int
    sy: float = 0.0
    syy: float = 0.0
    sx: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    binary: bool = False  # y is 0 or 1: its variance is estimated with one success and one failure added

    @classmethod
    def of(cls, y, x=None, *, binary: bool = False) -> Moments:
        y = np.asarray(y, dtype=float)
        x = np.zeros_like(y) if x is None else np.asarray(x, dtype=float)
        return cls(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum(), binary)

    @classmethod
    def count(cls, successes: int, n: int) -> Moments:
        """A conversion rate: `successes` of `n`."""
        return cls(n, successes, successes, binary=True)

    @property
    def mean(self) -> float:
        return self.sy / self.n if self.n else 0.0

    @property
    def mean_x(self) -> float:
        return self.sx / self.n if self.n else 0.0

    def var(self) -> float:
        if self.binary:
            p = (self.sy + 1) / (self.n + 2)
            return p * (1 - p)
        return _var(self.n, self.sy, self.syy)

    def var_x(self) -> float:
        return _var(self.n, self.sx, self.sxx)

    def cov(self) -> float:
        return (self.sxy - self.sx * self.sy / self.n) / (self.n - 1) if self.n > 1 else 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.n + other.n,
            self.sy + other.sy,
            self.syy + other.syy,
            self.sx + other.sx,
            self.sxx + other.sxx,
            self.sxy + other.sxy,
            self.binary and other.binary,
        )


def _var(n: int, s: float, ss: float) -> float:
    return max(ss - s * s / n, 0.0) / (n - 1) if n > 1 else 0.0


@dataclass(frozen=True)
class Interval:
    """treated - baseline, with its interval; `relative` is the effect over the baseline's mean."""

    effect: float
    low: float
    high: float
    baseline: float
    confidence: float
    sequential: bool
    method: str

    @property
    def relative(self) -> float | None:
        return self.effect / self.baseline if self.baseline else None

    @property
    def verdict(self) -> str:
        """'better' or 'worse' once the interval excludes zero, 'unclear' until then."""
        return "better" if self.low > 0 else "worse" if self.high < 0 else "unclear"

    def scaled(self, k: float) -> Interval:
        """The same interval for k units (e.g. per recipient -> for all recipients)."""
        return Interval(
            self.effect * k,
            self.low * k,
            self.high * k,
            self.baseline * k,
            self.confidence,
            self.sequential,
            self.method,
        )

    def as_dict(self, digits: int = 6) -> dict:
        return {
            "effect": round(float(self.effect), digits),
            "low": round(float(self.low), digits),
            "high": round(float(self.high), digits),
            "relative": None if self.relative is None else round(float(self.relative), 4),
            "confidence": self.confidence,
            "sequential": self.sequential,
            "method": self.method,
            "verdict": self.verdict,
        }


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def sequence_multiplier(n: int, confidence: float = CONFIDENCE, tuning: int = TUNING) -> float:
    """The confidence sequence's half-width in standard errors at a total of n units (the normal-mixture
    boundary, rho chosen to be tightest at `tuning` units); it exceeds z_value(confidence) everywhere."""
    alpha = 1 - confidence
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    nr = n * rho2
    return math.sqrt((2 * (nr + 1) / nr) * math.log(math.sqrt(nr + 1) / alpha))


def cuped_theta(treated: Moments, baseline: Moments) -> float:
    """cov(x, y) / var(x) over both arms together (0 without a covariate that varies)."""
    both = treated + baseline
    vx = both.var_x()
    return both.cov() / vx if vx > 0 and not both.binary else 0.0


def difference(
    treated: Moments,
    baseline: Moments,
    *,
    confidence: float = CONFIDENCE,
    sequential: bool = True,
    tuning: int = TUNING,
) -> Interval:
    """mean(treated) - mean(baseline), adjusted by the covariate where there is one, with its interval."""
    theta = cuped_theta(treated, baseline)
    effect = treated.mean - baseline.mean - theta * (treated.mean_x - baseline.mean_x)
    se = math.sqrt(
        _adjusted_var(treated, theta) / max(treated.n, 1) + _adjusted_var(baseline, theta) / max(baseline.n, 1)
    )
    n = treated.n + baseline.n
    if sequential:
        k, method = sequence_multiplier(max(n, 2), confidence, tuning), "confidence sequence"
    else:
        k, method = z_value(confidence), "normal"
    if theta:
        method += ", CUPED"
    return Interval(effect, effect - k * se, effect + k * se, baseline.mean, confidence, sequential, method)


def _adjusted_var(arm: Moments, theta: float) -> float:
    return max(arm.var() + theta * theta * arm.var_x() - 2 * theta * arm.cov(), 0.0)


def bootstrap(
    y_treated,
    y_baseline,
    x_treated=None,
    x_baseline=None,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """A fixed-horizon percentile bootstrap of the (CUPED-adjusted) difference of means: for revenue read once,
    e.g. a finished experiment. Poisson weights, resampled in chunks so memory stays at a few times the rows."""
    yt, yb = np.asarray(y_treated, dtype=float), np.asarray(y_baseline, dtype=float)
    xt = np.zeros_like(yt) if x_treated is None else np.asarray(x_treated, dtype=float)
    xb = np.zeros_like(yb) if x_baseline is None else np.asarray(x_baseline, dtype=float)
    theta = cuped_theta(Moments.of(yt, xt), Moments.of(yb, xb))
    centre = np.concatenate([xt, xb]).mean()
    at, ab = yt - theta * (xt - centre), yb - theta * (xb - centre)
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    chunk = max(1, 4_000_000 // max(len(at) + len(ab), 1))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        wt, wb = _poisson_weights(rng, (k, len(at))), _poisson_weights(rng, (k, len(ab)))
        draws[start : start + k] = (wt @ at) / np.maximum(wt.sum(1), 1) - (wb @ ab) / np.maximum(wb.sum(1), 1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    effect = float(at.mean() - ab.mean())
    method = "bootstrap" + (", CUPED" if theta else "")
    return Interval(effect, float(low), float(high), float(yb.mean()), confidence, False, method)


_POISSON_CDF = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(12)]).astype(np.float32)  # Poisson(1)


def _poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) counts as floats, by comparing uniform draws with the CDF: several times faster than
    rng.poisson, and a float matrix multiplies through BLAS (an integer one does not). Counts stop at 12
    (P(more) is about 1e-10)."""
    u = rng.random(shape, dtype=np.float32)
    w = np.zeros(shape, dtype=np.uint8)
    for c in _POISSON_CDF:
        w += u > c
    return w.astype(np.float64)


def more_needed(treated: Moments, baseline: Moments, interval: Interval, *, limit: int = 10_000_000) -> int | None:
    """How many more units per arm the interval needs to exclude zero if the effect stays as observed (None when
    it already does, or when no difference is showing at all)."""
    if interval.verdict != "unclear" or interval.effect == 0:
        return None
    n_t, n_b = max(treated.n, 1), max(baseline.n, 1)
    se_now = (interval.high - interval.low) / 2 / _multiplier(interval, n_t + n_b)

    def halfwidth(extra: int) -> float:
        shrink = math.sqrt((1 / (n_t + extra) + 1 / (n_b + extra)) / (1 / n_t + 1 / n_b))
        return se_now * shrink * _multiplier(interval, n_t + n_b + 2 * extra)

    if halfwidth(limit) >= abs(interval.effect):
        return limit
    low, high = 0, limit
    while high - low > max(1, low // 100):
        mid = (low + high) // 2
        low, high = (mid, high) if halfwidth(mid) >= abs(interval.effect) else (low, mid)
    return high


def _multiplier(interval: Interval, n: int) -> float:
    return sequence_multiplier(max(n, 2), interval.confidence) if interval.sequential else z_value(interval.confidence)


def detectable_effect(
    sd: float,
    n_treated: float,
    n_baseline: float,
    *,
    confidence: float = CONFIDENCE,
    power: float = POWER,
    sequential: bool = False,
) -> float | None:
    """The smallest true difference of means that the test finds `power` of the time, for an outcome of
    standard deviation `sd` (for a rate p: sqrt(p(1-p))). None when an arm would be empty."""
    if n_treated < 1 or n_baseline < 1 or sd <= 0:
        return None
    k = sequence_multiplier(int(n_treated + n_baseline), confidence) if sequential else z_value(confidence)
    return (k + NormalDist().inv_cdf(power)) * sd * math.sqrt(1 / n_treated + 1 / n_baseline)


def sample_size(
    sd: float,
    effect: float,
    *,
    share_treated: float = 0.5,
    confidence: float = CONFIDENCE,
    power: float = POWER,
    sequential: bool = False,
) -> int | None:
    """The total units a test needs so that `detectable_effect` reaches `effect`, split `share_treated` to the
    treated arm. None when the effect or the split cannot be found."""
    if effect <= 0 or sd <= 0 or not 0 < share_treated < 1:
        return None

    def found(n: int) -> bool:
        mde = detectable_effect(
            sd, n * share_treated, n * (1 - share_treated), confidence=confidence, power=power, sequential=sequential
        )
        return mde is not None and mde <= effect

    high = 4
    while not found(high):
        high *= 2
        if high > 10**12:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if found(mid) else (mid, high)
    return high


def sample_ratio(observed: list[int], expected_shares: list[float]) -> float | None:
    """The chi-square p-value of the arms' sizes against the split they were meant to have (None without at
    least two arms with units); below SRM_ALARM the assignment is broken and the results are not to be read."""
    total = sum(observed)
    shares = np.asarray(expected_shares, dtype=float)
    if total == 0 or len(observed) < 2 or (shares <= 0).any():
        return None
    expected = shares / shares.sum() * total
    from scipy.stats import chisquare  # here: scipy.stats takes a second to import, and most callers never get here

    return float(chisquare(np.asarray(observed, dtype=float), expected).pvalue)
