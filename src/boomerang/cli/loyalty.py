"""`boomerang loyalty`: a customer's points and history, manual adjustments, the expiry round and the ledger's
proof."""

from __future__ import annotations

from typing import Annotated

import typer

from boomerang.cli import loyalty_rules
from boomerang.cli.output import console, emit_json, failures, readable, table, transaction, workspace
from boomerang.customers import service as customers
from boomerang.loyalty import liability, service, tiers

app = typer.Typer(help="The loyalty programme's points ledger.", no_args_is_help=True)
app.add_typer(loyalty_rules.app, name="rules")
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
CustomerArg = Annotated[str, typer.Argument(help="the customer's id, external id or email", show_default=False)]


def _customer_id(session, text: str) -> str:
    found = customers.lookup(session, text)
    return found.id if found is not None else text.strip()


@app.command()
def balance(ctx: typer.Context, customer: CustomerArg, as_json: JsonOpt = False) -> None:
    """Points spendable now, pending, held, expiring soon, and the lots they are in."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = service.account(session, _customer_id(session, customer), now=ws.now(), settings=ws.settings.loyalty)
    if as_json:
        emit_json(data)
        return
    unit = data["unit"]
    soon = data["expiring_soon"]
    console.print(
        f"[bold]{data['customer_id']}[/]: {data['balance']:,} {unit} to spend, {data['pending']:,} pending, "
        f"{data['held']:,} held; {soon['points']:,} expire within {soon['within_days']} days"
        + (f" (first {readable(soon['first_at'])})" if soon["first_at"] else ""),
        highlight=False,
    )
    grid = table("lot", "order", "amount", "left", "state", "spendable from", "expires")
    for lot in data["lots"]:
        grid.add_row(
            str(lot["id"]),
            readable(lot["order_id"]),
            f"{lot['amount']:,}",
            f"{lot['remaining']:,}",
            lot["state"],
            readable(lot["available_at"]),
            readable(lot["expires_at"]),
        )
    console.print(grid)


@app.command()
def history(
    ctx: typer.Context,
    customer: CustomerArg,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="the latest this many")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The customer's movements, newest first."""
    with failures():
        with transaction(ctx) as (_, session):
            data = service.history(session, _customer_id(session, customer), limit=limit)
    if as_json:
        emit_json(data)
        return
    grid = table("when", "what", "change", "order", "reference", "reason")
    for item in data["items"]:
        grid.add_row(
            readable(item["at"]),
            item["kind"],
            readable(item["change"]),
            readable(item["order_id"]),
            item["reference"],
            readable(item["reason"]),
        )
    console.print(grid)


@app.command(context_settings={"ignore_unknown_options": True})
def adjust(
    ctx: typer.Context,
    customer: CustomerArg,
    points: Annotated[int, typer.Argument(help="points to add, or (negative) to take", show_default=False)],
    reason: Annotated[str, typer.Option(help="why: kept with the movement")],
    reference: Annotated[str | None, typer.Option(help="makes the adjustment idempotent")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add points (a lot spendable now) or take them (nearest expiry first), with a reason."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = service.adjust(
                session,
                _customer_id(session, customer),
                points,
                reason=reason,
                reference=reference,
                now=ws.now(),
                settings=ws.settings.loyalty,
                source="cli",
            )
    if as_json:
        emit_json(data)
    else:
        done = "added" if data["points"] > 0 else "took"
        again = "" if data["new"] else " (already done: nothing changed)"
        console.print(f"{done} {abs(data['points']):,} points for {data['customer_id']}{again}", highlight=False)


@app.command()
def check(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Replay the ledger and prove every balance, lot and hold right; exit code 1 if anything is off."""
    with failures():
        with transaction(ctx) as (_, session):
            data = service.check(session)
    if as_json:
        emit_json(data)
    else:
        verdict = "[green]ok[/]" if data["ok"] else f"[red]{data['problem_count']} problem(s)[/]"
        console.print(
            f"{verdict}: {data['transactions']:,} transactions, {data['entries']:,} entries, "
            f"{data['customers']:,} customers, {data['lots']:,} lots",
            highlight=False,
        )
        for problem in data["problems"][:20]:
            console.print(readable(problem), highlight=False)
    if not data["ok"]:
        raise typer.Exit(1)


@app.command()
def expire(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Run the expiry round now: pending points that became spendable, lots past expiry, holds past their time."""
    with failures():
        ws = workspace(ctx)
        data = service.expire(ws.uow, ws.now())
    if as_json:
        emit_json(data)
    else:
        moved = ", ".join(f"{n:,} {kind}" for kind, n in data.items() if kind != "customers") or "nothing"
        console.print(f"{data['customers']:,} customers due: {moved}", highlight=False)


@app.command("liability")
def liability_(
    ctx: typer.Context,
    months: Annotated[int, typer.Option(min=1, max=120, help="months of flows behind and expiry ahead")] = 12,
    as_json: JsonOpt = False,
) -> None:
    """What the programme owes: points outstanding and their value, when they expire, the breakage to expect."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            data = liability.report(session, now=ws.now(), settings=ws.settings.loyalty, months=months)
    if as_json:
        emit_json(data)
        return
    unit, rate = data["unit"], data["breakage_rate"]
    console.print(
        f"{data['outstanding']:,} {unit} outstanding ({data['available']:,} spendable, {data['pending']:,} pending) "
        f"held by {data['customers']:,} customers, worth {data['value']:,.2f}; breakage "
        + (f"{rate:.1%} seen, {data['expected_breakage_value']:,.2f} expected" if rate is not None else "not seen yet"),
        highlight=False,
    )
    grid = table("month", f"{unit} expiring")
    for row in data["expiring_by_month"]:
        grid.add_row(row["month"], f"{row['points']:,}")
    console.print(grid)
    grid = table("month", "earned", "redeemed", "expired")
    for row in data["flows_by_month"]:
        grid.add_row(row["month"], *(f"{row[k]:,}" for k in ("earned", "redeemed", "expired")))
    console.print(grid)


@app.command("tiers")
def tiers_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The tiers (lowest first) and how many customers hold each."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            data = tiers.distribution(session, ws.settings.loyalty)
    if as_json:
        emit_json({"tiers": data})
        return
    grid = table("tier", "min spend", "min orders", "multiplier", "customers")
    for tier in data:
        grid.add_row(
            tier["name"],
            f"{tier['min_spend']:,g}",
            str(tier["min_orders"]),
            f"x{tier['multiplier']:g}",
            f"{tier['customers']:,}",
        )
    console.print(grid)


@app.command("traits")
def traits_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Store every customer's tier, points and achievements for segment rules now (the scheduled round does it
    every few minutes)."""
    from boomerang.orchestration import loyalty_traits

    with failures():
        ws = workspace(ctx)
        stored = loyalty_traits.store(ws.uow, ws.log, now=ws.now(), settings=ws.settings.loyalty)
    if as_json:
        emit_json({"trait": loyalty_traits.KIND, "customers": stored})
    else:
        console.print(f"Loyalty traits stored for {stored:,} customers.")
