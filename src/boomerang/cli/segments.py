"""`boomerang segments ...`: define, preview, explain, materialise and list behavioural segments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from boomerang.cli.output import (
    console,
    definitions,
    emit_json,
    failures,
    hint,
    readable,
    table,
    transaction,
    workspace,
)

app = typer.Typer(help="Behavioural segments: rules as data, live membership, explain.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="evaluate as of the end of this day, YYYY-MM-DD")]


def _target(target: str) -> str | dict[str, Any]:
    """A saved segment's name, or the definition in a JSON/YAML file (for previews)."""
    path = Path(target)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.is_file():
        return definitions(path)[0]
    return target


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The segments with their size at the last recompute."""
    from boomerang.segments import service

    with failures():
        with transaction(ctx) as (_, session):
            rows = service.list_segments(session)
    if as_json:
        return emit_json(rows)
    grid = table("segment", "title", "members", "refreshed", "version", title="Segments")
    for r in rows:
        grid.add_row(
            r["name"],
            r["title"],
            "-" if r["size"] is None else f"{r['size']:,}",
            (r["refreshed_at"] or "never")[:19],
            str(r["version"]),
        )
    console.print(grid)


@app.command()
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON or YAML: one definition or a list")],
    as_json: JsonOpt = False,
) -> None:
    """Save the definitions in FILE (a changed definition becomes a new version)."""
    from boomerang.segments import service

    with failures():
        with transaction(ctx) as (ws, session):
            saved = [service.save(session, raw, now=ws.now()) for raw in definitions(file)]
    if as_json:
        return emit_json(saved)
    for s in saved:
        console.print(f"{s['name']}: version {s['version']}" + ("" if s["changed"] else " (unchanged)"))


@app.command()
def install(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Save the ready-made segments (new customers, sleeping, churned, high value, cart abandoners...)."""
    from boomerang.segments import library

    with failures():
        with transaction(ctx) as (ws, session):
            saved = library.install(session, now=ws.now())
    if as_json:
        return emit_json(saved)
    console.print(f"installed {len(saved)} segments: {', '.join(s['name'] for s in saved)}")


@app.command()
def preview(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="a segment name or a definition file")],
    as_of: AsOfOpt = None,
    sample: int = 10,
    as_json: JsonOpt = False,
) -> None:
    """Size and a sample of members, without saving."""

    with failures():
        ws = workspace(ctx)
        result = ws.segments.preview(_target(target), as_of=as_of, sample=sample)
    if as_json:
        return emit_json(result)
    share = f" ({result['share']:.1%} of {result['customers']:,})" if result["share"] is not None else ""
    console.print(
        f"[bold]{result['name']}[/] as of {result['as_of'][:19]}: {result['size']:,} members{share} "
        f"in {result['seconds']} s"
    )
    for cid in result["sample"]:
        console.print(f"  {cid}")


@app.command()
def explain(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="a segment name or a definition file")],
    customer: Annotated[str, typer.Argument(help="a customer id")],
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Why CUSTOMER is or is not in the segment, condition by condition, with the values seen."""

    with failures():
        ws = workspace(ctx)
        result = ws.segments.explain(_target(target), customer, as_of=as_of)
    if as_json:
        return emit_json(result)
    verdict = "[green]is a member[/]" if result["member"] else "[red]is not a member[/]"
    tree = Tree(
        f"{customer} {verdict} of [bold]{result['segment']}[/] as of {result['as_of'][:19]}"
        + ("" if result["existed"] else " (not yet a customer then)")
    )
    _grow(tree, result["rule"])
    console.print(tree)


def _grow(parent: Tree, node: dict[str, Any]) -> None:
    mark = "[green]yes[/]" if node["passed"] else "[red]no[/]"
    if node["op"] == "condition":
        parent.add(f"{mark} {escape(readable(node['condition']))}  [dim](value: {escape(readable(node['value']))})[/]")
        return
    label = f"segment {node['segment']}" if node["op"] == "segment" else node["op"]
    branch = parent.add(f"{mark} [bold]{label}[/]")
    for child in node["children"]:
        _grow(branch, child)


@app.command()
def members(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="a segment name or a definition file")],
    as_of: AsOfOpt = None,
    out: Annotated[Path | None, typer.Option(help="write the customer ids to this CSV file")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every member's customer id (computed now, or as of a date)."""

    with failures():
        ws = workspace(ctx)
        frame = ws.segments.members(_target(target), as_of=as_of)
    if out is not None:
        frame.to_csv(out, index=False)
    if as_json:
        return emit_json(
            {
                "size": len(frame),
                "out": str(out) if out else None,
                "customer_ids": frame["customer_id"].tolist() if out is None else None,
            }
        )
    if out is not None:
        console.print(f"{len(frame):,} members -> {out}")
    else:
        for cid in frame["customer_id"]:
            console.print(cid, highlight=False)


@app.command()
def refresh(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="segments (default: all)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute membership and record who entered and who left (as Segment Entered/Exited events)."""
    from rich.progress import track

    from boomerang.cli.output import errors
    from boomerang.segments import membership, service

    with failures():
        with transaction(ctx) as (ws, session):
            names = names or [s["name"] for s in service.list_segments(session)]
        rows = [
            row
            for name in track(names, description="recomputing", console=errors, disable=as_json)
            for row in membership.refresh(ws.segments, [name])
        ]
    if as_json:
        return emit_json(rows)
    grid = table("segment", "members", "entered", "exited", "seconds", title="Refreshed")
    for r in rows:
        if "error" in r:
            grid.add_row(r["name"], f"[red]{escape(hint(r['error']))}[/]", "", "", "")
        else:
            grid.add_row(r["name"], f"{r['size']:,}", f"{r['entered']:,}", f"{r['exited']:,}", f"{r['seconds']:.2f}")
    console.print(grid)


@app.command()
def history(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """The size after each recompute."""
    from boomerang.segments import service

    with failures():
        with transaction(ctx) as (_, session):
            rows = service.history(session, name)
    if as_json:
        return emit_json(rows)
    grid = table("at", "members", "entered", "exited", title=f"{name}: size history")
    for r in rows:
        grid.add_row(r["at"][:19], f"{r['size']:,}", f"{r['entered']:,}", f"{r['exited']:,}")
    console.print(grid)


@app.command()
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a segment, its members and its history (refused while another segment uses it)."""
    from boomerang.segments import service

    with failures():
        with transaction(ctx) as (_, session):
            service.delete(session, name)
    console.print(f"deleted {name}")


@app.command()
def matrix(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Segment x goal x channel: who is spoken to, for what, where; the holes flagged."""
    from boomerang.journeys import matrix as m

    with failures():
        with transaction(ctx) as (_, session):
            result = m.matrix(session)
    if as_json:
        return emit_json(result)
    grid = table("segment", "members", "goals", "channels", "flags", title="Segment x goal x channel")
    for r in result["rows"]:
        grid.add_row(
            r["segment"],
            "-" if r["size"] is None else f"{r['size']:,}",
            ", ".join(r["goals"]) or "-",
            ", ".join(r["channels"]) or "-",
            "[red]" + escape(hint("; ".join(r["flags"]))) + "[/]" if r["flags"] else "ok",
        )
    console.print(grid)
    console.print(f"{result['holes']} of {len(result['rows'])} segments flagged")
