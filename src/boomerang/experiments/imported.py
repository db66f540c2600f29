"""Imported experiments: storing a finished test read from a file (one transaction), its report, its uplift model
and the uplift traits of the shop customers its units are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.customers import bulk
from boomerang.customers.models import Customer
from boomerang.db import chunked
from boomerang.events.log import EventLog
from boomerang.experiments import imported_report, uplift
from boomerang.experiments.imports import Parsed, read
from boomerang.experiments.models import ExperimentUnit, ImportedExperiment
from boomerang.experiments.schemas import ImportSpec

TRAIT = "uplift"  # the trait kind: uplift_score, uplift_variant, uplift_outcome, uplift_experiment
TRAIT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("uplift_score", pa.float64()),
        ("uplift_variant", pa.string()),
        ("uplift_outcome", pa.string()),
        ("uplift_experiment", pa.string()),
    ]
)
PERSUADABLES = {"trait": "uplift_score", "op": "top_percent", "value": 30}  # a segment rule: those it changes most


def import_file(session: Session, data: bytes, spec: ImportSpec, *, source: str, now: datetime) -> dict[str, Any]:
    """Read, check and store the experiment with its units and report; flushes (the caller commits once)."""
    if session.get(ImportedExperiment, spec.name) is not None:
        raise Conflict(f"an experiment named {spec.name!r} is already imported; delete it first", field="name")
    parsed = read(data, spec)
    customers = _link(session, parsed, spec, now=now)
    report = imported_report.build(parsed, control=spec.control, outcomes=spec.outcomes, equal_split=spec.equal_split)
    experiment = ImportedExperiment(
        name=spec.name,
        source=source[:500],
        spec=spec.model_dump(),
        variants=parsed.variants,
        units=len(parsed),
        linked=int(sum(c is not None for c in customers)),
        report=report,
        uplift=None,
        created_at=now,
        uplift_at=None,
    )
    session.add(experiment)
    session.flush()
    _store_units(session, spec, parsed, customers)
    return describe(experiment)


def _link(session: Session, parsed: Parsed, spec: ImportSpec, *, now: datetime) -> list[str | None]:
    """Each unit's shop customer by external id (the id column, or `<name>-<row>` for rows without one); with
    `create_customers`, the missing ones are created."""
    if not spec.id_column and not spec.create_customers:
        return [None] * len(parsed)
    keys = [str(u) if spec.id_column else f"{spec.name}-{u}" for u in parsed.unit]
    if spec.create_customers:
        found = bulk.ensure(session, "user", keys, now=now)
    else:
        found = {}
        for chunk in chunked(keys):
            rows = session.execute(sa.select(Customer.external_id, Customer.id).where(Customer.external_id.in_(chunk)))
            found.update(dict(rows.all()))
    return [found.get(k) for k in keys]


def _store_units(session: Session, spec: ImportSpec, parsed: Parsed, customers: list[str | None]) -> None:
    outcomes = pd.DataFrame(parsed.outcomes).to_dict("records")
    features = parsed.features.astype(object).where(parsed.features.notna(), None).to_dict("records")
    covariate = parsed.covariate if parsed.covariate is not None else [None] * len(parsed)
    rows = [
        {
            "experiment": spec.name,
            "row": i + 1,
            "unit": str(parsed.unit[i]),
            "arm": parsed.arm[i],
            "customer_id": customers[i],
            "covariate": None if covariate[i] is None else float(covariate[i]),
            "outcomes": outcomes[i],
            "features": features[i],
        }
        for i in range(len(parsed))
    ]
    for start in range(0, len(rows), 5000):
        session.connection().execute(ExperimentUnit.__table__.insert(), rows[start : start + 5000])


def _summary(e: ImportedExperiment) -> dict[str, Any]:
    return {
        "name": e.name,
        "source": e.source,
        "control": e.spec["control"],
        "variants": e.variants,
        "units": e.units,
        "linked": e.linked,
        "created_at": e.created_at.isoformat(timespec="seconds"),
    }


def describe(experiment: ImportedExperiment) -> dict[str, Any]:
    """The experiment, its report and its last uplift evaluation, ready for JSON."""
    return {
        **_summary(experiment),
        "spec": experiment.spec,
        "report": experiment.report,
        "uplift": experiment.uplift,
        "uplift_at": experiment.uplift_at.isoformat(timespec="seconds") if experiment.uplift_at else None,
    }


def get(session: Session, name: str) -> ImportedExperiment:
    found = session.get(ImportedExperiment, name)
    if found is None:
        raise NotFound(f"no imported experiment named {name!r}", field="name")
    return found


def list_experiments(session: Session) -> list[dict[str, Any]]:
    """Every imported experiment, newest first, without its units."""
    rows = session.scalars(sa.select(ImportedExperiment).order_by(ImportedExperiment.created_at.desc()))
    return [{**_summary(e), "uplift": e.uplift is not None} for e in rows]


def delete(session: Session, name: str) -> None:
    """The experiment and its units (the uplift traits stay until the next uplift run replaces them)."""
    experiment = get(session, name)
    session.execute(sa.delete(ExperimentUnit).where(ExperimentUnit.experiment == name))
    session.delete(experiment)
    session.flush()


def units_frame(session: Session, name: str) -> pd.DataFrame:
    """The stored units of an experiment: row, unit, arm, customer_id, the outcomes and the features as columns."""
    rows = session.execute(
        sa.select(
            ExperimentUnit.row,
            ExperimentUnit.unit,
            ExperimentUnit.arm,
            ExperimentUnit.customer_id,
            ExperimentUnit.outcomes,
            ExperimentUnit.features,
        )
        .where(ExperimentUnit.experiment == name)
        .order_by(ExperimentUnit.row)
    ).all()
    base = pd.DataFrame([r[:4] for r in rows], columns=["row", "unit", "arm", "customer_id"])
    outcomes = pd.DataFrame([r[4] for r in rows], index=base.index)
    features = pd.DataFrame([r[5] for r in rows], index=base.index)
    return pd.concat([base, outcomes.add_prefix("outcome:"), features.add_prefix("feature:")], axis=1)


def fit_uplift(
    session: Session, log: EventLog | None, name: str, *, outcome: str | None = None, now: datetime
) -> dict[str, Any]:
    """The two-model uplift of each variant on `outcome` (default: the first 0/1 outcome), cross-fitted, its Qini
    evaluation stored on the experiment; with a log, the linked customers' scores stored as `uplift` traits."""
    experiment = get(session, name)
    spec = ImportSpec.model_validate(experiment.spec)
    if not spec.features:
        raise ValidationFailed([{"field": "features", "reason": f"{name!r} was imported without feature columns"}])
    outcome = outcome or (spec.binary or spec.money)[0]
    if outcome not in spec.outcomes:
        raise ValidationFailed(
            [{"field": "outcome", "reason": f"{outcome!r} is not an outcome of {name!r} ({', '.join(spec.outcomes)})"}]
        )
    frame = units_frame(session, name)
    features = pd.DataFrame({f: frame[f"feature:{f}"] for f in spec.features})
    features = features.apply(lambda c: c.astype(float) if c.map(_is_number).all() else c.astype(object))
    x = uplift.design(features)
    y = frame[f"outcome:{outcome}"].to_numpy(dtype=float)
    arm = frame["arm"].to_numpy(dtype=object)
    folds = uplift.folds_of(frame["unit"].to_numpy(dtype=object))
    binary = spec.outcomes[outcome] == "binary"
    scored = uplift.fit_scores(
        x, y, arm, control=spec.control, variants=experiment.variants, binary=binary, folds=folds
    )
    evaluation = {
        v: uplift.qini(
            scored.scores[v][(arm == v) | (arm == spec.control)],
            y[(arm == v) | (arm == spec.control)],
            arm[(arm == v) | (arm == spec.control)] == v,
        )
        for v in experiment.variants
    }
    stored = _store_traits(log, frame, scored, name=name, outcome=outcome) if log is not None else 0
    result = {
        "experiment": name,
        "outcome": outcome,
        "kind": spec.outcomes[outcome],
        "model": "two-model (T-learner): "
        + ("logistic regression" if binary else "ridge regression")
        + f" per group, cross-fitted over {uplift.FOLDS} folds by a hash of the unit",
        "features": spec.features,
        "variants": evaluation,
        "customers_scored": stored,
        "segment_rule": PERSUADABLES,
    }
    experiment.uplift, experiment.uplift_at = result, now
    session.flush()
    return result


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _store_traits(log: EventLog, frame: pd.DataFrame, scored: uplift.Scored, *, name: str, outcome: str) -> int:
    """Each linked customer's best variant and its predicted uplift, merged into the stored `uplift` traits (the
    customers of other experiments keep theirs)."""
    linked = frame["customer_id"].notna().to_numpy()
    if not linked.any():
        return 0
    variants = list(scored.scores)
    matrix = np.column_stack([scored.scores[v] for v in variants])
    best = matrix.argmax(axis=1)
    fresh = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(dtype=object)[linked],
            "uplift_score": matrix[np.arange(len(best)), best][linked],
            "uplift_variant": np.asarray(variants, dtype=object)[best][linked],
            "uplift_outcome": outcome,
            "uplift_experiment": name,
        }
    ).drop_duplicates("customer_id", keep="last")
    scored_here = len(fresh)
    before = log.traits(TRAIT)
    if before is not None and not before.empty:
        kept = before[~before["customer_id"].isin(fresh["customer_id"])][TRAIT_SCHEMA.names]
        fresh = pd.concat([kept, fresh], ignore_index=True)
    log.save_traits(TRAIT, fresh, schema=TRAIT_SCHEMA)
    return scored_here


def dashboard(session: Session, name: str) -> dict[str, Any]:
    """What the /experiments page draws for an imported experiment: the report's rows per outcome and variant,
    the covariate's narrowing and, when fitted, each variant's Qini curve points and top-share uplift."""
    experiment = get(session, name)
    report = experiment.report
    rows = [
        {
            "outcome": outcome,
            "kind": report["outcomes"][outcome],
            "control_mean": report["groups"][experiment.spec["control"]]["means"][outcome],
            "variant_mean": report["groups"][c["treated"]]["means"][outcome],
            **c,
        }
        for outcome, comparisons in report["comparisons"].items()
        for c in comparisons
    ]
    return {
        "name": experiment.name,
        "source": experiment.source,
        "units": experiment.units,
        "linked": experiment.linked,
        "control": experiment.spec["control"],
        "variants": experiment.variants,
        "groups": report["groups"],
        "rows": rows,
        "says": report["says"],
        "sample_ratio": report["sample_ratio"],
        "covariate": report["covariate"],
        "uplift": experiment.uplift,
    }
