"""imported experiments: finished experiments read from files (their spec, report, uplift model) and their units

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imported_experiments",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("uplift", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("uplift_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_imported_experiments")),
    )
    op.create_table(
        "experiment_units",
        sa.Column("experiment", sa.String(length=60), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=255), nullable=False),
        sa.Column("arm", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("covariate", sa.Float(), nullable=True),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment"],
            ["imported_experiments.name"],
            name=op.f("fk_experiment_units_experiment_imported_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment", "row", name=op.f("pk_experiment_units")),
    )
    op.create_index(op.f("ix_experiment_units_customer_id"), "experiment_units", ["customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_experiment_units_customer_id"), table_name="experiment_units")
    op.drop_table("experiment_units")
    op.drop_table("imported_experiments")
