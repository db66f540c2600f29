"""Experiments imported from files (a shop's past tests, public ones like Hillstrom's): the experiment, its units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base


class ImportedExperiment(Base):
    """A finished experiment read from a file: how its columns were read, its report, its last uplift model."""

    __tablename__ = "imported_experiments"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(500))  # the file's name
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # imports.Spec: group, control, outcomes, covariate...
    variants: Mapped[list[str]] = mapped_column(sa.JSON())  # the treated groups, in the file's order
    units: Mapped[int]
    linked: Mapped[int]  # units linked to a shop customer
    report: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # readout's figures, computed once at import
    uplift: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())  # the last uplift model's evaluation
    created_at: Mapped[datetime]
    uplift_at: Mapped[datetime | None]


class ExperimentUnit(Base):
    """One row of the file: its group, outcomes, pre-period covariate, features and the customer it is."""

    __tablename__ = "experiment_units"

    experiment: Mapped[str] = mapped_column(
        sa.ForeignKey("imported_experiments.name", ondelete="CASCADE"), primary_key=True
    )
    row: Mapped[int] = mapped_column(primary_key=True)  # the file's data row, 1 the first under the header
    unit: Mapped[str] = mapped_column(sa.String(255))  # the id column's value, or the row number
    arm: Mapped[str] = mapped_column(sa.String(255))
    customer_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)  # linked by external id
    covariate: Mapped[float | None] = mapped_column(sa.Float())
    outcomes: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # outcome -> number
    features: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # feature -> number or text
