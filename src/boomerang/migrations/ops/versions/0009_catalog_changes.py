"""catalog_changes: products back in stock and lower prices, recorded with the write that made them and
fanned out to the customers interested in them by the pipeline's round

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=True),
        sa.Column("new_value", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("fanned_out_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_changes")),
    )
    with op.batch_alter_table("catalog_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_changes_fanned_out_at"), ["fanned_out_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("catalog_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_changes_fanned_out_at"))
    op.drop_table("catalog_changes")
