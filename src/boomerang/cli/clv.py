"""`boomerang clv fit|predict|evaluate`: BG/NBD and Gamma-Gamma parameters, per-customer predictions, their evaluation."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from boomerang.cli.output import console, emit_json, errors, failures, table, workspace

app = typer.Typer(
    help="Predicted CLV and churn: BG/NBD, Gamma-Gamma and gradient-boosted forecasts.", no_args_is_help=True
)

# Dates and units stay text here: the service checks them and names the option in its error (exit 2).
UntilOpt = Annotated[
    str | None, typer.Option(help="end of calibration, YYYY-MM-DD, included (default: the last purchase)")
]
UnitOpt = Annotated[str, typer.Option(help="day or week: the models' time unit")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _quiet_fit_warnings() -> Iterator[None]:
    """The service's FitWarnings reach the user once, from the answer's `warnings` list, not as Python warnings too."""
    from boomerang.predictions.mle import FitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        yield


def _warn(result: dict[str, Any]) -> None:
    for message in result.get("warnings", []):
        errors.print(f"[yellow]warning[/] {message}", highlight=False)


@app.command()
def fit(ctx: typer.Context, until: UntilOpt = None, unit: UnitOpt = "week", as_json: JsonOpt = False) -> None:
    """Fit BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma) on the purchases up to --until."""
    from boomerang.predictions import service

    with failures(), _quiet_fit_warnings():
        ws = workspace(ctx)
        result = service.fit(ws.uow, ws.log, until=until, unit=unit)
    _warn(result)
    if as_json:
        return emit_json(result)
    console.print(
        f"[bold]Calibration[/] up to {result['until']} in {result['unit']}s: {result['customers']:,} customers, "
        f"{result['repeat_customers']:,} with repeat purchases"
    )
    _params("BG/NBD", result["bgnbd"], result["regularised"]["bgnbd"])
    if result["gamma_gamma"]:
        _params("Gamma-Gamma", result["gamma_gamma"], result["regularised"]["gamma_gamma"])


def _params(title: str, params: dict[str, float], regularised: bool) -> None:
    grid = table("parameter", "value", title=f"{title}{' (regularised)' if regularised else ''}")
    for name, value in params.items():
        grid.add_row(name, f"{value:.4g}")
    console.print(grid)


@app.command()
def predict(
    ctx: typer.Context,
    until: UntilOpt = None,
    unit: UnitOpt = "week",
    horizon_days: Annotated[int, typer.Option(help="how many days ahead to predict")] = 90,
    out: Annotated[Path | None, typer.Option(help="write one row per customer to this CSV file")] = None,
    churn: Annotated[
        bool, typer.Option(help="gradient-boosted churn probability, purchases and next purchase (else BG/NBD's)")
    ] = True,
    store: Annotated[bool, typer.Option(help="store the predictions as customer traits")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Per customer (with external id and email): p_alive, churn probability, purchases, spend, CLV, next purchase."""
    import pandas as pd

    from boomerang.predictions import service

    with failures(), _quiet_fit_warnings():
        ws = workspace(ctx)
        result, frame = service.predict(ws.uow, ws.log, until=until, unit=unit, horizon_days=horizon_days, churn=churn)
        if store:
            result["stored"] = {"trait": service.TRAIT, "customers": service.store(ws.log, frame)}
    if out is not None:
        frame.to_csv(out, index=False, date_format="%Y-%m-%d", float_format="%.6g")
        result["out"] = str(out)
    _warn(result)
    if as_json:
        return emit_json(result)
    console.print(
        f"[bold]Predictions[/] for {len(frame):,} customers, next {result['horizon_days']} days "
        f"after {result['until']}" + (f" -> {out}" if out else "")
    )
    totals = table("", "", show_header=False, title="Totals")
    totals.add_row("expected purchases", f"{frame['expected_purchases'].sum():,.1f}")
    totals.add_row("predicted CLV", f"{frame['predicted_clv'].sum():,.2f}")
    totals.add_row("mean p_alive", f"{frame['p_alive'].mean():.3f}")
    totals.add_row("mean churn probability", f"{frame['churn_probability'].mean():.3f}")
    totals.add_row("model", result["model"])
    console.print(totals)
    top = frame.nlargest(10, "predicted_clv")
    grid = table(
        "customer",
        "external id",
        "p_alive",
        "churn",
        "expected purchases",
        "spend",
        "CLV",
        "next purchase",
        title="Top 10 by predicted CLV",
    )
    for row in top.itertuples():
        nxt = "-" if pd.isna(row.expected_next_purchase) else f"{row.expected_next_purchase:%Y-%m-%d}"
        grid.add_row(
            row.customer_id,
            "-" if pd.isna(row.external_id) else str(row.external_id),
            f"{row.p_alive:.3f}",
            f"{row.churn_probability:.3f}",
            f"{row.expected_purchases:.2f}",
            f"{row.predicted_spend:,.2f}",
            f"{row.predicted_clv:,.2f}",
            nxt,
        )
    console.print(grid)


@app.command()
def evaluate(
    ctx: typer.Context,
    cutoff: Annotated[str, typer.Option(help="fit on purchases up to this day, YYYY-MM-DD")],
    horizon_weeks: Annotated[int, typer.Option(help="forecast this many weeks after the cut-off")] = 13,
    unit: UnitOpt = "week",
    store: Annotated[
        bool, typer.Option(help="keep it as the workspace's last evaluation (the dashboard shows it)")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Forecasts of the weeks after --cutoff against what happened: purchases, who buys, calibration, next purchase."""
    from boomerang.predictions import backtest

    with failures(), _quiet_fit_warnings():
        ws = workspace(ctx)
        result = backtest.evaluate(ws.uow, ws.log, cutoff=cutoff, horizon_weeks=horizon_weeks, unit=unit)
        if store:
            result = backtest.save(ws.settings.home, result, ws.now())
    _warn(result)
    if as_json:
        return emit_json(result)
    console.print(
        f"[bold]The {result['horizon_weeks']} weeks after {result['cutoff']}[/]: {result['buyers']:,} of "
        f"{result['customers']:,} customers bought, {result['actual_purchases']:,} purchases (transaction days)"
    )
    console.print(evaluation_table(result))
    curve = table("forecast", "customers", "predicted", "observed", title="Reliability of the model's P(buy)")
    for point in result["calibration"].get("model", {}).get("curve", []):
        curve.add_row(
            f"{point['low']:.1f}-{point['high']:.1f}",
            f"{point['customers']:,}",
            f"{point['predicted']:.3f}",
            f"{point['observed']:.3f}",
        )
    console.print(curve)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def evaluation_table(result: dict[str, Any]):
    """One row per forecast: total purchases and its error, correlation, ROC AUC, Brier, ECE, next-purchase MAE."""
    from boomerang.predictions.evaluation import rows

    grid = table(
        "forecast",
        "purchases",
        "error",
        "correlation",
        "ROC AUC",
        "Brier",
        "ECE",
        "next purchase MAE (days)",
        title="Time-split evaluation",
    )
    for row in rows(result):
        grid.add_row(
            row["name"],
            _cell(row["total"], ",.0f"),
            _cell(row["error_pct"], "+.1f") + ("%" if row["error_pct"] is not None else ""),
            _cell(row["correlation"], ".3f"),
            _cell(row["auc"], ".3f"),
            _cell(row["brier"], ".4f"),
            _cell(row["ece"], ".4f"),
            _cell(row["mae_days"], ".1f"),
        )
    return grid
