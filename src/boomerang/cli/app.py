"""The `boomerang` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from boomerang import __version__
from boomerang.cli import campaigns, clv, demo, imports, journeys, keys, messaging, report, segments, telegram, users
from boomerang.cli.output import console, emit_json, failures, workspace

app = typer.Typer(help="Boomerang: bring customers back.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(imports.app, name="import")
app.add_typer(keys.app, name="keys")
app.add_typer(clv.app, name="clv")
app.add_typer(users.app, name="users")
app.add_typer(segments.app, name="segments")
app.add_typer(journeys.app, name="journeys")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(messaging.templates_app, name="templates")
app.add_typer(messaging.channels_app, name="channels")
app.add_typer(messaging.send_app, name="send")
app.add_typer(telegram.app, name="telegram")
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


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Counts of the workspace: customers, orders, revenue, products, events by type."""
    from boomerang.events.flush import flush
    from boomerang.status import summary

    with failures():
        ws = workspace(ctx)
        flush(ws)
        data = summary(ws)
    emit_json(data) if as_json else print_summary(data)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8600)")] = None,
) -> None:
    """Run the API (tracking, REST) and the dashboard in this process until interrupted."""
    run_server(workspace(ctx), host=host, port=port)


def run_server(ws, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from boomerang.api.app import create_app

    host, port = host or ws.settings.host, port or ws.settings.port
    console.print(
        f"Boomerang {__version__} on http://{host}:{port}  (dashboard: /, API docs: /docs, "
        f"workspace: {ws.settings.home})"
    )
    uvicorn.run(create_app(ws), host=host, port=port, log_level="warning", access_log=False)


def main() -> None:
    app()
