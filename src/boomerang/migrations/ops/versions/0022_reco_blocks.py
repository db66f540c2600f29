"""recommendation blocks: the shop's named blocks (chain, filters, size, control share)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 23:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reco_blocks",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reco_blocks")),
    )


def downgrade() -> None:
    op.drop_table("reco_blocks")
