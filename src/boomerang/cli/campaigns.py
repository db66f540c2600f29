"""`boomerang campaigns ...`: one-off and scheduled sends to a segment, and their results."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from boomerang.cli.output import console, definitions, emit_json, failures, table, transaction

app = typer.Typer(
    help="Campaigns: a message to a segment, now or later, with A/B variants and a holdout.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The campaigns with their status and audience."""
    from boomerang.messaging import campaigns

    with failures():
        with transaction(ctx) as (_, session):
            rows = campaigns.listing(session)
    if as_json:
        return emit_json(rows)
    grid = table(
        "campaign", "status", "segment", "variants", "channels", "scheduled for", "audience", title="Campaigns"
    )
    for r in rows:
        grid.add_row(
            r["name"],
            r["status"],
            r["segment"],
            ", ".join(r["variants"]),
            ", ".join(r["channels"]),
            r["scheduled_for"] or "-",
            f"{r['audience']:,}" if r["audience"] is not None else "-",
        )
    console.print(grid)


@app.command()
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON or YAML: one campaign or a list")],
    as_json: JsonOpt = False,
) -> None:
    """Save campaigns as drafts (a draft or scheduled one may be changed)."""
    from boomerang.messaging import campaigns

    with failures():
        with transaction(ctx) as (ws, session):
            saved = [campaigns.save(session, raw, now=ws.now()) for raw in definitions(file)]
    if as_json:
        return emit_json(saved)
    for s in saved:
        console.print(f"{s['name']}: {s['status']}")


@app.command()
def schedule(
    ctx: typer.Context,
    name: str,
    at: Annotated[datetime | None, typer.Option(help="UTC; default: its send_at, or now")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule a campaign; the worker (or serve) queues its messages when the time comes."""
    from boomerang.messaging import campaigns

    with failures():
        with transaction(ctx) as (ws, session):
            out = campaigns.schedule(session, name, at=at, now=ws.now())
    if as_json:
        return emit_json(out)
    console.print(f"{out['name']}: scheduled for {out['scheduled_for']}")


@app.command()
def cancel(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Stop a campaign; what is still queued is not sent."""
    from boomerang.messaging import campaigns

    with failures():
        with transaction(ctx) as (ws, session):
            out = campaigns.cancel(session, name, now=ws.now())
    if as_json:
        return emit_json(out)
    console.print(f"{out['name']}: {out['status']}")


@app.command()
def stats(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Each variant's delivery, opens and clicks; each against the holdout, the global control group and the
    first variant, with always-valid intervals."""
    from boomerang.cli.results import print_report
    from boomerang.messaging import campaign_results, campaigns

    with failures():
        with transaction(ctx) as (ws, session):
            out = campaigns.stats(session, name)
            share = ws.settings.guards.global_control_share
            out["results"] = campaign_results.results(session, name, global_control_share=share)
    if as_json:
        return emit_json(out)
    console.print(f"[bold]{out['name']}[/] ({out['status']}), audience {out['audience'] or 0:,}")
    grid = table("group", "customers", "sent", "open rate", "click rate")
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    for name_, g in sorted(out["groups"].items()):
        grid.add_row(name_, f"{g['customers']:,}", f"{g['sent']:,}", pct(g["open_rate"]), pct(g["click_rate"]))
    console.print(grid)
    print_report("Within the attribution window", out["results"])
