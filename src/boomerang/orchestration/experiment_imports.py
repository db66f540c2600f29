"""Importing a finished experiment from a file: its spec checked (errors name the option), the units stored in one
transaction (experiments.imported), then, where it created shop customers, the segments' profile mirror brought up
to date so that segments see them. The API and the CLI both come here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.experiments import imported
from boomerang.experiments.schemas import ImportSpec
from boomerang.segments import profiles


def spec_of(options: dict[str, Any], *, field: str) -> ImportSpec:
    try:
        return ImportSpec(**options)
    except (ValidationError, ValueError) as exc:
        raise ValidationFailed.of(exc, field) from None


def import_experiment(
    uow: UnitOfWork, log: EventLog, data: bytes, spec: ImportSpec, *, source: str, now: datetime
) -> dict[str, Any]:
    with uow.session() as session:
        result = imported.import_file(session, data, spec, source=source, now=now)
    if spec.create_customers:
        profiles.sync(uow, log, now=now)  # segments see the new customers
    return result
