"""`boomerang review`: the monthly review (KPIs against the month before, funnel leaks, what journeys and
campaigns changed, segments that moved, what the guards held back), shown or sent to the owners."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from boomerang.cli.output import console, emit_json, failures, table, workspace

app = typer.Typer(help="The monthly review: shown here, or sent to the shop's owners.", no_args_is_help=True)
MonthOpt = Annotated[str | None, typer.Option(help="YYYY-MM (default: the data's last whole month)")]


def _build(ctx: typer.Context, month: str | None) -> tuple[Any, dict[str, Any]]:
    from boomerang.orchestration import review

    ws = workspace(ctx)
    first = review.parse_month(month, today=ws.now().date())
    share = ws.settings.guards.global_control_share
    return ws, review.build(ws.uow, ws.log, month=first, global_control_share=share)


@app.command()
def show(
    ctx: typer.Context,
    month: MonthOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print the review of a month."""
    with failures():
        _, r = _build(ctx, month)
    if as_json:
        return emit_json(r)
    print_review(r)


@app.command()
def send(
    ctx: typer.Context,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: the month before this one)")] = None,
) -> None:
    """Send the review to the owners (BOOMERANG_REVIEW__EMAILS, BOOMERANG_REVIEW__TELEGRAM_CHATS) who have not had
    it for that month; a second run sends nothing."""
    from boomerang.core.errors import ValidationFailed
    from boomerang.orchestration import review, review_send

    with failures():
        ws = workspace(ctx)
        today = ws.now().date()
        first = review.parse_month(month, today=today) or review.previous_month(today)
        if not review_send.recipients(ws.settings.review):
            raise ValidationFailed(
                [{"field": "review", "reason": "no one to send to: set BOOMERANG_REVIEW__EMAILS or __TELEGRAM_CHATS"}]
            )
        out = review_send.send(ws.uow, ws.log, ws.channels, ws.settings, month=first, now=ws.now())
    console.print(
        f"review {out['month']}: {out['sent']} sent, {out['failed']} failed, {out['skipped']} had it already",
        highlight=False,
    )
    if out["failed"]:
        raise typer.Exit(1)


def _money(value: Any) -> str:
    return "-" if value is None else f"{value:,.2f}"


def print_review(r: dict[str, Any]) -> None:
    console.print(f"[bold]Monthly review, {r['period']['label']}[/]", highlight=False)
    before = r["before"]
    console.print(
        f"against {before['label']}" if before["comparable"] else "no earlier month in the data to compare with",
        highlight=False,
    )
    from boomerang.orchestration.review_send import shown_change, shown_value

    grid = table("KPI", "value", "before", "change", title="Key numbers")
    for t in r["kpis"]:
        before = (t["change"] or {}).get("before")
        grid.add_row(t["label"], shown_value(t), shown_value({**t, "value": before}), shown_change(t) or "-")
    console.print(grid)
    leaks = table("from", "to", "lost", "drop-off", title="Biggest funnel leaks")
    for leak in r["funnel"]["leaks"]:
        drop = leak["drop_off"]
        leaks.add_row(leak["from"], leak["to"], f"{leak['lost']:,}", "-" if drop is None else f"{drop:.1%}")
    console.print(leaks)
    tests = table(
        "kind", "name", "incremental revenue", "interval", "verdict", "attributed", title="Journeys and campaigns"
    )
    for t in r["tests"]:
        inc = t["incremental_revenue"]
        tests.add_row(
            t["kind"],
            t["name"],
            _money(inc and inc["effect"]),
            f"{_money(inc['low'])} to {_money(inc['high'])}" if inc else "-",
            t["verdict"],
            _money(t["attributed_revenue"]),
        )
    console.print(tests)
    moved = table("segment", "start", "entered", "exited", "end", "change", title="Segments that moved most")
    for s in r["segments"]["grew"] + r["segments"]["shrank"]:
        moved.add_row(s["segment"], *(f"{s[k]:,}" for k in ("start", "entered", "exited", "end")), f"{s['change']:+,}")
    console.print(moved)
    guards = table("guard", "suppressed", "commonest reason", title=f"Suppressed: {r['guards']['total']:,}")
    for g in r["guards"]["by_guard"]:
        guards.add_row(g["guard"], f"{g['messages']:,}", g["reasons"][0]["reason"] if g["reasons"] else "")
    console.print(guards)
