"""Engine, sessions and schema migrations.

Repository functions elsewhere take a ``Session`` and never commit: the caller owns the
transaction (``session_scope``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Engine, Result, Table, create_engine, event, exc, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from duban.files import private_dir, touch_private

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration. Commands compare the database with it and only load Alembic when they
# differ (loading Alembic costs a CLI call about 0.3 s); tests check it is the head.
HEAD_REVISION = "0011"
SQLITE_BUSY_TIMEOUT = 30  # seconds a SQLite writer waits for another one
DEFAULT_CONNECT_TIMEOUT = 10  # seconds to wait for PostgreSQL to answer a new connection (DUBAN_DB_CONNECT_TIMEOUT)
# the execution option of a transaction that waits at most this many seconds for a lock (see session_scope)
LOCK_WAIT = "duban_lock_wait"
# JSON columns as compact UTF-8 (SQLAlchemy's default escapes every Chinese character as \uXXXX):
# after a province sweep the digests take 30 % less room and the ledger 20 % less, to write and to read
# (one encoder for every value: ``json.dumps`` with options builds a new one on each call)
JSON_TEXT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def make_engine(url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT, busy_timeout: float | None = None) -> Engine:
    """Create an engine; for SQLite, create the folder, enforce foreign keys and use WAL
    (``busy_timeout``: seconds a SQLite writer waits for another one before "database is locked",
    default ``SQLITE_BUSY_TIMEOUT``);
    for PostgreSQL, give up on a server that does not answer a new connection within
    ``connect_timeout`` seconds (unless the URL says otherwise)."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, SQLITE_BUSY_TIMEOUT if busy_timeout is None else busy_timeout)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": max(2, int(connect_timeout))}
    # pool_size ≥ the web app's worker threads (8): with SQLAlchemy's default of 5, every request
    # beyond the fifth opened and closed an overflow connection (bench_web: PostgreSQL page-view
    # p99 from seconds to ~150 ms at 200 views/s)
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, connect_args=connect_args, json_serializer=JSON_TEXT)
    event.listen(engine, "begin", _postgres_begin)
    return engine


def _sqlite_engine(url: str, busy_timeout: float) -> Engine:
    path = url.split("///", 1)[-1] if "///" in url else ""
    on_disk = bool(path) and path != ":memory:" and not path.startswith("file:")
    if on_disk:
        private_dir(Path(path).parent)
    # pool_size ≥ the web app's worker threads (8), as for PostgreSQL: with the default of 5, a
    # burst of requests opened and closed overflow connections (each with its PRAGMAs)
    pool = {} if not path or path == ":memory:" else {"pool_size": 10}
    engine = create_engine(url, connect_args={"timeout": busy_timeout}, json_serializer=JSON_TEXT, **pool)
    if path and path != ":memory:":
        # writers of this process queue here rather than in SQLite's busy handler, which polls
        # with sleeps of up to 100 ms (a long tail when many threads write at once)
        engine.__dict__["_duban_write_lock"] = threading.RLock()

    if on_disk:

        @event.listens_for(engine, "do_connect")
        def _private_file(*_args):  # pragma: no cover - trivial
            # the first connection creates the database: 0600, and SQLite gives its -wal and -shm
            # files the database file's mode (duban/files.py)
            if not Path(path).exists():
                touch_private(path)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
        # let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see below)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if path and path != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    usual_ms = round(1000 * busy_timeout)
    event.listen(engine, "begin", lambda conn: _sqlite_begin(conn, usual_ms))
    return engine


def _sqlite_begin(conn: Connection, usual_ms: int) -> None:
    """Writers take the write lock up front: two sweeps or imports at once then queue (busy
    timeout) instead of failing when a reader tries to become a writer after the other committed.
    Read-only work (status, previews) reads a snapshot and waits for no one."""
    options = conn.get_execution_options()
    if options.get("duban_readonly"):
        conn.exec_driver_sql("BEGIN")
        return
    # the busy timeout belongs to the connection, which goes back to the pool: set it for every
    # transaction whose wait differs from the connection's last one (``usual_ms``: the engine's)
    wait_ms = round(1000 * options[LOCK_WAIT]) if options.get(LOCK_WAIT) else usual_ms
    if conn.info.get("duban_busy_ms", usual_ms) != wait_ms:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms:d}")
        conn.info["duban_busy_ms"] = wait_ms
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_begin(conn: Connection) -> None:
    wait = conn.get_execution_options().get(LOCK_WAIT)
    if wait:  # this transaction waits at most so long for a row or table lock (SQLSTATE 55P03 after)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, round(1000 * wait)):d}")


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    """The database's schema version (None: not initialised); read only, so on SQLite it never
    waits for a writer (every command asks this first)."""
    with engine.connect() as conn:
        conn.execution_options(duban_readonly=True)
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _factory(engine: Engine, readonly: bool) -> sessionmaker:
    """One session factory per engine and mode, made once (not per transaction); kept on the
    engine itself, so it goes when the engine goes."""
    factories = engine.__dict__.get("_duban_factories")
    if factories is None:
        factories = engine.__dict__["_duban_factories"] = {}
    factory = factories.get(readonly)
    if factory is None:
        bind = engine.execution_options(duban_readonly=True) if readonly else engine
        factory = factories[readonly] = sessionmaker(bind, expire_on_commit=False)
    return factory


@contextlib.contextmanager
def session_scope(engine: Engine, *, readonly: bool = False, wait: float | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error.

    ``readonly`` work on SQLite does not take the write lock, so it never waits for a writer.
    ``wait``: seconds a writing transaction waits for a lock held by another one before it fails
    with a transient error (:func:`is_transient`): SQLite's busy timeout (default
    ``SQLITE_BUSY_TIMEOUT``), PostgreSQL's ``lock_timeout`` (default: no limit).
    """
    lock = None if readonly else engine.__dict__.get("_duban_write_lock")
    if lock is not None and not lock.acquire(timeout=wait or SQLITE_BUSY_TIMEOUT):
        lock = None  # still busy: fall back to SQLite's own busy timeout
    try:
        with _factory(engine, readonly)() as session, session.begin():
            if wait and not readonly:
                session.connection(execution_options={LOCK_WAIT: wait})  # begins the transaction with it
            yield session
    finally:
        if lock is not None:
            lock.release()


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run by ``Session.execute`` changed."""
    if not isinstance(result, CursorResult):
        raise TypeError("rowcount: not the result of an UPDATE or DELETE")
    return result.rowcount or 0


def executemany(session: Session, table: Table, sql: str, names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> int:
    """Run ``sql`` (one row's statement, a ``?`` for each of ``names`` in order: the SQLite
    driver's style) for every row in one driver ``executemany``; the rows it changed.

    Each value is bound as SQLAlchemy binds it for ``table``'s column of that name (JSON as
    text, dates and timestamps as SQLite's text), the processors applied column by column: a
    Core ``execute`` of many rows spends longer preparing each row's parameters than SQLite
    spends writing it.  A name missing from a row is NULL."""
    dialect = session.get_bind().dialect
    columns = []
    for name in names:
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        values = [r.get(name) for r in rows]
        columns.append(values if process is None else [process(v) for v in values])
    return session.connection().exec_driver_sql(sql, list(zip(*columns, strict=True))).rowcount


# PostgreSQL SQLSTATEs of a transaction that may well succeed when simply run again: serialization
# failure, deadlock, lock timeout, the server shutting down or cancelling, and lost connections
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"})
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
T = TypeVar("T")
log = logging.getLogger("duban.db")


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` says "the store is busy or briefly gone" (a SQLite write lock, a PostgreSQL
    deadlock, lock timeout or lost connection): the same transaction, run again, may succeed."""
    if not isinstance(err, exc.DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    orig = err.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return isinstance(err, exc.OperationalError) and any(m in str(orig).lower() for m in _SQLITE_BUSY)


def retry_transient(work: Callable[[], T], *, patience: float = 60.0, first_wait: float = 0.05, max_wait: float = 2.0) -> T:
    """Run ``work`` (one whole transaction) until it succeeds, again after a transient store error
    (``is_transient``) for up to ``patience`` seconds; any other error, or the last one, is raised.

    ``work`` must be safe to run again: its transaction was rolled back, and it must not have done
    anything outside the store (sending a message, writing a file) before the error."""
    deadline = time.monotonic() + patience
    wait = first_wait
    while True:
        try:
            return work()
        except exc.DBAPIError as err:
            if not is_transient(err) or time.monotonic() + wait > deadline:
                raise
            log.info("store busy (%s); trying again in %.2f s", err.orig.__class__.__name__, wait)
        time.sleep(wait)
        wait = min(wait * 2, max_wait)


_engines: dict[str, Engine] = {}


class NoDubanTables(Exception):  # noqa: N818 - reads as what it says: the database has no duban tables
    """The database has none of duban's tables (a mistyped path or database name would otherwise
    become a new, empty store); ``missing_file``: a SQLite file that does not exist (not created)."""

    def __init__(self, url: str, *, missing_file: str | None = None):
        self.url, self.missing_file = url, missing_file
        super().__init__(f"no duban tables in {missing_file or make_url(url).render_as_string(hide_password=True)}")


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a file-backed SQLite URL whose file does not exist, else None."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return None if Path(database).exists() else database


def _connect_timeout() -> int:
    from duban.settings import ConfigurationError, get_settings

    try:
        return get_settings().db_connect_timeout
    except ConfigurationError:  # the command says what is wrong with the settings itself
        return DEFAULT_CONNECT_TIMEOUT


def get_engine(url: str | None = None, *, migrate: bool = True, create: bool = True) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database), migrated to head.

    ``create=False``: a database without duban's tables (a SQLite file that does not exist, or an
    empty database) raises ``NoDubanTables`` instead of becoming a new store; nothing is created.
    """
    if url is None:
        from duban.settings import get_settings

        url = get_settings().database_url
    engine = _engines.get(url)
    if engine is None:
        if not create and (missing := _missing_sqlite_file(url)):
            raise NoDubanTables(url, missing_file=missing)
        engine = make_engine(url, connect_timeout=_connect_timeout())
        revision = current_revision(engine) if migrate or not create else HEAD_REVISION
        if revision is None and not create:
            engine.dispose()
            raise NoDubanTables(url)
        if migrate and revision != HEAD_REVISION:
            upgrade(engine)
        _engines[url] = engine
    return engine
