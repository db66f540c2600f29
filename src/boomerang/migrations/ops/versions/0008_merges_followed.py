"""messages.subject: what a message is about (a journey's product, cart or order), so that composing it
needs no journey; rows of profiles merged before merges moved them are moved to the live profile

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# what each domain's merge hook moves since this revision (customers.merge)
MOVED = (
    "loyalty_entries",
    "messages",
    "journey_instances",
    "journey_conversions",
    "journey_approvals",
    "push_subscriptions",
    "inbox_items",
)


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=255), nullable=True))
    op.execute(
        "UPDATE messages SET subject = (SELECT key FROM journey_instances WHERE journey_instances.id = "
        "messages.instance_id) WHERE instance_id IS NOT NULL"
    )
    conn = op.get_bind()
    pointers = dict(
        conn.execute(sa.text("SELECT id, merged_into_id FROM customers WHERE merged_into_id IS NOT NULL")).all()
    )
    for source in pointers:
        live, seen = source, set()
        while live in pointers and live not in seen:
            seen.add(live)
            live = pointers[live]
        for table in MOVED:
            conn.execute(
                sa.text(f"UPDATE {table} SET customer_id = :live WHERE customer_id = :source"),
                {"live": live, "source": source},
            )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("subject")
