"""How long the owner console's pages take on PostgreSQL with a million members.

    .venv/bin/python benchmarks/console.py                    # 1,000,000 members (minutes)
    .venv/bin/python benchmarks/console.py --members 100000   # a tenth, while developing

The data are the jobs benchmark's (benchmarks/jobs.py: per member 10 ledger rows, 2
purchases, a stamp card, 3 coupons), with a phone for every member and names as a Taiwanese
shop has them (a surname and a given name from common ones; a fifth with English names),
so that a name search matches many members, as it does in a real shop. The name index
(migration 0013, pg_trgm) is dropped before the seed and made after it, timed.

Then, signed in as an owner through the app's own test client (every page rendered as a
browser gets it): the dashboard for the 30 days to the benchmark day computed live (two
reports: the period and the one before), the `dashboard` clock job computing the same
figures as of that day's noon, the default dashboard a minute later (served from the job's
figures, with their time shown), and member searches by phone, member code, part of a name
and a member's page. Each page once cold, then the median of five (of two for the live
dashboard). Target: each page under 1 s. Prints figures, asserts nothing, drops its schema
at the end (--keep keeps it; --reuse SCHEMA times the pages on it again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "benchmarks"):  # bot/ and tests/, and jobs.py beside this script
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from jobs import DAY, DEFAULT_URL, bench_program, seed  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bot import migrate  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.config import DEFAULT_PROGRAM, Config, normalize_database_url  # noqa: E402
from bot.db import make_engine, scratch_schema, transaction  # noqa: E402
from bot.loyalty import accounts  # noqa: E402
from bot.loyalty import dashboard as figures  # noqa: E402
from bot.loyalty.errors import AccountExists  # noqa: E402
from bot.loyalty.timeutil import start_of_day, utcnow  # noqa: E402

TARGET_S = 1.0
PASSWORD = "benchmark owner password"
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高"
GIVEN = "美華文明志宏俊偉雅婷怡君家豪淑芬建國佳玲冠宇子晴承恩欣妤柏翰宜蓁"
ENGLISH = ("Amy", "Brian", "Cindy", "David", "Emma", "Frank", "Grace", "Henry", "Ivy",
           "Jason", "Kelly", "Leo", "Mia", "Nick", "Olivia", "Peter")

# every member a phone (a bijection of the id: unique) and a name: surname + two given
# characters, or an English first name with a surname's romanisation for a fifth of them
NAMES = f"""
UPDATE members SET
    phone = '09' || lpad(((id * 7919) % 100000000)::text, 8, '0'),
    display_name = CASE WHEN language = 'en'
        THEN (ARRAY{list(ENGLISH)})[id % {len(ENGLISH)} + 1] || ' ' ||
             (ARRAY['Chen', 'Lin', 'Huang', 'Chang', 'Lee', 'Wang', 'Wu', 'Liu'])[id / 16 % 8 + 1]
        ELSE substr('{SURNAMES}', (id % {len(SURNAMES)})::int + 1, 1)
             || substr('{GIVEN}', (id / 7 % {len(GIVEN)})::int + 1, 1)
             || substr('{GIVEN}', (id / 311 % {len(GIVEN)})::int + 1, 1) END"""
TRGM = "ix_members_display_name_trgm"


def prepare(url: str, n: int) -> None:
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP INDEX IF EXISTS {TRGM}"))
        seed(url, n, bench_program())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
            timed("phones and names", lambda: conn.execute(text(NAMES)))
            schema = conn.scalar(text("SELECT extnamespace::regnamespace::text "
                                      "FROM pg_extension WHERE extname = 'pg_trgm'"))
            if schema:
                timed("name index (pg_trgm)", lambda: conn.execute(text(
                    f"CREATE INDEX {TRGM} ON members USING gin "
                    f"(display_name {schema}.gin_trgm_ops)")))
            else:
                print("  no pg_trgm on this server: name searches read the table")
            timed("vacuum analyze members", lambda: conn.execute(text("VACUUM ANALYZE members")))
    finally:
        engine.dispose()


def timed(label: str, work) -> None:
    began = time.perf_counter()
    work()
    print(f"  {label:<26} {time.perf_counter() - began:6.1f} s", flush=True)


def measure(client, label: str, path: str, expect: str | None = None, runs: int = 5) -> float:
    """The page once cold, then `runs` times: prints both, returns the median."""
    times = []
    for _ in range(1 + runs):
        began = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - began)
        body = answer.get_data(as_text=True)
        if answer.status_code != 200 or (expect and expect not in body):
            raise SystemExit(f"{label}: {answer.status_code}, expected {expect!r} in the page")
    median = statistics.median(times[1:])
    verdict = "ok" if median < TARGET_S else "OVER"
    print(f"  {label:<44} cold {times[0]:6.3f} s, median {median:6.3f} s  {verdict}",
          flush=True)
    return median


def run(url: str, n: int) -> None:
    app = create_app(Config(database_url=url, program_path=str(DEFAULT_PROGRAM),
                            secret_key="console-benchmark", public_base_url="https://bench"))
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        try:
            _, token = accounts.add_account(session, "owner@bench.tw", "owner", utcnow(),
                                            actor="benchmark")
        except AccountExists:  # a kept schema (--reuse)
            _, token = accounts.reset_link(session, "owner@bench.tw", utcnow(),
                                           actor="benchmark")
        accounts.set_password_by_link(session, token, PASSWORD, utcnow())
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = client.post("/admin/login", data={"csrf_token": csrf, "email": "owner@bench.tw",
                                               "password": PASSWORD})
    assert signed.status_code == 302, signed.status_code
    with rt.engine.connect() as conn:
        code, phone, name = conn.execute(text(
            "SELECT member_code, phone, display_name FROM members WHERE id = :id"),
            {"id": n // 2 + 3}).one()
    from_day = (DAY - dt.timedelta(days=29)).isoformat()
    print(f"pages, {n:,} members (each: cold, then the median of the runs after it):")
    measure(client, f"dashboard {from_day} to {DAY.isoformat()}, live",
            f"/admin/?from={from_day}&to={DAY.isoformat()}", "NT$", runs=2)
    # the clock's dashboard job as of noon on the benchmark day, then the default page then
    noon = start_of_day(DAY, rt.program.timezone) + dt.timedelta(hours=12)
    began = time.perf_counter()
    with transaction(rt.sessions) as session:
        summary = figures.refresh(session, rt.program, noon)
    print(f"  {'the dashboard job (two reports, kept)':<44} {time.perf_counter() - began:6.3f} s"
          f"  ({summary})", flush=True)
    with mock.patch("bot.console.views.utcnow", lambda: noon + dt.timedelta(minutes=1)):
        measure(client, "dashboard, default period, from the job's figures", "/admin/",
                'class="freshness"')
    spaced = f"{phone[:4]}-{phone[4:7]}-{phone[7:]}"
    measure(client, f"search by phone ({spaced})", f"/admin/members?q={spaced}",
            f'data-member="{code}"')
    measure(client, f"search by member code ({code.lower()})",
            f"/admin/members?q={code.lower()}", f'data-member="{code}"')
    measure(client, f"search by a full name ({name})", f"/admin/members?q={name}", name)
    measure(client, f"search by a given name ({name[1:]})", f"/admin/members?q={name[1:]}",
            name[1:])
    measure(client, "search for a name nobody has (無此人)", "/admin/members?q=無此人")
    measure(client, "search for a 2-character name nobody has (某某)", "/admin/members?q=某某",
            runs=2)  # the worst case: no trigram to look up, every row read
    measure(client, "search by an English name (Grace)", "/admin/members?q=grace", "Grace")
    measure(client, f"member page ({code})", f"/admin/members/{code}", code)
    rt.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--reuse", metavar="SCHEMA", help="time the pages on a kept schema")
    args = parser.parse_args()
    base = normalize_database_url(args.database)
    if args.reuse:
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{args.reuse}"
        migrate.upgrade(url)
        run(url, args.members)
        return
    schema = f"bench_console_{os.getpid()}"
    url, drop = scratch_schema(base, schema)
    try:
        migrate.upgrade(url)
        print(f"seeding {args.members:,} members into schema {schema}", flush=True)
        prepare(url, args.members)
        run(url, args.members)
    finally:
        if args.keep:
            print(f"schema {schema} kept: --reuse {schema}")
        else:
            drop()


if __name__ == "__main__":
    main()
