"""How long each scheduled job takes, and how much memory, on a shop with a million members.

    .venv/bin/python benchmarks/jobs.py                     # 1,000,000 members (several minutes)
    .venv/bin/python benchmarks/jobs.py --members 100000    # a tenth, while developing
    .venv/bin/python benchmarks/jobs.py --profile /tmp/prof --jobs birthday,expire

Seeds PostgreSQL with set-based SQL (INSERT ... SELECT generate_series) in a schema of its own,
per member: 10 ledger rows (8 open lots), 2 purchases, a stamp card and 3 coupons. About 1% of
the members are due for each job on the benchmark day: birthdays, lots and coupons past due
(expire) or inside a warning horizon, cards and balances just short of a reward (nudges),
dormant members (win-back), and members above the first tier, half of them due to drop (tiers).

Each job then runs as of its cron time that day, in a fresh child process: wall time from
selection through enqueue (expire: through its writes), peak RSS (getrusage) and, with
--tracemalloc, the Python heap peak. Finally the `send` job delivers the queued outbox to a
FakeLine server (tests/fake_line.py) in another process, quiet hours and push budget off.
Prints figures against the targets (a job: 20 s, 400 MB; the sender: 300 push requests/s),
asserts nothing, and drops the schema at the end. Each job's child pid is printed, so a
sampling profile of the whole run can be split per job:

    .venv/bin/py-spy record --subprocesses --idle -f raw -o jobs.txt -- \
        .venv/bin/python benchmarks/jobs.py
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import io
import math
import multiprocessing as mp
import os
import pstats
import resource
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.fake_line lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402

from bot import migrate  # noqa: E402
from bot.config import DEFAULT_PROGRAM, Config, normalize_database_url  # noqa: E402
from bot.db import make_engine, make_sessionmaker, scratch_schema  # noqa: E402
from bot.jobs import JOBS, JobContext, run_job  # noqa: E402
from bot.line.client import LineClient  # noqa: E402
from bot.line.context import render_context  # noqa: E402
from bot.loyalty.codes import ALPHABET, LENGTH  # noqa: E402
from bot.loyalty.timeutil import start_of_day  # noqa: E402
from bot.outbox.sender import send_pending  # noqa: E402
from bot.program import Program, load_program  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAY = dt.date(2026, 6, 10)  # the benchmark day, in the shop's timezone
SEND_AT = dt.time(15, 30)  # after every other job; one more minute per send run
JOB_SECONDS, JOB_MB, PUSHES_PER_S = 20, 400, 300
CODE_SPACE = len(ALPHABET) ** LENGTH
MEMBER_CODE_STEP, COUPON_CODE_STEP = 2_147_483_647, 1_000_000_007  # primes: a bijection mod 31**9


def bench_program() -> Program:
    return dataclasses.replace(load_program(DEFAULT_PROGRAM), quiet_hours=None,
                               monthly_push_budget=None)


# -- the seed ------------------------------------------------------------------------------------
def code_sql(id_expr: str, step: int, largest_id: int) -> str:
    """A unique 9-symbol code for each id: id * step mod 31**9 written in the code alphabet."""
    assert math.gcd(step, len(ALPHABET)) == 1 and step * largest_id < 2 ** 63
    x = f"(({id_expr})::bigint * {step} % {CODE_SPACE})"
    return " || ".join(f"substr('{ALPHABET}', ({x} / {len(ALPHABET) ** k} % {len(ALPHABET)})"
                       f"::int + 1, 1)" for k in range(LENGTH))


def days(expr: str) -> str:
    return f"make_interval(days => ({expr})::int)"


# One row per member, every choice the other tables follow. m % 100 picks the group: 0 birthday
# today, 1 a lot and a coupon past due, 2 a lot (and for half a coupon) in a warning horizon,
# 3 a card 1-2 stamps short, 4 a balance 1-50 points short of a reward, 5 dormant, 6 silver or
# gold (half of them past the grace, with no spend in the window). Everybody else is outside
# every selection: other birthdays, lots expiring in 32-361 days, balances outside the nudge
# bands, a purchase in the last 59 days or a win-back already given for the current spell.
# Times are naive UTC like the tables'; :d0 is the benchmark day's local midnight.
PLAN = f"""
CREATE TEMP TABLE plan AS
SELECT m, g, sub, kind, a, b, joined, last_buy, last_buy - {days("10 + m % 90")} AS first_buy,
       amount0, amount1, tier, balance,
       balance - (5 * a + 10 * b + amount0 / 30 + amount1 / 30) AS top_up,
       CASE kind WHEN 'keep' THEN :d0 - interval '100 days'
                 WHEN 'drop' THEN :d0 - interval '400 days' ELSE joined END AS tier_since,
       CASE WHEN kind IN ('lapsed', 'drop') THEN last_buy + interval '60 days' END AS winback_at,
       CASE WHEN m % 50 = 49 THEN 'blocked' ELSE 'active' END AS status
