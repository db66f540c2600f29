"""`boomerang keys`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from boomerang.auth.service import create_key, list_keys, revoke_key
from boomerang.cli.output import console, emit_json, failures, home, table, workspace

app = typer.Typer(help="API keys: write keys for tracking, secret keys for the REST API.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Option(
            help="write (tracking, safe in a browser), secret (the /api REST API) or identity (signs user ids: identity verification)"
        ),
    ],
    name: Annotated[str, typer.Option(help="a label to tell keys apart")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a key and print it: this is the only time it is shown."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            key, plaintext = create_key(session, kind=kind, name=name, now=ws.now(), secret=ws.secret)
    if as_json:
        emit_json({"id": key.id, "kind": key.kind, "name": key.name, "key": plaintext, "home": home(ws)})
    else:
        console.print(
            f"{key.kind} key [bold]{key.id}[/]: {plaintext}\n"
            f"[dim]Store it now; Boomerang keeps only its hash.\nworkspace: {escape(home(ws))}[/]",
            highlight=False,
        )


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Keys with their prefixes (never the keys themselves)."""
    ws = workspace(ctx)
    with ws.uow.session() as session:
        rows = [
            {
                "id": k.id,
                "kind": k.kind,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in list_keys(session)
        ]
    if as_json:
        emit_json(rows)
        return
    grid = table("id", "kind", "name", "prefix", "created", "revoked")
    for r in rows:
        grid.add_row(
            r["id"], r["kind"], r["name"], r["prefix"] + "…", str(r["created_at"])[:19], str(r["revoked_at"] or "")[:19]
        )
    console.print(grid)


@app.command()
def revoke(ctx: typer.Context, key_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Revoke a key; servers stop accepting it within seconds."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            key = revoke_key(session, key_id, now=ws.now())
    if as_json:
        emit_json({"id": key.id, "revoked_at": key.revoked_at})
    else:
        console.print(f"revoked {key.id}")
