"""Composition root: settings, the two stores and their migrations, and the services built on them.

Only the entry points (the API, the CLI, the dashboard, the worker processes) import this module; the
domains receive what they need (a session, the event log, a clock, the channel registry...) as arguments.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from datetime import datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from boomerang.channels import service as channels
from boomerang.channels.registry import Registry
from boomerang.config import Settings
from boomerang.core.clock import Clock, SystemClock, naive_utc
from boomerang.core.signing import Signer, load_secret
from boomerang.customers import merge, privacy
from boomerang.customers.privacy.suppression import session_info
from boomerang.db import UnitOfWork, create_sql_engine
from boomerang.events import intake
from boomerang.events import privacy as inbox_privacy
from boomerang.events.intake import Intake
from boomerang.events.log import CONFIG, EventLog
from boomerang.journeys import privacy as journeys_privacy
from boomerang.journeys import service as journeys
from boomerang.loyalty import programme
from boomerang.loyalty import service as loyalty
from boomerang.messaging import outbox, preferences
from boomerang.messaging.links import Links
from boomerang.orders import service as orders
from boomerang.segments import service as segments

if TYPE_CHECKING:  # the heavier services are imported when first used, so a short command does not load them
    from boomerang.bot.service import Bot
    from boomerang.messaging.dispatch import Dispatcher
    from boomerang.recommendations.service import Recommendations
    from boomerang.segments.evaluate import Evaluator

# Every domain that keeps rows per customer moves them when two profiles merge.
merge.on_merge(
    orders.follow_merge,
    channels.follow_merge,
    outbox.follow_merge,
    preferences.follow_merge,
    journeys.follow_merge,
    segments.follow_merge,
    loyalty.follow_merge,
)
# ... and shows them in a customer's data export, and deletes or pseudonymises them on an erasure.
privacy.on_export(
    orders.export_customer,
    channels.export_customer,
    outbox.export_customer,
    preferences.export_customer,
    journeys_privacy.export_customer,
    segments.export_customer,
    loyalty.export_customer,
    inbox_privacy.export_customer,
)
privacy.on_erase(
    orders.erase_customer,
    channels.erase_customer,
    outbox.erase_customer,
    preferences.erase_customer,
    journeys_privacy.erase_customer,
    segments.erase_customer,
    loyalty.erase_customer,
    inbox_privacy.erase_customer,
)


logger = logging.getLogger("boomerang.workspace")

PRIVATE = 0o077  # the group's and others' bits: nobody but the owner reads a workspace (files 0600, folders 0700)


def _private_umask() -> None:
    """Files and folders this process makes from now on are its owner's only (DuckDB makes its write-ahead log
    afresh after each checkpoint, with the umask's mode; SQLite gives its -wal and -shm the database's)."""
    os.umask(os.umask(PRIVATE) | PRIVATE)


def _tighten(path: Path) -> None:
    """Take the group's and others' bits from one file or folder of ours; links and others' files stay."""
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or not st.st_mode & PRIVATE:
            return
        path.chmod(stat.S_IMODE(st.st_mode) & ~PRIVATE)
    except FileNotFoundError:  # a write-ahead log checkpointed away meanwhile
        return
    except OSError as exc:
        logger.warning("could not make %s private to its owner: %s", path, exc.strerror)


def make_private(home: Path) -> None:
    """The workspace folder and everything in it (the stores and their logs, the secret, anything else found
    there) readable by its owner only: folders 0700, files 0600. Bits are only ever taken away."""
    if os.name != "posix":
        return
    _tighten(home)
    for root, folders, files in os.walk(home):
        for name in (*folders, *files):
            _tighten(Path(root) / name)


def _make_home(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)


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


class _WorkspaceClock:
    """The workspace's clock, asked at every call: tests and simulations swap `ws.clock`."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def now(self) -> datetime:
        return self.ws.clock.now()


class _Forgetting:
    """What an erasure asks of the stores beside the operational one: the event log's events and traits, then
    the recommendations' model (customers.privacy.erase takes it as its `log`)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def erase_customers(self, customer_ids: list[str], pseudonym: str, **ids: list[str]) -> dict[str, int]:
        done = self.ws.log.erase_customers(customer_ids, pseudonym, **ids)
        return done | {"recommendation_model": self.ws.recommendations.forget(customer_ids)}


