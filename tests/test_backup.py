"""Backup and restore the way README's runbook does it: a small shop, made through the domain
verbs, dumped with pg_dump and restored with pg_restore into an empty database (PostgreSQL),
or copied with SQLite's backup API (what the sqlite3 shell's `.backup` runs) or as a file
with the app stopped, comes back with every row of every table equal, and goes on working.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, Table, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.coupons import redeem_coupon
from bot.loyalty.job_runs import finish_run, start_run
from bot.loyalty.members import adjust_points
from bot.loyalty.purchases import refund_order
from bot.loyalty.rewards import redeem_reward
from bot.loyalty.totals import ShopTotals, shop_totals
from bot.models import Base, Coupon
from bot.program import Program
from tests.cli_helpers import Cli
from tests.helpers import buy, join

DAY = dt.timedelta(days=1)


def open_shop(sessions: sessionmaker[Session], program: Program, now: dt.datetime) -> None:
    """Two weeks at the café: members joining (welcome coupons), purchases on ten days (points
    lots, stamps, a full card with its milestone and completion coupons), a partial refund
    and a full one, points spent on a reward, a coupon redeemed, a hand correction, jobs run.
    """
    alice, bob = join(sessions, program, now, "U-alice"), join(sessions, program, now, "U-bob")
    carol = join(sessions, program, now, "U-carol", language="en")
    for day in range(10):
        buy(sessions, program, alice, 350, now + day * DAY, order_id=f"a-{day}")
    buy(sessions, program, bob, 900, now, order_id="b-1", categories={"beans": 600})
    buy(sessions, program, bob, 200, now + DAY, order_id="b-2")
    with transaction(sessions) as session:
        refund_order(session, program, 150, now + 11 * DAY, source="pos", order_id="a-3",
                     refund_id="r-1", actor="test")
        refund_order(session, program, 200, now + 11 * DAY, source="pos", order_id="b-2",
                     refund_id="r-2", actor="test")
    with transaction(sessions) as session:
        redeem_reward(session, program, alice, "nt50", now + 12 * DAY, actor="member")
        welcome = session.scalars(select(Coupon).where(Coupon.member_id == bob)).first()
        redeem_coupon(session, program, welcome.code, now + 12 * DAY, actor="staff:test",
                      order_amount=300)
        adjust_points(session, program, carol, 40, now + 12 * DAY, reason="broken cup",
                      actor="owner")
        for name in ("expire", "tags"):
            start_run(session, name, now + 13 * DAY)
            finish_run(session, name, now + 13 * DAY, "ran")


def everything(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table (alembic_version too), in primary key order."""
    tables = [*Base.metadata.sorted_tables,
              Table("alembic_version", MetaData(), autoload_with=engine)]
    with engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
                for table in tables}


def totals(engine: Engine) -> ShopTotals:
    with make_sessionmaker(engine)() as session:
        return shop_totals(session)


def check_output(url: str) -> str:
    with Cli(url) as cli:
        result = cli("db", "check")
    assert result.exit_code == 0, result.output
    return result.output


def made_shop(url: str, program: Program, now: dt.datetime
              ) -> tuple[Engine, dict[str, list[tuple]], str]:
    engine = make_engine(url)
    open_shop(make_sessionmaker(engine), program, now)
    figures = totals(engine)
    assert figures.ledger_agrees
    assert (figures.members, figures.refunds, figures.stamp_cards) == (3, 2, 3)
    assert figures.coupons_redeemed == 1 and figures.points_balances > 0
    report = check_output(url)  # the app's first start: the program file becomes version 1
    return engine, everything(engine), report


def assert_restored(url: str, rows: dict[str, list[tuple]], report: str, program: Program,
                    now: dt.datetime) -> None:
    """The restored database holds the same rows and says the same in `db check`, and takes
    a purchase after them (its id counters came back too)."""
    engine = make_engine(url)
    try:
        assert everything(engine) == rows
        assert check_output(url) == report
        alice = rows["members"][0][0]
        before = totals(engine)
        earned = buy(make_sessionmaker(engine), program, alice, 300, now + 20 * DAY,
                     order_id="after").points
        after = totals(engine)
        assert earned > 0
        assert (after.purchases, after.points_balances) == (before.purchases + 1,
                                                             before.points_balances + earned)
        assert after.ledger_agrees
    finally:
        engine.dispose()


