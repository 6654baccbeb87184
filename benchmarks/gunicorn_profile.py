"""bot/gunicorn_conf.py plus measurements in every worker, for benchmarks/webhook.py only.

BENCH_PROFILE_MODE=cprofile: each worker runs cProfile during the measured requests (not
while booting or warming up), on the thread's CPU clock so that waiting on PostgreSQL or
LINE and being preempted are left out, and writes
$BENCH_PROFILE_DIR/$BENCH_PROFILE_LABEL-<pid>.pstats when gunicorn stops it.

BENCH_PROFILE_MODE=timers: each worker times every request (wall and CPU) and, inside it, SQL
statements, commits and pool pings, and the LINE calls (whole LineClient.reply/push, and the
HTTP exchange alone), per event kind (the X-Bench-Kind header the benchmark sends), and
writes $BENCH_PROFILE_DIR/$BENCH_PROFILE_LABEL-<pid>.json, with every request's own wall time,
time waiting for SQLite's write lock (in bot.db's WriterQueue and in BEGIN IMMEDIATE) and in
the LINE calls, so that the slowest requests can be told apart.

BENCH_PROFILE_MODE=count: lighter still, for the statement counts of benchmarks/webhook.py:
per event kind, the requests, the SQL statements the database driver was given (cursor
executions: on SQLite the bot's BEGIN IMMEDIATE is one, PostgreSQL's implicit BEGIN is not),
commits and pool pings, and how often each statement ran (its first 160 characters, numbers
written N); no clocks. Written to the same .json file.

Only wrappers: no bot code changes.
"""

import cProfile
import json
import os
import re
import time
from collections import defaultdict

from bot.gunicorn_conf import accesslog, bind, errorlog, on_starting, workers  # noqa: F401

MODE = os.environ.get("BENCH_PROFILE_MODE", "cprofile")
_profiler: cProfile.Profile | None = None
_current: dict[str, float] = defaultdict(float)
_totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_requests: list[tuple[str, float, float, float, float]] = []  # kind, wall, begin, LINE, start
# count mode: per kind, how often each statement ran; and in the current request
_shapes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_statements: dict[str, int] = defaultdict(int)
_NUMBER = re.compile(r"\b\d+\b")  # PRAGMA busy_timeout=1498 and =1491 are one statement


def _timed(owner: type, name: str, key: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _current[key + "_ms"] += (time.perf_counter() - began) * 1000
            _current[key + "_n"] += 1

    setattr(owner, name, wrapper)


def _install_timers() -> None:
    from sqlalchemy import event
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.default import DefaultDialect

    from bot.db import WriterQueue
    from bot.line.client import LineClient, Transport

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_began"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        took = (time.perf_counter() - conn.info.pop("bench_began")) * 1000
        _current["sql_ms"] += took
        _current["sql_n"] += 1
        if statement.startswith("BEGIN"):
            _current["begin_ms"] += took

    _timed(WriterQueue, "enter", "queue")
    _timed(DefaultDialect, "do_commit", "commit")
    _timed(PGDialect_psycopg, "do_ping", "ping")  # bot.db pings a connection that idled
    _timed(LineClient, "reply", "reply")
    _timed(LineClient, "push", "push")
    _timed(Transport, "post", "line_http")


def _counted(owner: type, name: str, key: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        _current[key + "_n"] += 1
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _install_counters() -> None:
    from sqlalchemy import event
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
    from sqlalchemy.engine import Engine
    from sqlalchemy.engine.default import DefaultDialect

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        _current["sql_n"] += 1
        _statements[_NUMBER.sub("N", " ".join(statement.split()))[:160]] += 1

    _counted(DefaultDialect, "do_commit", "commit")
    _counted(PGDialect_psycopg, "do_ping", "ping")


def post_fork(server, worker) -> None:
    global _profiler
    if MODE == "timers":
        _install_timers()
    elif MODE == "count":
        _install_counters()
    else:
        _profiler = cProfile.Profile(time.thread_time)


def _kind(req) -> str:
    return next((v for k, v in req.headers if k.upper() == "X-BENCH-KIND"), "other")


def pre_request(worker, req) -> None:
    _current.clear()
    _statements.clear()
    if _profiler is not None and not _kind(req).startswith("warm-up"):
        _profiler.enable()
    _current["began"] = time.perf_counter()
    _current["cpu"] = time.thread_time()
    _current["start"] = time.monotonic()


def post_request(worker, req, environ, resp) -> None:
    if _profiler is not None:
        _profiler.disable()
    if MODE == "count":
        kind = _kind(req)
        totals = _totals[kind]
        totals["n"] += 1
        for key, value in _current.items():
            if key.endswith("_n"):
                totals[key] += value
        for shape, count in _statements.items():
            _shapes[kind][shape] += count
        _current.clear()
        _statements.clear()
        return
    if MODE != "timers" or "began" not in _current:
        return
    kind = _kind(req)
    totals = _totals[kind]
    totals["n"] += 1
    wall = (time.perf_counter() - _current.pop("began")) * 1000
    totals["wall_ms"] += wall
    totals["cpu_ms"] += (time.thread_time() - _current.pop("cpu")) * 1000
    _requests.append((kind, wall, _current.get("begin_ms", 0.0) + _current.get("queue_ms", 0.0),
                      _current.get("reply_ms", 0.0) + _current.get("push_ms", 0.0),
                      _current.pop("start")))
    for key, value in _current.items():
        totals[key] += value
    _current.clear()


def worker_exit(server, worker) -> None:
    label = os.environ.get("BENCH_PROFILE_LABEL", "worker")
    path = os.path.join(os.environ["BENCH_PROFILE_DIR"], f"{label}-{os.getpid()}")
    if _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(path + ".pstats")
    elif MODE in ("timers", "count"):
        with open(path + ".json", "w") as out:
            json.dump({"totals": _totals, "requests": _requests, "shapes": _shapes}, out)
