"""`boomerang experiments list|plan` and the imported experiments' commands: every test the shop runs with its
verdict and intervals, and how large a test must be to find what it looks for."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from boomerang.cli import experiments_import
from boomerang.cli.output import console, emit_json, errors, failures, table, transaction

app = typer.Typer(help="Tests: journeys, campaigns and imported experiments, with intervals.", no_args_is_help=True)
app.registered_commands += experiments_import.app.registered_commands

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _span(c: dict[str, Any]) -> tuple[str, str]:
    if "conversion" not in c:
        return "-", "-"
    i, r = c["conversion"], c["incremental_revenue"]
    return (
        f"{i['effect'] * 100:+.2f} pp ({i['low'] * 100:+.2f} to {i['high'] * 100:+.2f})",
        f"{r['effect']:+,.0f} ({r['low']:+,.0f} to {r['high']:+,.0f})",
    )


def print_overview(result: dict[str, Any]) -> None:
    grid = table(
        "test",
        "customers",
        "compared",
        "conversion",
        "incremental revenue",
        "verdict",
        "attributed",
        title="Tests (95 % always-valid intervals)",
    )
    for t in result["tests"]:
        attributed = t.get("attributed")
        credited = f"{attributed['revenue']:,.0f}" if attributed else "-"
        for c in t["comparisons"] or [None]:
            if c is None:
                grid.add_row(f"{t['kind']} {t['name']}", f"{t['units']:,}", "-", "-", "-", t["status"], credited)
                continue
            conversion, revenue = _span(c)
            grid.add_row(
                f"{t['kind']} {t['name']}",
                f"{t['units']:,}",
                f"{c['treated']} vs {c['baseline']}",
                conversion,
                revenue,
                c["verdict"],
                credited,
            )
    console.print(grid)
    months = result["attribution"]["months"]
    if months:
        shares = table(
            "month",
            "revenue",
            "triggered",
            "mass",
            "other",
            "no message",
            title=f"Revenue by last touch within {result['attribution']['window_days']:g} days",
        )
        pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        for m in months:
            s = m["shares"]
            shares.add_row(
                m["month"], f"{m['revenue']:,.0f}", pct(s["triggered"]), pct(s["mass"]), pct(s["other"]), pct(s["none"])
            )
        console.print(shares)


@app.command("list")
def list_(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, max=3660, help="the days of last-touch attribution beside them")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Every journey, started campaign and imported experiment with its verdict, its incremental conversion and
    revenue with intervals, and the revenue last-touch attribution credits it with."""
    from boomerang.orchestration import incrementality

    with failures():
        with transaction(ctx) as (ws, session):
            share = ws.settings.guards.global_control_share
            result = incrementality.overview(session, global_control_share=share, now=ws.now(), days=days, log=ws.log)
    if as_json:
        return emit_json(result)
    print_overview(result)


@app.command()
def plan(
    base_rate: Annotated[float, typer.Option(help="the conversion rate without the message, e.g. 0.05")],
    lift: Annotated[float | None, typer.Option(help="the lift to find, in points of rate, e.g. 0.01")] = None,
    audience: Annotated[int | None, typer.Option(help="the customers available (gives the lift it can find)")] = None,
    holdout: Annotated[float, typer.Option(help="the share held out, in percent")] = 10.0,
    sequential: Annotated[
        bool, typer.Option(help="read it whenever you like (always-valid) or once at the end")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """How many customers a test needs to find a lift (95 %, found 8 times in 10), or the lift an audience can
    find: with the holdout share given, always-valid unless --no-sequential."""
    from boomerang.experiments import stats

    problems = []
    if not 0 < base_rate < 1:
        problems.append("--base-rate: a rate between 0 and 1, e.g. 0.05")
    if not 0 < holdout < 100:
        problems.append("--holdout: a percentage above 0 and below 100")
    if (lift is None) == (audience is None):
        problems.append("give either --lift (to get the sample needed) or --audience (to get the lift it can find)")
    if lift is not None and not 0 < lift < 1 - base_rate:
        problems.append("--lift: points of rate above 0, e.g. 0.01 for 5 % -> 6 %")
    if audience is not None and audience < 2:
        problems.append("--audience: at least 2 customers")
    if problems:
        for p in problems:
            errors.print(p, highlight=False)
        raise typer.Exit(2)
    sd = math.sqrt(base_rate * (1 - base_rate))
    share = 1 - holdout / 100
    out: dict[str, Any] = {"base_rate": base_rate, "holdout_percent": holdout, "sequential": sequential}
    with failures():
        if lift is not None:
            n = stats.sample_size(sd, lift, share_treated=share, sequential=sequential)
            out |= {"lift": lift, "customers": n, "held_out": None if n is None else math.ceil(n * holdout / 100)}
        else:
            mde = stats.detectable_effect(sd, audience * share, audience * (1 - share), sequential=sequential)
            out |= {"audience": audience, "detectable_lift": mde}
    if as_json:
        return emit_json(out)
    kind = "always-valid" if sequential else "read once at the end"
    if lift is not None:
        console.print(
            f"To find {lift * 100:.2f} points over {base_rate:.1%} ({kind}): {out['customers']:,} customers, "
            f"{out['held_out']:,} of them held out.",
            highlight=False,
        )
    else:
        console.print(
            f"{audience:,} customers with {holdout:g} % held out find a lift of "
            f"{mde * 100:.2f} points over {base_rate:.1%} ({kind}).",
            highlight=False,
        )
