"""Identifiers made here, sortable by creation time, so rows can be written without a round trip."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """A ULID-like id: 48 bits of milliseconds and 60 random bits, with a readable prefix."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(8), "big") >> 4
    return f"{prefix}_{_b32(ms, 10)}{_b32(rand, 12)}"
