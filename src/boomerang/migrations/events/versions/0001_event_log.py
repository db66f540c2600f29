"""The event log table.

Revision ID: e0001
Revises:
"""

from alembic import op

revision = "e0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE events (
            message_id VARCHAR PRIMARY KEY,
            type VARCHAR NOT NULL,
            event VARCHAR NOT NULL,
            customer_id VARCHAR,
            anonymous_id VARCHAR,
            user_id VARCHAR,
            timestamp TIMESTAMP NOT NULL,
            received_at TIMESTAMP NOT NULL,
            source VARCHAR NOT NULL,
            properties JSON,
            context JSON
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE events")
