"""`boomerang customers`: privacy requests, everything held about a customer and erasure, and their audit log."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from boomerang.cli.output import console, emit_json, failures, table, transaction
from boomerang.core.errors import ValidationFailed
from boomerang.customers import privacy, service
from boomerang.customers.privacy import audit
from boomerang.customers.privacy.export import sections

app = typer.Typer(
    help="Customers' privacy requests: export everything held about one, erase one.", no_args_is_help=True
)
ACTOR = "cli"
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
CustomerArg = Annotated[str, typer.Argument(help="the customer's id, external id or email", show_default=False)]


def _customer_id(session, text: str) -> str:
    """The profile id behind an id, external id or email (merged-away ids lead to the live profile); an unknown
    one is left for the request to refuse, saying whether it was erased."""
    found = service.lookup(session, text)
    return found.id if found is not None else text.strip()


def _document(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"


def _check(out: Path | None) -> None:
    """Refuse, before anything is exported (and audited), a file that cannot be written."""
    if out is not None and not out.parent.is_dir():
        raise ValidationFailed([{"field": "--out", "reason": f"the folder {out.parent} does not exist"}])
    if out is not None and out.is_dir():
        raise ValidationFailed([{"field": "--out", "reason": f"{out} is a folder: name a .json or .zip file"}])


def _write(out: Path, data: dict[str, Any]) -> None:
    """The document as JSON, or inside a ZIP (customer-ID.json) when the file's name ends with .zip."""
    if out.suffix.lower() == ".zip":
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"customer-{data['customer_id']}.json", _document(data))
    else:
        out.write_bytes(_document(data))


@app.command()
def export(
    ctx: typer.Context,
    customer: CustomerArg,
    out: Annotated[
        Path | None, typer.Option(help="write it to this file (a .zip holds the JSON), not to the screen")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything held about a customer, as one JSON document (recorded in the audit log)."""
    with failures():
        _check(out)
        with transaction(ctx) as (ws, session):
            data = privacy.export(session, ws.log, _customer_id(session, customer), actor=ACTOR, now=ws.now())
        if out is None:
            emit_json(data)
            return
        _write(out, data)
    counts = sections(data)
    if as_json:
        emit_json({"customer_id": data["customer_id"], "out": str(out), "sections": counts})
    else:
        kept = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n)
        console.print(f"exported [bold]{data['customer_id']}[/] to {out}: {kept or 'nothing but the profile'}")


@app.command()
def erase(
    ctx: typer.Context,
    customer: CustomerArg,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: the erasure cannot be undone")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase a customer from both stores: personal data deleted, what analytics counts kept under a pseudonym,
    their email and phone suppressed (recorded in the audit log)."""
    with failures():
        if not yes:
            raise ValidationFailed([{"field": "--yes", "reason": "an erasure cannot be undone: add --yes to confirm"}])
        with transaction(ctx) as (ws, session):
            done = privacy.erase(session, ws.forgetting, _customer_id(session, customer), actor=ACTOR, now=ws.now())
    if as_json:
        emit_json(done)
        return
    console.print(f"erased [bold]{done['customer_id']}[/] ({len(done['profiles'])} profile(s))")
    grid = table("what", "rows", "done")
    for action in ("deleted", "pseudonymised", "ended", "suppressed"):
        for name, n in done[action].items():
            if n:
                grid.add_row(name.replace("_", " "), f"{n:,}", action)
    console.print(grid)


@app.command("audit")
def audit_log(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="only this customer's entries (their id)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="the latest this many")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Who exported or erased which customer's data, and when; newest first."""
    with failures():
        with transaction(ctx) as (_, session):
            rows = [audit.as_dict(e) for e in audit.entries(session, customer_id=customer, limit=limit)]
    if as_json:
        emit_json(rows)
        return
    grid = table("when", "who", "action", "customer")
    for r in rows:
        grid.add_row(str(r["at"])[:19], r["actor"], r["action"], r["customer_id"])
    console.print(grid)
