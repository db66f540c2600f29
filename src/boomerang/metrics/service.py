"""Running metrics on a workspace: parse the query, open the data, compute, store per-customer traits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import ibis
import orjson
import pandas as pd
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.models import ConsentChange
from boomerang.db import UnitOfWork
from boomerang.events.log import EVENT_COLUMNS, EventLog
from boomerang.metrics import activity, cohorts, funnel, kpis, lifecycle, rfm, subscriptions  # noqa: F401 - registers
from boomerang.metrics.base import REGISTRY, Data, Metric, Query


def metric(name: str) -> Metric:
    if name not in REGISTRY:
        raise NotFound(f"unknown metric {name!r} (one of {', '.join(sorted(REGISTRY))})", field="metric")
    return REGISTRY[name]


def catalogue() -> list[dict[str, str]]:
    return [
        {"name": m.name, "title": m.title, "description": m.description, "stores": m.trait}
        for m in sorted(REGISTRY.values(), key=lambda m: m.name)
    ]


def parse(m: Metric, params: dict[str, Any]) -> Query:
    """The metric's query from loose parameters (CLI options, query string); errors name the parameter."""
    params = {k: v for k, v in params.items() if v is not None}
    try:
        return m.query_type.model_validate(params)
    except ValidationError as exc:
        raise ValidationFailed(
            [
                {"field": ".".join(str(p) for p in e["loc"]) or "query", "reason": e["msg"]}
                for e in exc.errors(include_url=False)
            ]
        ) from None


def consent_changes(session: Session) -> pd.DataFrame:
    """Every consent change: customer_id, channel, granted, at."""
    rows = session.execute(
        sa.select(ConsentChange.customer_id, ConsentChange.channel, ConsentChange.granted, ConsentChange.at)
    ).all()
    frame = pd.DataFrame(rows, columns=["customer_id", "channel", "granted", "at"])
    return frame.astype({"customer_id": str, "channel": str, "granted": bool, "at": "datetime64[us]"})


@contextmanager
def data(uow: UnitOfWork, log: EventLog, m: Metric) -> Iterator[Data]:
    consents = None
    if m.needs_consents:
        with uow.session() as session:
            consents = ibis.memtable(consent_changes(session))
    with log.reader() as r:
        yield Data(events=r.events, consents=consents, cancelled=r.cancelled, rollup=r.kept_rollup)


def run(uow: UnitOfWork, log: EventLog, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The metric's JSON answer."""
    m = metric(name)
    query = parse(m, params)
    with data(uow, log, m) as d:
        try:
            result = m.calculate(d, query)
        except ValueError as exc:  # an empty log, say
            raise ValidationFailed([{"field": "events", "reason": str(exc)}]) from None
    return {**result, "query": query.model_dump(mode="json")}


def store_traits(uow: UnitOfWork, log: EventLog, name: str, params: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Compute and store the metric's per-customer traits (and, for lifecycle, its transition events)."""
    m = metric(name)
    if m.trait is None:
        raise ValidationFailed([{"field": "metric", "reason": f"{name} has no per-customer result to store"}])
    query = parse(m, params)
    with data(uow, log, m) as d:
        frame = m.per_customer(d, query)
        transitions = lifecycle.Lifecycle.events(d, query) if m is REGISTRY["lifecycle"] else None
    stored = log.save_traits(m.trait, frame)
    added = _append_transitions(log, transitions, now) if transitions is not None else 0
    return {"trait": m.trait, "customers": stored, "events_added": added}


def _append_transitions(log: EventLog, transitions: pd.DataFrame, now: datetime) -> int:
    """Log the transitions newer than each customer's last logged one: a run with another window
    (the default one moves with the data) never rewrites what was already announced."""
    logged = log.latest(lifecycle.EVENT)
    if len(logged):
        last = transitions["customer_id"].map(dict(zip(logged["customer_id"], logged["last"])))
        transitions = transitions[last.isna() | (transitions["timestamp"] > last)]
    frame = pd.DataFrame(
        {
            "message_id": transitions["message_id"],
            "type": "track",
            "event": lifecycle.EVENT,
            "customer_id": transitions["customer_id"],
            "anonymous_id": None,
            "user_id": None,
            "timestamp": transitions["timestamp"],
            "received_at": now,
            "source": "lifecycle",
            "properties": [
                orjson.dumps({"from": p if isinstance(p, str) else None, "to": s}).decode()
                for p, s in zip(transitions["previous"], transitions["stage"])
            ],
            "context": "{}",
        }
    )[EVENT_COLUMNS]
    return log.append(frame)
