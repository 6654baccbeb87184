"""Engine and session factory, tuned so both databases keep the concurrency rules.

SQLite: WAL, a busy timeout, and every transaction that may write opened with BEGIN
IMMEDIATE, because Python's sqlite3 starts no transaction before a SELECT and
read-modify-write would silently lose updates between processes. Writers of a database file
queue for that lock on an flock (see WriterQueue). Transactions that only read (`reading`:
the webhook's card screens) begin deferred and refuse any change or statement but a SELECT.
PostgreSQL: services lock the member row instead; `reading` runs its statements in
autocommit, and `one_statement` a single write that way.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    inspect,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

SQLITE_BUSY_TIMEOUT_MS = 30_000
TIMEOUTS = "bot.timeouts"  # a pooled connection's info: (its DBAPI connection, timeout set)
PING_AFTER_IDLE = 10.0  # seconds a pooled PostgreSQL connection may idle before a ping
LOCK_TIMEOUT = "lock_timeout"  # execution option: seconds a transaction may wait for locks
READ_ONLY = "bot.read_only"  # execution option: a transaction that only reads (see reading)
UNSYNCED = "bot.unsynced"  # execution option: SQLite commits not synced to disk (see autocommit)
WRITTEN = "bot.written_through"  # a session's info: objects write_through changed (by id)
SYNC = "bot.synchronous"  # a pooled SQLite connection's info: its PRAGMA synchronous now
log = logging.getLogger("bot.db")


def bounded(engine: Engine, seconds: float) -> Engine:
    """The same engine (and pool) whose transactions wait at most `seconds` for a lock (and,
    on PostgreSQL, for any one statement), then fail with OperationalError: a caller that
    must answer quickly (LINE's webhook) answers "try again" rather than wait."""
    return engine.execution_options(**{LOCK_TIMEOUT: seconds})


class NeedsWrite(Exception):
    """A transaction opened by reading() was about to write: do it again as a writer."""


def reading(engine: Engine, lock_wait: float) -> sessionmaker[Session]:
    """Sessions that only read, for the webhook's card screens: they take no lock and wait
    for no writer, and the event's own write (its claim, the tap count) comes after.

    SQLite: a transaction the app opens takes the database's one write lock at BEGIN and
    holds it to the commit, so while one event's transaction reads, every other event's
    waits. These begin as plain (deferred) readers instead, which SQLite's WAL lets run
    beside the writer, on a snapshot of the last commit. PostgreSQL: each statement runs on
    its own (autocommit), as READ COMMITTED would see it inside a transaction anyway, which
    saves the BEGIN and COMMIT round trips.

    Nothing is written in them: their session raises NeedsWrite before it would flush a
    change, and their connections before any statement but a SELECT (or SHOW), so the
    caller can do that work again in a writing transaction. (SQLite's own `PRAGMA
    query_only` could do the second, but turning it on and off makes SQLite prepare every
    cached statement again: a tenth more instructions per screen.)"""
    readers = engine.execution_options(**{READ_ONLY: True}) \
        if engine.dialect.name == "sqlite" else autocommit(engine, lock_wait)

    @event.listens_for(readers, "before_cursor_execute")
    def _selects_only(_conn, _cursor, statement, _params, _context, _many) -> None:
        if not statement.lstrip().startswith(("SELECT", "BEGIN", "SHOW")):
            raise NeedsWrite()

    made = make_sessionmaker(readers)

    @event.listens_for(made, "before_flush")
    def _refuse(session, _context, _instances) -> None:
        if session.new or session.dirty or session.deleted:
            raise NeedsWrite()

    return made


def autocommit(engine: Engine, lock_wait: float, *, synced: bool = True) -> Engine:
    """bounded(engine, lock_wait) whose every statement is its own transaction on
    PostgreSQL; on SQLite just bounded (its transactions are opened by the begin listener).
    The options are set in one go: an engine made from an engine made with options passes
    every event through both, which costs each statement more.

    synced=False (SQLite): its commits are not synced to disk (`PRAGMA synchronous=NORMAL`
    for those transactions only), which spares the fsync a commit otherwise waits for while
    it holds the one write lock (a third of a millisecond here). Only for writes whose loss
    costs nothing: an OS crash or power cut may undo the last of them (never corrupt the
    file), and the next synced commit puts them on disk with its own. A process that dies
    loses nothing. Every other transaction stays synced (FULL), set back before it begins."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{LOCK_TIMEOUT: lock_wait, UNSYNCED: not synced})
    return engine.execution_options(**{LOCK_TIMEOUT: lock_wait}, isolation_level="AUTOCOMMIT")


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for `url`; SQLite files get their folder created and safe pragmas.

    A failed statement's error names the statement but never its values: they may be LINE
    ids, phones, codes or confirmation tokens, and errors end up in the logs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _postgresql_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        with suppress(OSError):  # if it can't be made, connecting fails and /healthz says so
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        connect_args["factory"] = QueuedConnection
    engine = create_engine(url, connect_args=connect_args, hide_parameters=True, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")  # WAL's default, said: commits are on disk
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        dbapi_conn = conn.connection.dbapi_connection
        options = conn.get_execution_options()
        if options.get(READ_ONLY):  # a reader (see reading): no write lock, no queue
            conn.exec_driver_sql("BEGIN")
            return
        bound = options.get(LOCK_TIMEOUT)
        started = time.monotonic()
        _synchronous(conn, "NORMAL" if options.get(UNSYNCED) else "FULL")
        queued = isinstance(dbapi_conn, QueuedConnection) and dbapi_conn.queue.enter(bound)
        try:
            if bound is None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:  # the lock wait, queue included, stays within the bound (a writer from
                # outside the app, such as the sqlite3 shell, does not queue); the pragmas
                # go straight to sqlite3: they return nothing and cannot fail
                left = max(0, int((bound - (time.monotonic() - started)) * 1000))
                dbapi_conn.execute(f"PRAGMA busy_timeout={left}")
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                finally:
                    dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        except BaseException:
            if queued:
                dbapi_conn.queue.leave()
            raise

    return engine


def _synchronous(conn: Connection, level: str) -> None:
    """The connection's PRAGMA synchronous for the transaction about to begin (SQLite allows
    no change inside one), set only when it differs from the last: a pragma that needs no
    new plan costs a few microseconds, and it goes straight to sqlite3."""
    info = conn.connection.info
    if info.get(SYNC, "FULL") != level:
        conn.connection.dbapi_connection.execute(f"PRAGMA synchronous={level}")
        info[SYNC] = level


def _postgresql_engine(url: str, **kwargs) -> Engine:
    engine = create_engine(url, hide_parameters=True, **kwargs)

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record) -> None:
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
        """A connection that idled in the pool past PING_AFTER_IDLE (the server may have
        restarted or a firewall dropped it meanwhile) is pinged before use, and replaced
        if it is gone. One in steady use is not: a ping at every checkout cost each webhook
        event a round trip. If the server goes away between two uses, that statement fails
        and its caller's error handling applies (the webhook answers 503; LINE redelivers)."""
        idle_from = record.info.get("idle_from")
        if idle_from is not None and time.monotonic() - idle_from < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool replaces it with a new connection
            raise DisconnectionError("the pooled connection is gone") from exc

    @event.listens_for(engine, "handle_error")
    def _no_values(context) -> None:
        """PostgreSQL's DETAIL repeats the values (`Key (phone)=(0912...) already exists`,
        `Failing row contains (...)`): the error keeps its first line only."""
        for exc in (context.original_exception, context.sqlalchemy_exception):
            if exc is not None and exc.args and "\n" in str(exc.args[0]):
                exc.args = (str(exc.args[0]).split("\n", 1)[0], *exc.args[1:])

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        """A bounded transaction's lock and statement timeouts, set on its connection for the
        session and remembered: the next bounded transaction on it (the webhook's every
        event) needs no round trip. An unbounded one puts the server's defaults back first.
        A rollback forgets what was set (PostgreSQL undoes a SET made in it)."""
        bound = conn.get_execution_options().get(LOCK_TIMEOUT)
        wanted = None if bound is None else f"{int(bound * 1000)}ms"
        dbapi_conn, info = conn.connection.dbapi_connection, conn.connection.info
        current = info.get(TIMEOUTS)
        if (current[1] if current and current[0] is dbapi_conn else None) == wanted:
            return
        info.pop(TIMEOUTS, None)
        if wanted is None:
            conn.exec_driver_sql("RESET lock_timeout")
            conn.exec_driver_sql("RESET statement_timeout")
        else:
            conn.exec_driver_sql(f"SELECT set_config('lock_timeout', '{wanted}', false), "
                                 f"set_config('statement_timeout', '{wanted}', false)")
        info[TIMEOUTS] = (dbapi_conn, wanted)

    @event.listens_for(engine, "rollback")
    def _forget_timeouts(conn) -> None:
        if not conn.invalidated:  # (a lost connection's memo names a DBAPI connection gone)
            conn.connection.info.pop(TIMEOUTS, None)

    return engine


