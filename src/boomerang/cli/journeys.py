"""`boomerang journeys ...` and `boomerang worker`: define, activate, run and measure trigger journeys."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from boomerang.cli.output import (
    command_name,
    console,
    definitions,
    emit_json,
    failures,
    home,
    readable,
    table,
    transaction,
    workspace,
)

app = typer.Typer(help="Trigger journeys: definitions, activation, approvals, results.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The journeys with their status, version and running instances."""
    from boomerang.journeys import service

    with failures():
        with transaction(ctx) as (_, session):
            rows = service.list_journeys(session)
    if as_json:
        return emit_json(rows)
    grid = table("journey", "title", "status", "version", "trigger", "running", title="Journeys")
    for r in rows:
        grid.add_row(r["name"], r["title"], r["status"], str(r["version"]), readable(r["trigger"]), f"{r['running']:,}")
    console.print(grid)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="JSON or YAML: one journey or a list")], as_json: JsonOpt = False
) -> None:
    """Check journey definitions without saving them."""
    from boomerang.journeys.definition import parse_journey

    with failures():
        names = [parse_journey(raw).name for raw in definitions(file)]
    if as_json:
        return emit_json({"valid": names})
    console.print(f"valid: {', '.join(names)}")


@app.command()
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON or YAML: one journey or a list")],
    as_json: JsonOpt = False,
) -> None:
    """Save journeys (new ones as drafts; a changed one becomes a new version, running instances keep theirs)."""
    from boomerang.journeys import service

    with failures():
        with transaction(ctx) as (ws, session):
            saved = [service.save(session, raw, now=ws.now()) for raw in definitions(file)]
    if as_json:
        return emit_json(saved)
    for s in saved:
        console.print(f"{s['name']}: version {s['version']} ({s['status']})" + ("" if s["changed"] else ", unchanged"))


