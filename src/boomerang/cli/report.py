"""`boomerang report METRIC`: retention metrics as Rich tables, or JSON with --json."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from boomerang.cli.output import (
    command_name,
    console,
    emit_json,
    errors,
    failures,
    readable,
    table,
    transaction,
    workspace,
)

DateOpt = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD")]


def report(
    ctx: typer.Context,
    metric: Annotated[str | None, typer.Argument(help="the metric (see --list)")] = None,
    date_from: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first day, YYYY-MM-DD")
    ] = None,
    date_to: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last day, included")] = None,
    interval: Annotated[str, typer.Option(help="day, week or month, for the series")] = "month",
    window_days: Annotated[int | None, typer.Option(help="inactivity window (retention, churn, lifecycle)")] = None,
    step: Annotated[list[str] | None, typer.Option(help="funnel step, in order (repeat the option)")] = None,
    category: Annotated[str | None, typer.Option(help="funnel: first steps in this category only")] = None,
    window_hours: Annotated[int | None, typer.Option(help="funnel: conversion window in hours")] = None,
    store: Annotated[
        bool, typer.Option(help="rfm and lifecycle: store each customer's result (and log transitions)")
    ] = True,
    list_: Annotated[bool, typer.Option("--list", help="name the metrics and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Retention metrics: retention and churn, repeat purchases, AOV, LTV, NPS, cohorts, RFM, lifecycle, funnel;
    `incrementality`: every journey's and campaign's incremental conversion and revenue with intervals, beside
    last-touch attribution and the monthly share of revenue after triggered and mass messages."""
    from boomerang.metrics import rolled, service

    if metric == INCREMENTALITY:
        return _incrementality(ctx, date_from, date_to, as_json)
    if list_ or metric is None:
        rows = service.catalogue()
        if as_json:
            emit_json(rows)
        else:
            grid = table("metric", "what it measures", title="Metrics")
            for row in rows:
                grid.add_row(row["name"], row["description"])
            console.print(grid)
        if metric is None and not list_:
            errors.print(f"name a metric, e.g. {command_name()} report retention_rate", highlight=False)
            raise typer.Exit(2)
        return
    params: dict[str, Any] = {
        "date_from": date_from.date() if date_from else None,
        "date_to": date_to.date() if date_to else None,
        "interval": interval,
        "window_days": window_days,
        "steps": step or None,
        "category": category,
        "window_hours": window_hours,
    }
    with failures():
        ws = workspace(ctx)
        m = service.metric(metric)
        params = {k: v for k, v in params.items() if k in m.query_type.model_fields}
        result = rolled.answer(ws.uow, ws.log, metric, params)
        if m.trait and store:
            result["stored"] = service.store_traits(ws.uow, ws.log, metric, params, now=ws.now())
    if as_json:
        emit_json(result)
    else:
        render(result)


INCREMENTALITY = "incrementality"


def _incrementality(ctx: typer.Context, date_from: datetime | None, date_to: datetime | None, as_json: bool) -> None:
    from datetime import timedelta

    from boomerang.cli.experiments import print_overview
    from boomerang.orchestration import incrementality

    with failures():
        with transaction(ctx) as (ws, session):
            until = date_to + timedelta(days=1) if date_to else ws.now()
            days = (until - date_from).days if date_from else 90
            if days < 1:
                errors.print("--from: a day before --to", highlight=False)
                raise typer.Exit(2)
            share = ws.settings.guards.global_control_share
            result = incrementality.overview(session, global_control_share=share, now=until, days=days, log=ws.log)
    if as_json:
        return emit_json(result)
    print_overview(result)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return readable(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def render(result: dict[str, Any]) -> None:
    """A metric's answer as tables."""
    span = f"{result.get('from', '')} .. {result.get('to', result.get('as_of', ''))}"
    console.print(f"[bold]{result['title']}[/]  {span}")
    if "cohorts" in result:
        return _cohorts(result)
    if "groups" in result:
        return _rows(
            "RFM groups", result["groups"], ["group", "customers", "share", "recency_days", "frequency", "monetary"]
        )
    if "stages" in result:
        console.print(f"window: {result['details']['window_days']} days")
        _rows(
            "Customers per stage now",
            [{"stage": k, "customers": v} for k, v in result["stages"].items()],
            ["stage", "customers"],
        )
        return _rows(
            "Transitions per interval", result["series"], list(result["series"][0]) if result["series"] else []
        )
    if "steps" in result:
        _rows("Steps", result["steps"], ["step", "customers", "conversion", "from_previous", "lost"])
        return _rows("Leaks", result["leaks"], ["from", "to", "lost", "drop_off"])
    if "channels" in result:
        rows = [{"channel": k, **v} for k, v in result["channels"].items()]
        return _rows("Channels", rows, ["channel", "subscribers", "after_30_days", "after_90_days", "after_365_days"])
    console.print(
        f"value: [bold]{_fmt(result['value'])}[/]   "
        + "  ".join(f"{k}: {_fmt(v)}" for k, v in result["details"].items())
    )
    columns = [
        "bucket",
        "value",
        *[c for c in (result["series"][0] if result["series"] else {}) if c not in ("bucket", "value")],
    ]
    _rows(f"Per {result['interval']}", result["series"], columns)


def _rows(title: str, rows: list[dict], columns: list[str]) -> None:
    grid = table(*columns, title=title)
    for row in rows:
        grid.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(grid)


def _cohorts(result: dict[str, Any]) -> None:
    width = max((len(c["retention"]) for c in result["cohorts"]), default=0)
    grid = table("cohort", "customers", *[f"m{k}" for k in range(width)], title="Share buying in month k")
    for c in result["cohorts"]:
        grid.add_row(c["cohort"], f"{c['customers']:,}", *(_pct(v) for v in c["retention"]))
    console.print(grid)
