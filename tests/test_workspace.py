import pytest
import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.journeys import library as journey_library
from boomerang.journeys import service as journey_service
from boomerang.messaging import service as template_service
from boomerang.segments import library as segment_library
from boomerang.segments import service as segment_service


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


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_workspace_a_command_makes_starts_with_the_ready_made_library_once(tmp_path, store, request):
    """`boomerang` makes new workspaces with the ready-made segments, journeys (drafts) and templates, in the
    transaction that makes the schema; a later open installs nothing again, so a deleted one stays deleted."""
    url = request.getfixturevalue("pg_url") if store == "postgres" else None
    settings = Settings(home=tmp_path / "ws", database_url=url)
    ws = open_workspace(settings, ready_made=True)
    with ws.uow.session() as session:
        segments = {s["name"] for s in segment_service.list_segments(session)}
        journeys = {j["name"]: j["status"] for j in journey_service.list_journeys(session)}
        templates = {t["name"] for t in template_service.listing(session)}
        segment_service.delete(session, "birthday_this_week")
    assert segments == {d.name for d in segment_library.definitions()} and len(segments) == 10
    assert journeys == {raw["name"]: "draft" for raw in journey_library.raw_definitions()} and len(journeys) == 15
    assert templates == {t["name"] for t in template_service.library()} and len(templates) == 22
    again = open_workspace(settings, ready_made=True)
    with again.uow.session() as session:
        assert "birthday_this_week" not in {s["name"] for s in segment_service.list_segments(session)}
    ws.engine.dispose()
    again.engine.dispose()


def test_a_workspace_opened_without_ready_made_starts_empty(ws):
    """What the tests' workspaces are: nothing installed but the schema (`open_workspace`'s default)."""
    with ws.uow.session() as session:
        assert segment_service.list_segments(session) == []
        assert journey_service.list_journeys(session) == []
        assert template_service.listing(session) == []
