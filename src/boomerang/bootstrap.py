"""Composition root: settings, the two stores and their migrations."""

from __future__ import annotations

import subprocess
import sys
from functools import cached_property
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from boomerang.channels.registry import Registry
from boomerang.config import Settings
from boomerang.core.clock import Clock, SystemClock
from boomerang.core.signing import Signer, load_secret
from boomerang.db import UnitOfWork, create_sql_engine
from boomerang.events.log import CONFIG, EventLog


def _alembic_config(name: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("boomerang") / "migrations" / name))
    return cfg


def _head(cfg: Config) -> str | None:
    return ScriptDirectory.from_config(cfg).get_current_head()


def _current(conn) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return row[0] if row else None


class Workspace:
    """Everything a command or the server needs to work on one Boomerang workspace."""

    def __init__(self, settings: Settings | None = None, *, clock: Clock | None = None) -> None:
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()

    @cached_property
    def engine(self) -> sa.Engine:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return create_sql_engine(self.settings.sql_url)

    @cached_property
    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    @cached_property
    def secret(self) -> bytes:
        """The workspace secret every signing and encryption key is derived from."""
        return load_secret(self.settings.home)

    @cached_property
    def signer(self) -> Signer:
        """Signs the links that leave Boomerang (tracking, unsubscribe, preferences)."""
        return Signer(self.secret)

    @cached_property
    def channels(self) -> Registry:
        """The channel adapters, built from the stored settings and kept (with their connection pools)."""
        return Registry(self)

    @cached_property
    def log(self) -> EventLog:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return EventLog(self.settings.events_path, lock_timeout=self.settings.duckdb_lock_timeout_seconds)

    def migrate(self) -> Workspace:
        """Bring both stores to the newest schema; cheap when they already are."""
        ops = _alembic_config("ops")
        with self.engine.begin() as conn:
            if _current(conn) != _head(ops):
                ops.attributes["connection"] = conn
                command.upgrade(ops, "head")
        events = _alembic_config("events")
        if self._log_revision() != _head(events):
            # In a child process: duckdb_engine leaves objects behind that DuckDB 2 reports at exit.
            script = "import sys; from boomerang.bootstrap import upgrade_log; upgrade_log(sys.argv[1])"
            self.log.when_free(lambda: _run_child(script, str(self.log.path)))
        return self

    def _log_revision(self) -> str | None:
        with self.log.connect() as conn:
            found = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'alembic_version'"
            ).fetchall()[0][0]
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall() if found else []
        return rows[0][0] if rows else None


def _run_child(script: str, *args: str) -> None:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "migration failed")


def upgrade_log(path: str) -> None:
    """Run the event log's Alembic migrations (through duckdb_engine) on the file at `path`."""
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool, connect_args={"config": dict(CONFIG)})
    cfg = _alembic_config("events")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    engine.dispose()


def open_workspace(settings: Settings | None = None, *, clock: Clock | None = None) -> Workspace:
    """A migrated workspace, ready to use."""
    return Workspace(settings, clock=clock).migrate()
