"""SQLAlchemy base, engines and the unit of work for the operational store."""

from __future__ import annotations

import functools
import operator
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's own busy handler alone
    fcntl = None

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: sa.DateTime(), dict[str, Any]: sa.JSON(), list[str]: sa.JSON()}


Money = sa.Numeric(18, 4, asdecimal=False)
BigInt = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # 64-bit ids; SQLite's rowid is already 64 bits


def create_sql_engine(url: str) -> sa.Engine:
    """An engine for SQLite (WAL, one writer at a time across processes, served in turn) or PostgreSQL."""
    if url.startswith("sqlite"):
        queue = _queue_path(url)
        engine = sa.create_engine(
            url, connect_args={"timeout": 60, "check_same_thread": False, "factory": QueuedConnection}
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            dbapi_conn.queue_path = queue
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # pragma: no cover - driver hook
            # Take the write lock up front: two processes upgrading read locks deadlock in SQLite. A reading
            # session (UnitOfWork.reading) reads a snapshot instead, beside the writer, without waiting for it.
            if conn.get_execution_options().get(READING):
                conn.exec_driver_sql("BEGIN")
                return
            writer = conn.connection.dbapi_connection
            writer.queue()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                writer.leave()
                raise

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


def _queue_path(url: str) -> str | None:
    database = sa.engine.make_url(url).database
    return None if fcntl is None or not database or database == ":memory:" else f"{database}-writers"


class QueuedConnection(sqlite3.Connection):
    """An SQLite connection whose writers wait their turn on a file lock beside the database (`...-writers`)
    before BEGIN IMMEDIATE, and let it go when they commit or roll back.

    SQLite's busy handler waits by sleeping, longer each try (up to 100 ms): a writer that comes back at once (the
    pipeline, chunk after chunk and step after step) takes the lock again before the one waiting wakes up. The
    kernel hands a file lock to its waiter the moment it is let go: a single tracked event right after a burst of
    100,000 answered in p99 10 to 13 ms instead of 22 (bench/ingest.py). Writers that do not queue (another
    tool) still meet SQLite's own lock, as does a thread writing through a second connection while its first is
    writing (it would wait for itself). A transaction may end in another thread than the one that began it (a
    request's session closed by FastAPI's teardown): the queue is held by the connection, not the thread."""

    queue_path: str | None = None
    _fd: int | None = None
    _queued = False
    _holders: dict[str, tuple[int, QueuedConnection]] = {}  # queue path -> (thread, connection) of this process in it

    def queue(self) -> None:
        if self.queue_path is None:
            return
        holder = self._holders.get(self.queue_path)
        if holder is not None and holder[0] == threading.get_ident():
            return  # this thread writes through another connection already: waiting here would wait for itself
        if self._fd is None:
            self._fd = os.open(self.queue_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._holders[self.queue_path] = (threading.get_ident(), self)
        self._queued = True

    def leave(self) -> None:
        if self._queued:
            self._queued = False
            if self._holders.get(self.queue_path, (None, None))[1] is self:
                del self._holders[self.queue_path]
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave()

    def close(self) -> None:
        self.leave()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        super().close()


def _insert(bind: sa.Engine | sa.Connection | Session | str):
    """The INSERT construct of the store's dialect (or dialect name), which knows ON CONFLICT."""
    if isinstance(bind, str):
        name = bind
    else:
        name = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_ignore(bind: sa.Engine | sa.Connection | Session | str, table: sa.Table):
    """INSERT ... ON CONFLICT DO NOTHING."""
    return _insert(bind)(table).on_conflict_do_nothing()


def upsert(bind: sa.Engine | sa.Connection | Session, table: sa.Table, keys: list[str], rows: list[dict]):
    """INSERT ... ON CONFLICT (keys) DO UPDATE of every other column given in the rows but created_at."""
    stmt = _insert(bind)(table)
    columns = [c for c in rows[0] if c not in keys and c != "created_at"]
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in columns})


def executemany(session: Session, statement: sa.Executable, rows: list[dict]) -> None:
    """Run one statement over many rows; on SQLite straight through the driver.

    On the ingest path SQLAlchemy's per-row parameter handling costs more than SQLite's own work.
    Values must be plain (text, numbers, None, datetimes); datetimes are written in the text form
    SQLAlchemy reads back.
    """
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        conn.execute(statement, rows)
        return
    sql, names = _compiled(statement, conn.dialect, tuple(rows[0]))
    row_of = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    plain = [row_of(row) for row in rows]
    times = [i for i, column in enumerate(zip(*plain)) if any(issubclass(t, datetime) for t in set(map(type, column)))]
    if times:
        texts: dict[tuple, str] = {}  # rows often share a time (a batch's `now`): each is formatted once
        plain = [list(values) for values in plain]
        for values in plain:
            for i in times:
                if (value := values[i]) is not None:
                    key = (value, value.utcoffset())  # equal instants in other zones are written otherwise
                    values[i] = texts.get(key) or texts.setdefault(key, value.isoformat(" ", "microseconds"))
    conn.connection.driver_connection.cursor().executemany(sql, plain)


