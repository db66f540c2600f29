"""`boomerang referrals`: a customer's referral code and link, the referrals with their status, and every decision
with its reason."""

from __future__ import annotations

from typing import Annotated

import typer

from boomerang.cli.output import console, emit_json, failures, readable, table, transaction
from boomerang.loyalty import referrals_links

app = typer.Typer(help="Referrals: codes and links, referrals and the decisions about them.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
Limit = Annotated[int, typer.Option(min=1, max=referrals_links.MAX_LIMIT, help="the latest this many")]
Referrer = Annotated[str | None, typer.Option(help="one referrer's: their id, the shop's id or the email")]


@app.command()
def link(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="the customer's id, external id or email", show_default=False)],
    channel: Annotated[str, typer.Option(help="the link's utm_medium: email, sms, telegram, link...")] = "link",
    as_json: JsonOpt = False,
) -> None:
    """The customer's referral code and link (made the first time), and how their referrals stand."""
    with failures():
        with transaction(ctx) as (ws, session):
            data = referrals_links.referral_link(
                session, customer, shop_url=ws.settings.messaging.shop_url, channel=channel, now=ws.now()
            )
    if as_json:
        emit_json(data)
        return
    console.print(f"[bold]{data['customer_id']}[/]: code [bold]{data['code']}[/]", highlight=False)
    console.print(data["link"], highlight=False, soft_wrap=True)
    standing = {k: v for k, v in data["referrals"].items() if v}
    console.print(f"referrals: {readable(standing)}" if standing else "no referrals yet", highlight=False)


@app.command("list")
def list_referrals(
    ctx: typer.Context,
    referrer: Referrer = None,
    status: Annotated[str | None, typer.Option(help="attributed, rewarded, void, rejected or reversed")] = None,
    limit: Limit = 50,
    as_json: JsonOpt = False,
) -> None:
    """Referrals, newest first: friend, referrer, code, channel, status and the first order."""
    with failures():
        with transaction(ctx) as (_, session):
            data = referrals_links.referrals(session, referrer=referrer, status=status, limit=limit)
    if as_json:
        emit_json(data)
        return
    grid = table("attributed", "friend", "referrer", "code", "channel", "status", "first order", "rewarded")
    for r in data["items"]:
        grid.add_row(
            readable(r["attributed_at"]),
            r["friend_id"],
            r["referrer_id"],
            r["code"],
            r["channel"],
            r["status"],
            readable(r["order_id"]),
            readable(r["rewarded_at"]),
        )
    console.print(grid)


@app.command()
def decisions(
    ctx: typer.Context,
    referrer: Referrer = None,
    friend: Annotated[str | None, typer.Option(help="one friend's")] = None,
    decision: Annotated[str | None, typer.Option(help="attributed, rejected, rewarded, void or reversed")] = None,
    limit: Limit = 50,
    as_json: JsonOpt = False,
) -> None:
    """Every decision with its reason and details, newest first."""
    with failures():
        with transaction(ctx) as (_, session):
            data = referrals_links.decisions(session, referrer=referrer, friend=friend, decision=decision, limit=limit)
    if as_json:
        emit_json(data)
        return
    grid = table("when", "decision", "reason", "friend", "referrer", "code", "order", "details")
    for d in data["items"]:
        grid.add_row(
            readable(d["at"]),
            d["decision"],
            d["reason"],
            readable(d["friend_id"]),
            readable(d["referrer_id"]),
            readable(d["code"]),
            readable(d["order_id"]),
            readable(d["detail"]),
        )
    console.print(grid)
