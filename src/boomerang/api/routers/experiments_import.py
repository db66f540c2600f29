"""Imported experiments as JSON: importing a finished test's file, its report, the dashboard's figures, uplift."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import WorkspaceDep
from boomerang.experiments import imported
from boomerang.experiments.schemas import ImportSpec
from boomerang.orchestration import experiment_imports

router = APIRouter(prefix="/experiments/imported", tags=["experiments"])

Columns = Annotated[str | None, Query(description="column names, comma-separated")]


@router.post("", status_code=201)
async def import_file(
    request: Request,
    ws: WorkspaceDep,
    name: Annotated[str, Query(description="the experiment's name")],
    group: Annotated[str, Query(description="the column naming each unit's group")],
    control: Annotated[str, Query(description="the control group's value")],
    binary: Columns = None,
    money: Columns = None,
    covariate: str | None = None,
    id_column: str | None = None,
    features: Columns = None,
    create_customers: bool = False,
    equal_split: bool = False,
    source: Annotated[str, Query(max_length=500, description="the file's name, as the report shows it")] = "upload",
) -> dict:
    """The request body is the file (CSV, gzipped or not); the query says how to read it. One transaction: a bad
    file stores nothing (400 naming the column and line)."""
    options = {k: v for k, v in locals().items() if k in ImportSpec.model_fields}
    spec = experiment_imports.spec_of(options, field="query")
    data = await request.body()
    return await run_in_threadpool(
        experiment_imports.import_experiment, ws.uow, ws.log, data, spec, source=source, now=ws.now()
    )


@router.get("")
def list_imported(ws: WorkspaceDep) -> list[dict]:
    """Every imported experiment, newest first."""
    with ws.uow.session() as session:
        return imported.list_experiments(session)


@router.get("/{name}")
def show(name: str, ws: WorkspaceDep) -> dict:
    """One experiment: how it was read, its report (each variant vs the control per outcome), its uplift."""
    with ws.uow.session() as session:
        return imported.describe(imported.get(session, name))


@router.get("/{name}/dashboard")
def dashboard(name: str, ws: WorkspaceDep) -> dict:
    """The figures the /experiments page draws: rows per outcome and variant, Qini curve points."""
    with ws.uow.session() as session:
        return imported.dashboard(session, name)


@router.post("/{name}/uplift")
async def uplift(name: str, ws: WorkspaceDep, outcome: str | None = None) -> dict:
    """Fit the two-model uplift, evaluate it by Qini out of sample, store linked customers' `uplift` traits."""

    def run() -> dict:
        with ws.uow.session() as session:
            return imported.fit_uplift(session, ws.log, name, outcome=outcome, now=ws.now())

    return await run_in_threadpool(run)


@router.delete("/{name}", status_code=204)
def forget(name: str, ws: WorkspaceDep) -> None:
    """Delete the experiment and its units."""
    with ws.uow.session() as session:
        imported.delete(session, name)
