"""The PostgreSQL reset before each test leaves what `TRUNCATE <every table> RESTART IDENTITY`
would: every table empty, every counter at its start, the schema's revision kept."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from bot import migrate
from bot.config import DEFAULT_PROGRAM
from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.members import register_member
from bot.loyalty.purchases import record_purchase
from bot.loyalty.timeutil import utcnow
from bot.program import load_program
from tests.conftest import MANY, TABLES, _empty_postgresql

WAITING_FOR_A_LOCK = text(  # a connection waiting for a lock on one of this run's tables
    "SELECT EXISTS (SELECT FROM pg_locks JOIN pg_class ON pg_class.oid = relation "
    "WHERE NOT granted AND relnamespace = current_schema()::regnamespace)")


def rows_and_used_counters(url: str) -> tuple[dict[str, int], list[str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = {name: conn.scalar(text(f"SELECT count(*) FROM {name}")) for name in TABLES}
            used = conn.scalars(text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() "
                "AND last_value IS NOT NULL")).all()
        return {name: count for name, count in rows.items() if count}, sorted(used)
    finally:
        engine.dispose()


def test_rows_and_used_counters_are_gone_and_the_revision_stays(pg_url):
    head = migrate.current_revision(pg_url)
    engine = make_engine(pg_url)
    try:
        program = load_program(DEFAULT_PROGRAM)
        with transaction(make_sessionmaker(engine)) as session:
            member = register_member(session, program, "U-reset", utcnow()).member
            record_purchase(session, program, member.id, 450, utcnow(), source="pos",
                            order_id="reset-1", actor="test")
        with engine.connect() as conn:  # a rolled-back insert moves a counter, leaves no row
            conn.execute(text("INSERT INTO tags (name, automatic) VALUES ('gone', false)"))
            conn.rollback()
    finally:
        engine.dispose()
    rows, used = rows_and_used_counters(pg_url)
    assert {"members", "purchases", "audit_log"} <= set(rows)
    assert {"members_id_seq", "tags_id_seq"} <= set(used)

    _empty_postgresql(pg_url)

    assert rows_and_used_counters(pg_url) == ({}, [])
    assert migrate.current_revision(pg_url) == head
    engine = make_engine(pg_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            assert register_member(session, program, "U-again", utcnow()).member.id == 1
    finally:
        engine.dispose()


def test_a_writer_still_in_its_transaction_is_waited_for_and_its_row_removed(pg_url):
    """As TRUNCATE would: the reset locks every table before it looks for rows."""
    engine = make_engine(pg_url)
    reset = threading.Thread(target=_empty_postgresql, args=(pg_url,))
    try:
        with engine.connect() as writer:
            writer.execute(text("INSERT INTO tags (name, automatic) VALUES ('late', false)"))
            reset.start()
            with engine.connect() as watcher:
                deadline = time.monotonic() + 30
                while not watcher.scalar(WAITING_FOR_A_LOCK):
                    assert reset.is_alive(), "the reset did not wait for the open transaction"
                    assert time.monotonic() < deadline, "the reset never asked for its locks"
                    time.sleep(0.02)
                    watcher.rollback()
            writer.commit()
        reset.join(30)
        assert not reset.is_alive()
    finally:
        engine.dispose()
    assert rows_and_used_counters(pg_url) == ({}, [])


def test_after_a_bulk_test_every_table_is_truncated_to_the_same_state(pg_url):
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO tags (name, automatic) SELECT 't' || n, false "
                              f"FROM generate_series(1, {MANY}) AS n"))
    finally:
        engine.dispose()
    assert rows_and_used_counters(pg_url) == ({"tags": MANY}, ["tags_id_seq"])
    _empty_postgresql(pg_url)
    assert rows_and_used_counters(pg_url) == ({}, [])
