"""The `boomerang` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boomerang import __version__
from boomerang.cli import (
    campaigns,
    clv,
    customers,
    demo,
    experiments,
    imports,
    journeys,
    keys,
    loyalty,
    loyalty_achievements,
    loyalty_codes,
    loyalty_referrals,
    loyalty_rules,
    messaging,
    reco,
    report,
    review,
    segments,
    telegram,
    users,
)
from boomerang.cli.output import console, emit_json, failures, home, print_summary, workspace
from boomerang.cli.server import run_server

app = typer.Typer(help="Boomerang: bring customers back.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(imports.app, name="import")
app.add_typer(keys.app, name="keys")
app.add_typer(clv.app, name="clv")
app.add_typer(users.app, name="users")
app.add_typer(customers.app, name="customers")
app.add_typer(segments.app, name="segments")
app.add_typer(journeys.app, name="journeys")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(experiments.app, name="experiments")
app.add_typer(review.app, name="review")
app.add_typer(messaging.templates_app, name="templates")
app.add_typer(messaging.channels_app, name="channels")
app.add_typer(messaging.send_app, name="send")
app.add_typer(telegram.app, name="telegram")
app.add_typer(loyalty.app, name="loyalty")
loyalty.app.add_typer(loyalty_rules.app, name="rules")
app.add_typer(loyalty_codes.app, name="codes")
app.add_typer(loyalty_achievements.app, name="achievements")
app.add_typer(loyalty_referrals.app, name="referrals")
app.add_typer(reco.app, name="reco")
app.command("messages")(messaging.messages)
app.command()(journeys.worker)
app.command()(demo.demo)
app.command()(report.report)


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
    with failures():
        run_server(workspace(ctx), host=host, port=port)


def main() -> None:
    app()
