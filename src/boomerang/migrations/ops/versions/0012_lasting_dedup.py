"""event_seen_ids: the message ids accepted within the deduplication window (the inbox's own, copied);
journey_instances.trigger_event_id: the message id of the event that started an instance, unique per journey

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERED = sa.text("trigger_event_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "event_seen_ids",
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_event_seen_ids")),
    )
    with op.batch_alter_table("event_seen_ids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_seen_ids_seen_at"), ["seen_at"], unique=False)
    # what waits in the inbox was accepted by the deduplication that stops at the inbox: keep it as seen
    op.execute("INSERT INTO event_seen_ids (message_id, seen_at) SELECT message_id, received_at FROM event_inbox")
    with op.batch_alter_table("journey_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger_event_id", sa.String(length=128), nullable=True))
        batch_op.create_index(
            "uq_journey_instances_trigger_event",
            ["journey_id", "trigger_event_id"],
            unique=True,
            sqlite_where=TRIGGERED,
            postgresql_where=TRIGGERED,
        )


def downgrade() -> None:
    with op.batch_alter_table("journey_instances", schema=None) as batch_op:
        batch_op.drop_index("uq_journey_instances_trigger_event")
        batch_op.drop_column("trigger_event_id")
    with op.batch_alter_table("event_seen_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_seen_ids_seen_at"))
    op.drop_table("event_seen_ids")
