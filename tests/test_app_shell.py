"""The shell around the loyalty core: layering, configuration, health, migrations, processes.

The Procfile's own commands are run as subprocesses from the project root, the way a PaaS
starts them, with the virtualenv's executables; the other `flask --app bot` commands run
in-process (tests/cli_helpers.py).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, func, inspect, select

from bot import migrate
from bot.app import create_app
from bot.config import (
    DEFAULT_PROGRAM,
    DEFAULT_SQLITE,
    ROOT,
    Config,
    ConfigError,
    normalize_database_url,
)
from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.codes import format_code
from bot.loyalty.job_runs import finish_run, seconds_since_clock_ran, start_run
from bot.loyalty.members import adjust_points, register_member
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog, Base, Member
from bot.program import ProgramError, load_program
from tests.cli_helpers import Cli, exited_cleanly

BIN = Path(sys.executable).parent
BOT = ROOT / "bot"
BROKEN_TIMEZONE = DEFAULT_PROGRAM.read_text(encoding="utf-8").replace(
    '"Asia/Taipei"', '"Asia/Taipie"', 1)


def procfile() -> dict[str, list[str]]:
    """The Procfile's commands, with the executable taken from this virtualenv."""
    commands = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            argv = shlex.split(command)
            commands[name.strip()] = [str(BIN / argv[0]), *argv[1:]]
    return commands


def shell_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "GUNICORN_")) and k not in {
               "DATABASE_URL", "LOYALTY_PROGRAM", "SECRET_KEY", "PORT", "WEB_CONCURRENCY"}}
    env.update(LOYALTY_PROGRAM=str(DEFAULT_PROGRAM), XDG_RUNTIME_DIR=str(tmp_path),
               DATABASE_URL=f"sqlite:///{tmp_path / 'shell.db'}", WEB_CONCURRENCY="1")
    env.update(overrides)
    return env


def migrated_sqlite(tmp_path: Path, template: Path) -> str:
    path = tmp_path / "loyalty.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def broken_program(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN_TIMEZONE, encoding="utf-8")
    with pytest.raises(ProgramError) as caught:
        load_program(path)
    return path, str(caught.value)


# -- layering --------------------------------------------------------------------------------
LOYALTY_MODULES = sorted(f"bot.loyalty.{p.stem}" for p in (BOT / "loyalty").glob("*.py")
                         if p.stem != "__init__")


@pytest.mark.parametrize("modules", [
    pytest.param(["bot"], id="bot"),
    pytest.param(["bot.loyalty"], id="bot.loyalty"),
    pytest.param(["bot.loyalty.purchases"], id="bot.loyalty.purchases"),
    pytest.param(LOYALTY_MODULES, id="every module of bot.loyalty"),
])
def test_importing_the_loyalty_core_loads_neither_flask_nor_the_line_sdk(modules):
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "web = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('flask', 'werkzeug', 'linebot', 'gunicorn'))\n"
        "print(json.dumps([web, 'bot.app' in sys.modules, 'bot.cli' in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[], False, False]


@pytest.mark.parametrize("module", ["bot.jobs", "bot.scheduler"])
def test_the_clock_loads_no_web_framework(module):
    script = (f"import json, sys, {module}\n"
              "web = ('flask', 'werkzeug', 'gunicorn')\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in web)))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a source file (at any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_line_package_imports_the_line_sdk():
    offenders = [str(path.relative_to(ROOT)) for path in sorted(BOT.rglob("*.py"))
                 if "linebot" in imported_modules(path)
                 and not path.is_relative_to(BOT / "line")]
    assert offenders == []


def test_nothing_in_the_loyalty_core_imports_flask():
    offenders = [str(path.relative_to(ROOT)) for path in sorted((BOT / "loyalty").rglob("*.py"))
                 if imported_modules(path) & {"flask", "werkzeug", "linebot", "gunicorn"}]
    assert offenders == []


def test_the_import_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from flask import g\n    import linebot.v3\n")
    assert imported_modules(source) == {"flask", "linebot"}


# -- /healthz --------------------------------------------------------------------------------
def app_for(database_url: str):
    return create_app(Config(database_url=database_url, program_path=str(DEFAULT_PROGRAM),
                             secret_key="test-secret"))


def healthz(database_url: str):
    app = app_for(database_url)
    try:
        return app.test_client().get("/healthz")
    finally:
        app.extensions["loyalty"].engine.dispose()


def test_healthz_answers_ok_on_a_migrated_database(db_url):
    response = healthz(db_url)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "clock_last_ran_seconds_ago": None}


