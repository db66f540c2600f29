"""`boomerang import KIND PATH`: the importers, with a progress bar and a summary."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from boomerang.cli.output import Bar, console, emit_json, failures, home, workspace

app = typer.Typer(
    help="Import files into the workspace (idempotent: the same file twice changes nothing).", no_args_is_help=True
)
PathArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the file to import")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


def _run(ctx: typer.Context, kind: str, path: Path, as_json: bool, **options) -> None:
    from importlib import import_module

    module = import_module(f"boomerang.events.importers.{kind}")
    with failures():
        ws = workspace(ctx)
        started = time.perf_counter()
        with Bar(enabled=not as_json) as bar:
            if kind == "events_jsonl":
                options["limits"] = ws.settings.ingest
            result = module.run(ws.uow, ws.log, path, now=ws.now(), progress=bar, **options)
        summary = {
            "kind": kind.replace("_", "-"),
            "path": str(path),
            "home": home(ws),
            **asdict(result),
            "seconds": round(time.perf_counter() - started, 2),
        }
    if as_json:
        emit_json(summary)
    else:
        counts = ", ".join(
            f"{v:,} {k.replace('_', ' ')}"
            for k, v in summary.items()
            if isinstance(v, int) and not isinstance(v, bool) and v and k != "seconds"
        )
        console.print(
            f"[green]imported[/] {escape(path.name)}: {counts or 'nothing new'} in {summary['seconds']} s\n"
            f"workspace: {escape(summary['home'])}",
            highlight=False,
        )


@app.command("online-retail")
def online_retail(
    ctx: typer.Context,
    path: PathArg,
    timezone: Annotated[str, typer.Option(help="the shop's time zone; InvoiceDate is local time")] = "Europe/London",
    as_json: JsonOpt = False,
) -> None:
    """The UCI Online Retail invoice file (CSV, optionally gzipped)."""
    _run(ctx, "online_retail", path, as_json, timezone=timezone)


@app.command()
def cdnow(ctx: typer.Context, path: PathArg, as_json: JsonOpt = False) -> None:
    """CDNOW_master.txt or CDNOW_sample.txt."""
    _run(ctx, "cdnow", path, as_json)


@app.command()
def orders(
    ctx: typer.Context,
    path: PathArg,
    customer: Annotated[str, typer.Option(help="column with the customer id")],
    date: Annotated[str, typer.Option(help="column with the order date")],
    amount: Annotated[str, typer.Option(help="column with the line amount")],
    order_id: Annotated[str, typer.Option("--order-id", help="column with the order id")],
    product: Annotated[str | None, typer.Option(help="column with the product sku")] = None,
    quantity: Annotated[str | None, typer.Option(help="column with the quantity")] = None,
    price: Annotated[
        str | None, typer.Option(help="column with the product's list price (default: amount / quantity)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="column with the product name")] = None,
    category: Annotated[str | None, typer.Option(help="column with the product category")] = None,
    date_format: Annotated[str | None, typer.Option("--date-format", help="strptime format; ISO when omitted")] = None,
    currency: Annotated[str | None, typer.Option(help="currency code of the amounts")] = None,
    delimiter: Annotated[str, typer.Option(help="field delimiter")] = ",",
    timezone: Annotated[str, typer.Option(help="time zone of the dates")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """A generic orders CSV, with the columns named by options."""
    _run(
        ctx,
        "orders_csv",
        path,
        as_json,
        customer=customer,
        date=date,
        amount=amount,
        order_id=order_id,
        product=product,
        quantity=quantity,
        price=price,
        name=name,
        category=category,
        date_format=date_format,
        currency=currency,
        delimiter=delimiter,
        timezone=timezone,
    )


@app.command()
def events(ctx: typer.Context, path: PathArg, as_json: JsonOpt = False) -> None:
    """JSON lines, one Segment message (track, identify, page, ...) per line."""
    _run(ctx, "events_jsonl", path, as_json)


@app.command()
def catalog(
    ctx: typer.Context,
    path: PathArg,
    format: Annotated[str | None, typer.Option(help="csv or yml; from the file name when omitted")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A product feed: CSV, or YML (Yandex Market Language)."""
    _run(ctx, "catalog", path, as_json, format=format)