# -- PostgreSQL ------------------------------------------------------------------------------
def libpq(url: str, database: str | None = None) -> tuple[str, str]:
    """(the libpq URL pg_dump and pg_restore take, without the options; the schema this test
    run works in, from the URL's search_path)."""
    parsed = make_url(url)
    schema = parsed.query["options"].split("search_path=", 1)[1]
    plain = parsed.set(drivername="postgresql", query={},
                       database=database or parsed.database)
    return plain.render_as_string(hide_password=False), schema


@contextmanager
def empty_database(url: str) -> Iterator[str]:
    """A new, empty database on the same server (its name), dropped afterwards."""
    name = f"restore_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    finally:
        admin.dispose()


def client_tool(name: str) -> str:
    """The PostgreSQL client program's path; with TEST_DATABASE_URL set, a missing one fails
    the test (it is never skipped)."""
    path = shutil.which(name)
    assert path, (f"{name} is not installed (TEST_DATABASE_URL is set: install the "
                  f"PostgreSQL client, e.g. Debian's postgresql-client)")
    return path


def run(tool: str, *args: str) -> None:
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_pg_dump_restored_into_an_empty_database_gives_every_row_back(db_url, program, now,
                                                                       tmp_path):
    pg_dump, pg_restore = client_tool("pg_dump"), client_tool("pg_restore")
    engine, rows, report = made_shop(db_url, program, now)
    engine.dispose()
    source, schema = libpq(db_url)
    dump = tmp_path / "loyalty.dump"
    run(pg_dump, "--format=custom", f"--schema={schema}", f"--file={dump}", source)
    with empty_database(db_url) as name:
        target, _ = libpq(db_url, name)
        # a shop's whole-database dump carries the pg_trgm extension (in public) that the
        # name-search index uses; this test dumps its own schema only, so it adds it first
        run(client_tool("psql"), "--quiet", f"--dbname={target}", "-c",
            "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
        run(pg_restore, "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={target}",
            str(dump))
        restored = make_url(db_url).set(database=name).render_as_string(hide_password=False)
        assert_restored(restored, rows, report, program, now)


# -- SQLite ----------------------------------------------------------------------------------
def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_backup_api_copies_a_running_database_with_its_wal(db_url, program, now,
                                                                  tmp_path):
    engine, rows, report = made_shop(db_url, program, now)
    path = sqlite_path(db_url)
    try:  # the app is still running: the last writes are in the WAL, not yet in the file
        assert Path(f"{path}-wal").stat().st_size > 0
        backup = tmp_path / "backup" / "loyalty.db"
        backup.parent.mkdir()
        source, target = sqlite3.connect(path), sqlite3.connect(backup)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
    finally:
        engine.dispose()
    assert_restored(f"sqlite:///{backup}", rows, report, program, now)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_file_copied_with_the_app_stopped_is_whole(db_url, program, now, tmp_path):
    engine, rows, report = made_shop(db_url, program, now)
    engine.dispose()  # the app stops: its last connection folds the WAL into the file
    path = sqlite_path(db_url)
    assert not Path(f"{path}-wal").exists()
    backup = tmp_path / "backup" / "loyalty.db"
    backup.parent.mkdir()
    shutil.copy(path, backup)
    assert_restored(f"sqlite:///{backup}", rows, report, program, now)


def test_db_check_says_when_a_balance_disagrees_with_the_ledger(db_url, program, now):
    engine = make_engine(db_url)
    try:
        open_shop(make_sessionmaker(engine), program, now)
        with engine.begin() as conn:  # a restore gone wrong: one balance off by one
            conn.execute(text("UPDATE members SET points_balance = points_balance + 1 "
                              "WHERE id = (SELECT min(id) FROM members)"))
        figures = totals(engine)
    finally:
        engine.dispose()
    assert (figures.members_off_ledger, figures.ledger_agrees) == (1, False)
    assert figures.points_balances == figures.ledger_points + 1
    with Cli(db_url) as cli:
        result = cli("db", "check")
    assert result.exit_code == 1
    assert "members 3 (3 active)" in result.output
    assert "the ledger disagrees: 1 members' balances differ" in result.output