def test_healthz_says_how_long_ago_the_clock_last_completed_a_job(db_url):
    """Any job's last completed run counts; a run started but not finished does not."""
    engine = make_engine(db_url)
    before = utcnow()
    try:
        with transaction(make_sessionmaker(engine)) as session:
            for name, ago in (("tags", 3600), ("send", 90), ("expire", 7200)):
                start_run(session, name, before - dt.timedelta(seconds=ago + 5))
                finish_run(session, name, before - dt.timedelta(seconds=ago), "done")
            start_run(session, "nudges", before)  # still running
    finally:
        engine.dispose()
    response = healthz(db_url)
    waited = (utcnow() - before).total_seconds()
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert 90 <= body["clock_last_ran_seconds_ago"] <= 90 + waited + 1


def test_a_job_run_as_of_a_later_time_counts_as_just_now(db_url):
    engine = make_engine(db_url)
    now = utcnow()
    try:
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            assert seconds_since_clock_ran(session, now) is None
            start_run(session, "send", now + dt.timedelta(hours=1))
            finish_run(session, "send", now + dt.timedelta(hours=1), "as of later")
        with sessions() as session:
            assert seconds_since_clock_ran(session, now) == 0
            assert seconds_since_clock_ran(session, now + dt.timedelta(hours=2)) == 3600
    finally:
        engine.dispose()


def test_healthz_answers_503_when_postgresql_is_unreachable():
    response = healthz("postgresql+psycopg://loyalty:secret@127.0.0.1:1/loyalty")
    assert response.status_code == 503
    assert response.get_json() == {"status": "database unavailable"}


def test_healthz_answers_503_when_the_sqlite_path_is_a_folder(tmp_path):
    response = healthz(f"sqlite:///{tmp_path}")
    assert response.status_code == 503
    assert response.get_json() == {"status": "database unavailable"}


def test_healthz_answers_503_when_the_sqlite_file_cannot_be_created(tmp_path):
    """A path below a plain file can never be created (not even by root)."""
    (tmp_path / "not-a-folder").write_text("")
    response = healthz(f"sqlite:///{tmp_path / 'not-a-folder' / 'data' / 'loyalty.db'}")
    assert response.status_code == 503
    assert response.get_json() == {"status": "database unavailable"}


# -- configuration ---------------------------------------------------------------------------
def test_with_no_environment_the_database_is_a_sqlite_file_under_instance():
    config = Config.from_env({})
    assert config.database_url == f"sqlite:///{ROOT / 'instance' / 'loyalty.db'}"
    assert DEFAULT_SQLITE == ROOT / "instance" / "loyalty.db"
    assert config.program_path == str(ROOT / "program.example.toml")
    assert (config.port, config.web_concurrency) == (5000, 2)
    assert config.secret_key


@pytest.mark.parametrize(("given", "used"), [
    ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ("postgres://u:p@h:6543/db?sslmode=require",
     "postgresql+psycopg://u:p@h:6543/db?sslmode=require"),
    ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ("sqlite:////var/data/loyalty.db", "sqlite:////var/data/loyalty.db"),
])
def test_database_urls_from_a_paas_get_the_psycopg_driver(given, used):
    assert Config.from_env({"DATABASE_URL": given}).database_url == used
    assert normalize_database_url(given) == used


def test_the_program_secret_port_and_concurrency_come_from_the_environment():
    config = Config.from_env({"LOYALTY_PROGRAM": "/srv/shop/program.toml",
                              "SECRET_KEY": "s3cret", "PORT": "8123", "WEB_CONCURRENCY": "4"})
    assert config.program_path == "/srv/shop/program.toml"
    assert config.secret_key == "s3cret"
    assert (config.port, config.web_concurrency) == (8123, 4)


def test_empty_environment_variables_fall_back_to_the_defaults():
    empty = dict.fromkeys(("DATABASE_URL", "LOYALTY_PROGRAM", "SECRET_KEY", "PORT",
                           "WEB_CONCURRENCY"), "")
    assert Config.from_env(empty) == Config.from_env({})


LINE_ENV = {"LINE_CHANNEL_SECRET": "s", "LINE_CHANNEL_ACCESS_TOKEN": "t"}


def test_with_line_configured_the_default_secret_key_is_refused_in_one_clear_line():
    with pytest.raises(ConfigError, match="SECRET_KEY must be set") as refused:
        Config.from_env({**LINE_ENV, "PUBLIC_BASE_URL": "https://cafe.example"})
    assert "\n" not in str(refused.value)
    assert Config.from_env({}).secret_key  # development keeps working without one
    assert Config.from_env({**LINE_ENV, "SIMULATOR": "1"}).simulator


