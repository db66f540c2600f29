"""Identifiers made here, sortable by creation time, so rows can be written without a round trip."""

from __future__ import annotations

import base64
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def new_id(prefix: str) -> str:
    """A ULID-like id: 48 bits of milliseconds and 60 random bits, with a readable prefix (22 base-32 digits:
    10 of time, 12 of chance)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(8), "big") >> 4
    digits = base64.b32encode(((ms << 60) | rand).to_bytes(15, "big")).translate(_FROM_RFC4648)
    return f"{prefix}_{digits[2:].decode()}"  # 120 bits encoded: the first 2 digits are the 10 bits of padding