class WriterQueue:
    """Writers of one SQLite file take turns on an flock of `<file>-writers` before BEGIN
    IMMEDIATE, so a waiter gets the write lock the moment it comes free. SQLite's own
    busy handler sleeps between tries, up to 100 ms at a time: under steady load a few
    writers waited 0.6 s for a lock held 2 ms at a time (benchmarks/webhook.py).

    The queue only orders waiters; correctness never rests on it. Whenever it cannot help,
    the writer goes straight to BEGIN IMMEDIATE and SQLite's busy timeout, as writers from
    outside the app (the sqlite3 shell) always do: a thread already holding a turn (a second
    connection would wait on itself), a lock file that cannot be opened (made by another
    user, say; said once in the log), or a turn not had within the busy timeout. Each
    connection has its own open file, since an flock excludes other open files, even in the
    same process."""

    _threads_in: set[int] = set()  # threads holding some queue's turn, in this process
    _warned: set[str] = set()

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout, self.fd, self.pid, self.owner = path, timeout, -1, 0, None
        self.held = -1  # the open file holding our turn: fd, or a waiter's own

    def enter(self, timeout: float | None = None) -> bool:
        """Wait for our turn (at most `timeout` seconds, else the busy timeout); False if we
        go without one (see above)."""
        thread = threading.get_ident()
        if thread in self._threads_in or not self._open():
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.held = self.fd
        except BlockingIOError:
            self.held = self._wait(self.timeout if timeout is None else timeout)
            if self.held < 0:
                return False
        self.owner = thread
        self._threads_in.add(thread)
        return True

    def _wait(self, timeout: float) -> int:
        """Block for a turn, at most the busy timeout: the kernel wakes waiters the moment
        the turn is free. The wait runs in a thread of its own, on an open file of its own,
        so that a wait given up on still ends cleanly: a turn it gets too late is handed
        straight back. Returns that file (holding the turn), or -1."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return -1
        got, lock, abandoned = threading.Event(), threading.Lock(), [False]

        def take() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with lock:
                if not abandoned[0]:
                    got.set()
                    return
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        threading.Thread(target=take, name="sqlite-writer-queue", daemon=True).start()
        got.wait(timeout)
        with lock:
            if got.is_set():
                return fd
            abandoned[0] = True
        return -1

    def _open(self) -> bool:
        if self.pid == os.getpid():
            return self.fd >= 0
        if self.fd >= 0:  # a forked child: the parent's open file is the parent's
            with suppress(OSError):
                os.close(self.fd)
        self.pid, self.fd, self.owner, self.held = os.getpid(), -1, None, -1
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            try:  # flock needs no write access: another user's lock file still works
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if self.path not in self._warned:
                    self._warned.add(self.path)
                    log.warning("SQLite writers will not queue (%s); the busy timeout applies",
                                exc)
        return self.fd >= 0

    def leave(self) -> None:
        if self.owner is not None:
            self._threads_in.discard(self.owner)
            self.owner = None
            fcntl.flock(self.held, fcntl.LOCK_UN)
            if self.held != self.fd:
                os.close(self.held)
            self.held = -1

    def close(self) -> None:
        self.leave()
        if self.fd >= 0 and self.pid == os.getpid():
            os.close(self.fd)
        self.fd = -1


class QueuedConnection(sqlite3.Connection):
    """A sqlite3 connection that leaves its file's WriterQueue when its transaction ends."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.queue = WriterQueue(f"{os.fsdecode(database)}-writers",
                                 SQLITE_BUSY_TIMEOUT_MS / 1000)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.queue.leave()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.queue.leave()

    def close(self) -> None:
        try:
            self.queue.close()
        finally:
            super().close()


