"""`boomerang codes`: promo code pools, bulk generation (with a progress bar), uploads from another system, a pool's
stock and validating a code."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from boomerang.cli.output import Bar, console, emit_json, failures, readable, table, transaction
from boomerang.core.errors import ValidationFailed
from boomerang.loyalty import codes, codes_redeem

app = typer.Typer(help="Promo codes: pools, generation, uploads and validation.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
PoolArg = Annotated[str, typer.Argument(help="the pool's name", show_default=False)]


def _show(pools: list[dict]) -> None:
    grid = table("pool", "kind", "discount", "min order", "uses/code", "codes", "unused", "used", "valid until")
    for p in pools:
        grid.add_row(
            p["name"],
            p["kind"],
            f"{p['discount_kind']} {p['value']:g}",
            f"{p['min_order']:g}",
            str(p["uses_per_code"]),
            f"{p['codes']:,}",
            f"{p['unused']:,}",
            f"{p['uses']:,}",
            readable(p["valid_until"]),
        )
    console.print(grid)
    for p in pools:
        if p["low_stock"]:
            console.print(
                f"[red]low stock[/]: {p['name']} has {p['unused']:,} unused codes, below {p['low_stock_alert']:,}",
                highlight=False,
            )


@app.command()
def pools(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every pool with its counts; a pool whose unused codes fell below its alert says so."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = codes.list_pools(session, now=ws.now())
    if as_json:
        emit_json(data)
        return
    _show(data)


@app.command("create-pool")
def create_pool(
    ctx: typer.Context,
    name: PoolArg,
    kind: Annotated[str, typer.Option(help="generated or uploaded")] = "generated",
    discount: Annotated[str, typer.Option(help="percent, fixed, free_shipping or points_multiplier")] = "percent",
    value: Annotated[float, typer.Option(help="the percent, the amount or the multiplier")] = 10.0,
    min_order: Annotated[float, typer.Option(help="the least order total the code applies to")] = 0.0,
    uses: Annotated[int, typer.Option("--uses", help="uses per code")] = 1,
    prefix: Annotated[str, typer.Option(help="what every code starts with, e.g. SPRING-")] = "",
    valid_from: Annotated[datetime | None, typer.Option(help="not valid before")] = None,
    valid_until: Annotated[datetime | None, typer.Option(help="not valid from")] = None,
    low_stock: Annotated[int | None, typer.Option(help="warn when fewer unused codes are left")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A new pool of codes and the discount they give."""
    spec = {
        "name": name,
        "kind": kind,
        "discount_kind": discount,
        "value": value,
        "min_order": min_order,
        "uses_per_code": uses,
        "prefix": prefix,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "low_stock_alert": low_stock,
    }
    with failures():
        with transaction(ctx) as (ws, session):
            data = codes.create_pool(session, spec, now=ws.now())
    if as_json:
        emit_json(data)
        return
    _show([data])


@app.command()
def generate(
    ctx: typer.Context,
    pool: PoolArg,
    count: Annotated[int, typer.Argument(help="how many codes", show_default=False)],
    length: Annotated[int, typer.Option(help="symbols after the prefix (11 or more)")] = codes.DEFAULT_LENGTH,
    as_json: JsonOpt = False,
) -> None:
    """COUNT new unguessable codes in the pool, in one transaction."""
    with failures():
        with Bar(enabled=not as_json) as bar, transaction(ctx) as (ws, session):
            bar.start(count, f"generating {pool}")
            data = codes.generate(session, pool, count, length=length, now=ws.now(), progress=bar.advance)
    if as_json:
        emit_json(data)
        return
    console.print(f"{data['generated']:,} codes made in [bold]{pool}[/]", highlight=False)
    _show([data])


@app.command()
def upload(
    ctx: typer.Context,
    pool: PoolArg,
    file: Annotated[Path, typer.Argument(help="a text or CSV file: a code a line", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Codes from another system into the pool; repeats and known codes are skipped."""
    with failures():
        if not file.is_file():
            raise ValidationFailed([{"field": "file", "reason": f"{file} does not exist"}])
        given = codes.parse_upload(file.read_text("utf-8"))
        with transaction(ctx) as (ws, session):
            data = codes.upload(session, pool, given, now=ws.now())
    if as_json:
        emit_json(data)
        return
    console.print(f"{data['uploaded']:,} codes added, {data['skipped']:,} skipped", highlight=False)
    _show([data])


@app.command()
def show(ctx: typer.Context, pool: PoolArg, as_json: JsonOpt = False) -> None:
    """The pool, its counts and whether its stock is low."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = codes.show_pool(session, pool, now=ws.now())
    if as_json:
        emit_json(data)
        return
    _show([data])


@app.command()
def validate(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="the code", show_default=False)],
    customer: Annotated[str | None, typer.Option(help="the customer's id, external id or email")] = None,
    total: Annotated[float, typer.Option(help="the order's total")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """The discount CODE gives this customer's order, or why it does not apply."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = codes_redeem.validate(session, code, customer, total, now=ws.now())
    if as_json:
        emit_json(data)
        return
    console.print(
        f"[bold]{data['code']}[/] ({data['pool']}): {data['discount_kind']} {data['value']:g}, "
        f"{data['discount']:g} off this order; {data['uses_left']:,} uses left",
        highlight=False,
    )
