"""How long the owner console's pages take on PostgreSQL with a million members.

    .venv/bin/python benchmarks/console.py                    # 1,000,000 members (minutes)
    .venv/bin/python benchmarks/console.py --members 100000   # a tenth, while developing

The data are the jobs benchmark's (benchmarks/jobs.py: per member 10 ledger rows, 2
purchases, a stamp card, 3 coupons), with a phone for every member and names as a Taiwanese
shop has them (a surname and a given name from common ones; a fifth with English names),
so that a name search matches many members, as it does in a real shop. The name indexes
(pg_trgm, migration 0015; characters and pairs, 0018) are dropped before the seed and made
after it, timed.

Then, signed in as an owner through the app's own test client (every page rendered as a
browser gets it): the dashboard for the 30 days to the benchmark day computed live (two
reports: the period and the one before, as when the clock is not running); the `dashboard`
clock job's first run (every day's figures) as of that day's noon, and a check that its
figures for those 30 days equal the two reports'; 500 purchases, 100 refunds of purchases
made months before and 100 coupons, then the job again (only what changed) and once more
with nothing changed; the dashboard from the job's figures for the default 30 days, a week,
a quarter and a year; member searches by phone, member code, parts of names (3, 2 and 1
characters, and names nobody has) and a member's page; the campaigns page before any campaign
and with one whose 10,000 coupons are among the seeded 3 million (its results read only its
own). Each page once cold, then the median
of five (of one for the live dashboard). Target: each page under 1 s. Prints figures,
asserts nothing, drops its schema at the end (--keep keeps it; --reuse SCHEMA times the
pages on it again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
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
from bot.loyalty import accounts, campaigns, coupons, daily, purchases  # noqa: E402
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
GRAMS = "ix_members_display_name_grams"


def prepare(url: str, n: int) -> None:
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for index in (TRGM, GRAMS):
                conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
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
            timed("name index (characters)", lambda: conn.execute(text(
                f"CREATE INDEX {GRAMS} ON members USING gin (name_grams(display_name))")))
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


def sign_in(app, rt):
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
    return client


def refresh(rt, now: dt.datetime, label: str, *, full: bool = False) -> None:
    """The clock's dashboard job as of `now`, timed."""
    began = time.perf_counter()
    with transaction(rt.sessions) as session:
        summary = daily.refresh(session, rt.program, now, full=full)
    print(f"  {label:<44} {time.perf_counter() - began:6.3f} s  ({summary})", flush=True)


def changes(rt, now: dt.datetime, n: int) -> None:
    """What a busy shop does between two runs of the job: 500 purchases by members picked
    at random, 100 refunds (half in full) of purchases made months ago, 100 coupons issued
    and the sale of a year ago refunded: each its own transaction, as the bot makes them."""
    rng = random.Random(os.getpid())
    tag = f"{os.getpid()}-{int(time.time())}"
    began = time.perf_counter()
    for i in range(500):
        with transaction(rt.sessions) as session:
            purchases.record_purchase(session, rt.program, rng.randrange(1, n + 1),
                                      rng.randrange(80, 900), now, source="pos",
                                      order_id=f"console-{tag}-{i}", actor="benchmark")
    with rt.engine.connect() as conn:
        old = conn.execute(text(
            "SELECT external_order_id, amount FROM purchases WHERE source = 'pos' AND "
            "external_order_id LIKE 'bench-%' AND refunded_amount = 0 AND id % 997 = :r "
            "LIMIT 100"), {"r": rng.randrange(997)}).all()
    for i, (order_id, amount) in enumerate(old):
        with transaction(rt.sessions) as session:
            purchases.refund_order(session, rt.program, amount if i % 2 else amount // 2, now,
                                   source="pos", order_id=order_id,
                                   refund_id=f"console-{tag}-{i}", actor="benchmark")
    for i in range(100):
        with transaction(rt.sessions) as session:
            coupons.issue_coupon(session, rt.program, rng.randrange(1, n + 1), "nt50", now,
                                 reason=f"benchmark {tag} {i}")
    print(f"  {'(500 purchases, 100 old refunds, 100 coupons)':<44} "
          f"{time.perf_counter() - began:6.1f} s", flush=True)