@pytest.mark.parametrize("url", ["", "http://cafe.example", "cafe.example"])
def test_with_line_configured_a_public_base_url_that_is_not_https_is_refused(url):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL must be the app's https"):
        Config.from_env({**LINE_ENV, "SECRET_KEY": "k" * 32, "PUBLIC_BASE_URL": url})
    assert Config.from_env({**LINE_ENV, "SECRET_KEY": "k" * 32, "LINE_OA_BASIC_ID": "@cafe",
                            "PUBLIC_BASE_URL": "https://cafe.example/"}).line_configured


def test_with_line_configured_the_basic_id_is_required_in_one_clear_line():
    settings = {**LINE_ENV, "SECRET_KEY": "k" * 32, "PUBLIC_BASE_URL": "https://cafe.example"}
    with pytest.raises(ConfigError, match="LINE_OA_BASIC_ID") as refused:
        Config.from_env(settings)
    assert "\n" not in str(refused.value)
    assert Config.from_env({**settings, "SIMULATOR": "1"}).simulator  # the simulator needs none


def test_the_web_process_exits_at_once_with_the_line_when_secret_key_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(LINE_ENV, PUBLIC_BASE_URL="https://cafe.example",
               DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PORT=str(free_port()))
    done = subprocess.run([str(Path(sys.executable).parent / "gunicorn"), "--config",
                           "bot/gunicorn_conf.py", "bot:create_app()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr and "Traceback" not in done.stderr


def test_the_web_process_exits_at_once_when_claim_codes_need_the_basic_id(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LINE_OA_BASIC_ID"}
    env.update(LINE_ENV, PUBLIC_BASE_URL="https://cafe.example", SECRET_KEY="k" * 32,
               DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PORT=str(free_port()))
    done = subprocess.run([str(Path(sys.executable).parent / "gunicorn"), "--config",
                           "bot/gunicorn_conf.py", "bot:create_app()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0  # the example program turns claim codes on
    assert "LINE_OA_BASIC_ID" in done.stderr and "Traceback" not in done.stderr


def test_from_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    monkeypatch.setenv("PORT", "9000")
    config = Config.from_env()
    assert (config.database_url, config.port) == ("postgresql+psycopg://u:p@h/db", 9000)


# -- migrations ------------------------------------------------------------------------------
def head_revision() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


def test_the_release_command_creates_the_schema_and_can_run_twice(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    release = procfile()["release"]
    assert release[1:] == ["--app", "bot", "db", "upgrade"]
    for _ in range(2):
        result = subprocess.run(release, cwd=ROOT, env=shell_env(tmp_path, DATABASE_URL=url),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"database at {head_revision()}"
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert migrate.current_revision(url) == head_revision()


def test_db_current_names_the_revision(tmp_path, sqlite_template):
    with Cli(migrated_sqlite(tmp_path, sqlite_template)) as cli:
        result = cli("db", "current")
    assert (result.exit_code, result.stdout.strip()) == (0, head_revision())


def for_dialect(name: str):
    """Leave out of the comparison what the models make on another database only (an
    index with .ddl_if(dialect=...)): alembic compares it on every database otherwise."""
    def include(obj, _name, _kind, _reflected, _compare_to) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect is None or only.dialect == name
    return include


def test_the_models_match_the_migrations(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= set(Base.metadata.tables)
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True,
                            "include_object": for_dialect(conn.dialect.name)})
            assert compare_metadata(context, MetaData()) != []  # the comparison does see tables
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


# -- gunicorn, as the Procfile starts it -----------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator:
    """Start the Procfile's web process; it (and its workers) is always stopped afterwards."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        proc = subprocess.Popen(procfile()["web"], cwd=ROOT, env=shell_env(tmp_path, **env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


def test_the_web_process_exits_with_the_one_message_when_the_program_is_broken(
        tmp_path, start_web):
    program, message = broken_program(tmp_path)
    proc = start_web(PORT=str(free_port()), LOYALTY_PROGRAM=str(program))
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("gunicorn kept running with a broken program file")
    assert proc.returncode != 0
    assert err.count(message) == 1, err
    assert "Traceback" not in out + err


def test_the_web_process_serves_healthz_with_a_good_program(tmp_path, start_web,
                                                            sqlite_template):
    port = free_port()
    proc = start_web(PORT=str(port), DATABASE_URL=migrated_sqlite(tmp_path, sqlite_template))
    deadline, last = time.monotonic() + 15, None
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                assert (reply.status, json.load(reply)) == (200, {"status": "ok",
                                                          "clock_last_ran_seconds_ago": None})
                return
        except OSError as exc:  # refused, reset, or slow to answer on a busy machine
            last = exc
            time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer /healthz within 15 s: {last}")


def test_the_clock_process_exits_with_the_one_message_when_the_program_is_broken(tmp_path):
    program, message = broken_program(tmp_path)
    clock = procfile()["clock"]
    assert clock[1:] == ["-m", "bot.scheduler"]
    done = subprocess.run(clock, cwd=ROOT, env=shell_env(tmp_path, LOYALTY_PROGRAM=str(program)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip() == message
    assert "Traceback" not in done.stdout + done.stderr


def test_the_app_factory_turns_a_broken_program_into_a_clean_exit(tmp_path, monkeypatch,
                                                                  capsys):
    import bot

    program, message = broken_program(tmp_path)
    monkeypatch.setenv("LOYALTY_PROGRAM", str(program))
    with pytest.raises(SystemExit) as caught:
        bot.create_app()
    assert caught.value.code == 1
    assert capsys.readouterr().err.strip() == message


# -- points adjust ---------------------------------------------------------------------------
def test_points_adjust_for_an_unknown_member_says_so_without_a_traceback(tmp_path,
                                                                         sqlite_template):
    with Cli(migrated_sqlite(tmp_path, sqlite_template)) as cli:
        result = cli("points", "adjust", "7KQ-2M9-XHF", "-5", "--reason", "typo")
    assert result.exit_code != 0
    assert "No such member" in result.stderr
    assert exited_cleanly(result), result.exc_info
    assert "Traceback" not in result.output


@pytest.fixture
def member_with_20_points(db_url) -> Iterator[tuple[str, str, int]]:
    """(database url, member code, member id) of a member holding 20 points."""
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(db_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            member = register_member(session, program, "U-cli", utcnow()).member
            adjust_points(session, program, member.id, 20, utcnow(), reason="opening balance",
                          actor="test")
            code, member_id = member.member_code, member.id
    finally:
        engine.dispose()
    yield db_url, code, member_id


def balance_and_adjustments(db_url: str, member_id: int) -> tuple[int, list[tuple]]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            balance = session.get(Member, member_id).points_balance
            rows = session.execute(
                select(AuditLog.points_delta, AuditLog.reason, AuditLog.actor)
                .where(AuditLog.member_id == member_id, AuditLog.action == "points.adjust")
                .order_by(AuditLog.id)).all()
            return balance, [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_points_adjust_takes_a_negative_number_and_records_the_reason(cli,
                                                                      member_with_20_points):
    db_url, code, member_id = member_with_20_points
    reason = "Spilled latte — refunded by hand"
    result = cli("points", "adjust", format_code(code), "-5", "--reason", reason)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{format_code(code)}: -5 points, balance now 15"
    assert balance_and_adjustments(db_url, member_id) == (15, [
        (20, "opening balance", "test"), (-5, reason, "cli:owner")])


def test_points_adjust_adds_points_and_names_who_did_it(cli, member_with_20_points):
    db_url, code, member_id = member_with_20_points
    result = cli("points", "adjust", code.lower(), "+7", "--reason", "Stamp card lost",
                 "--by", "mei")
    assert result.exit_code == 0, result.output
    balance, rows = balance_and_adjustments(db_url, member_id)
    assert (balance, rows[-1]) == (27, (7, "Stamp card lost", "cli:mei"))


def test_points_adjust_cannot_take_more_than_the_balance(cli, member_with_20_points):
    db_url, code, member_id = member_with_20_points
    result = cli("points", "adjust", code, "-500", "--reason", "too much")
    assert result.exit_code != 0
    assert "Not enough points: 500 needed, 20 available." in result.stderr
    assert exited_cleanly(result), result.exc_info
    assert "Traceback" not in result.output
    assert balance_and_adjustments(db_url, member_id) == (20, [(20, "opening balance", "test")])


def test_points_adjust_requires_a_reason(cli, member_with_20_points):
    db_url, code, member_id = member_with_20_points
    result = cli("points", "adjust", code, "-5")
    assert result.exit_code != 0
    assert "--reason" in result.stderr
    assert exited_cleanly(result), result.exc_info
    assert "Traceback" not in result.output
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(AuditLog)
                               .where(AuditLog.action == "points.adjust")) == 1
    finally:
        engine.dispose()
