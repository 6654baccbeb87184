"""Fixtures: a migrated database per test, on SQLite always and PostgreSQL when configured.

`TEST_DATABASE_URL` (for example postgresql://postgres@127.0.0.1:5432/test) adds the
PostgreSQL run; if it is set but unreachable, those tests error out instead of skipping.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.pool import NullPool

from bot import migrate
from bot.config import DEFAULT_PROGRAM, normalize_database_url
from bot.db import make_engine, make_sessionmaker, scratch_schema
from bot.models import Base
from bot.program import Program, load_program

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def example_program() -> Program:
    return load_program(DEFAULT_PROGRAM)


@pytest.fixture
def program(example_program: Program) -> Program:
    return example_program


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "loyalty.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated schema of this test run's own, so parallel runs never share tables."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL half skipped")
    # unreachable -> the error fails these tests loudly
    url, drop = scratch_schema(normalize_database_url(PG_URL), f"test_run_{os.getpid()}")
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop()


TABLES = [table.name for table in Base.metadata.sorted_tables]  # parents before children
MANY = 1000  # rows: past this, one TRUNCATE of every table is faster than DELETE
# Every table, in one round trip: its name and its rows, counted up to MANY.
_ROWS = " UNION ALL ".join(
    f"SELECT '{name}', (SELECT count(*) FROM (SELECT FROM {name} LIMIT {MANY}) AS r)"
    for name in TABLES)
# Every counter of this run's schema that has handed out a value, back to its start (what
# TRUNCATE ... RESTART IDENTITY does); pg_sequence_last_value is NULL for an unused one.
_RESTART_USED_COUNTERS = (
    "SELECT CASE WHEN pg_sequence_last_value(seqrelid) IS NOT NULL "
    "THEN setval(seqrelid, seqstart, false) END "
    "FROM pg_sequence JOIN pg_class ON pg_class.oid = seqrelid "
    "WHERE relnamespace = current_schema()::regnamespace")


def _empty_postgresql(url: str) -> None:
    """Leave the run's schema as `TRUNCATE <every table> RESTART IDENTITY` would: every table
    empty, every identity counter at its start, alembic_version untouched.

    TRUNCATE costs about half a second however little the tables hold (each table and index
    gets new files), and a test writes to a few tables; this takes about a tenth of that. In
    one transaction: lock every table as TRUNCATE would (a straggling writer finishes first,
    and none starts until the commit), ask which tables hold rows, DELETE those (children
    first), and restart the counters that were used; after a bulk test (MANY rows in a
    table) it truncates every table instead. The tables are looked up by name each
    time, so a test that downgrades and upgrades the schema (new tables, new counters) is
    handled too."""
    with _reset_engine(url).begin() as conn:
        conn.execute(text(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE"))
        rows = dict(conn.execute(text(_ROWS)).all())
        if max(rows.values()) >= MANY:  # a bulk test: deleting would take seconds
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            return
        for name in reversed(TABLES):
            if rows[name]:
                conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text(_RESTART_USED_COUNTERS))


@functools.cache
def _reset_engine(url: str) -> Engine:
    """One engine per run (set up once), a new connection per reset (nothing kept between)."""
    return make_engine(url, poolclass=NullPool)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty, fully migrated database."""
    if request.param == "sqlite":
        path = tmp_path / "loyalty.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        _empty_postgresql(url)
        yield url


@pytest.fixture
def engine(db_url: str):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(db_url: str):
    """`flask --app bot ARGS` on db_url, in-process: cli("points", "adjust", ...)."""
    from tests.cli_helpers import Cli

    runner = Cli(db_url)
    yield runner
    runner.close()


@pytest.fixture
def sessions(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def now() -> dt.datetime:
    """A fixed moment: 2026-11-22 10:00 in Taipei."""
    return dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def fake_line_server():
    from tests.fake_line import FakeLine

    with FakeLine() as fake:
        yield fake


@pytest.fixture
def fake_line(fake_line_server):
    fake_line_server.reset()
    return fake_line_server


@pytest.fixture
def line_config(db_url: str, fake_line):
    from bot.config import Config
    from tests.line_helpers import CHANNEL_SECRET

    return Config(database_url=db_url, program_path=str(DEFAULT_PROGRAM), secret_key="test-key",
                  line_channel_secret=CHANNEL_SECRET,
                  line_channel_access_token=fake_line.access_token,
                  line_oa_basic_id="@mountainmist", public_base_url="https://cafe.example",
                  line_api_base_url=fake_line.base_url)


@pytest.fixture
def app(line_config):
    from bot.app import create_app

    app = create_app(line_config)
    yield app
    app.extensions["loyalty"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()
