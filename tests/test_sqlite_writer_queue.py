"""SQLite writers take turns on the database file's writer queue, and always leave it: a
transaction that commits, rolls back or fails lets the next writer in at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.db import QueuedConnection, WriterQueue, make_engine


@pytest.fixture
def counter_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'counter.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    engine.dispose()
    return url


def _increment(url: str, done: list[int]) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            n = conn.execute(text("SELECT n FROM counter")).scalar_one()
            conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        done.append(n + 1)
    finally:
        engine.dispose()


def _writes_within(url: str, seconds: float) -> list[int]:
    """Another process's worth of writer (its own engine and thread) increments the counter;
    what it wrote, or [] if it was still waiting after `seconds`."""
    done: list[int] = []
    worker = threading.Thread(target=_increment, args=(url, done), daemon=True)
    worker.start()
    worker.join(seconds)
    return done


def test_a_file_database_queues_its_writers(counter_url):
    engine = make_engine(counter_url)
    with engine.connect() as conn:
        assert isinstance(conn.connection.dbapi_connection, QueuedConnection)
    engine.dispose()
    assert Path(counter_url.removeprefix("sqlite:///") + "-writers").exists()


def test_a_writer_waits_for_the_one_in_its_turn_then_sees_its_write(counter_url):
    engine = make_engine(counter_url)
    done: list[int] = []
    waiting = threading.Thread(target=_increment, args=(counter_url, done), daemon=True)
    with engine.begin() as conn:
        conn.execute(text("UPDATE counter SET n = n + 10"))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and done == []  # our turn holds it back
    waiting.join(10)
    assert done == [11]  # it went once we committed, and read our write
    engine.dispose()


@pytest.mark.parametrize("ending", ["commit", "rollback", "error"])
def test_every_way_a_transaction_ends_lets_the_next_writer_in(counter_url, ending):
    engine = make_engine(counter_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE counter SET n = n + 5"))
            if ending == "rollback":
                conn.rollback()
            elif ending == "error":
                conn.execute(text("INSERT INTO nowhere VALUES (1)"))
    except OperationalError as exc:
        assert ending == "error" and "no such table" in str(exc)
    assert _writes_within(counter_url, 10) == [6 if ending == "commit" else 1]
    engine.dispose()


def test_a_thread_already_in_a_queue_does_not_wait_on_itself(tmp_path):
    first, second = WriterQueue(str(tmp_path / "a"), 5), WriterQueue(str(tmp_path / "a"), 5)
    assert first.enter()
    try:
        assert second.enter() is False  # would otherwise wait for ever on its own turn
    finally:
        first.close()
        second.close()
    assert second.enter() is True
    second.close()


def test_a_turn_not_had_in_time_goes_ahead_without_one(tmp_path):
    """The busy timeout still bounds the wait: a writer stuck behind a turn that is not
    given up is not held longer than it (SQLite's busy timeout takes over from there)."""
    holder, waiter = WriterQueue(str(tmp_path / "a"), 5), WriterQueue(str(tmp_path / "a"), 0.2)
    assert holder.enter()
    got: list[bool] = []
    worker = threading.Thread(target=lambda: got.append(waiter.enter()), daemon=True)
    worker.start()
    worker.join(5)
    assert got == [False]
    holder.close()
    waiter.close()


def test_a_lock_file_that_cannot_be_opened_leaves_the_database_working(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    # a lock file nobody can open (root ignores permissions, so: a link to nowhere)
    (tmp_path / "loyalty.db-writers").symlink_to(tmp_path / "missing" / "writers")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalar_one() == 1
    engine.dispose()
    assert [r.message for r in caplog.records if "will not queue" in r.message]
