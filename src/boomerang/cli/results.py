"""Print an experiments.readout report: the groups, then each comparison with its intervals and verdict."""

from __future__ import annotations

from typing import Any

from boomerang.cli.output import console, table


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def _span(i: dict[str, Any], *, points: bool) -> str:
    if points:
        return f"{i['effect'] * 100:+.2f} pp ({i['low'] * 100:+.2f} to {i['high'] * 100:+.2f})"
    return f"{i['effect']:+,.2f} ({i['low']:+,.2f} to {i['high']:+,.2f})"


def print_report(title: str, report: dict[str, Any]) -> None:
    """The groups' outcomes and every comparison, with a line saying what it means."""
    groups = table("group", "customers", "converted", "rate", "revenue", "per customer", title=title)
    for name, g in report["groups"].items():
        per = "-" if g["revenue_per_unit"] is None else f"{g['revenue_per_unit']:,.2f}"
        groups.add_row(
            name, f"{g['units']:,}", f"{g['converted']:,}", _pct(g["conversion_rate"]), f"{g['revenue']:,.2f}", per
        )
    console.print(groups)
    if not report["comparisons"]:
        return
    grid = table("vs", "conversion", "revenue per customer", "incremental revenue", "verdict")
    for c in report["comparisons"]:
        if "conversion" not in c:
            grid.add_row(f"{c['treated']} vs {c['baseline']}", "-", "-", "-", c["verdict"])
            continue
        grid.add_row(
            f"{c['treated']} vs {c['baseline']}",
            _span(c["conversion"], points=True),
            _span(c["revenue_per_unit"], points=False),
            _span(c["incremental_revenue"], points=False),
            c["verdict"],
        )
    console.print(grid)
    for c in report["comparisons"]:
        console.print(f"  {c['says']}", highlight=False)
    srm = report.get("sample_ratio")
    if srm and srm["alarm"]:
        console.print(
            f"[red]sample ratio mismatch[/] (p = {srm['p_value']:.2g}): groups {srm['observed']} where "
            f"{srm['expected']} were expected; the split is broken, do not read these results",
            highlight=False,
        )
