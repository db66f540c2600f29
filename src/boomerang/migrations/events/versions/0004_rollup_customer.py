"""The customers' totals beside the daily rollup (events.rollups.TOTALS): per known customer x event over all time,
filled from the daily rollup.

Revision ID: e0004
Revises: e0003
"""

from alembic import op

from boomerang.events import rollups

revision = "e0004"
down_revision = "e0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {rollups.TOTALS} (
            customer_id VARCHAR NOT NULL,
            event VARCHAR NOT NULL,
            events BIGINT NOT NULL,
            first_at TIMESTAMP NOT NULL,
            last_at TIMESTAMP NOT NULL
        )
        """
    )
    op.execute(rollups.fill_totals())


def downgrade() -> None:
    op.execute(f"DROP TABLE {rollups.TOTALS}")