@app.command()
def install(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Save the ready-made journeys as drafts (welcome, abandoned cart, win-back, birthday...)."""
    from boomerang.journeys import library

    with failures():
        with transaction(ctx) as (ws, session):
            saved = library.install(session, now=ws.now())
    if as_json:
        return emit_json(saved)
    console.print(
        f"installed {len(saved)} journeys as drafts: {', '.join(s['name'] for s in saved)}\n"
        f"activate one with: {command_name()} journeys activate NAME"
    )


@app.command()
def simulate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="a saved or ready-made journey, or a JSON/YAML file")],
    date_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day, YYYY-MM-DD")],
    date_to: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last day, included")],
    step_hours: Annotated[float | None, typer.Option(help="act at worker ticks this far apart (faster)")] = None,
    approve: Annotated[bool | None, typer.Option("--approve/--reject", help="answer every approval")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay history through a journey (nothing is written): who enters, messages per customer per week
    alone and with the active journeys, which guards fire."""
    from datetime import timedelta

    from boomerang.journeys.simulate import simulate as run

    with failures():
        ws = workspace(ctx)
        target: Any = definitions(Path(name))[0] if name.endswith((".json", ".yaml", ".yml")) else name
        result = run(
            ws.segments,
            ws.settings.guards,
            target,
            date_from=date_from.date(),
            date_to=date_to.date(),
            step=timedelta(hours=step_hours) if step_hours else None,
            approve=approve,
        )
    if as_json:
        return emit_json(result)
    e, weeks = result["entered"], result["messages"]["per_customer_week"]
    grid = table(
        "",
        "",
        show_header=False,
        title=f"{result['journey']}: {result['from'][:10]} to {result['to'][:10]} (simulated, nothing written)",
    )
    grid.add_row("entered", f"{e['count']:,} ({e['treated']:,} treated, {e['control']:,} control)")
    grid.add_row("outcomes", ", ".join(f"{k} {v:,}" for k, v in result["outcomes"].items() if v) or "-")
    grid.add_row(
        "messages",
        f"{result['messages']['total']:,} ("
        + ", ".join(f"{k} {v:,}" for k, v in result["messages"]["by_node"].items())
        + ")",
    )
    for label, w in (
        ("per customer per week, alone", weeks["alone"]),
        ("... with the active journeys", weeks["together"]),
    ):
        grid.add_row(label, ", ".join(f"{k} {v}" for k, v in w.items()) if isinstance(w, dict) else readable(w))
    g = result["guards"]["journey"]
    grid.add_row(
        "guards",
        f"sent {g['sent']:,}; suppressed "
        + (", ".join(f"{k} {v}" for k, v in g["suppressed"].items()) or "none")
        + "; deferred "
        + (", ".join(f"{k} {v}" for k, v in g["deferred"].items()) or "none"),
    )
    console.print(grid)


def _status(ctx: typer.Context, name: str, status: str, as_json: bool) -> None:
    from boomerang.journeys import service

    with failures():
        with transaction(ctx) as (ws, session):
            row = service.set_status(session, name, status, now=ws.now())
    if as_json:
        return emit_json(row)
    console.print(f"{name} is {row['status']} (version {row['version']})")


@app.command()
def activate(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Start taking customers in."""
    _status(ctx, name, "active", as_json)


@app.command()
def pause(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Take no one new in; customers already inside go on."""
    _status(ctx, name, "paused", as_json)


@app.command()
def enter(
    ctx: typer.Context,
    name: str,
    customer: str,
    key: str | None = None,
    test: Annotated[
        bool, typer.Option(help="a test run: any status, never held out, not counted in the journey's results")
    ] = False,
    speed: Annotated[
        float, typer.Option(min=1, max=86400, help="a test run's waits are this many times shorter (60: 1 h -> 1 min)")
    ] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Put a customer into an active journey now (manual trigger), or try a journey on one customer (--test)."""
    from boomerang.journeys import runtime

    with failures():
        with transaction(ctx) as (ws, session):
            result = runtime.enter_manually(
                session, name, customer, key=key, test_speed=speed if test else None, now=ws.now()
            )
    if as_json:
        return emit_json(result)
    console.print(
        f"{customer} entered {name}{' (test run, waits ' + format(speed, 'g') + 'x shorter)' if test else ''}: "
        f"instance {result['instance']}"
        if result["instance"]
        else f"{customer} did not enter {name}: {result['reason']}"
    )


@app.command()
def stats(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Where instances are and what each node sent; the journey against its control group and the global one,
    per send node and per split variant, with always-valid intervals."""
    from boomerang.cli.results import print_report
    from boomerang.journeys import service

    with failures():
        with transaction(ctx) as (ws, session):
            result = service.stats(session, name)
            share = ws.settings.guards.global_control_share
            result["results"] = service.results(session, name, global_control_share=share)
    if as_json:
        return emit_json(result)
    found = result["results"]
    print_report(f"{name} v{result['version']} ({result['status']})", found["journey"])
    for node, report in found["nodes"].items():
        print_report(f"Node {node}: those who passed it", report)
    for node, report in found["splits"].items():
        print_report(f"Split {node}: its variants", report)
    nodes = table("node", "instances here", "messages", "conversions", "revenue", title="Nodes")
    for node, n in result["nodes"].items():
        nodes.add_row(
            node,
            ", ".join(f"{k} {v}" for k, v in n["here"].items()) or "-",
            ", ".join(f"{k} {v}" for k, v in n["messages"].items()) or "-",
            str(n["conversions"]),
            f"{n['revenue']:,.2f}",
        )
    console.print(nodes)


@app.command()
def approvals(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The approval queue: steps waiting for a person."""
    from boomerang.journeys import service

    with failures():
        with transaction(ctx) as (_, session):
            rows = service.pending_approvals(session)
    if as_json:
        return emit_json(rows)
    grid = table("request", "journey", "node", "customer", "note", "since", title="Waiting for approval")
    for r in rows:
        grid.add_row(r["key"], r["journey"], r["node"], r["customer_id"], r["note"], r["created_at"][:16])
    console.print(grid)


@app.command()
def approve(
    ctx: typer.Context,
    request: str,
    by: Annotated[str, typer.Option(help="who decides")],
    template: Annotated[str | None, typer.Option(help="send this template instead")] = None,
    reject: Annotated[bool, typer.Option(help="reject instead of approving")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve (or --reject) a step waiting in the approval queue."""
    from boomerang.journeys import runtime

    with failures():
        with transaction(ctx) as (ws, session):
            result = runtime.decide(session, request, approved=not reject, by=by, template=template, now=ws.now())
    if as_json:
        return emit_json(result)
    console.print(
        f"{result['status']}: instance {result['instance']} is now at {result['node']} ({result['instance_status']})"
    )


def worker(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="seconds between rounds")] = 1.0,
    once: Annotated[bool, typer.Option(help="one round, then exit")] = False,
    batch: Annotated[int, typer.Option(help="instances per transaction")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Run journey timers, branches, messages and scheduled triggers (several workers share the work on PostgreSQL)."""
    from boomerang import worker as runner
    from boomerang.core import collector
    from boomerang.orchestration import rounds

    with failures():
        ws = workspace(ctx)
        if once:
            result = {
                "tick": rounds.tick(ws, batch=batch),
                "scheduled": rounds.scheduled(ws),
                "forgotten_message_ids": rounds.forget_seen(ws),
            }
            if as_json:
                return emit_json(result)
            for part, done in result.items():
                console.print(f"{part}: {readable(done)}", highlight=False)
            return None
        console.print(f"worker on {home(ws)} (Ctrl-C to stop)")
        collector.tune()
        runner.run_forever(ws, interval=interval, schedule_minutes=ws.settings.segments_refresh_minutes, batch=batch)
