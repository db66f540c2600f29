"""Stable random assignment: the same customer lands in the same bucket on every machine and run."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def bucket(text: str) -> float:
    """A stable number in [0, 1) for `text` (the same on every machine and run)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


def pick(options: Sequence[T], weights: Sequence[float], text: str) -> T:
    """One of `options` for `text`: stable, in proportion to the weights."""
    point = bucket(text) * sum(weights)
    for option, weight in zip(options, weights):
        point -= weight
        if point < 0:
            return option
    return options[-1]
