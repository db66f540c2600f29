"""The daily rollup of the log (events.rollups): per day x customer x event, and the ids of the cancelled orders,
filled from the events logged so far.

Revision ID: e0003
Revises: e0002
"""

from alembic import op

from boomerang.events import rollups

revision = "e0003"
down_revision = "e0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {rollups.TABLE} (
            day DATE NOT NULL,
            customer_id VARCHAR,
            event VARCHAR NOT NULL,
            events BIGINT NOT NULL,
            value DOUBLE,
            first_at TIMESTAMP NOT NULL,
            last_at TIMESTAMP NOT NULL,
            cancelled BIGINT NOT NULL,
            cancelled_value DOUBLE NOT NULL
        )
        """
    )
    op.execute(f"CREATE TABLE {rollups.CANCELLED} (order_id VARCHAR PRIMARY KEY)")
    for statement in rollups.fill():
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP TABLE {rollups.CANCELLED}")
    op.execute(f"DROP TABLE {rollups.TABLE}")
