import sqlalchemy as sa

from boomerang.bootstrap import open_workspace


def test_migrations_are_idempotent_and_create_both_stores(any_ws):
    again = open_workspace(any_ws.settings)
    with again.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {
        "customers",
        "identities",
        "consents",
        "consent_changes",
        "products",
        "orders",
        "order_lines",
        "api_keys",
        "event_inbox",
        "customer_merges",
    } <= tables
    with again.log.connect() as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    assert any_ws.settings.events_path.exists()


def test_the_migrations_build_exactly_the_models_schema(ws):
    """Alembic's autogenerate finds nothing to add: no model change without its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from boomerang.models import Base

    with ws.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []
