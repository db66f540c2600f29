"""`boomerang users`: the people who log in to the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from boomerang.auth.users import create_user, disable_user, list_users
from boomerang.cli.output import console, emit_json, failures, table, workspace

app = typer.Typer(help="Dashboard users: viewer, marketer or admin.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Option(help="login name (letters, digits, _ . @ -)")],
    role: Annotated[str, typer.Option(help="viewer (sees every page), marketer, or admin (also manages users)")],
    password: Annotated[
        str | None, typer.Option(help="at least 8 characters (default: a generated one, printed)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a user; without --password one is generated and printed, this once."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            user, plaintext = create_user(session, username=username, role=role, password=password, now=ws.now())
    if as_json:
        emit_json(
            {
                "id": user.id,
                "username": user.username,
                "role": user.role,
                "password": plaintext,
                "created_at": user.created_at,
            }
        )
    elif password is None:
        console.print(f"{user.role} [bold]{user.username}[/] created, password: [bold]{plaintext}[/]")
    else:
        console.print(f"{user.role} [bold]{user.username}[/] created")


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Users with their roles (never their passwords)."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            rows = [
                {
                    "id": u.id,
                    "username": u.username,
                    "role": u.role,
                    "created_at": u.created_at,
                    "disabled_at": u.disabled_at,
                }
                for u in list_users(session)
            ]
    if as_json:
        emit_json(rows)
        return
    grid = table("username", "role", "created", "disabled")
    for r in rows:
        grid.add_row(r["username"], r["role"], str(r["created_at"])[:19], str(r["disabled_at"] or "")[:19])
    console.print(grid)


@app.command()
def disable(ctx: typer.Context, username: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Disable a user: they cannot log in, and their open sessions end at once."""
    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            user = disable_user(session, username, now=ws.now())
    if as_json:
        emit_json({"username": user.username, "disabled_at": user.disabled_at})
    else:
        console.print(f"disabled {user.username}")