@functools.lru_cache(maxsize=64)
def _compiled(statement: sa.Executable, dialect, keys: tuple[str, ...]) -> tuple[str, list[str]]:
    """SQL text and parameter order of a statement (keep the statement in a constant: it is the cache key)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    return compiled.string, compiled.positiontup


SQLITE_ROWS_PER_INSERT = 500  # rows per multi-row VALUES: well under SQLite's limit on bind parameters


def insert_new(session: Session, table: sa.Table, key: str, rows: list[dict]) -> set:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING `key`: the keys of the rows that were not there yet. On
    SQLite straight through the driver, as `executemany` (plain values only), a few hundred rows a statement."""
    if not rows:
        return set()
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        statement = insert_ignore(conn, table).returning(table.c[key], sort_by_parameter_order=False)
        return set(conn.execute(statement, rows).scalars())
    names = tuple(rows[0])
    cursor = conn.connection.driver_connection.cursor()
    new = set()
    for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
        chunk = rows[start : start + SQLITE_ROWS_PER_INSERT]
        sql = _insert_new_sql(conn.dialect, table.name, names, key, len(chunk))
        values = [_plain(row[name]) for row in chunk for name in names]
        new.update(found for (found,) in cursor.execute(sql, values).fetchall())
    return new


@functools.lru_cache(maxsize=64)
def _insert_new_sql(dialect, table: str, names: tuple[str, ...], key: str, count: int) -> str:
    quote = dialect.identifier_preparer.quote
    row = f"({', '.join('?' * len(names))})"
    return (
        f"INSERT INTO {quote(table)} ({', '.join(map(quote, names))}) VALUES {', '.join([row] * count)} "
        f"ON CONFLICT DO NOTHING RETURNING {quote(key)}"
    )


def _plain(value: Any) -> Any:
    """A value as the SQLite driver takes it: datetimes in the text form SQLAlchemy reads back."""
    return value.isoformat(" ", "microseconds") if isinstance(value, datetime) else value


CHUNK = 5000  # values per IN (...) list: well under SQLite's and PostgreSQL's limits on bind parameters


def chunked(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    """The values, sorted and without repeats, `size` at a time (for IN lists)."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def among(session: Session, column: sa.ColumnElement, values: list) -> sa.ColumnElement[bool]:
    """`column IN values` with the values bound as one parameter (a JSON array read by json_each on SQLite, an array
    on PostgreSQL): an IN list of thousands of values costs SQLAlchemy several microseconds a value to render."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return column.in_(sa.select(sa.func.json_each(orjson.dumps(values).decode()).table_valued("value").c.value))
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def in_chunks(session: Session, query: Callable[[list], sa.Select], values: Iterable) -> list[sa.Row]:
    """The rows of `query(chunk)` over every chunk of `values`: any number of ids in a few IN lists."""
    return [row for chunk in chunked(values) for row in session.execute(query(chunk)).all()]


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction commits (its own, not a SAVEPOINT's); never if it rolls back."""
    session.connection()  # begins the transaction where it has not begun yet
    root, armed = session.get_transaction(), [True]

    def committed(_session: Session) -> None:
        if armed[0] and session.get_nested_transaction() is None:  # a SAVEPOINT's release is told as a commit too
            armed[0] = False
            action()

    def ended(_session: Session, transaction) -> None:
        if transaction is root:
            armed[0] = False

    sa.event.listen(session, "after_commit", committed)
    sa.event.listen(session, "after_transaction_end", ended)


READING = "boomerang_reading"  # the execution option of UnitOfWork.reading's connections


class UnitOfWork:
    """Opens sessions; the caller (request, command, worker tick) commits once. `info` is every session's
    `Session.info`: what the composition root lends the domains through a session (the workspace secret)."""

    def __init__(self, engine: sa.Engine, *, info: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False, info=info or {})
        self._reading = sessionmaker(
            engine.execution_options(**{READING: True}), expire_on_commit=False, info=info or {}
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads: on SQLite it reads a snapshot without taking the write lock, so a request
        that only looks things up neither waits behind the pipeline's writes nor holds them up. Nothing it
        changes is kept."""
        session = self._reading()
        try:
            yield session
        finally:
            session.rollback()
            session.close()
