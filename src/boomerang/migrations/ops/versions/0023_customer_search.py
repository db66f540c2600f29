"""customer search: folded copies of each customer's first and last name and the digits of their phone, so that a
name in any case and script (Cyrillic too) and a phone in any format find the customer on SQLite and PostgreSQL

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 02:00:00

"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 5_000


def _fold(text):  # as customers.search_keys.fold at the time of this revision
    if not isinstance(text, str):
        return None
    folded = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")).strip()
    return folded or None


def _digits(text):
    if not isinstance(text, str):
        return None
    return re.sub(r"\D+", "", unicodedata.normalize("NFKC", text)) or None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_name_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("last_name_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("phone_key", sa.String(length=32), nullable=True))
    customers = sa.table(
        "customers",
        sa.column("id", sa.String),
        sa.column("first_name", sa.String),
        sa.column("last_name", sa.String),
        sa.column("phone", sa.String),
        sa.column("first_name_key", sa.String),
        sa.column("last_name_key", sa.String),
        sa.column("phone_key", sa.String),
    )
    bind = op.get_bind()
    update = (
        sa.update(customers)
        .where(customers.c.id == sa.bindparam("cid"))
        .values(first_name_key=sa.bindparam("f"), last_name_key=sa.bindparam("l"), phone_key=sa.bindparam("p"))
    )
    after = ""
    while True:  # the backfill, a chunk at a time in id order
        rows = bind.execute(
            sa.select(customers.c.id, customers.c.first_name, customers.c.last_name, customers.c.phone)
            .where(
                customers.c.id > after,
                sa.or_(
                    customers.c.first_name.is_not(None),
                    customers.c.last_name.is_not(None),
                    customers.c.phone.is_not(None),
                ),
            )
            .order_by(customers.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        bind.execute(
            update,
            [{"cid": i, "f": _fold(first), "l": _fold(last), "p": _digits(phone)} for i, first, last, phone in rows],
        )
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("phone_key")
        batch_op.drop_column("last_name_key")
        batch_op.drop_column("first_name_key")
