"""the outbox index in claiming order: a round takes the first due messages without sorting them all;
messages by source (a campaign's progress and results)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 23:15:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_due")
        batch_op.create_index("ix_messages_due", ["status", "send_after", "id"], unique=False)
        batch_op.create_index("ix_messages_source", ["source", "status"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_source")
        batch_op.drop_index("ix_messages_due")
        batch_op.create_index("ix_messages_due", ["status", "send_after"], unique=False)
