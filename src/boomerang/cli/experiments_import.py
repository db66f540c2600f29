"""`boomerang experiments import|imported|uplift|forget`: finished experiments read from files, their report,
who responds (uplift) and the persuadables segment. Mounted into the `experiments` group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from boomerang.cli.output import console, emit_json, failures, table, transaction, workspace

app = typer.Typer(help="Experiments imported from files: report and uplift.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a CSV file (gzipped or not), one row per unit")],
    group: Annotated[str, typer.Option(help="the column naming each unit's group")],
    control: Annotated[str, typer.Option(help="the control group's value in that column")],
    name: Annotated[str, typer.Option(help="the experiment's name (a-z, 0-9, _ and -)")],
    binary: Annotated[str | None, typer.Option(help="0/1 outcome columns, comma-separated")] = None,
    money: Annotated[str | None, typer.Option(help="money outcome columns, comma-separated")] = None,
    covariate: Annotated[str | None, typer.Option(help="a pre-period column (past spend) for CUPED")] = None,
    id_column: Annotated[str | None, typer.Option(help="the column of the customer's external id")] = None,
    features: Annotated[str | None, typer.Option(help="columns the uplift model learns from, comma-separated")] = None,
    create_customers: Annotated[
        bool, typer.Option(help="create the shop customers the rows name (NAME-ROW without an id column)")
    ] = False,
    equal_split: Annotated[
        bool, typer.Option(help="the groups were meant to be equal: check the sample ratio")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a finished experiment and print each variant against the control, per outcome."""
    from boomerang.core.errors import ValidationFailed
    from boomerang.experiments.schemas import ImportSpec
    from boomerang.orchestration import experiment_imports

    with failures():
        if not file.is_file():
            raise ValidationFailed([{"field": "file", "reason": f"{file} does not exist"}])
        options = {k: v for k, v in locals().items() if k in ImportSpec.model_fields}
        spec = experiment_imports.spec_of(options, field="options")
        ws = workspace(ctx)
        result = experiment_imports.import_experiment(
            ws.uow, ws.log, file.read_bytes(), spec, source=file.name, now=ws.now()
        )
    if as_json:
        return emit_json(result)
    _print_report(result)


@app.command("imported")
def show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="an imported experiment (all of them without one)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The imported experiments, or one experiment's report."""
    from boomerang.experiments import imported

    with failures(), transaction(ctx) as (_ws, session):
        result = imported.describe(imported.get(session, name)) if name else imported.list_experiments(session)
    if as_json:
        return emit_json(result)
    if name:
        return _print_report(result)
    grid = table("name", "source", "control", "variants", "units", "linked", "uplift")
    for e in result:
        grid.add_row(
            e["name"],
            e["source"],
            e["control"],
            ", ".join(e["variants"]),
            f"{e['units']:,}",
            f"{e['linked']:,}",
            "yes" if e["uplift"] else "-",
        )
    console.print(grid)


@app.command()
def uplift(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="an imported experiment with feature columns")],
    outcome: Annotated[str | None, typer.Option(help="the outcome to model (default: the first 0/1 one)")] = None,
    segment: Annotated[
        str | None, typer.Option(help="also save a segment of this name: the top 30 % by uplift_score")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who responds: a two-model uplift per variant, its Qini against random targeting, scores as traits."""
    from boomerang.experiments import imported

    with failures(), transaction(ctx) as (ws, session):
        result = imported.fit_uplift(session, ws.log, name, outcome=outcome, now=ws.now())
        if segment:
            from boomerang.segments import service as segments

            title = f"Persuadables ({name})"
            rule = imported.PERSUADABLES
            segments.save(session, {"name": segment, "title": title, "rule": rule}, now=ws.now())
            result["segment"] = segment
    if as_json:
        return emit_json(result)
    console.print(f"[bold]{result['model']}[/] on {result['outcome']}; {result['customers_scored']:,} customers scored")
    grid = table("variant", "Qini", "95% interval", "average", *(f"top {p}%" for p in (10, 20, 30)), title="Uplift")
    for variant, e in result["variants"].items():
        grid.add_row(
            variant,
            f"{e['qini_coefficient']:.5f}",
            f"{e['qini_interval'][0]:.5f} to {e['qini_interval'][1]:.5f}",
            _num(e["average_uplift"]),
            *(f"{_num(t['uplift'])} (x{t['times_average']})" for t in e["top"]),
        )
    console.print(grid)
    console.print("Random targeting has a Qini coefficient of 0; above 0, the ranking finds those the variant moves.")


@app.command()
def forget(ctx: typer.Context, name: Annotated[str, typer.Argument(help="an imported experiment")]) -> None:
    """Delete an imported experiment and its units."""
    from boomerang.experiments import imported

    with failures(), transaction(ctx) as (_ws, session):
        imported.delete(session, name)
    console.print(f"Deleted {name}")


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _print_report(result: dict[str, Any]) -> None:
    report = result["report"]
    console.print(
        f"[bold]{result['name']}[/]: {result['units']:,} units from {result['source']}, control "
        f"{result['control']!r}, {result['linked']:,} linked to customers"
    )
    grid = table("outcome", "variant", "control", "variant mean", "lift", "95% interval", "relative", "method")
    control = result["control"]
    for outcome, comparisons in report["comparisons"].items():
        for c in comparisons:
            if "effect" not in c:
                grid.add_row(outcome, c["treated"], "-", "-", "-", c["says"], "-", "-")
                continue
            grid.add_row(
                outcome,
                c["treated"],
                f"{report['groups'][control]['means'][outcome]:.4f}",
                f"{report['groups'][c['treated']]['means'][outcome]:.4f}",
                _num(c["effect"]),
                f"{_num(c['low'])} to {_num(c['high'])}",
                "-" if c["relative"] is None else f"{c['relative']:+.1%}",
                c["method"],
            )
    console.print(grid)
    for sentence in report["says"].values():
        console.print(sentence)
    for outcome, rows in (report["covariate"] or {}).items():
        for r in rows:
            console.print(
                f"CUPED on {outcome} ({r['treated']}): the interval narrowed by {r['narrowed_by']:.2%} "
                f"(correlation with the covariate {r['correlation']})"
            )
    if report["sample_ratio"]:
        s = report["sample_ratio"]
        console.print(
            f"Sample ratio: p = {s['p_value']:.4f}" + (" [red]ALARM: the split is broken[/]" if s["alarm"] else "")
        )
