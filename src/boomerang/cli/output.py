"""Shared CLI plumbing: the workspace from options, JSON or Rich output, errors, progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from boomerang.bootstrap import Workspace, open_workspace
from boomerang.config import Settings
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.events.log import LogBusy

console = Console()
errors = Console(stderr=True)


def workspace(ctx: typer.Context) -> Workspace:
    """The migrated workspace named by --home (or BOOMERANG_HOME)."""
    home: Path | None = ctx.obj.get("home") if ctx.obj else None
    settings = Settings(home=home) if home else Settings()
    return open_workspace(settings)


def definitions(file: Path) -> list[dict]:
    """The definitions (segments, journeys) in a JSON or YAML file: one, or a list of them."""
    from boomerang.segments.library import load_file

    if not file.is_file():
        raise ValidationFailed([{"field": "file", "reason": f"{file} does not exist"}])
    return load_file(file.read_text("utf-8"))


def emit_json(data) -> None:
    sys.stdout.write(
        orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )


@contextmanager
def failures() -> Iterator[None]:
    """Turn the errors a user can act on into a message and a non-zero exit."""
    try:
        yield
    except BoomerangError as exc:
        items = exc.errors
        for item in items[:20]:
            field = f"[bold]{item.get('field')}[/]: " if item.get("field") else ""
            errors.print(f"[red]error[/] {field}{item['reason']}", highlight=False)
        if len(items) > 20:
            errors.print(f"... and {len(items) - 20} more")
        raise typer.Exit(2) from None
    except LogBusy as exc:
        errors.print(f"[red]error[/] {exc}; try again when it is done")
        raise typer.Exit(1) from None


class Bar:
    """The importers' Progress protocol drawn as a Rich bar (silent with --json)."""

    def __init__(self, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=errors,
            disable=not enabled,
            transient=False,
        )
        self._task = None

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def start(self, total: int, description: str) -> None:
        if self._task is None:
            self._task = self._progress.add_task(description, total=total)
        else:
            self._progress.update(self._task, total=total, description=description)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)
