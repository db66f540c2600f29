"""The segments' changes beside the daily rollup (events.rollups.SEGMENTS): the Segment Entered and Exited events
per day and segment, filled from the events logged so far.

Revision ID: e0005
Revises: e0004
"""

from alembic import op

from boomerang.events import rollups

revision = "e0005"
down_revision = "e0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {rollups.SEGMENTS} (
            day DATE NOT NULL,
            segment VARCHAR NOT NULL,
            event VARCHAR NOT NULL,
            events BIGINT NOT NULL
        )
        """
    )
    op.execute(rollups.fill_segments())


def downgrade() -> None:
    op.execute(f"DROP TABLE {rollups.SEGMENTS}")