def run(url: str, n: int) -> None:
    app = create_app(Config(database_url=url, program_path=str(DEFAULT_PROGRAM),
                            secret_key="console-benchmark", public_base_url="https://bench"))
    rt = app.extensions["loyalty"]
    client = sign_in(app, rt)
    with rt.engine.connect() as conn:
        code, phone, name = conn.execute(text(
            "SELECT member_code, phone, display_name FROM members WHERE id = :id"),
            {"id": n // 2 + 3}).one()
    month = (DAY - dt.timedelta(days=29), DAY)
    noon = start_of_day(DAY, rt.program.timezone) + dt.timedelta(hours=12)
    print(f"pages, {n:,} members (each: cold, then the median of the runs after it):")
    with transaction(rt.sessions) as session:  # no daily figures: the page computes live
        session.execute(text("DELETE FROM daily_state"))
    with mock.patch("bot.console.views.utcnow", lambda: noon):
        measure(client, f"dashboard {month[0]} to {month[1]}, live (no clock)", "/admin/",
                "NT$", runs=1)
    refresh(rt, noon, "the dashboard job, first run (every day)", full=True)
    with rt.sessions() as session:  # the same figures as the two reports?
        live = figures.compute(session, rt.program, *month, noon)
        kept = figures.kept(session, rt.program, *month, noon + dt.timedelta(minutes=1))
    same = (kept.current, kept.previous) == (live.current, live.previous)
    print(f"  daily figures of {month[0]} to {month[1]} equal the two reports: {same}")
    changes(rt, noon + dt.timedelta(minutes=2), n)
    refresh(rt, noon + dt.timedelta(minutes=15), "the dashboard job, after those changes")
    refresh(rt, noon + dt.timedelta(minutes=25), "the dashboard job, nothing new")
    with mock.patch("bot.console.views.utcnow", lambda: noon + dt.timedelta(minutes=26)):
        measure(client, "dashboard, default period (30 days)", "/admin/", 'class="freshness"')
        for label, days in (("a week", 7), ("a quarter", 91), ("a year", 365)):
            first = DAY - dt.timedelta(days=days - 1)
            measure(client, f"dashboard, {label} ({first} to {DAY})",
                    f"/admin/?from={first}&to={DAY}", 'class="freshness"')
    spaced = f"{phone[:4]}-{phone[4:7]}-{phone[7:]}"
    measure(client, f"search by phone ({spaced})", f"/admin/members?q={spaced}",
            f'data-member="{code}"')
    measure(client, f"search by member code ({code.lower()})",
            f"/admin/members?q={code.lower()}", f'data-member="{code}"')
    measure(client, f"search by a full name ({name})", f"/admin/members?q={name}", name)
    measure(client, f"search by a given name ({name[1:]})", f"/admin/members?q={name[1:]}",
            name[1:])
    measure(client, f"search by a surname ({name[0]})", f"/admin/members?q={name[0]}",
            name[0])
    measure(client, "search for a name nobody has (無此人)", "/admin/members?q=無此人")
    measure(client, "search for a 2-character name nobody has (某某)", "/admin/members?q=某某")
    measure(client, "search by an English name (Grace)", "/admin/members?q=grace", "Grace")
    measure(client, "search by 2 letters of a name (gr)", "/admin/members?q=gr", "Grace")
    measure(client, f"member page ({code})", f"/admin/members/{code}", code)
    campaigns_pages(rt, client, noon)
    rt.engine.dispose()


CAMPAIGN_COUPONS = 10_000


def campaigns_pages(rt, client, now: dt.datetime) -> None:
    """The campaigns page with no campaign, then with one that gave CAMPAIGN_COUPONS coupons
    (written as its run writes them: reason campaign:<key>); kept by --reuse."""
    with transaction(rt.sessions) as session:
        made = session.scalar(text("SELECT count(*) FROM campaigns WHERE key = 'bench'"))
    if not made:
        measure(client, "campaigns page, no campaign yet", "/admin/campaigns")
        with transaction(rt.sessions) as session:
            campaigns.create_campaign(session, rt.program, "bench", template="nt50", now=now,
                                      actor="benchmark")
            session.execute(text("""
                INSERT INTO coupons (id, code, template_id, member_id, status, valid_from,
                                     valid_until, issued_at, reason, issue_key)
                SELECT last.id + m, 'BENCH' || m, t.id, m, 'issued', :now,
                       :now + interval '30 days', :now, 'campaign:bench', 'campaign:bench:' || m
                FROM generate_series(1, :n) AS m, coupon_templates AS t,
                     (SELECT max(id) AS id FROM coupons) AS last
                WHERE t.key = 'nt50'"""), {"now": now, "n": CAMPAIGN_COUPONS})
            session.execute(text("SELECT setval(pg_get_serial_sequence('coupons', 'id'), "
                                 "(SELECT max(id) FROM coupons))"))
    measure(client, f"campaigns page, one campaign of {CAMPAIGN_COUPONS:,} coupons",
            "/admin/campaigns", 'data-campaign="bench"')


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
