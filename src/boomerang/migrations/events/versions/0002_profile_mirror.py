"""The profile mirror beside the log: profiles, their current consents, and when the last full copy began.

Revision ID: e0002
Revises: e0001
"""

from alembic import op

revision = "e0002"
down_revision = "e0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: workspaces made before this revision created these tables on their first segment query.
    op.execute(
        "CREATE TABLE IF NOT EXISTS profiles (customer_id VARCHAR PRIMARY KEY, external_id VARCHAR, "
        "email VARCHAR, phone VARCHAR, telegram_chat_id VARCHAR, first_name VARCHAR, last_name VARCHAR, "
        "city VARCHAR, country VARCHAR, timezone VARCHAR, locale VARCHAR, birthday DATE, first_seen_at TIMESTAMP, "
        "last_seen_at TIMESTAMP, created_at TIMESTAMP, attributes JSON)"
    )
    op.execute(
        "CREATE TABLE IF NOT EXISTS profile_consents (customer_id VARCHAR, channel VARCHAR, granted BOOLEAN, "
        "PRIMARY KEY (customer_id, channel))"
    )
    op.execute("CREATE TABLE IF NOT EXISTS profile_sync (synced_at TIMESTAMP)")


def downgrade() -> None:
    for table in ("profile_sync", "profile_consents", "profiles"):
        op.execute(f"DROP TABLE {table}")
