"""`boomerang templates|channels|send|messages ...`: message templates, channel settings, sending, the log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from boomerang.cli.output import (
    console,
    definitions,
    emit_json,
    failures,
    readable,
    rule,
    table,
    transaction,
    workspace,
)
from boomerang.core.errors import ValidationFailed

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
templates_app = typer.Typer(help="Message templates: locales and a form per channel.", no_args_is_help=True)
channels_app = typer.Typer(
    help="Channel providers and their settings (secrets stored encrypted).", no_args_is_help=True
)
send_app = typer.Typer(help="Send a message now.", no_args_is_help=True)


@templates_app.command("list")
def templates_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The templates with their topic, locales and channels."""
    from boomerang.messaging import service

    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            rows = service.listing(session)
    if as_json:
        return emit_json(rows)
    grid = table("template", "title", "topic", "locales", "channels", "version", title="Templates")
    for r in rows:
        grid.add_row(
            r["name"],
            r["title"],
            r["topic"] or "-",
            ", ".join(r["locales"]),
            ", ".join(r["channels"]),
            str(r["version"]),
        )
    console.print(grid)


@templates_app.command("create")
def templates_create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON or YAML: one template or a list")],
    as_json: JsonOpt = False,
) -> None:
    """Save templates (a changed one gets a new version; one that live journeys or campaigns send must render for
    the shop's customers)."""
    from boomerang.journeys import live_templates
    from boomerang.messaging import service

    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            saved = [
                service.as_dict(live_templates.save(session, ws.settings.messaging, raw, now=ws.now()))
                for raw in definitions(file)
            ]
    if as_json:
        return emit_json(saved)
    for t in saved:
        console.print(f"{t['name']}: version {t['version']}")


@templates_app.command("install")
def templates_install(
    ctx: typer.Context,
    replace: Annotated[bool, typer.Option(help="overwrite edited ones")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Save the ready-made templates (en, ru, uk) that are missing."""
    from boomerang.messaging import service

    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            saved = service.install(session, now=ws.now(), replace=replace)
    if as_json:
        return emit_json({"installed": saved})
    console.print(f"installed {len(saved)} templates" + (f": {', '.join(saved)}" if saved else ""))


@templates_app.command("preview")
def templates_preview(
    ctx: typer.Context,
    name: str,
    customer: Annotated[str | None, typer.Option(help="render with this customer's data")] = None,
    channel: Annotated[list[str] | None, typer.Option(help="only these channels")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A template rendered per channel, with a customer's data (or a sample customer's)."""
    from boomerang.messaging import delivery

    with failures():
        with transaction(ctx) as (ws, session):
            out = delivery.preview(
                session,
                ws.settings.messaging,
                name,
                customer_id=customer,
                channels=channel,
                now=ws.now(),
                recommend=ws.recommend_in_messages,
            )
    if as_json:
        return emit_json(out)
    console.print(f"[bold]{out['template']}[/] in {out['locale']}")
    for name_, c in out["channels"].items():
        rule(name_)
        if "error" in c:
            console.print(f"[red]{c['error']}[/]")
            continue
        if c.get("subject"):
            console.print(f"[bold]{c['subject']}[/]")
        console.print(c["text"], markup=False, highlight=False)
        for b in c["buttons"]:
            console.print(f"[{b['label']}] -> {b['url']}", markup=False)


@channels_app.command("list")
def channels_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every channel with its provider and settings (secrets masked)."""
    from boomerang.channels import config

    with failures():
        ws = workspace(ctx)
        with ws.uow.session() as session:
            rows = [config.describe(session, c, secret=ws.secret) for c in config.PROVIDERS]
    if as_json:
        return emit_json(rows)
    grid = table("channel", "provider", "enabled", "settings", title="Channels")
    for r in rows:
        grid.add_row(r["channel"], r["provider"], "yes" if r["enabled"] else "no", readable(r["config"]))
    console.print(grid)


@channels_app.command("set")
def channels_set(
    ctx: typer.Context,
    channel: str,
    provider: str,
    values: Annotated[list[str] | None, typer.Argument(help="key=value settings")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="keep it switched off")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Choose a channel's provider and settings, e.g. `channels set email smtp host=mail port=587 password=...`."""
    from boomerang.channels import config

    with failures():
        pairs = {}
        for item in values or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValidationFailed([{"field": item, "reason": "settings are key=value"}])
            pairs[key] = value
        ws = workspace(ctx)
        with ws.uow.session() as session:
            config.save(session, channel, provider, pairs, secret=ws.secret, enabled=not disabled, now=ws.now())
            out = config.describe(session, channel, secret=ws.secret)
    if as_json:
        return emit_json(out)
    console.print(f"{channel}: {provider} ({'enabled' if out['enabled'] else 'disabled'})")


@channels_app.command("vapid-keys")
def vapid_keys(as_json: JsonOpt = False) -> None:
    """A new VAPID key pair for web push: `channels set webpush vapid vapid_private_key=... vapid_public_key=...
    subject=mailto:you@shop`."""
    from boomerang.channels.webpush import generate_vapid_keys

    private, public = generate_vapid_keys()
    if as_json:
        return emit_json({"vapid_private_key": private, "vapid_public_key": public})
    console.print(f"vapid_private_key={private}\nvapid_public_key={public}", highlight=False)


@send_app.command("test")
def send_test(
    ctx: typer.Context,
    channel: Annotated[str, typer.Option(help="email, sms, telegram, webpush, inapp")],
    customer: Annotated[str, typer.Option(help="customer id")],
    template: Annotated[str, typer.Option(help="template name")],
    as_json: JsonOpt = False,
) -> None:
    """Send a template to one customer now (consent and an address are still required)."""
    from boomerang.messaging import delivery

    with failures():
        ws = workspace(ctx)
        out = delivery.send_test(ws.dispatcher, channel=channel, customer_id=customer, template=template, now=ws.now())
    if as_json:
        return emit_json(out)
    colour = "green" if out["status"] == "sent" else "red"
    console.print(
        f"[{colour}]{out['status']}[/] on {out['channel'] or channel}" + (f": {out['reason']}" if out["reason"] else "")
    )
    if out["status"] != "sent":
        raise typer.Exit(1)


def messages(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="queued, sent, opened, failed...")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    source: Annotated[str | None, typer.Option(help="journey:<name> or campaign:<name>")] = None,
    customer: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log, newest first."""
    from boomerang.messaging import delivery

    with failures():
        with transaction(ctx) as (_, session):
            out = delivery.log(
                session, status=status, channel=channel, source=source, customer_id=customer, limit=limit
            )
    if as_json:
        return emit_json(out)
    console.print("  ".join(f"{k}: {v:,}" for k, v in sorted(out["counts"].items())))
    grid = table("created", "source", "customer", "channel", "template", "status", "reason", title="Messages")
    for m in out["messages"]:
        grid.add_row(
            m["created_at"][:16],
            m["source"],
            m["customer_id"],
            m["channel"] or "-",
            m["template"],
            m["status"],
            m["reason"] or "",
        )
    console.print(grid)
