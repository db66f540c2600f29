"""`boomerang demo`: a simulated shop loaded into a workspace, then the server."""

from __future__ import annotations

import time
import warnings
from datetime import date
from typing import Annotated

import typer

from boomerang.cli.output import (
    Bar,
    command_name,
    console,
    emit_json,
    failures,
    home,
    print_summary,
    settings,
    workspace,
)


def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=1, help="how many customers the simulated shop gets")] = 5000,
    days: Annotated[int, typer.Option(min=1, help="how many days of history")] = 365,
    start: Annotated[
        str | None, typer.Option(help="first day of the history, YYYY-MM-DD (default: that many days ago)")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same shop")] = 42,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="load and print the summary, do not start the server")
    ] = False,
    host: Annotated[str | None, typer.Option(help="address for the server")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port for the server")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Load a realistic demo shop (catalog, customers, a year of behaviour) and start the server."""
    from boomerang.auth.service import create_key
    from boomerang.auth.users import demo_admin
    from boomerang.bootstrap import install_library
    from boomerang.cli.server import check_port, run_server
    from boomerang.core import collector
    from boomerang.demo.simulator import SimConfig, estimate_events, simulate
    from boomerang.events.bulk import LoadResult, load
    from boomerang.messaging import service as templates_service
    from boomerang.metrics import service as metrics
    from boomerang.orchestration import loyalty_traits
    from boomerang.orchestration.status import summary
    from boomerang.predictions import service as predictions
    from boomerang.segments import membership

    with failures():
        if not no_serve:  # a port in use fails now, not after minutes of loading
            check_port(host or settings(ctx).host, port or settings(ctx).port)
        first_day = date.fromisoformat(start) if start else date.today().fromordinal(date.today().toordinal() - days)
        config = SimConfig(customers=customers, days=days, start=first_day, seed=seed)
        ws = workspace(ctx)
        collector.tune()  # minutes of simulating and loading, then the server
        started = time.perf_counter()
        loaded = LoadResult()
        with Bar(enabled=not as_json) as bar:
            bar.start(estimate_events(config), f"simulating {customers:,} customers over {days} days")
            for chunk in simulate(config):
                loaded.add(load(ws.uow, ws.log, chunk, source="demo", now=ws.now()))
                bar.advance(0 if chunk.events is None else len(chunk.events))
        for metric in ("rfm", "lifecycle"):  # so that the customer pages and the segments have them from the start
            metrics.store_traits(ws.uow, ws.log, metric, {}, now=ws.now())
        loyalty_traits.store(ws.uow, ws.log, now=ws.now(), settings=ws.settings.loyalty)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a regularised fit warns; the demo shows the result either way
            predictions.store(ws.log, predictions.predict(ws.uow, ws.log)[1])
        now = ws.now()
        with ws.uow.session() as session:  # a new workspace has them already; an older one gets what it lacks
            journeys = install_library(session, now=now)["journeys"]  # drafts: a shop activates them
            templates = [t["name"] for t in templates_service.listing(session)]
        segments = {r["name"]: r.get("size") for r in membership.refresh(ws.segments)}
        with ws.uow.session() as session:
            _, write_key = create_key(session, kind="write", name="demo", now=now)
            _, secret_key = create_key(session, kind="secret", name="demo", now=now)
            admin = demo_admin(session, now=now)
        data = {
            **summary(ws.uow, ws.log),
            "seconds": round(time.perf_counter() - started, 1),
            "home": home(ws),
            "workspace": home(ws),
            "write_key": write_key,
            "secret_key": secret_key,
            "dashboard": admin,
            "segments": segments,
            "journeys": journeys,
            "templates": templates,
        }
    if as_json:
        emit_json(data)
    else:
        cmd = command_name()
        print_summary(data)
        console.print(f"loaded in {data['seconds']} s into {data['home']}", highlight=False)
        console.print(f"write key (tracking): [bold]{write_key}[/]\nsecret key (/api):    [bold]{secret_key}[/]")
        console.print(
            "segments: " + ", ".join(f"{name} {size:,}" for name, size in segments.items() if size is not None)
        )
        console.print(f"journeys (drafts): {len(journeys)}; activate one with {cmd} journeys activate NAME")
        console.print(
            f"message templates: {len(templates)} (en, ru, uk); every channel records to the sandbox "
            f"until configured: {cmd} channels set ...",
            highlight=False,
        )
        console.print(
            f"dashboard login:      [bold]{admin['username']}[/] / [bold]{admin['password']}[/] ({admin['role']})"
        )
    if not no_serve:
        with failures():
            run_server(ws, host=host, port=port)
