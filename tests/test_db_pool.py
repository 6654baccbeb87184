"""PostgreSQL's pool: a connection that idled is checked before use; one in steady use is not
(a ping per webhook event cost a round trip each)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot import db


def _terminate_pooled_backend(engine) -> None:
    with engine.connect() as conn:  # the pool's one connection, returned to the pool after
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = db.make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


@pytest.fixture
def one_connection(pg_url):
    engine = db.make_engine(pg_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def test_a_connection_that_idled_and_died_is_replaced_unnoticed(one_connection, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every checkout counts as after idling
    _terminate_pooled_backend(one_connection)
    with one_connection.connect() as conn:
        assert conn.execute(text("SELECT 41 + 1")).scalar() == 42


def test_a_connection_in_steady_use_is_not_pinged(one_connection, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 3600.0)
    _terminate_pooled_backend(one_connection)
    with pytest.raises(OperationalError), one_connection.connect() as conn:
        conn.execute(text("SELECT 1"))
    with one_connection.connect() as conn:  # the failure replaced it: the next one works
        assert conn.execute(text("SELECT 1")).scalar() == 1


def _timeouts(conn) -> tuple[str, str]:
    return (conn.exec_driver_sql("SHOW lock_timeout").scalar(),
            conn.exec_driver_sql("SHOW statement_timeout").scalar())


def test_a_bounded_transaction_has_its_timeouts_and_an_unbounded_one_the_defaults(
        one_connection):
    bounded = db.bounded(one_connection, 2.5)
    with one_connection.begin() as conn:
        defaults = _timeouts(conn)
    for _ in range(2):  # the second time on the same connection, without setting again
        with bounded.begin() as conn:
            assert _timeouts(conn) == ("2500ms", "2500ms")
    with one_connection.begin() as conn:
        assert _timeouts(conn) == defaults
    with bounded.connect() as conn:  # rolled back: PostgreSQL undoes the SET, set it again
        conn.begin()
        conn.rollback()
    with bounded.begin() as conn:
        assert _timeouts(conn) == ("2500ms", "2500ms")
    with one_connection.connect() as conn:  # closed with its transaction open: undone too
        conn.begin()
        assert _timeouts(conn) == defaults
    with bounded.connect() as conn:
        conn.begin()
    with bounded.begin() as conn:
        assert _timeouts(conn) == ("2500ms", "2500ms")
