"""`boomerang loyalty rules`: the earn rules in force, their versions, a new version from a file, and a dry run of
proposed rules against a past period."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from boomerang.cli.output import Bar, console, definitions, emit_json, failures, readable, table, transaction, workspace
from boomerang.core.errors import ValidationFailed
from boomerang.loyalty import rule_versions, rules

app = typer.Typer(help="The earn rules: what orders and bonuses earn, versioned, with a dry run.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
FileArg = Annotated[Path, typer.Argument(help="the rules, a JSON or YAML file", show_default=False)]


def _read(file: Path) -> rules.EarnRules:
    found = definitions(file)
    if len(found) != 1:
        raise ValidationFailed([{"field": "file", "reason": "holds one set of rules, not a list"}])
    return rules.parse(found[0])


@app.command()
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The rules in force and their version."""
    with failures():
        with transaction(ctx) as (ws, session):
            version, current = rule_versions.current(session, ws.settings.loyalty)
    data = {"version": version, "rules": current.model_dump(mode="json")}
    if as_json:
        return emit_json(data)
    console.print(f"[bold]Earn rules, version {version}[/]" + (" (the settings' cashback)" if not version else ""))
    console.print(describe(current, ws.settings.loyalty.unit_name), highlight=False)


@app.command("set")
def set_(
    ctx: typer.Context,
    file: FileArg,
    note: Annotated[str, typer.Option(help="why they change")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Put the rules in FILE in force as a new version."""
    with failures():
        new = _read(file)
        with transaction(ctx) as (ws, session):
            saved = rule_versions.save(session, new, note=note, author="cli", now=ws.now())
    if as_json:
        return emit_json(saved)
    console.print(f"Earn rules version {saved['version']} is in force.")


@app.command()
def versions(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every version, newest first."""
    with failures():
        with transaction(ctx) as (_, session):
            rows = rule_versions.listing(session)
    if as_json:
        return emit_json(rows)
    grid = table("version", "since", "by", "note", title="Earn rules")
    for r in rows:
        grid.add_row(str(r["version"]), readable(r["created_at"]), readable(r["author"]), readable(r["note"]))
    console.print(grid)


@app.command("dry-run")
def dry_run(
    ctx: typer.Context,
    file: FileArg,
    days: Annotated[int, typer.Option(min=1, max=1098, help="the period: this many days before --until")] = 90,
    until: Annotated[str | None, typer.Option(help="the period's end, YYYY-MM-DD (default: now)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What the rules in FILE would have awarded and cost over a past period, beside the rules in force."""
    from boomerang.orchestration import loyalty_dry_run

    with failures():
        proposed = _read(file)
        ws = workspace(ctx)
        end = _day(until) if until else ws.now()
        with Bar(enabled=not as_json) as bar:
            data = loyalty_dry_run.run(
                ws.uow,
                ws.log,
                proposed,
                since=end - timedelta(days=days),
                until=end,
                settings=ws.settings.loyalty,
                progress=bar,
            )
    if as_json:
        return emit_json(data)
    print_comparison(data)


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d") + timedelta(days=1)
    except ValueError:
        raise ValidationFailed([{"field": "until", "reason": "must be a date, YYYY-MM-DD"}]) from None


def print_comparison(data: dict[str, Any]) -> None:
    unit = data["unit"]
    grid = table(
        "",
        f"in force (v{data['current_version']})",
        "proposed",
        "difference",
        title=f"Dry run, {readable(data['since'])} to {readable(data['until'])}",
    )
    now, new, diff = data["current"], data["proposed"], data["difference"]
    for key, label in (
        ("points", f"{unit} awarded"),
        ("cost", "their value"),
        ("net_points", f"{unit} kept after returns"),
        ("net_cost", "their value"),
        ("orders", "orders earning"),
        ("customers", "customers earning"),
    ):
        grid.add_row(label, f"{now[key]:,}", f"{new[key]:,}", f"{diff[key]:+,}")
    for kind in sorted(set(now["bonuses"]) | set(new["bonuses"])):
        grid.add_row(
            f"bonus: {kind.replace('_', ' ')}",
            f"{now['bonuses'].get(kind, 0):,}",
            f"{new['bonuses'].get(kind, 0):,}",
            "",
        )
    console.print(grid)


def describe(r: rules.EarnRules, unit: str) -> str:
    """The rules in words, a line each."""
    lines = [f"{r.base_percent:g}% of every paid order back as {unit}"]
    lines += [f"{c.percent:g}% on {c.category or c.brand}" for c in r.cashback]
    lines += [f"x{c.multiplier:g} from {readable(c.starts)} until {readable(c.ends)}: {c.name}" for c in r.campaigns]
    lines += [f"{b.points:,} {unit} for {b.kind.replace('_', ' ')}" for b in r.bonuses]
    if r.caps.per_order:
        lines.append(f"at most {r.caps.per_order:,} {unit} an order")
    if r.caps.per_day:
        lines.append(f"at most {r.caps.per_day:,} {unit} a customer a day")
    excluded = [
        *(["gift cards"] if r.exclude.gift_cards else []),
        *(["discounted items"] if r.exclude.discounted_items else []),
    ]
    excluded += r.exclude.categories + r.exclude.skus
    if excluded:
        lines.append("nothing for " + ", ".join(excluded))
    return "\n".join(lines)
