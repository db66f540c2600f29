"""event_set_aside: the bad messages of accepted batches, with their reasons

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_set_aside",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_set_aside")),
    )
    with op.batch_alter_table("event_set_aside", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_set_aside_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_set_aside", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_set_aside_received_at"))
    op.drop_table("event_set_aside")
