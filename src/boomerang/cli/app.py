"""The `boomerang` command line."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperCommand, TyperGroup

from boomerang import __version__
from boomerang.cli.output import console, emit_json, failures, home, print_summary, workspace

# Each command's module is imported when that command runs: a command loads its own domain, not all of them. A name
# maps to a module of boomerang.cli, either its Typer of commands or one command, and the line `boomerang --help`
# lists it with (the first paragraph of its own help, which tests/test_serve_and_cli.py holds it to): listing them imports none.
SUBCOMMANDS = {
    "import": ("imports", "app", "Import files into the workspace (idempotent: the same file twice changes nothing)."),
    "keys": ("keys", "app", "API keys: write keys for tracking, secret keys for the REST API."),
    "clv": ("clv", "app", "Predicted CLV and churn: BG/NBD, Gamma-Gamma and gradient-boosted forecasts."),
    "users": ("users", "app", "Dashboard users: viewer, marketer or admin."),
    "customers": ("customers", "app", "Customers' privacy requests: export everything held about one, erase one."),
    "segments": ("segments", "app", "Behavioural segments: rules as data, live membership, explain."),
    "journeys": ("journeys", "app", "Trigger journeys: definitions, activation, approvals, results."),
    "campaigns": (
        "campaigns",
        "app",
        "Campaigns: a message to a segment, now or later, with A/B variants and a holdout.",
    ),
    "experiments": ("experiments", "app", "Tests: journeys, campaigns and imported experiments, with intervals."),
    "review": ("review", "app", "The monthly review: shown here, or sent to the shop's owners."),
    "templates": ("messaging", "templates_app", "Message templates: locales and a form per channel."),
    "channels": ("messaging", "channels_app", "Channel providers and their settings (secrets stored encrypted)."),
    "send": ("messaging", "send_app", "Send a message now."),
    "telegram": ("telegram", "app", "The Telegram bot: link customers' chats, receive their commands."),
    "loyalty": ("loyalty", "app", "The loyalty programme's points ledger."),
    "codes": ("loyalty_codes", "app", "Promo codes: pools, generation, uploads and validation."),
    "achievements": (
        "loyalty_achievements",
        "app",
        "Achievements and missions: badges and points for what customers do.",
    ),
    "referrals": ("loyalty_referrals", "app", "Referrals: codes and links, referrals and the decisions about them."),
    "reco": ("reco", "app", "Product recommendations."),
    "messages": ("messaging", "messages", "The delivery log, newest first."),
    "worker": (
        "journeys",
        "worker",
        "Run journey timers, branches, messages and scheduled triggers (several workers share the work on PostgreSQL).",
    ),
    "demo": (
        "demo",
        "demo",
        "Load a realistic demo shop (catalog, customers, a year of behaviour) and start the server.",
    ),
    "report": (
        "report",
        "report",
        "Retention metrics: retention and churn, repeat purchases, AOV, LTV, NPS, cohorts, RFM, lifecycle, funnel;\n"
        "`incrementality`: every journey's and campaign's incremental conversion and revenue with intervals, beside\n"
        "last-touch attribution and the monthly share of revenue after triggered and mass messages.",
    ),
}


class LazyGroup(TyperGroup):
    """The top-level group: the commands of SUBCOMMANDS are built from their module on first use, and listed in its
    help by their line alone."""

    _listing = False

    def format_help(self, ctx: typer.Context, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in SUBCOMMANDS if name not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name not in self.commands and cmd_name in SUBCOMMANDS:
            module, attribute, line = SUBCOMMANDS[cmd_name]
            if self._listing:
                return click.Command(cmd_name, help=line)
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