def scratch_schema(url: str, name: str) -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL schema `name` in the database at `url` (a normalized URL), for a
    test run or a benchmark: (a URL whose connections work in it, a function dropping it)."""
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {name}"))
    except Exception:
        admin.dispose()
        raise

    def drop() -> None:
        try:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        finally:
            admin.dispose()

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{name}", drop


def db_error(exc: BaseException | None) -> str:
    """An error in one line, without a statement's parameters (they may hold codes, phones
    or LINE ids)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    first = str(exc).splitlines()[0] if exc is not None and str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:300]


def can_write(conn: Connection) -> None:
    """Write and undo it (a row in processed_events, added and deleted) in the caller's
    transaction, which then commits: together they raise if the database cannot be reached,
    is read-only, or has no room to commit, where `SELECT 1` would still pass."""
    key = f"healthz:{uuid.uuid4().hex}"
    conn.execute(text("INSERT INTO processed_events (event_id, event_type, processed_at) "
                      "VALUES (:key, 'healthz', CURRENT_TIMESTAMP)"), {"key": key})
    conn.execute(text("DELETE FROM processed_events WHERE event_id = :key"), {"key": key})


def core(session: Session | Connection) -> Connection:
    """The session's connection, for Core statements whose rows need no ORM objects: they
    skip the ORM's work per statement (about half the CPU of a small query). Pending ORM
    changes are flushed first, as session.execute would. A Connection (one_statement's)
    is its own."""
    if isinstance(session, Connection):
        return session
    if session.autoflush:
        session.flush()
    return session.connection()