FROM generate_series(1, :n) AS m
CROSS JOIN LATERAL (SELECT (m % 100)::int AS g, (m / 100 % 12)::int AS sub,
                           (1 + m % 7)::int AS a, (m / 7 % 3)::int AS b) AS k
CROSS JOIN LATERAL (SELECT CASE WHEN g = 6 AND sub % 4 < 2 THEN 'keep' WHEN g = 6 THEN 'drop'
                                WHEN g = 5 THEN 'dormant' WHEN m / 7 % 5 < 3 THEN 'recent'
                                ELSE 'lapsed' END AS kind) AS s
CROSS JOIN LATERAL (SELECT
    :d0 + interval '12 hours' - {days("1100 + m % 365")} AS joined,
    :d0 + interval '11 hours' - {days('''CASE kind WHEN 'dormant' THEN 61 + m % 300
        WHEN 'drop' THEN 370 + m % 200 WHEN 'lapsed' THEN 61 + m % 600 ELSE 1 + m % 59 END''')}
        AS last_buy,
    CASE WHEN g = 6 THEN CASE WHEN sub % 2 = 0 THEN 3000 ELSE 8000 END
         ELSE 80 + (m * 13) % 900 END AS amount0,
    CASE WHEN g = 6 THEN CASE WHEN sub % 2 = 0 THEN 3000 ELSE 8000 END
         ELSE 80 + (m * 13 + 7) % 900 END AS amount1,
    CASE WHEN g = 6 THEN CASE WHEN sub % 2 = 0 THEN 'silver' ELSE 'gold' END
         ELSE 'member' END AS tier,
    CASE WHEN g = 4 THEN 450 + m / 100 % 50
         WHEN g IN (1, 6) THEN 1100 + (m * 7) % 1900
         ELSE CASE (m + m / 100) % 3 WHEN 0 THEN 150 + (m * 11) % 300
                                     WHEN 1 THEN 500 + (m * 11) % 450
                                     ELSE 1000 + (m * 11) % 2000 END END AS balance) AS v
"""


def seed_statements(n: int) -> list[tuple[str, str]]:
    birthday_day = "(:day + " + days("1 + (m * 37) % 364") + ")::date"
    # open lots 0-4 and 7: spread over days 32-361; lot 0 of group 1 is due, of group 2 warned
    expiry = f"""CASE WHEN j = 0 AND g = 1 THEN :d0
        WHEN j = 0 AND g = 2 THEN :d0 + {days("(ARRAY[1, 7, 30])[sub % 3 + 1]")}
        ELSE :d0 + {days("32 + (m * 7 + j * 53) % 330")} END"""
    coupon_until = f"""CASE WHEN k = 0 THEN joined - interval '12 hours' + interval '31 days'
        WHEN k = 1 AND g = 1 THEN :d0
        WHEN k = 1 AND g = 2 AND sub % 2 = 0 THEN :d0 + interval '2 days'
        WHEN k = 1 THEN :d0 + {days("5 + m % 55")}
        ELSE :d0 - {days("10 + m % 300")} END"""
    return [
        ("plan", PLAN),
        ("members", f"""
INSERT INTO members (id, line_user_id, member_code, display_name, language, birthday,
    birthday_set_at, tier, tier_since, status, points_balance, welcome_given_at, joined_at,
    last_activity_at, last_purchase_at, winback_sent_at, bonus_multiplier)