class Workspace:
    """Everything a command or the server needs to work on one Boomerang workspace."""

    def __init__(self, settings: Settings | None = None, *, clock: Clock | None = None) -> None:
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()

    @cached_property
    def engine(self) -> sa.Engine:
        _make_home(self.settings.home)
        return create_sql_engine(self.settings.sql_url)

    @cached_property
    def uow(self) -> UnitOfWork:
        # every session can hash addresses with the workspace secret (customers.privacy.suppression)
        lent = session_info(lambda: self.secret) | programme.session_info(self.settings.loyalty)
        lent |= intake.session_info(lambda: self.intake)  # pending events, for whoever reads the inbox's
        return UnitOfWork(self.engine, info=lent)

    @cached_property
    def intake(self) -> Intake:
        """Where the tracking API keeps what it accepts: on SQLite a file of its own beside the store, taken into
        the inbox by the pipeline; on PostgreSQL the inbox itself."""
        return intake.open_intake(self.settings.sql_url, self.uow)

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
        return Registry(self.uow, secret=self.secret, clock=_WorkspaceClock(self))

    @cached_property
    def log(self) -> EventLog:
        """The event log: the DuckDB file in home, or the lake that BOOMERANG_EVENTS__BACKEND=lake names."""
        _make_home(self.settings.home)
        events = self.settings.events
        if events.backend == "lake":
            from boomerang.events.lake import LakeLog
            from boomerang.events.lake_store import Store

            secret = events.s3_secret_access_key
            store = Store.at(
                self.settings.lake_path,
                endpoint=events.s3_endpoint,
                region=events.s3_region,
                key_id=events.s3_access_key_id,
                secret=secret.get_secret_value() if secret else None,
            )
            return LakeLog(store, engine=events.engine, spark_master=events.spark_master)  # type: ignore[return-value]
        return EventLog(self.settings.events_path, lock_timeout=self.settings.duckdb_lock_timeout_seconds)

    @cached_property
    def links(self) -> Links:
        """The signed links messages carry back to Boomerang."""
        return Links(self.signer, self.settings.public_url)

    @cached_property
    def segments(self) -> Evaluator:
        """Segment rules evaluated over the log."""
        from boomerang.segments.evaluate import Evaluator

        return Evaluator(self.uow, self.log, _WorkspaceClock(self))

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """The outbox's way to the channels, through the guards."""
        from boomerang.messaging.dispatch import Dispatcher

        return Dispatcher(
            self.uow,
            self.channels,
            self.links,
            self.settings,
            reasons=(journeys.reasons_gone,),
            recommend=self.recommend_in_messages,
        )

    def recommend_in_messages(
        self,
        session: Session,
        *,
        customer_id: str | None,
        block: str,
        cart: list[str] | None = None,
        product: str | None = None,
        size: int | None = None,
    ) -> list[dict[str, Any]]:
        """A block's products as messages show them (messaging.picks.Recommend): always the block, never its
        control, since a message does not record which of the two it showed and a split would measure nothing."""
        from boomerang.recommendations.service import Visitor

        found = self.recommendations.recommend(
            session, block, Visitor(customer=customer_id), cart=cart, product=product, size=size, control=False
        )
        return found["items"]

    @cached_property
    def bot(self) -> Bot:
        """The shop's Telegram bot, as customers talk to it."""
        from boomerang.bot.service import Bot

        return Bot(self.uow, self.secret, self.settings.messaging, _WorkspaceClock(self))

    @property
    def forgetting(self) -> _Forgetting:
        """Where an erasure reaches beyond the operational store (`customers.privacy.erase`'s `log`)."""
        return _Forgetting(self)

    @cached_property
    def recommendations(self) -> Recommendations:
        """Blocks served from the trained model and the live catalog, held in memory."""
        from boomerang.recommendations.service import Recommendations

        return Recommendations(self.uow.session, self.settings.reco_model_path, now=self.now)

    def now(self) -> datetime:
        """The clock's time as the stores keep it: naive UTC."""
        return naive_utc(self.clock.now())

    def migrate(self, *, ready_made: bool = False) -> Workspace:
        """Bring both stores to the newest schema; cheap when they already are. With `ready_made`, an operational
        store made here (it had no schema at all) starts with the ready-made library (`install_library`), in the
        same transaction as its schema: never again, so what a shop deletes from it stays deleted."""
        ops = _alembic_config("ops")
        with self.engine.begin() as conn:
            current = _current(conn)
            if current != _head(ops):
                ops.attributes["connection"] = conn
                command.upgrade(ops, "head")
            if current is None and ready_made:
                with Session(bind=conn) as session:
                    install_library(session, now=self.now())
        events = _alembic_config("events")
        if self.settings.events.backend == "lake":
            self.log.create()  # its tables, where missing: the lake has no Alembic revisions
        elif self.log.revision() != _head(events):
            # In a child process: duckdb_engine leaves objects behind that DuckDB 2 reports at exit.
            script = "import sys; from boomerang.bootstrap import upgrade_log; upgrade_log(sys.argv[1])"
            self.log.when_free(lambda: _run_child(script, str(self.log.path)))
        return self


def install_library(session: Session, *, now: datetime) -> dict[str, list[str]]:
    """The ready-made segments, journeys (as drafts: a shop activates the ones it wants) and message templates,
    which a new workspace starts with and `boomerang demo` installs; flushes. Installing again adds what is
    missing and leaves the rest as it is. Returns the names of the segments and journeys, and of the templates
    saved now."""
    from boomerang.journeys import library as journey_library
    from boomerang.messaging import service as templates
    from boomerang.segments import library as segment_library

    return {
        "segments": [s["name"] for s in segment_library.install(session, now=now)],
        "journeys": [j["name"] for j in journey_library.install(session, now=now)],
        "templates": templates.install(session, now=now),
    }


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


def open_workspace(
    settings: Settings | None = None, *, clock: Clock | None = None, ready_made: bool = False
) -> Workspace:
    """A migrated workspace, ready to use, private to its owner (see `make_private`); from here on this process
    makes private files only. With `ready_made` (the command line, where shops make their workspaces), a brand-new
    workspace starts with the ready-made segments, journeys and templates; without it, it starts empty."""
    _private_umask()
    ws = Workspace(settings, clock=clock).migrate(ready_made=ready_made)
    make_private(ws.settings.home)
    return ws
