"""template versions: every saved version of a template, so that an earlier one can be restored; each template's
current version is kept as its first

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 03:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "template_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=True),
        sa.Column("default_locale", sa.String(length=8), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("saved_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_versions")),
        sa.UniqueConstraint("template", "version", name=op.f("uq_template_versions_template")),
    )
    op.execute(
        "INSERT INTO template_versions (template, version, title, topic, default_locale, variants, saved_at) "
        "SELECT name, version, title, topic, default_locale, variants, updated_at FROM templates"
    )


def downgrade() -> None:
    op.drop_table("template_versions")