SELECT m, 'U' || md5('bench:' || m), {code_sql("m", MEMBER_CODE_STEP, n)},
       CASE WHEN english THEN 'Member ' || m ELSE '會員' || m END,
       CASE WHEN english THEN 'en' ELSE 'zh-TW' END, bday,
       CASE WHEN bday IS NOT NULL THEN joined + interval '1 day' END,
       tier, tier_since, status, balance, joined, joined, last_buy, last_buy, winback_at, 1
FROM plan CROSS JOIN LATERAL (SELECT CASE
    WHEN g = 0 THEN make_date(born, :month, :dom)
    WHEN m % 10 = 8 THEN NULL
    ELSE make_date(born, extract(month FROM {birthday_day})::int,
                   extract(day FROM {birthday_day})::int) END AS bday
    FROM (SELECT (1960 + 4 * (m / 3 % 10))::int AS born) AS leap) AS b
CROSS JOIN LATERAL (SELECT (m + m / 100) % 5 = 4 AS english) AS e  -- 20%, in every group"""),
        ("purchases", """
INSERT INTO purchases (id, member_id, source, external_order_id, amount, categories,
    points_earned, stamps_earned, refunded_amount, created_at)
SELECT 2 * (m - 1) + k + 1, m, 'pos', 'bench-' || (2 * (m - 1) + k + 1), amount,
       '{}'::json, amount / 30, 1, 0, CASE k WHEN 0 THEN first_buy ELSE last_buy END
FROM plan CROSS JOIN generate_series(0, 1) AS k
CROSS JOIN LATERAL (SELECT CASE k WHEN 0 THEN amount0 ELSE amount1 END AS amount) AS x"""),
        ("point_entries", f"""
INSERT INTO point_entries (id, member_id, kind, points, remaining, expires_at, created_at,
    purchase_id, reason, actor)
SELECT 10 * (m - 1) + j + 1, m, CASE j WHEN 9 THEN 'spend' ELSE 'earn' END, points,
       CASE j WHEN 8 THEN 0 WHEN 9 THEN NULL ELSE points END, expires_at,
       CASE WHEN j IN (5, 6) THEN CASE j WHEN 5 THEN first_buy ELSE last_buy END
            WHEN j = 9 THEN :d0 - {days("385 + m % 300")}
            ELSE expires_at - interval '400 days' END,
       CASE WHEN j IN (5, 6) THEN 2 * (m - 1) + j - 4 END,
       CASE WHEN j IN (5, 6) THEN 'purchase pos:bench-' || (2 * (m - 1) + j - 4)
            WHEN j = 9 THEN 'reward nt50' ELSE 'bench seed' END, 'system'
FROM plan CROSS JOIN generate_series(0, 9) AS j
CROSS JOIN LATERAL (SELECT CASE WHEN j < 5 THEN a + j * b WHEN j = 5 THEN amount0 / 30
    WHEN j = 6 THEN amount1 / 30 WHEN j = 7 THEN top_up WHEN j = 8 THEN 5 + m % 20
    ELSE -(5 + m % 20) END AS points,
    CASE WHEN j = 8 THEN :d0 - {days("30 + m % 300")} WHEN j = 9 THEN NULL
         ELSE {expiry} END AS expires_at) AS x"""),
        ("point_draws", """
INSERT INTO point_draws (id, entry_id, lot_id, points)
SELECT m, 10 * (m - 1) + 10, 10 * (m - 1) + 9, 5 + m % 20 FROM plan"""),
        ("stamp_cards", f"""
INSERT INTO stamp_cards (id, member_id, goal, stamps, status, started_at, expires_at,
    completed_at)
SELECT m, m, :goal, CASE WHEN done THEN :goal WHEN g = 3 THEN (ARRAY[3, 4, 8, 9])[sub % 4 + 1]
                         ELSE (ARRAY[0, 1, 2, 5, 6, 7])[m % 6 + 1] END,
       CASE WHEN done THEN 'completed' ELSE 'active' END, started,
       started - interval '11 hours' + interval '365 days',
       CASE WHEN done THEN started + interval '100 days' END
