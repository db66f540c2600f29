import time
from datetime import datetime

import pytest
import sqlalchemy as sa

from boomerang.auth.models import ApiKey
from boomerang.auth.service import create_key
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


def test_a_reading_session_reads_beside_a_writer_and_keeps_nothing(any_ws):
    """UnitOfWork.reading: on SQLite a plain BEGIN, so a request that only reads is not held up by a writer's
    lock (every other session takes it up front); what it changes is rolled back."""
    at = datetime(2026, 1, 1)
    with any_ws.uow.session() as s:
        create_key(s, kind="write", name="before", now=at)
    with any_ws.uow.session() as writer:
        create_key(writer, kind="write", name="held", now=at)
        writer.flush()  # the writer holds the lock (SQLite) or an open transaction (PostgreSQL) from here
        started = time.monotonic()
        with any_ws.uow.reading() as reader:
            names = set(reader.scalars(sa.select(ApiKey.name)))
        assert time.monotonic() - started < 5  # SQLite's busy timeout is 60 s: it did not wait
        assert names == {"before"}  # the snapshot before the writer's commit
    with any_ws.uow.reading() as reader:
        reader.execute(sa.update(ApiKey).values(name="changed"))
        assert set(reader.scalars(sa.select(ApiKey.name))) == {"changed"}
    with any_ws.uow.session() as s:
        assert set(s.scalars(sa.select(ApiKey.name))) == {"before", "held"}
