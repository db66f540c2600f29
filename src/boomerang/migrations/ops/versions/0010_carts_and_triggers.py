"""carts: each cart's current lines as its events describe them, and the order that bought it;
messages.trigger: the event that started the journey that sent a message (name, key, properties);
journey_instances.test: a test run, kept out of the journey's results

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "carts",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_carts_customer_id"), ["customer_id"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger", sa.JSON(), nullable=True))
    with op.batch_alter_table("journey_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("journey_instances", schema=None) as batch_op:
        batch_op.drop_column("test")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("trigger")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carts_customer_id"))
    op.drop_table("carts")
