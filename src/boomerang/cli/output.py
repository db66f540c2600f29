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
from rich.table import Table
from sqlalchemy.orm import Session

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


@contextmanager
def transaction(ctx: typer.Context) -> Iterator[tuple[Workspace, Session]]:
    """The workspace and a session on it, committed when the block ends without an error."""
    ws = workspace(ctx)
    with ws.uow.session() as session:
        yield ws, session


def definitions(file: Path) -> list[dict]:
    """The definitions (segments, journeys) in a JSON or YAML file: one, or a list of them."""
    from boomerang.core.documents import load_file

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


def print_summary(data: dict) -> None:
    """The workspace summary as tables."""
    c = data["customers"]
    table = Table("", "", title="Workspace", show_header=False, title_justify="left")
    table.add_row("customers", f"{c['total']:,} ({c['identified']:,} identified, {c['anonymous']:,} anonymous)")
    table.add_row("orders", f"{data['orders']:,}")
    table.add_row("revenue", f"{data['revenue']:,.2f}")
    rate = data["repeat_purchase_rate"]
    table.add_row("repeat purchase rate", "-" if rate is None else f"{rate:.1%} of {data['buyers']:,} buyers")
    table.add_row("products", f"{data['products']['total']:,} ({data['products']['in_stock']:,} in stock)")
    e = data["events"]
    table.add_row("events", f"{e['total']:,}" + (f" (+{e['pending']:,} pending)" if e["pending"] else ""))
    table.add_row("first / last event", f"{e['first'] or '-'} / {e['last'] or '-'}")
    console.print(table)
    if e["by_type"]:
        by_type = Table("event", "count", title="Events by type", title_justify="left")
        for name, count in e["by_type"].items():
            by_type.add_row(name, f"{count:,}")
        console.print(by_type)
