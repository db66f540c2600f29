"""Shared CLI plumbing: the workspace from options, JSON or Rich output, errors, progress bars, how a hint names
the `boomerang` command, and values as a person reads them."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.rule import Rule
from rich.table import Table

from boomerang.config import Settings
from boomerang.core.errors import BoomerangError, LogBusy, ValidationFailed

if TYPE_CHECKING:  # opening a workspace loads every domain: a command pays for it only when it opens one
    from sqlalchemy.orm import Session

    from boomerang.bootstrap import Workspace

PIPED_WIDTH = 10_000  # columns of output that goes to a file or a pipe: nothing is cut to fit a terminal


class _Console(Console):
    """Rich's console, as wide as a terminal when it writes to one, and PIPED_WIDTH wide when it does not, unless
    given a width (Rich would take 80 columns, COLUMNS, or the width of a terminal beside it, and cut table cells
    to fit: COLUMNS is often set for a terminal that is not where the output goes, pytest-xdist's workers too)."""

    def __init__(self, *args: Any, width: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, width=width, **kwargs)
        self._given_width = width

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        if self._given_width is None and not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = _Console()
errors = _Console(stderr=True)


def settings(ctx: typer.Context) -> Settings:
    """The settings, with the workspace folder named by --home (or BOOMERANG_HOME)."""
    home: Path | None = ctx.obj.get("home") if ctx.obj else None
    return Settings(home=home) if home else Settings()


def workspace(ctx: typer.Context) -> Workspace:
    """The migrated workspace named by --home (or BOOMERANG_HOME); a new one starts with the ready-made segments,
    journeys (drafts) and templates."""
    from boomerang.bootstrap import open_workspace

    return open_workspace(settings(ctx), ready_made=True)


def home(ws: Workspace) -> str:
    """The workspace's folder as an absolute path: what commands print, so nobody wonders which one they used."""
    return str(ws.settings.home.resolve())


# -- how hints name the command ------------------------------------------------------------------------------


@cache
def command_name() -> str:
    """`boomerang` as a hint should write it to run this same program: `boomerang` where the PATH finds this one,
    otherwise the path that was run (`.venv/bin/boomerang` after `pip install` into a venv not activated), or the
    interpreter with `-m boomerang`."""
    ran = _program()
    found = shutil.which("boomerang")
    if ran is not None and found is not None and Path(found).resolve() == ran.resolve():
        return "boomerang"
    if ran is None:
        return f"{_shown(Path(sys.executable))} -m boomerang"
    return _shown(ran)


def _program() -> Path | None:
    """The `boomerang` script this process runs as (for `python -m boomerang`, the one beside the interpreter)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or argv0 in ("-c", "-m") or Path(argv0).name == "__main__.py":
        script = Path(sys.executable).parent / "boomerang"
        return script if script.is_file() else None
    if os.sep not in argv0:  # run by its name alone: from the PATH
        found = shutil.which(argv0)
        return Path(found) if found else None
    return Path(argv0)


def _shown(path: Path) -> str:
    """A path as short as it can be written and still run: relative to the current folder when inside it."""
    absolute = path.absolute()
    try:
        text = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        text = str(absolute)
    if os.sep not in text:
        text = f".{os.sep}{text}"
    return shlex.quote(text)


_COMMAND = re.compile(r"(?<![\w./-])boomerang(?= [a-z])")


def hint(text: str) -> str:
    """`text` with each `boomerang SUBCOMMAND` in it written as `command_name()` (hints from the domains too)."""
    name = command_name()
    return text if name == "boomerang" else _COMMAND.sub(lambda _: name, text)


# -- values as a person reads them ---------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | dict | list | tuple | set | frozenset) and not value)


def _plain(value: Any) -> Any:
    """Models and dataclasses as dicts, enums as their values; anything else as it is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Enum):
        return value.value
    return value


def readable(value: Any) -> str:
    """A value as a table cell or a line shows it: text as it is, a mapping as `key: value` pairs (empty entries
    left out, nested values as compact JSON), a list joined with commas, times without their microseconds,
    nothing (None, "", {}, []) as "-"; never a Python repr."""
    value = _plain(value)
    if _empty(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        shown = ", ".join(f"{k}: {_inner(v)}" for k, v in value.items() if not _empty(_plain(v)))
        return shown or "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_inner(v) for v in value)
    return str(value)


def _inner(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=lambda v: readable(v) if not isinstance(v, set) else sorted(v)).decode()
    return readable(value)


def table(*columns: str, **options: Any) -> Table:
    """A Rich table whose cells fold onto more lines where a terminal is too narrow, never cut to "…"."""
    title = options.get("title")
    out = Table(**{"title_justify": "left", "min_width": len(title) if isinstance(title, str) else None, **options})
    for column in columns:
        out.add_column(column, overflow="fold")
    return out


def rule(title: str) -> None:
    """A titled rule, at most 80 columns wide (the console is far wider when piped)."""
    console.print(Rule(title), width=min(console.width, 80))


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


_READY_MADE = {"journey": "journeys", "segment": "segments", "template": "templates"}


def _library(group: str) -> set[str]:
    """The names of the ready-made journeys, segments or templates."""
    if group == "journeys":
        from boomerang.journeys import library

        return {raw["name"] for raw in library.raw_definitions()}
    if group == "segments":
        from boomerang.segments import library

        return {d.name for d in library.definitions()}
    from boomerang.messaging import service

    return {t["name"] for t in service.library()}


def _install_hint(item: dict) -> str:
    """For an error about a missing ready-made journey, segment or template: how to install them."""
    field = re.sub(r"\[\d+\]", "", item.get("field") or "").rsplit(".", 1)[-1]
    group = _READY_MADE.get(field)
    reason = str(item.get("reason", ""))
    if group is None or not reason.startswith("no ") or not any(repr(n) in reason for n in _library(group)):
        return ""
    return f" (it is a ready-made {field}: {command_name()} {group} install adds them)"


@contextmanager
def failures() -> Iterator[None]:
    """Turn the errors a user can act on into a message and a non-zero exit."""
    try:
        yield
    except BoomerangError as exc:
        items = exc.errors
        for item in items[:20]:
            field = f"[bold]{item.get('field')}[/]: " if item.get("field") else ""
            reason = hint(str(item["reason"])) + _install_hint(item)
            errors.print(f"[red]error[/] {field}{escape(reason)}", highlight=False)
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
    """The workspace summary as tables (with the workspace's folder where `data` has it, under "home")."""
    c = data["customers"]
    rows = table("", "", title="Workspace", show_header=False)
    if data.get("home"):
        rows.add_row("workspace", data["home"])
    rows.add_row("customers", f"{c['total']:,} ({c['identified']:,} identified, {c['anonymous']:,} anonymous)")
    rows.add_row("orders", f"{data['orders']:,}")
    rows.add_row("revenue", f"{data['revenue']:,.2f}")
    rate = data["repeat_purchase_rate"]
    rows.add_row("repeat purchase rate", "-" if rate is None else f"{rate:.1%} of {data['buyers']:,} buyers")
    rows.add_row("products", f"{data['products']['total']:,} ({data['products']['in_stock']:,} in stock)")
    e = data["events"]
    rows.add_row("events", f"{e['total']:,}" + (f" (+{e['pending']:,} pending)" if e["pending"] else ""))
    rows.add_row("first / last event", f"{e['first'] or '-'} / {e['last'] or '-'}")
    console.print(rows)
    if e["by_type"]:
        by_type = table("event", "count", title="Events by type")
        for name, count in e["by_type"].items():
            by_type.add_row(name, f"{count:,}")
        console.print(by_type)