FROM plan CROSS JOIN LATERAL (SELECT m % 10 = 9 AS done,
    :d0 + interval '11 hours' - {days("CASE WHEN m % 10 = 9 THEN 200 + m % 100 ELSE m % 300 END")}
    AS started) AS c"""),
        ("coupon_templates", """
INSERT INTO coupon_templates (id, key, title, kind, total_cap, issued_count)
SELECT ord, key, title, kind, cap, 0
FROM unnest(CAST(:keys AS text[]), CAST(:titles AS text[]), CAST(:kinds AS text[]),
            CAST(:caps AS int[])) WITH ORDINALITY AS t(key, title, kind, cap, ord)"""),
        ("coupons", f"""
INSERT INTO coupons (id, code, template_id, member_id, status, valid_from, valid_until,
    issued_at, reason, issue_key)
SELECT cid, {code_sql("cid", COUPON_CODE_STEP, 3 * n)}, t.id, m,
       CASE WHEN until <= :d0 - interval '1 day' THEN 'expired' ELSE 'issued' END,
       issued, until, issued, CASE k WHEN 0 THEN 'welcome' ELSE 'reward' END,
       CASE k WHEN 0 THEN 'welcome:' || m END
FROM plan CROSS JOIN generate_series(0, 2) AS k
CROSS JOIN LATERAL (SELECT 3 * (m - 1) + k + 1 AS cid, {coupon_until} AS until,
    CASE k WHEN 0 THEN 'welcome' WHEN 1 THEN
        (ARRAY['nt50', 'pct10', 'free_drink', 'nt120_over_500'])[m % 4 + 1]
        ELSE (ARRAY['nt50', 'pct10'])[m % 2 + 1] END AS template) AS c
CROSS JOIN LATERAL (SELECT CASE k WHEN 0 THEN joined ELSE until - interval '60 days' END
                    AS issued) AS i
JOIN coupon_templates AS t ON t.key = c.template"""),
        ("issued counts", """
UPDATE coupon_templates AS t SET issued_count = c.count
FROM (SELECT template_id, count(*) FROM coupons GROUP BY template_id) AS c
WHERE c.template_id = t.id"""),
    ]


SEEDED = ("members", "purchases", "point_entries", "point_draws", "stamp_cards",
          "coupon_templates", "coupons")
EXPECTED = """
SELECT count(*) FILTER (WHERE g = 0 AND status = 'active') AS birthday,
       count(*) FILTER (WHERE g = 1) AS expire_members,
       coalesce(sum(a) FILTER (WHERE g = 1), 0) AS expire_points,
       count(*) FILTER (WHERE g = 1) AS expire_coupons,
       count(*) FILTER (WHERE g = 2 AND status = 'active') AS warnings,
       count(*) FILTER (WHERE g IN (3, 4) AND status = 'active') AS nudges,
       count(*) FILTER (WHERE g = 5 AND status = 'active') AS winback,
       count(*) FILTER (WHERE tier <> 'member') AS tier_members,
       count(*) FILTER (WHERE kind = 'drop') AS tier_changes
