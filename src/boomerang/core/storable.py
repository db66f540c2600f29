"""What JSON the stores can keep: no NUL character (PostgreSQL refuses it), integers within 64 bits (orjson
and the stores' integers), nesting at most MAX_DEPTH levels. Checked where data comes in, so a bad value is a
4xx naming its place rather than a failure deep inside a transaction."""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 64
INT_RANGE = range(-(2**63), 2**63)


def problem(value: Any, path: str) -> tuple[str, str] | None:
    """(where, why) of the first value the stores cannot keep, or None. Most values are answered from their
    JSON text (orjson refuses big integers; a NUL shows as \\u0000; fewer brackets than MAX_DEPTH cannot nest
    deeper); the rest are walked level by level (no recursion) to name the place."""
    try:
        text = orjson.dumps(value)
    except TypeError:
        return _walk(value, path) or (path, "cannot be stored as JSON")
    if b"\\u0000" not in text and text.count(b"{") + text.count(b"[") <= MAX_DEPTH:
        return None
    return _walk(value, path)


def _walk(value: Any, path: str) -> tuple[str, str] | None:
    level = [(value, path)]
    for _ in range(MAX_DEPTH + 1):
        deeper = []
        for item, where in level:
            found = _scalar_problem(item)
            if found:
                return where, found
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\x00" in str(key):
                        return where, "contains a NUL character"
                    deeper.append((child, f"{where}.{key}" if where else str(key)))
            elif isinstance(item, list):
                deeper.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
        if not deeper:
            return None
        level = deeper
    return path, f"nested deeper than {MAX_DEPTH} levels"


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, str) and "\x00" in item:
        return "contains a NUL character"
    if isinstance(item, int) and not isinstance(item, bool) and item not in INT_RANGE:
        return "a whole number beyond 64 bits"
    return None
