"""Importers of files into a workspace. Each module has `run(uow, log, path, *, now, progress,
**options)`.

`run` returns a LoadResult (boomerang.events.bulk) and reports progress through the small
protocol below, so the CLI can draw a bar and tests can pass nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, amount: int) -> None: ...


class NoProgress:
    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass
