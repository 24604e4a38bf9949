"""Engine creation and schema migration.

SQLite (the default, ``sqlite:///{data_dir}/attestd.db``) is opened in WAL mode with foreign keys
on and a busy timeout, so the readers of one process never block its writer. PostgreSQL is used
through psycopg 3: ``postgresql+psycopg://user:pass@host/db`` (a plain ``postgresql://`` URL is
mapped to psycopg 3).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

__all__ = ["Prepared", "SqliteWriter", "checkpoint", "make_engine", "migrate", "normalize_url",
           "schema_is_current", "sqlite_path"]

MIGRATIONS = Path(__file__).with_name("migrations")
#: ``Connection.info`` key: this connection's next transaction writes (SQLite: BEGIN IMMEDIATE)
WRITE = "attestd_write"
#: ``Connection.info`` key: this connection runs single-statement reads only (SQLite: no BEGIN; in
#: autocommit each statement reads one consistent snapshot)
READ_ONLY = "attestd_read_only"


def normalize_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _json_default(value: Any) -> Any:
    """What JSON has no type for, as records show it: bytes as hex, sets as sorted lists, objects
    through their ``to_json``/``to_dict``, anything else as its text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    for method in ("to_json", "to_dict"):
        if hasattr(value, method):
            return getattr(value, method)()
    return str(value)


def json_dumps(value: Any) -> str:
    """JSON columns as text: orjson (an attestation record's JSON costs 10x less than with the
    standard library), the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=_json_default)


def sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL (None for in-memory databases and other backends)."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


class SqliteWriter:
    """SQLite's one writer at a time, taken in turn instead of by collision.

    Threads of a process queue on an RLock; processes (the workers of ``attestd serve --workers N``,
    CLI commands) queue on ``flock`` of ``{database}-writer`` beside the database file, where the
    kernel wakes the next waiter as soon as the lock is free. Without it they would meet in SQLite's
    busy handler, which retries after sleeping 1, 2, 5, 10 ... 100 ms: a writer that waits once
    turns a sub-millisecond transaction into tens of milliseconds of latency. Re-entrant within a
    thread; the lock file is opened anew in each process (a descriptor inherited through ``fork``
    shares its lock with the parent)."""

    def __init__(self, database: str | None) -> None:
        self._lock = threading.RLock()
        self._path = None if database is None or fcntl is None else database + "-writer"
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                if self._pid != os.getpid():
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self._pid = os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


#: WAL pages after which a committing connection checkpoints by itself (SQLite's default is 1000,
#: 4 MB: every ~100 attestations one request paid for copying them into the database and its
#: fsync, 5-15 ms). ``attestd serve`` checkpoints in the background (:func:`checkpoint`) long
#: before this; it bounds the WAL of processes that do not.
WAL_AUTOCHECKPOINT = 20000


def checkpoint(engine: Engine) -> tuple[int, int, int] | None:
    """A PASSIVE WAL checkpoint (never waits for readers or the writer): SQLite's ``(busy, WAL
    frames, frames checkpointed)``, or None for a database without a WAL."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").first()
        return tuple(row) if row is not None else None


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalize_url(url)
    codec = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, **codec)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # pysqlite's implicit transactions are replaced by an explicit BEGIN (below): PRAGMAs
            # then run outside a transaction and SAVEPOINTs behave.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # a transaction that will write takes the write lock up front (BEGIN IMMEDIATE): a
            # deferred one that reads first and then writes gets SQLITE_BUSY at once, with no wait,
            # when another connection writes meanwhile
            # (on the DBAPI connection: SQLAlchemy's execution machinery cost more than the BEGIN)
            sql = "BEGIN IMMEDIATE" if conn.info.get(WRITE) else None if conn.info.get(READ_ONLY) else "BEGIN"
            if sql is not None:
                with _dbapi_errors(conn.dialect, sql, ()):
                    conn.connection.dbapi_connection.execute(sql)

        return engine
    # PostgreSQL (psycopg 3). Each process keeps up to pool_size + max_overflow connections (30):
    # replicas x workers x 30 must stay under the server's max_connections. pre_ping replaces a
    # connection the server closed (restart, failover, idle timeout) before a request sees it.
    query = make_url(url).query
    connect_args = {k: v for k, v in (("connect_timeout", 10), ("application_name", "attestd"))
                    if k not in query}
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=1800,
                         connect_args=connect_args, **codec)


def _config(connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


#: the PostgreSQL advisory lock held while migrating (advisory locks are per database)
MIGRATION_LOCK = 7357001


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision``; idempotent. Replicas starting together on one PostgreSQL
    database take turns: the upgrade runs in one transaction (PostgreSQL's DDL is transactional)
    that first takes the advisory lock :data:`MIGRATION_LOCK`, held until it commits, so the next
    replica reads the version the previous one wrote and has nothing left to do. On SQLite the
    transaction begins with the database's write lock (BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        conn.info[WRITE] = True
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                command.upgrade(_config(conn), revision)
        finally:
            conn.info.pop(WRITE, None)


def schema_is_current(engine: Engine) -> bool:
    script = ScriptDirectory.from_config(_config(None))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) == set(script.get_heads())


@contextlib.contextmanager
def _dbapi_errors(dialect: Any, sql: str, args: Any) -> Iterator[None]:
    """A DBAPI error raised as SQLAlchemy's (``IntegrityError``, ``DataError``...), as
    ``Connection.execute`` raises it, for SQL run on the DBAPI connection directly."""
    try:
        yield
    except dialect.loaded_dbapi.Error as err:
        raise sa_exc.DBAPIError.instance(sql, args, err, dialect.loaded_dbapi.Error, dialect=dialect) from err


class Prepared:
    """A Core statement compiled once per dialect and run on the DBAPI cursor.

    Every attestation reads its host and writes its record, its nonce, and a host's update and
    certificate: small statements, for which SQLAlchemy's work at each execution (execution
    context, parameter processing set-up, result object) cost more than SQLite's. A ``Prepared``
    keeps what SQLAlchemy compiled - the SQL text, the parameter order, each parameter's and each
    result column's type processing (``type.dialect_impl(dialect)``, as SQLAlchemy applies it) -
    and runs it on the connection's DBAPI cursor, inside the connection's transaction. Every
    parameter of ``keys`` (an INSERT's or UPDATE's columns) must be given: no column defaults are
    computed. A DBAPI error is raised as SQLAlchemy's (``IntegrityError``, ``DataError``...), as
    ``Connection.execute`` would.
    """

    def __init__(self, statement: Any, keys: Iterable[str] = ()) -> None:
        self.statement = statement
        self.keys = tuple(keys)
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any], list[Any]]] = {}

    def _for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any], list[Any]]:
        hit = self._compiled.get(dialect.name)
        if hit is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(self.keys) or None)
            order = tuple(compiled.positiontup) if compiled.positional else None
            procs = {}
            for bind in compiled.binds.values():
                proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if proc is not None:
                    procs[bind.key] = proc
            results = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                       for c in getattr(self.statement, "selected_columns", ())]
            hit = self._compiled[dialect.name] = (compiled.string, order, procs, results)
        return hit

    def execute(self, conn: Any, params: dict[str, Any]) -> int:
        """Run with ``params`` on ``conn`` (a SQLAlchemy Connection); the rowcount."""
        return self._run(conn, params, fetch=False)

    def execute_many(self, conn: Any, params: list[dict[str, Any]]) -> None:
        """Run once for each of ``params`` (one DBAPI ``executemany``)."""
        dialect = conn.dialect
        sql, order, procs, _ = self._for(dialect)
        args = [self._args(p, order, procs) for p in params]
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with _dbapi_errors(dialect, sql, args):
                cursor.executemany(sql, args)
        finally:
            cursor.close()

    def rows(self, conn: Any, params: dict[str, Any]) -> list[tuple]:
        """Run a SELECT with ``params`` on ``conn``; its rows, each value as SQLAlchemy returns it."""
        return self._run(conn, params, fetch=True)

    @staticmethod
    def _args(params: dict[str, Any], order: tuple[str, ...] | None, procs: dict[str, Any]) -> Any:
        values = {k: (procs[k](v) if k in procs else v) for k, v in params.items()}
        return tuple(values[k] for k in order) if order is not None else values

    def _run(self, conn: Any, params: dict[str, Any], *, fetch: bool) -> Any:
        dialect = conn.dialect
        sql, order, procs, results = self._for(dialect)
        args = self._args(params, order, procs)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with _dbapi_errors(dialect, sql, args):
                cursor.execute(sql, args)
                if not fetch:
                    return cursor.rowcount
                rows = cursor.fetchall()
        finally:
            cursor.close()
        if any(results):
            rows = [tuple(v if proc is None or v is None else proc(v) for proc, v in zip(results, row, strict=True))
                    for row in rows]
        return rows
