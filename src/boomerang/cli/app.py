"""The `boomerang` command line."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from boomerang import __version__
from boomerang.cli.output import console, emit_json, failures, home, print_summary, workspace

# Each command's module is imported when that command runs (or `--help` lists it): a command loads its own domain,
# not all of them. A name maps to a module of boomerang.cli and either its Typer of commands or one command.
SUBCOMMANDS = {
    "import": ("imports", "app"),
    "keys": ("keys", "app"),
    "clv": ("clv", "app"),
    "users": ("users", "app"),
    "customers": ("customers", "app"),
    "segments": ("segments", "app"),
    "journeys": ("journeys", "app"),
    "campaigns": ("campaigns", "app"),
    "experiments": ("experiments", "app"),
    "review": ("review", "app"),
    "templates": ("messaging", "templates_app"),
    "channels": ("messaging", "channels_app"),
    "send": ("messaging", "send_app"),
    "telegram": ("telegram", "app"),
    "loyalty": ("loyalty", "app"),
    "codes": ("loyalty_codes", "app"),
    "achievements": ("loyalty_achievements", "app"),
    "referrals": ("loyalty_referrals", "app"),
    "reco": ("reco", "app"),
    "messages": ("messaging", "messages"),
    "worker": ("journeys", "worker"),
    "demo": ("demo", "demo"),
    "report": ("report", "report"),
}


class LazyGroup(TyperGroup):
    """The top-level group: the commands of SUBCOMMANDS are built from their module on first use."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in SUBCOMMANDS if name not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            module, attribute = SUBCOMMANDS[cmd_name]
            target = getattr(importlib.import_module(f"boomerang.cli.{module}"), attribute)
            if isinstance(target, typer.Typer):
                command: TyperCommand | TyperGroup = typer.main.get_group(target)
            else:
                single = typer.Typer(add_completion=False)
                single.command(cmd_name)(target)
                command = typer.main.get_command(single)
            command.name = cmd_name
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=LazyGroup, help="Boomerang: bring customers back.", no_args_is_help=True, pretty_exceptions_show_locals=False
)


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option(help="workspace folder (default: BOOMERANG_HOME or ./boomerang-data)")
    ] = None,
) -> None:
    ctx.obj = {"home": home}


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Counts of the workspace: customers, orders, revenue, products, events by type."""
    from boomerang.orchestration.rounds import move_events
    from boomerang.orchestration.status import summary

    with failures():
        ws = workspace(ctx)
        move_events(ws)
        data = {"home": home(ws), **summary(ws.uow, ws.log)}
    emit_json(data) if as_json else print_summary(data)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default 8600)")] = None,
) -> None:
    """Run the API (tracking, REST) and the dashboard in this process until interrupted."""
    from boomerang.cli.server import run_server

    with failures():
        run_server(workspace(ctx), host=host, port=port)


def main() -> None:
    app()
