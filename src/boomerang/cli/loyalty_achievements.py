"""`boomerang achievements`: the achievements and missions (list, show, add from a file or options, turn on and
off, archive), a customer's progress and badges, and recounting progress from the event log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from boomerang.cli.output import console, definitions, emit_json, failures, readable, table, transaction, workspace
from boomerang.loyalty import achievements_store as store
from boomerang.loyalty import checkout
from boomerang.loyalty.achievements_rules import describe, from_fields
from boomerang.orchestration import achievements as history

app = typer.Typer(help="Achievements and missions: badges and points for what customers do.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
KeyArg = Annotated[str, typer.Argument(help="the achievement's key", show_default=False)]


def _show(items: list[dict]) -> None:
    grid = table("key", "badge", "title", "rule", "points", "on", "earned", "on the way", "valid until")
    for a in items:
        state = "archived" if a["archived_at"] else "yes" if a["active"] else "no"
        grid.add_row(
            a["key"],
            a["badge"],
            a["title"],
            describe(a["condition"]),
            f"{a['points']:,}",
            state + (" (ready-made)" if a["ready_made"] and not a["stored"] else ""),
            f"{a['earned']:,}",
            f"{a['in_progress']:,}",
            readable(a["valid_until"]),
        )
    console.print(grid)


def _one(ctx: typer.Context, as_json: bool, act) -> None:
    with failures():
        with transaction(ctx) as (ws, session):
            data = act(ws, session)
    if as_json:
        emit_json(data)
        return
    _show([data])


@app.command("list")
def list_(
    ctx: typer.Context,
    archived: Annotated[bool, typer.Option("--archived", help="archived ones too")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every achievement with how many customers earned it; the ready-made ones are off until turned on."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = store.catalogue(session, archived=archived)
    if as_json:
        emit_json(data)
        return
    _show(data)


@app.command()
def show(ctx: typer.Context, key: KeyArg, as_json: JsonOpt = False) -> None:
    """One achievement, its rule and how many earned it."""
    _one(ctx, as_json, lambda ws, s: store.show(s, key))


@app.command()
def add(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="a YAML or JSON file: one achievement or a list")] = None,
    key: Annotated[str | None, typer.Option(help="a-z, 0-9, _ and -")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    badge: Annotated[str | None, typer.Option(help="an emoji or a short label")] = None,
    points: Annotated[int | None, typer.Option(help="awarded once, when earned")] = None,
    event: Annotated[str | None, typer.Option(help='the event that counts, or "$identify"')] = None,
    where: Annotated[list[str] | None, typer.Option(help="a property filter, path=value ('*': present)")] = None,
    count: Annotated[int | None, typer.Option(help="how many events (or distinct values)")] = None,
    distinct: Annotated[str | None, typer.Option(help="count distinct values of this property")] = None,
    within_days: Annotated[int | None, typer.Option(help="all of them within this many days")] = None,
    once_per: Annotated[str | None, typer.Option(help="count once per value of this property, e.g. order_id")] = None,
    valid_from: Annotated[datetime | None, typer.Option(help="events from (UTC)")] = None,
    valid_until: Annotated[datetime | None, typer.Option(help="events until (UTC)")] = None,
    active: Annotated[bool, typer.Option("--active/--off", help="count from now on")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="replace one with the same key")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A new achievement from FILE, or from the options (off unless --active)."""
    fields = {
        "key": key,
        "title": title,
        "description": description,
        "badge": badge,
        "points": points,
        "event": event,
        "where": ",".join(where) if where else None,
        "count": count,
        "distinct": distinct,
        "within_days": within_days,
        "once_per": once_per,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    with failures():
        specs = definitions(file) if file is not None else [from_fields(fields) | {"active": active}]
        with transaction(ctx) as (ws, session):
            data = [_save(session, spec, replace, ws.now()) for spec in specs]
    if as_json:
        emit_json(data if file is not None else data[0])
        return
    _show(data)


def _save(session, spec: Any, replace: bool, now: datetime) -> dict:
    key = spec.get("key") if isinstance(spec, dict) else None
    if replace and isinstance(key, str) and store.stored(session, key):
        return store.update(session, key, spec, now=now)
    return store.create(session, spec, now=now)


@app.command()
def enable(ctx: typer.Context, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Turn KEY on: events from now count towards it (`rebuild` counts the past)."""
    _one(ctx, as_json, lambda ws, s: store.set_active(s, key, True, now=ws.now()))


@app.command()
def disable(ctx: typer.Context, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Turn KEY off: events stop counting; progress and badges stay."""
    _one(ctx, as_json, lambda ws, s: store.set_active(s, key, False, now=ws.now()))


@app.command()
def archive(ctx: typer.Context, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Retire KEY: it counts no more and leaves the list; customers keep the badges earned."""
    _one(ctx, as_json, lambda ws, s: store.archive(s, key, now=ws.now()))


@app.command()
def progress(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="the customer's id, user id or email", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """CUSTOMER's badges and their progress towards every achievement on."""
    with failures():
        with transaction(ctx) as (ws, session):
            cid = checkout.customer(session, customer)
            data = {"customer_id": cid, "items": store.progress(session, cid, now=ws.now())}
    if as_json:
        emit_json(data)
        return
    grid = table("badge", "key", "title", "progress", "points", "earned")
    for item in data["items"]:
        grid.add_row(
            item["badge"],
            item["key"],
            item["title"],
            f"{item['count']}/{item['target']}",
            f"{item['points']:,}",
            readable(item["earned_at"]) if item["earned"] else "",
        )
    console.print(grid)


@app.command()
def rebuild(
    ctx: typer.Context,
    key: Annotated[list[str] | None, typer.Option("--key", help="only this achievement (repeatable)")] = None,
    tell: Annotated[bool, typer.Option("--tell", help="log Achievement Earned for what this earns")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recount, from the event log, the progress of customers who have not earned the achievements on yet, and
    award what that earns (once, as always)."""
    with failures():
        data = history.rebuild(workspace(ctx), key or None, tell=tell)
    if as_json:
        emit_json(data)
        return
    console.print(
        f"{data['events']:,} events counted towards {', '.join(data['achievements']) or 'nothing'}: "
        f"{data['earned']:,} earned",
        highlight=False,
    )