def write_through(session: Session, obj: Any, **values: Any) -> None:
    """Change columns of a loaded (and locked) object's row in one Core UPDATE by its primary
    key, and put the values on the object as its committed state, so the ORM has nothing of
    them left to flush (for a purchase's member, that flush cost 3% of the purchase's
    instructions more than this statement; benchmarks/webhook_instructions.py).
    Pending ORM changes are flushed first (core()). Should the transaction or a savepoint
    roll back, the object is expired (the ORM never saw these changes to undo them)."""
    state = inspect(obj)
    core(session).execute(_update_by_key(state.mapper.local_table, tuple(sorted(values))),
                          {"_key": state.identity[0],
                           **{f"_{key}": value for key, value in values.items()}})
    for key, value in values.items():
        set_committed_value(obj, key, value)
    session.info.setdefault(WRITTEN, {})[id(obj)] = obj


@event.listens_for(Session, "after_soft_rollback")
def _expire_written(session: Session, _previous: Any) -> None:
    """A rollback (a savepoint's too) took back what write_through wrote, and the ORM did not
    see those changes, so it would keep the undone values: the objects are expired instead,
    and read again from the database when next used."""
    for obj in session.info.pop(WRITTEN, {}).values():
        if obj in session:
            session.expire(obj)


@event.listens_for(Session, "after_commit")
def _forget_written(session: Session) -> None:
    session.info.pop(WRITTEN, None)


@functools.cache
def _update_by_key(table: Table, keys: tuple[str, ...]) -> Any:
    """write_through's UPDATE of these columns, built once."""
    (key_column,) = table.primary_key.columns
    return (update(table).where(key_column == bindparam("_key"))
            .values({key: bindparam(f"_{key}", type_=table.c[key].type) for key in keys}))


def dialect_name(session: Session | Connection) -> str:
    """"sqlite" or "postgresql": the database a session or connection talks to."""
    if isinstance(session, Connection):
        return session.dialect.name
    return session.get_bind().dialect.name


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The entrypoint's unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def one_statement(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """transaction() for a single Core statement: a connection of the factory's engine (with
    its options) and no ORM session, which costs more than such a transaction. On
    PostgreSQL the statement runs as its own transaction (autocommit): no BEGIN or COMMIT
    round trip. (A second statement would be a transaction of its own too.)"""
    engine = factory.kw["bind"]
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with conn.begin():
            yield conn


@functools.cache
def _insert_new_statement(dialect: str, table: Table, key: str) -> Any:
    """Built once: building it costs more CPU than the webhook's claim takes to run."""
    return (dialect_insert(dialect, table).on_conflict_do_nothing(index_elements=[key])
            .returning(table.c[key]))


def dialect_insert(session: Session | str, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the session's database (PostgreSQL or SQLite), or
    for the database kind named."""
    dialect = session if isinstance(session, str) else dialect_name(session)
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](table)


def insert_new(session: Session | Connection, table: Table, rows: list[dict[str, Any]],
               key: str) -> set:
    """Insert the rows whose unique `key` is not taken yet; returns the keys this call added.

    INSERT ... ON CONFLICT DO NOTHING RETURNING, executed for all rows at once (batched
    into multi-row statements by SQLAlchemy, and compiled once per table): a row another
    transaction holds is waited for, then skipped, so two processes never both add a key.
    """
    if not rows:
        return set()
    statement = _insert_new_statement(dialect_name(session), table, key)
    if len(rows) == 1:
        return set(core(session).execute(statement, rows[0]).scalars())
    return set(core(session).execute(statement, rows).scalars())