FROM plan"""

CHECKS = {
    "balance <> sum of lot remainders or of entries": """
        SELECT count(*) FROM members AS m LEFT JOIN (
            SELECT member_id, sum(remaining) AS lots, sum(points) AS entries
            FROM point_entries GROUP BY member_id) AS e ON e.member_id = m.id
        WHERE m.points_balance <> coalesce(e.lots, 0)
           OR m.points_balance <> coalesce(e.entries, 0)""",
    "malformed line_user_id or member_code": f"""
        SELECT count(*) FROM members WHERE line_user_id !~ '^U[0-9a-f]{{32}}$'
            OR member_code !~ '^[{ALPHABET}]{{{LENGTH}}}$'""",
    "members with two active cards": """
        SELECT count(*) FROM (SELECT member_id FROM stamp_cards WHERE status = 'active'
                              GROUP BY member_id HAVING count(*) > 1) AS twice""",
}


def seed(url: str, n: int, program: Program, day: dt.date = DAY) -> dict[str, int]:
    """Fill the empty schema; foreign keys are dropped first and added (so checked) after.
    Dates follow `day`, the benchmark day (benchmarks/webhook.py seeds as of today)."""
    d0 = start_of_day(day, program.timezone).replace(tzinfo=None)
    templates = list(program.coupons.values())
    params = {"n": n, "d0": d0, "day": day, "month": day.month, "dom": day.day,
              "goal": program.stamps.goal, "keys": [t.key for t in templates],
              "titles": [t.title for t in templates], "kinds": [t.kind for t in templates],
              "caps": [t.total_cap for t in templates]}
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for setting in ("synchronous_commit = off", "maintenance_work_mem = '512MB'",
                            "work_mem = '256MB'"):
                conn.execute(text(f"SET {setting}"))
            fks = conn.execute(text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' "
                "AND connamespace = current_schema()::regnamespace")).all()
            for table, name, _ in fks:
                conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            began = time.perf_counter()
            for label, sql in seed_statements(n):
                step(label, lambda sql=sql: conn.execute(text(sql), params))
            expected = dict(conn.execute(text(EXPECTED)).mappings().one())

            def add_fks() -> None:
                for table, name, definition in fks:
                    conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" '
                                      f"{definition}"))
            step("foreign keys (validated)", add_fks)
            for table in SEEDED:  # ids were given explicitly: move the sequences past them
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
            loaded = time.perf_counter() - began
            for problem, sql in CHECKS.items():
                found = conn.execute(text(sql)).scalar_one()
                if found:
                    raise SystemExit(f"seed is inconsistent: {found} {problem}")
            tables = conn.execute(text(
                "SELECT string_agg(quote_ident(relname), ', ') FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = current_schema()::regnamespace")).scalar_one()
            step("vacuum analyze", lambda: conn.execute(text(f"VACUUM (ANALYZE) {tables}")))
            sizes = conn.execute(text(
                "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class AS c "
                "WHERE c.relnamespace = current_schema()::regnamespace")).scalar_one()
        print(f"seeded and checked in {time.perf_counter() - began:.1f} s "
              f"({loaded:.1f} s loading), {sizes} on disk")
    finally:
        engine.dispose()
    return expected


def step(label: str, work) -> None:
    began = time.perf_counter()
    result = work()
    rows = getattr(result, "rowcount", -1)
    print(f"  {label:<26} {time.perf_counter() - began:6.1f} s"
          + (f"  {rows:>11,} rows" if rows and rows > 0 else ""), flush=True)


# -- FakeLine in a process of its own (it is Python too: sharing a GIL would slow the sender) ----
def serve_fake_line(conn, nodelay: bool) -> None:
    from tests import fake_line
    from tests.fake_line import PUSH, FakeLine

    # http.server writes a response's headers and body in two send() calls; with Nagle on, the
    # body waits for the client's delayed ACK (40 ms on Linux): 20 requests/s whatever the
    # sender does. LINE's servers do not do that, so by default the benchmark turns it off.
    fake_line._Handler.disable_nagle_algorithm = nodelay

    class TimedFakeLine(FakeLine):
        busy = 0.0

        def _dispatch(self, call):
            began = time.perf_counter()
            try:
                return super()._dispatch(call)
            finally:
                self.busy += time.perf_counter() - began

    with TimedFakeLine() as fake:
        fake.set_quota(None)
        conn.send((fake.base_url, fake.access_token))
        while conn.recv() == "stats":
            calls = fake.calls
            conn.send({"push": sum(c.path == PUSH and c.status == 200 for c in calls),
                       "multicast": len(fake.multicasts()),
                       "recipients": len(fake.pushes())
                       + sum(len(m["to"]) for m in fake.multicasts()),
                       "rejected": len(fake.rejections), "other": sum(c.status >= 400
                                                                      for c in calls),
                       "server_s": fake.busy})


# -- one job in a child process --------------------------------------------------------------
def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def job_child(conn, url: str, name: str, now: dt.datetime, line: tuple[str, str],
              profile_dir: str | None, trace: bool) -> None:
    program = bench_program()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    sql = {"statements": 0, "seconds": 0.0, "commits": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn_, cursor, statement, parameters, context, executemany):
        conn_.info["began"] = time.perf_counter()

    slowest: dict[str, float] = {}

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn_, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - conn_.info.pop("began")
        sql["statements"] += 1
        sql["seconds"] += took
        shape = " ".join(statement.split())[:110]
        slowest[shape] = slowest.get(shape, 0.0) + took

    @event.listens_for(engine, "commit")
    def _commit(conn_):
        sql["commits"] += 1

    config = Config(database_url=url, program_path=str(DEFAULT_PROGRAM), secret_key="bench",
                    line_channel_secret="bench", line_channel_access_token=line[1],
                    line_oa_basic_id="@mountainmist", public_base_url="https://cafe.example",
                    line_api_base_url=line[0])
    rt = JobContext(program=program, sessions=sessions,
                 render=partial(render_context, config, program),
                 deliver=partial(send_pending, sessions, LineClient(config), program))
    with engine.connect() as c:  # connect (and warm the pool) before the clock starts
        c.execute(text("SELECT 1"))
    base = rss_mb()
    profiler = cProfile.Profile() if profile_dir else None
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    if name == "send":
        summary, runs = send_all(rt, engine, now)
    else:
        summary, runs = run_job(rt, JOBS[name], now), 1
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - began
    heap = tracemalloc.get_traced_memory()[1] / 2 ** 20 if trace else None
    top = ""
    if profiler:
        path = Path(profile_dir) / f"{name}.pstats"
        profiler.dump_stats(path)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        top = f"cProfile of {name} (saved to {path}):\n" + out.getvalue()
    heaviest = sorted(slowest.items(), key=lambda item: -item[1])[:3]
    conn.send({"wall": wall, "rss": rss_mb(), "base_rss": base, "heap": heap, "runs": runs,
               "summary": summary, "profile": top, "heaviest": heaviest,
               **{f"sql_{k}": v for k, v in sql.items()}})
    engine.dispose()


def send_all(rt: JobContext, engine, start: dt.datetime) -> tuple[str, int]:
    """Run the send job once a minute (simulated) until the outbox has nothing pending."""
    runs, delivered, now = 0, 0, start
    while True:
        summary = run_job(rt, JOBS["send"], now)
        runs += 1
        sent = int(summary.split()[0]) if summary[0].isdigit() else 0
        delivered += sent
        with engine.connect() as c:
            pending = c.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending' "
                                     "AND batch_id IS NULL")).scalar_one()
        if not pending or not sent:
            return f"{delivered} delivered in {runs} runs; {pending} left pending", runs
        now += dt.timedelta(minutes=1)


def run_child(url: str, name: str, now: dt.datetime, line, args) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=job_child, args=(child, url, name, now, line, args.profile,
                                               args.tracemalloc))
    proc.start()
    print(f"  (child process {proc.pid})", flush=True)
    child.close()
    if not parent.poll(args.timeout):
        proc.kill()
        proc.join()
        return {"wall": float("inf"), "summary": f"killed after {args.timeout} s",
                "rss": float("nan"), "base_rss": float("nan"), "heap": None}
    try:
        result = parent.recv()
    except EOFError:
        result = {"wall": float("inf"), "summary": f"crashed (exit code {proc.exitcode})",
                  "rss": float("nan"), "base_rss": float("nan"), "heap": None}
    proc.join()
    return result


# -- main ----------------------------------------------------------------------------------------
def schedule(program: Program, names: list[str]) -> list[tuple[str, dt.datetime]]:
    """The jobs in the order their cron times come on the benchmark day, then `send`."""
    tz, timed = program.timezone, []
    for name in names:
        cron = JOBS[name].cron
        when = (dt.time(cron["hour"], cron["minute"]) if name != "send" else SEND_AT)
        timed.append((name, dt.datetime.combine(DAY, when, tzinfo=tz)))
    return sorted(timed, key=lambda item: item[1])


def outbox_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT kind, count(*) FROM outbox GROUP BY kind")).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--jobs", default=",".join(JOBS),
                        help="comma-separated, of: " + ", ".join(JOBS))
    parser.add_argument("--timeout", type=float, default=600, help="seconds per job")
    parser.add_argument("--profile", metavar="DIR", help="cProfile each job into DIR")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also trace the Python heap (slows the jobs down)")
    parser.add_argument("--fake-line-nagle", action="store_true",
                        help="leave Nagle on in FakeLine (about 40 ms per request)")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    names = [name.strip() for name in args.jobs.split(",") if name.strip()]
    if unknown := set(names) - set(JOBS):
        parser.error(f"unknown jobs: {', '.join(sorted(unknown))}")
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    schema = f"bench_jobs_{os.getpid()}"
    url, drop = scratch_schema(normalize_database_url(args.database), schema)
    ctx = mp.get_context("spawn")
    fake_conn, fake_end = ctx.Pipe()
    fake = ctx.Process(target=serve_fake_line, args=(fake_end, not args.fake_line_nagle),
                       daemon=True)
    try:
        migrate.upgrade(url)
        program = bench_program()
        n = args.members
        print(f"seeding {n:,} members, {10 * n:,} ledger rows, {2 * n:,} purchases, "
              f"{n:,} stamp cards, {3 * n:,} coupons into schema {schema}", flush=True)
        expected = seed(url, n, program)
        print("due on", DAY.isoformat(), ", ".join(f"{k} {v:,}" for k, v in expected.items()))
        fake.start()
        line = fake_conn.recv()
        results = []
        engine = make_engine(url)
        for name, now in schedule(program, names):
            print(f"running {name} as of {now:%Y-%m-%d %H:%M %Z} ...", flush=True)
            result = run_child(url, name, now, line, args)
            result["name"] = name
            if name == "send":
                fake_conn.send("stats")
                result["line"] = fake_conn.recv()
            result["outbox"] = outbox_counts(engine)
            results.append(result)
            report_one(result)
        engine.dispose()
        report(results, n)
    finally:
        if fake.is_alive():
            fake_conn.send("stop")
            fake.join(timeout=10)
        if args.keep:
            print(f"schema {schema} kept; its URL: {url}")
        else:
            drop()


def report_one(r: dict) -> None:
    heap = f", Python heap peak {r['heap']:.0f} MB" if r.get("heap") is not None else ""
    print(f"  {r['wall']:.1f} s, peak RSS {r['rss']:.0f} MB (at start {r['base_rss']:.0f} MB)"
          f"{heap}: {r['summary']}")
    if "sql_statements" in r:
        print(f"  {r['sql_statements']:,} SQL statements taking {r['sql_seconds']:.1f} s, "
              f"{r['sql_commits']:,} commits; outbox now {r['outbox']}")
    for shape, seconds in r.get("heaviest", []):
        print(f"    {seconds:6.1f} s in: {shape}")
    if r.get("line"):
        line = r["line"]
        print(f"  FakeLine: {line['push']:,} pushes, {line['multicast']:,} multicasts, "
              f"{line['recipients']:,} recipients, {line['rejected']} rejected, "
              f"{line['other']} answered >= 400, {line['server_s']:.1f} s inside the server")
    if r.get("profile"):
        print(r["profile"])


def report(results: list[dict], n: int) -> None:
    print(f"\n{n:,} members; targets: a job under {JOB_SECONDS} s and {JOB_MB} MB, "
          f"the sender at least {PUSHES_PER_S} push requests/s")
    print(f"{'job':<16} {'wall s':>8} {'RSS MB':>7} {'SQL':>9} {'SQL s':>6}  target  summary")
    for r in results:
        if r["name"] == "send" and r.get("line"):
            line = r["line"]
            requests = line["push"] + line["multicast"]
            rate = line["push"] / r["wall"] if r["wall"] else 0
            ok = (rate >= PUSHES_PER_S and r["rss"] < JOB_MB) if line["push"] else None
            verdict = (f"{rate:.0f} pushes/s ({requests / r['wall']:.0f} requests/s, "
                       f"{line['recipients'] / r['wall']:.0f} recipients/s)")
        else:
            ok, verdict = r["wall"] < JOB_SECONDS and r["rss"] < JOB_MB, ""
        print(f"{r['name']:<16} {r['wall']:8.1f} {r['rss']:7.0f} "
              f"{r.get('sql_statements', 0):9,} {r.get('sql_seconds', 0):6.1f}  "
              f"{'  - ' if ok is None else 'met ' if ok else 'MISS'}    "
              f"{verdict or r['summary']}")


if __name__ == "__main__":
    main()
