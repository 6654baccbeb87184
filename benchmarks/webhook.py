"""Signed webhook events end to end: gunicorn + the bot on SQLite and PostgreSQL, against a floor.

    .venv/bin/python benchmarks/webhook.py                   # floor, floor-flex, SQLite and
                                                             # PostgreSQL, both workloads
    .venv/bin/python benchmarks/webhook.py --targets floor,sqlite --workloads postbacks
    .venv/bin/python benchmarks/webhook.py --show-statements # and each kind's SQL statements
    .venv/bin/python benchmarks/webhook.py --members 1000000 --reuse bench_webhook_1m
        # PostgreSQL with benchmarks/jobs.py's 1,000,000 members, seeded once (minutes), kept
    .venv/bin/python benchmarks/webhook.py --profile /tmp/prof    # per event kind: SQL, LINE
    .venv/bin/python benchmarks/webhook.py --profile /tmp/prof --profile-mode cprofile

Every target runs under `gunicorn --config bot/gunicorn_conf.py` (sync workers, WEB_CONCURRENCY
= --workers, default 3: on 2 cores a third worker fills the CPU while another waits on the
database or on LINE) and replies to tests/fake_line.py's FakeLine, run in a process of its own
with Nagle off and its cyclic garbage collector run between phases only (it keeps every call
it receives: one full collection stalled every reply in flight for 150 ms). Targets:

  floor            benchmarks/floor_app.py: checks the signature, parses the JSON and sends one
                   small text reply with requests; no database, no SDK. It answers every
                   event alike, so it runs one closed loop (on the mixed workload's events),
                   the denominator of every ratio in the run
  floor-flex       the same app sending the bot's own messages for each kind of event (its
                   reply, and for `集點`/`核銷` the customer's push), rendered once before the
                   run from sample data: the bot's I/O at no cost of its own, per workload
                   and per kind alone: its worker CPU for a kind is the least any bot sending
                   that kind's messages costs here, printed beside the bot's (`flex`), with
                   the difference, the bot's own cost (`own`)
  bot-sqlite       `bot:create_app()` on a SQLite file in a temporary folder
  bot-postgresql   `bot:create_app()` in a schema of its own in --database (dropped at the end)

The workloads are pinned here (KINDS, WORKLOADS), not taken from the bot, so that a change in
its messages cannot change what is measured unnoticed. Each webhook body holds one event with
its own webhookEventId and replyToken, from a customer (zh-TW) or a staff member:

  postbacks   rich menu postbacks alone, 20% each: action=points, stamps, wallet, card, rewards
  mixed       55% those postbacks (11% each); 15% customer keywords typed in the chat (點數,
              集點卡, 優惠券, 會員卡); 20% staff `集點 MEMBERCODE AMOUNT` ("earn": NT$80-480, a
              purchase, points, a stamp, a receipt push); 10% staff `核銷 CODE` ("verify": a
              coupon redeemed, a "coupon used" push to its owner)

Shares are exact per phase (largest remainder), the order shuffled. Today every reply is one
Flex message whose altText holds its kind's marker, and every earn and verify event pushes one
message to the customer; other kinds push nothing. Each phase checks its replies' markers (a
miss is a problem) and counts replies, their messages and pushes against that: a receipt that
rode on a reply to the same member instead (bot/outbox/replies.py) counts there; anything else,
a reply that is not Flex, a second push, an extra message, prints "DIFFERS from the pinned
workload": the bot's messaging changed, the figures no longer compare with earlier ones.

Database: migrated, then --customers members (200) and two staff members (also members) join
through the loyalty functions, each customer with the welcome coupon and a stamp card (as a
shop's members have after their first tap or purchase, which starts one). Just before each phase
every `核銷` event in it gets a fresh free-drink coupon of its customer, so the wallets hold
only what earlier phases left. No earn repeats a member's amount within the bot's
REPEAT_WINDOW (the bot would ask the staff to confirm instead of recording it).

--members N (PostgreSQL only; default targets floor, postgresql): the schema holds
benchmarks/jobs.py's data for N members (its seed, imported: 10 ledger rows, 2 purchases, a
stamp card and 3 coupons each, dated as of today so one coupon each is usable), the two staff,
then a CHECKPOINT; the customers are --customers (10,000) of those members drawn at random
(active, zh-TW; the same ones for the same --seed). Seeding 1,000,000 takes minutes: --reuse
NAME keeps the schema under that name (its comment says what it holds) and later runs reuse
it, only checking its migrations; the data then ages (coupons expire in 5-60 days, and a wallet
may be empty: the wallet's marker allows that). SQLite is not seeded at that size.

An event's latency runs from just before its POST until its reply reached FakeLine (the
time the fake read the reply request, same monotonic clock); the webhook's own HTTP answer
does not count. Per target, after a warm-up of --warmup mixed events:

  closed loop      per workload, --concurrency senders post --events events as fast as they
                   are answered; events/s = events / (last reply's arrival - first POST).
                   FakeLine only records the calls here (parses their JSON, no SDK model or
                   LINE limit checks: those cost its process more than some bots cost theirs,
                   and the two share the cores), so the throughput is the bot's against the
                   floor's; --checked-throughput keeps the checks
  kinds alone      per kind, --kind-events (300) events of that kind only, in the same closed
                   loop: worker CPU per event = the gunicorn workers' user + system CPU over the
                   phase (/proc/<pid>/stat, the whole process, so threads too) / events. It
                   counts all the workers do: HTTP parsing, the signature, the SDK's event
                   model, SQL on the client side, rendering, the reply and push calls to
                   FakeLine, and gunicorn's own loop; it leaves out the PostgreSQL backends
                   (shown apart as PG CPU), FakeLine, the senders and the master. The workers
                   are not instrumented. /proc counts 10 ms ticks per process: about 0.1 ms per
                   event over 300
  fixed rate       --rate events/s for --seconds of the mixed workload, each sent on its
                   schedule whatever the previous ones are doing; latency counts from the
                   scheduled time; FakeLine checks every call as in the tests
  memory           VmRSS of each worker from /proc after the fixed rate (max and sum; PSS, which
                   splits pages shared with the master, summed too)
  statements       then the same app restarts on the same database under
                   benchmarks/gunicorn_profile.py's count mode and gets --count-events (50) more
                   events of each kind, FakeLine checking: SQL statements per event (cursor
                   executions: SQLite's BEGIN IMMEDIATE and PRAGMAs count, PostgreSQL's implicit
                   BEGIN does not), commits and pool pings. Instrumented, so not timed

Per phase it prints latency percentiles, overall and by kind of event, and the CPU each
group of processes used per event (from /proc: workers, the PostgreSQL backends serving
them, FakeLine, the senders, anything else on the machine: a NOTE when that took over 15%).
Then per target a table: events/s per workload and its ratio to the floor (targets: postbacks
at least 0.5 of it on SQLite, 0.4 on PostgreSQL; mixed reported), p50/p99 at the fixed rate
(target p99 under 50 ms), per kind its worker CPU (targets: a card screen at most 2 ms, an earn
6 ms) beside floor-flex's for the same kind when it ran, PostgreSQL CPU, statements, commits,
pings and pushes, and worker RSS; then one summary row per target. It checks that every event
got exactly one accepted reply with the expected content, that FakeLine refused nothing and
that the workers logged no errors or warnings (problems). Asserts nothing. Timings are of a
shared machine: run it twice before believing a change of a few percent.

--profile runs the workers under benchmarks/gunicorn_profile.py (bot/gunicorn_conf.py plus
hooks; no bot code changes). Timers (the default) print, per event kind, the worker's wall
and CPU time, SQL statements and their time, commits, pool pings and the LINE calls;
cprofile prints the workers' CPU in the measured requests by library, then the top
functions. Both slow the workers down: read the proportions, not the events/s (the per-kind
CPU table says INSTRUMENTED then).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import http.client
import json
import math
import multiprocessing as mp
import os
import pstats
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.fake_line lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text as sql  # noqa: E402

from benchmarks import jobs as jobs_bench  # noqa: E402
from bot import migrate  # noqa: E402
from bot.config import DEFAULT_PROGRAM, normalize_database_url  # noqa: E402
from bot.db import make_engine, make_sessionmaker, scratch_schema, transaction  # noqa: E402
from bot.loyalty.coupons import issue_coupon  # noqa: E402
from bot.loyalty.members import register_member  # noqa: E402
from bot.loyalty.staff import REPEAT_WINDOW, add_staff  # noqa: E402
from bot.loyalty.stamps import active_card  # noqa: E402
from bot.loyalty.timeutil import utcnow  # noqa: E402
from bot.program import load_program  # noqa: E402
from tests.line_helpers import postback, sign, text, user_id  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "bench-channel-secret"
APPLICATION_NAME = "bench-webhook"  # PostgreSQL backends serving the benchmark
STAFF = [user_id(0xBE00 + i) for i in (1, 2)]
TARGETS = ("floor", "floor-flex", "sqlite", "postgresql")
DEFAULT_TARGETS = ("floor", "floor-flex", "sqlite", "postgresql")
P99_TARGET_MS = 50.0
NOISY = 0.15  # the share of the machine's CPU other processes may take before a NOTE
GUNICORN = Path(sys.executable).parent / "gunicorn"


# -- the pinned workloads -----------------------------------------------------------------------
# Defined here, not taken from the bot, so that a change in the bot's messages does not change
# what is measured without it showing: each run checks every reply against these and counts
# the pushes (see Phase.pinned_check).
@dataclass(frozen=True)
class Kind:
    marker: str | None  # what the reply's message's altText must contain; keywords: KEYWORDS
    pushes: int  # pushes per event today: the customer's receipt, one Flex message
    target_ms: float | None = None  # the most worker CPU per event it may take


SCREEN_MS, PURCHASE_MS = 2.0, 6.0  # issue 20's targets: a card screen, a staff purchase
SCREENS = ("points", "stamps", "wallet", "card", "rewards")  # rich menu postbacks: action=...
KINDS: dict[str, Kind] = {
    "points": Kind("我的點數", 0, SCREEN_MS), "stamps": Kind("集點卡：", 0, SCREEN_MS),
    "wallet": Kind("優惠券", 0, SCREEN_MS), "card": Kind("會員卡 ", 0, SCREEN_MS),
    "rewards": Kind("兌換好禮", 0, SCREEN_MS),
    "keyword": Kind(None, 0),  # a customer types 點數, 集點卡, 優惠券 or 會員卡: a card screen
    "earn": Kind("已記錄 NT$", 1, PURCHASE_MS),  # staff `集點 CODE AMOUNT`: a purchase, a receipt
    "verify": Kind("核銷成功", 1),  # staff `核銷 CODE`: a coupon redeemed, a "coupon used" push
}
REPLY_MESSAGES = PUSH_MESSAGES = 1  # today every reply, and every receipt push, is one message
# shares in %, by kind; customers read zh-TW
WORKLOADS: dict[str, dict[str, int]] = {
    "postbacks": {kind: 20 for kind in SCREENS},
    "mixed": {**{kind: 11 for kind in SCREENS}, "keyword": 15, "earn": 20, "verify": 10},
}
FIXED_WORKLOAD = "mixed"  # the fixed-rate phase's, when it is selected
# end-to-end events/s at least this share of the floor's; other pairs are only reported
RATIO_TARGETS = {("postbacks", "sqlite"): 0.5, ("postbacks", "postgresql"): 0.4}
# the wallet's: 我的優惠券（N 張）, or 目前沒有可用的優惠券 when it is empty
KEYWORDS = {"點數": "我的點數", "集點卡": "集點卡：", "優惠券": "優惠券", "會員卡": "會員卡 "}
KEYWORD_KINDS = {"點數": "points", "集點卡": "stamps", "優惠券": "wallet", "會員卡": "card"}


# -- FakeLine in a process of its own, timing each reply's arrival ------------------------------
def serve_fake_line(conn) -> None:
    from tests import fake_line
    from tests.fake_line import PUSH, REPLY, FakeLine

    # http.server writes headers and body in two send() calls: with Nagle on, every reply would
    # wait for the client's delayed ACK (40 ms). LINE's servers do not do that.
    fake_line._Handler.disable_nagle_algorithm = True
    # FakeLine keeps every call it was sent, parsed: a full collection of those objects took
    # 150 ms and stalled every reply in flight, a pause of the test double's, not the bot's.
    # Collected between phases instead, with nothing being measured.
    gc.disable()

    class TimedFakeLine(FakeLine):
        def reset(self) -> None:
            super().reset()
            self.arrivals: dict[str, list[tuple[float, int, object]]] = {}
            self.busy = 0.0

        def _dispatch(self, call):
            arrived = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
            began = time.perf_counter()
            result = super()._dispatch(call)
            with self._changed:
                self.busy += time.perf_counter() - began
                if call.path == REPLY and isinstance(call.json, dict):
                    self.arrivals.setdefault(str(call.json.get("replyToken")), []).append(
                        (arrived, call.status, call.json.get("messages")))
                self._changed.notify_all()
            return result

        def wait_replies(self, markers: dict[str, str | None], timeout: float) -> dict:
            deadline = time.monotonic() + timeout
            with self._changed:
                while (any(t not in self.arrivals for t in markers)
                       and time.monotonic() < deadline):
                    self._changed.wait(0.05)
                arrivals = {t: list(self.arrivals.get(t, ())) for t in markers}
            calls = self.calls
            wrong = not_flex = replies = reply_messages = 0
            for t, marker in markers.items():  # the first reply accepted for each event
                messages = next((a[2] for a in arrivals[t] if a[1] == 200), None)
                if not isinstance(messages, list):
                    continue
                first = messages[0] if messages and isinstance(messages[0], dict) else {}
                replies += 1
                reply_messages += len(messages)
                not_flex += first.get("type") != "flex"
                wrong += bool(marker) and marker not in str(first.get("altText")
                                                            or first.get("text"))
            pushes = [c for c in calls if c.path == PUSH and c.status == 200]
            return {"arrived": {t: [a[0] for a in got if a[1] == 200]
                                for t, got in arrivals.items()},
                    "wrong": wrong, "not_flex": not_flex, "replies": replies,
                    "reply_messages": reply_messages, "rejected": len(self.rejections),
                    "failed": sum(c.status >= 400 for c in calls), "pushes": len(pushes),
                    "push_messages": sum(len(c.json.get("messages") or [])
                                         for c in pushes if isinstance(c.json, dict)),
                    "calls": len(calls), "busy": self.busy}

    with TimedFakeLine() as fake:
        fake.set_quota(None)
        conn.send((fake.base_url, fake.access_token))
        while True:
            command, *args = conn.recv()
            if command == "stop":
                return
            if command == "reset":
                fake.reset()
                fake.set_quota(None)
                gc.collect()
                conn.send("ok")
            elif command == "checks":
                fake.checks = args[0]
                conn.send("ok")
            elif command == "wait":
                conn.send(fake.wait_replies(*args))


class Fake:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, end = ctx.Pipe()
        self.proc = ctx.Process(target=serve_fake_line, args=(end,), daemon=True)
        self.proc.start()
        self.base_url, self.access_token = self.conn.recv()

    def reset(self) -> None:
        self.conn.send(("reset",))
        self.conn.recv()

    def checks(self, on: bool) -> None:
        """The SDK's model and LINE's limit checks of each reply and push, on or off."""
        self.conn.send(("checks", on))
        self.conn.recv()

    def wait(self, markers: dict[str, str | None], timeout: float) -> dict:
        self.conn.send(("wait", markers, timeout))
        return self.conn.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            self.conn.send(("stop",))
            self.proc.join(timeout=10)


# -- the workload -------------------------------------------------------------------------------
class Customer(NamedTuple):
    user_id: str
    member_code: str
    member_id: int


@dataclass
class Spec:
    kind: str
    customer: int  # index into the customers: the sender, whose code staff type, or who
    # owns the coupon staff verify
    staff: int = 0  # earn, verify: index into STAFF, the sender
    words: str = ""  # the keyword a customer types


@dataclass
class Event:
    kind: str
    token: str
    body: bytes
    signature: str
    marker: str | None
    phase: str = ""


def plan(rng: random.Random, n: int, shares: dict[str, int], customers: int) -> list[Spec]:
    """n events in exactly these proportions (largest remainder), shuffled."""
    total = sum(shares.values())
    exact = {kind: n * share / total for kind, share in shares.items()}
    counts = {kind: int(x) for kind, x in exact.items()}
    for kind in sorted(exact, key=lambda k: counts[k] - exact[k])[:n - sum(counts.values())]:
        counts[kind] += 1
    chosen = [kind for kind, count in counts.items() for _ in range(count)]
    rng.shuffle(chosen)
    specs = []
    for kind in chosen:
        spec = Spec(kind, rng.randrange(customers))
        if kind == "keyword":
            spec.words = rng.choice(list(KEYWORDS))
        elif kind in ("earn", "verify"):
            spec.staff = rng.randrange(len(STAFF))
        specs.append(spec)
    return specs


def build(specs: list[Spec], customers: list[Customer], coupon_codes: list[str],
          rng: random.Random, used: set[tuple[int, int]] | None = None) -> list[Event]:
    """Signed webhook bodies, one event each; verify events take coupon_codes in order. An
    earn's amount is one its member was not charged in `used` (then added): the same member
    and amount within the bot's REPEAT_WINDOW makes it ask the staff to confirm instead."""
    events, codes = [], iter(coupon_codes)
    for s in specs:
        ids = {"event_id": uuid.uuid4().hex.upper()[:26]}
        who = customers[s.customer]
        marker = KINDS[s.kind].marker
        if s.kind == "keyword":
            raw, marker = text(who.user_id, s.words, **ids), KEYWORDS[s.words]
        elif s.kind == "earn":
            amount = rng.randrange(80, 481)
            for _ in range(1000):  # (with very few customers a repeat may be unavoidable)
                if used is None or (who.member_id, amount) not in used:
                    break
                amount = rng.randrange(80, 481)
            if used is not None:
                used.add((who.member_id, amount))
            raw = text(STAFF[s.staff], f"集點 {who.member_code} {amount}", **ids)
        elif s.kind == "verify":
            raw = text(STAFF[s.staff], f"核銷 {next(codes)}", **ids)
        else:
            raw = postback(who.user_id, f"action={s.kind}", **ids)
        body = json.dumps({"destination": "U" + "f" * 32, "events": [raw]},
                          ensure_ascii=False).encode()
        events.append(Event(s.kind, raw["replyToken"], body, sign(body, SECRET), marker))
    return events


def canned_messages(tmp: Path) -> Path:
    """floor-flex's FLOOR_MESSAGES: per postback data or first word, the bot's messages for it,
    rendered from the sample data of bot/simulator/samples.py (a customer with two coupons)."""
    from bot.line import messages as m
    from bot.simulator import samples

    program = load_program(DEFAULT_PROGRAM)
    ctx = samples.context(program, "zh-TW")
    who = samples.member()
    coupons = [samples.view(program, "welcome", 1), samples.view(program, "free_drink", 2)]
    summary = samples.summary(program, who, wallet=coupons)
    used = samples.view(program, "free_drink", 2, redeemed_at=samples.NOW, status="redeemed")
    screens = {"points": m.points_card(ctx, summary), "stamps": m.stamp_card(ctx, summary),
               "wallet": m.wallet(ctx, coupons), "card": m.member_card(ctx, who, summary),
               "rewards": m.rewards_catalog(ctx, summary.balance)}
    table = {f"action={kind}": {"reply": screens[kind]} for kind in screens}
    table.update({words: {"reply": screens[kind]} for words, kind in KEYWORD_KINDS.items()})
    purchase = samples.purchase(program, coupons=0, tier_up=False)
    table["集點"] = {"reply": m.staff_purchase_recorded(ctx, who, purchase),
                   "push": m.purchase_receipt(ctx, purchase, summary.balance, [])}
    table["核銷"] = {"reply": m.staff_redemption_ok(ctx, used, who, None),
                   "push": m.customer_coupon_used(ctx, used)}
    path = tmp / "floor-messages.json"
    path.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    return path


# -- databases ----------------------------------------------------------------------------------
@dataclass
class Database:
    url: str  # gunicorn's: on PostgreSQL with APPLICATION_NAME, to find its backends
    admin_url: str  # the benchmark's own connections (seeding, coupons)
    customers: list[Customer]
    about: str  # what the database holds, for the report
    cleanup: Callable[[], None] | None = None


def schema_url(url: str, name: str) -> str:
    """What bot.db.scratch_schema returns for schema `name`, for a schema that already exists."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


def open_database(kind: str, args, tmp: Path) -> Database:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'loyalty.db'}"
        return Database(url, url, seed_customers(url, args.customers),
                        f"{args.customers} customers")
    base = normalize_database_url(args.database)
    if args.members:
        return members_database(base, args)
    url, drop = scratch_schema(base, f"bench_webhook_{os.getpid()}")
    try:
        customers = seed_customers(url, args.customers)
    except BaseException:
        drop()
        raise
    return Database(f"{url}&application_name={APPLICATION_NAME}", url, customers,
                    f"{args.customers} customers", drop)


def seed_customers(url: str, customers: int) -> list[Customer]:
    """Migrate, then join `customers` members and the staff (members too) through the loyalty
    functions, as a first message would."""
    began = time.perf_counter()
    migrate.upgrade(url)
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    now = utcnow()
    try:
        with transaction(make_sessionmaker(engine)) as session:
            members = [register_member(session, program, user_id(n), now,
                                       display_name=f"客人{n}").member
                       for n in range(1, customers + 1)]
            for member in members:  # the card a first tap or purchase starts: the figures
                active_card(session, program, member.id, now)  # are of members who have one
            add_bench_staff(session, program, now)
            chosen = [Customer(m.line_user_id, m.member_code, m.id) for m in members]
    finally:
        engine.dispose()
    print(f"  migrated and seeded {customers} customers and {len(STAFF)} staff in "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    return chosen


def add_bench_staff(session, program, now) -> None:
    for i, staff in enumerate(STAFF, 1):
        register_member(session, program, staff, now, display_name=f"店員{i}")
        add_staff(session, staff, now, name=f"店員{i}", actor="benchmark")


def issue_free_drinks(url: str, owners: list[int]) -> list[str]:
    """One free-drink coupon per member id in `owners`, for `核銷` events; their codes."""
    if not owners:
        return []
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    now = utcnow()
    try:
        with transaction(make_sessionmaker(engine)) as session:
            codes = [issue_coupon(session, program, owner, "free_drink", now,
                                  reason="benchmark").code for owner in owners]
    finally:
        engine.dispose()
    return codes


def recent_purchases(url: str) -> set[tuple[int, int]]:
    """(member id, amount) of the purchases inside the bot's REPEAT_WINDOW: a run just before
    on a reused schema made them."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sql("SELECT member_id, amount FROM purchases "
                                    "WHERE created_at >= :since"),
                                {"since": utcnow() - REPEAT_WINDOW - dt.timedelta(minutes=1)})
            return {(member, amount) for member, amount in rows}
    finally:
        engine.dispose()


def members_database(base: str, args) -> Database:
    """--members N: a schema holding benchmarks/jobs.py's N members (seeded once, then kept
    for reuse with --reuse NAME, else dropped at the end), plus the staff; customers are
    drawn from those members."""
    name = args.reuse or f"bench_webhook_members_{os.getpid()}"
    admin = make_engine(base)
    try:
        with admin.connect() as conn:
            found = conn.execute(sql("SELECT obj_description(oid, 'pg_namespace') "
                                     "FROM pg_namespace WHERE nspname = :name"),
                                 {"name": name}).first()
    finally:
        admin.dispose()
    drop = None
    if found is not None:
        try:
            note = json.loads(found[0] or "{}")
        except ValueError:
            note = {}
        if not args.reuse or note.get("members") != args.members:
            raise SystemExit(f"schema {name} exists but does not hold {args.members:,} members "
                             f"seeded by benchmarks/webhook.py (its comment: {found[0]!r}); "
                             f"drop it (DROP SCHEMA {name} CASCADE) or name another")
        url = schema_url(base, name)
        began = time.perf_counter()
        migrate.upgrade(url)  # a migration added since it was seeded
        print(f"  reusing schema {name}: {args.members:,} members seeded on {note['seeded']} "
              f"in {note['seconds']:.0f} s; migrations checked in "
              f"{time.perf_counter() - began:.1f} s", flush=True)
    else:
        url, drop = scratch_schema(base, name)
        try:
            seconds = seed_members(url, args.members)
            note = json.dumps({"members": args.members, "seconds": round(seconds, 1),
                               "seeded": time.strftime("%Y-%m-%d %H:%M")})
            engine = make_engine(url)
            try:
                with engine.begin() as conn:
                    conn.execute(sql(f"COMMENT ON SCHEMA {name} IS '{note}'"))
            finally:
                engine.dispose()
        except BaseException:
            drop()
            raise
        if args.reuse:
            print(f"  schema {name} is kept for --reuse {name}", flush=True)
            drop = None
    try:
        customers = choose_customers(url, args.customers, args.members, args.seed)
    except BaseException:
        if drop:
            drop()
        raise
    return Database(f"{url}&application_name={APPLICATION_NAME}", url, customers,
                    f"{args.members:,} members, {len(customers):,} of them sending", drop)


def seed_members(url: str, n: int) -> float:
    began = time.perf_counter()
    migrate.upgrade(url)
    print(f"  seeding {n:,} members with benchmarks/jobs.py's data (10 ledger rows, 2 "
          f"purchases, a stamp card and 3 coupons each) ...", flush=True)
    program = jobs_bench.bench_program()
    # as of today, not of the jobs benchmark's day: its coupons (one usable each, the rest
    # expired), lots and cards are then as current as the 200 customers'
    jobs_bench.seed(url, n, program, dt.datetime.now(program.timezone).date())
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            add_bench_staff(session, load_program(DEFAULT_PROGRAM), utcnow())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try:  # write the seed's pages out now, not while the events are timed
                conn.execute(sql("CHECKPOINT"))
            except Exception as exc:  # it takes a superuser (or pg_checkpoint, from 15)
                print(f"  (no CHECKPOINT: {str(exc).splitlines()[0]})")
    finally:
        engine.dispose()
    seconds = time.perf_counter() - began
    print(f"  migrated and seeded {n:,} members and {len(STAFF)} staff in {seconds:.1f} s",
          flush=True)
    return seconds


def choose_customers(url: str, count: int, members: int, seed: str) -> list[Customer]:
    """`count` of the seeded members, drawn at random (the same ones for the same --seed):
    active ones whose LINE is in zh-TW, as the replies' markers are."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sql(
                "SELECT line_user_id, member_code, id FROM members WHERE id <= :n "
                "AND status = 'active' AND language = 'zh-TW' "
                "ORDER BY md5(id::text || :seed) LIMIT :count"),
                {"n": members, "seed": seed, "count": count}).all()
    finally:
        engine.dispose()
    if not rows:
        raise SystemExit("no active zh-TW member to send events")
    return [Customer(*row) for row in rows]


# -- gunicorn -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, app: str, label: str, database_url: str, fake: Fake, workers: int,
                 tmp: Path, extra_env: dict[str, str] | None = None,
                 profile: tuple[str, Path] | None = None):
        """`profile`: (mode, folder) to run the workers under benchmarks/gunicorn_profile.py."""
        self.port = free_port()
        self.log = tmp / f"{label}.log"
        env = {**os.environ, "DATABASE_URL": database_url, "LOYALTY_PROGRAM": str(DEFAULT_PROGRAM),
               "SECRET_KEY": "benchmark", "LINE_CHANNEL_SECRET": SECRET,
               "LINE_CHANNEL_ACCESS_TOKEN": fake.access_token,
               "LINE_API_BASE_URL": fake.base_url, "LINE_OA_BASIC_ID": "@mountainmist",
               "PUBLIC_BASE_URL": "https://cafe.example", "PORT": str(self.port),
               "WEB_CONCURRENCY": str(workers), **(extra_env or {})}
        config = "bot/gunicorn_conf.py"
        if profile:
            config = "benchmarks/gunicorn_profile.py"
            env.update(BENCH_PROFILE_DIR=str(profile[1]), BENCH_PROFILE_LABEL=label,
                       BENCH_PROFILE_MODE=profile[0])
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(GUNICORN), "--config", config, app], cwd=ROOT,
                                         env=env, stdout=subprocess.DEVNULL, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        self.stop()
        raise SystemExit(f"gunicorn ({app}) did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)

    def errors(self) -> list[str]:
        words = ("ERROR", "Traceback", "WORKER TIMEOUT", "event failed", "reply failed",
                 "WARNING")
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if any(w in line for w in words)]


# -- where the CPU went: /proc, per group of processes ------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> tuple[int, float] | None:
    """(process group, user + system seconds) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the name, in parentheses, may hold spaces
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    """CPU seconds used between two snapshots by gunicorn's workers and master, the PostgreSQL
    backends serving them (found by application_name), FakeLine, this process (the senders)
    and everything else; and by the whole machine. Per process, so exits do not subtract."""

    def __init__(self, server: Gunicorn, fake: Fake, database_url: str | None) -> None:
        self.server, self.fake = server, fake
        self.engine = make_engine(database_url) if database_url else None

    def _backends(self) -> set[int]:
        if self.engine is None:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(sql("SELECT pid FROM pg_stat_activity "
                                        "WHERE application_name = :name"),
                                    {"name": APPLICATION_NAME}).scalars())

    def snapshot(self) -> dict:
        backends, master = self._backends(), self.server.proc.pid
        procs: dict[int, tuple[str, float]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or (found := _proc_cpu(int(entry.name))) is None:
                continue
            pid, (group, seconds) = int(entry.name), found
            key = ("master" if pid == master else "workers" if group == master
                   else "postgres" if pid in backends else "fakeline" if pid == self.fake.proc.pid
                   else "senders" if pid == os.getpid() else "other")
            procs[pid] = (key, seconds)
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICK  # all but idle and iowait
        return {"procs": procs, "machine": busy, "at": time.monotonic()}

    @staticmethod
    def used(before: dict, after: dict) -> dict[str, float]:
        groups: dict[str, float] = defaultdict(float)
        for pid, (key, seconds) in after["procs"].items():
            earlier = before["procs"].get(pid)
            groups[key] += seconds - (earlier[1] if earlier and earlier[0] == key else 0.0)
        groups["machine"] = after["machine"] - before["machine"]
        groups["wall"] = after["at"] - before["at"]
        return groups

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()



def _kb(path: str, key: str) -> float:
    """A `key: N kB` line of a /proc file, in kB (nan if it cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return float(line.split()[1])
    except OSError:
        pass
    return math.nan


def worker_memory(server: Gunicorn) -> list[tuple[int, float, float]]:
    """(pid, VmRSS, PSS) in MB of each live gunicorn worker. RSS counts pages shared with the
    master and the other workers in full, PSS splits them among the processes sharing them."""
    master, found = server.proc.pid, []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or (pid := int(entry.name)) == master:
            continue
        if (cpu := _proc_cpu(pid)) is not None and cpu[0] == master:
            found.append((pid, _kb(f"/proc/{pid}/status", "VmRSS:") / 1024,
                          _kb(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024))
    return found


# -- the senders --------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str  # warm-up, closed, kinds (one kind alone), fixed, count
    events: int
    workload: str = ""  # closed, fixed: the workload; kinds, count: the kind
    seconds: float = 0.0  # first POST to last reply
    latencies_ms: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # of each latency
    http_ms: list[float] = field(default_factory=list)
    lag_ms: float = 0.0  # fixed rate: the latest a POST left after its scheduled time
    bad_http: int = 0
    missing: int = 0
    extra: int = 0
    fake: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)  # CPU seconds used, per group of processes
    receipts: int | None = None  # pushes the pinned workload expects; None: not checked

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, p: float, values: list[float] | None = None) -> float:
        values = sorted(self.latencies_ms if values is None else values)
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)] if values else math.nan

    def cpu_ms(self, group: str) -> float:
        """CPU ms per event of one group of processes (workers, postgres ...)."""
        return self.cpu.get(group, 0.0) * 1000 / self.events if self.events else math.nan

    @property
    def cpu_per_event(self) -> float:
        """CPU ms per event of every process taking part (not `other`)."""
        ours = ("workers", "master", "postgres", "fakeline", "senders")
        return sum(self.cpu.get(k, 0.0) for k in ours) * 1000 / self.events

    @property
    def problems(self) -> int:
        return (self.bad_http + self.missing + self.extra + self.fake.get("wrong", 0)
                + self.fake.get("rejected", 0) + self.fake.get("failed", 0))

    def pinned_check(self) -> tuple[bool, str] | None:
        """(as pinned?, what was seen): every reply one Flex message holding its marker, one
        push of one message per receipt the workload expects. A receipt may instead ride on a
        reply (bot/outbox/replies.py: a reply to the same member that committed first takes
        what waits for them) and is then counted there."""
        if self.receipts is None or not self.fake:
            return None
        f = self.fake
        pushes, messages = f["pushes"], f["push_messages"]
        rode = f["reply_messages"] - f["replies"] * REPLY_MESSAGES
        ok = (messages == pushes * PUSH_MESSAGES and rode >= 0 and pushes + rode == self.receipts
              and not f["not_flex"])
        seen = (f"{pushes} pushes ({messages} messages) for {self.receipts} receipts pinned"
                + (f", {rode} receipts rode on a reply" if rode else "")
                + (f", {f['not_flex']} replies not Flex" if f["not_flex"] else ""))
        return ok, seen + (": as pinned" if ok else ": DIFFERS from the pinned workload")


def _post(conn: http.client.HTTPConnection, event: Event) -> int:
    try:  # X-Bench-Kind: for --profile's timers; the apps ignore it
        conn.request("POST", "/callback", body=event.body, headers={
            "Content-Type": "application/json", "X-Line-Signature": event.signature,
            "X-Bench-Kind": f"{event.phase}:{event.kind}"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()
        return -1


def send(port: int, events: list[Event], threads: int, rate: float | None
         ) -> tuple[float, list[float], list[float], list[float], list[int]]:
    """Post every event from `threads` threads: back to back, or each at start + i / rate.
    Returns the start and, per event, the send time (scheduled, for a rate), how late the POST
    left (ms), the HTTP round trip in ms and the status."""
    n = len(events)
    sent, late, http_ms, status = [0.0] * n, [0.0] * n, [0.0] * n, [0] * n
    lock, ready, start = threading.Lock(), threading.Barrier(threads + 1), [0.0]
    cursor = iter(range(n))

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ready.wait()
        time.sleep(max(0.0, start[0] - time.monotonic()))
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            if rate:
                due = start[0] + i / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                began = time.monotonic()
                sent[i], late[i] = due, (began - due) * 1000
            else:
                began = sent[i] = time.monotonic()
            status[i] = _post(conn, events[i])
            http_ms[i] = (time.monotonic() - began) * 1000
        conn.close()

    pool = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    start[0] = time.monotonic() + 0.05
    ready.wait()
    for t in pool:
        t.join()
    return start[0], sent, late, http_ms, status


def measure(name: str, server: Gunicorn, fake: Fake, meter: CpuMeter | None,
            events: list[Event], threads: int, rate: float | None, *, workload: str = "",
            pinned: bool = False) -> Phase:
    fake.reset()
    for e in events:
        e.phase = name
    cpu_before = meter.snapshot() if meter else None
    start, sent, late, http_ms, status = send(server.port, events, threads, rate)
    got = fake.wait({e.token: e.marker for e in events}, timeout=60)
    cpu = meter.used(cpu_before, meter.snapshot()) if meter else {}
    phase = Phase(name, len(events), workload, http_ms=http_ms, fake=got,
                  lag_ms=max(late, default=0.0), cpu=cpu)
    phase.receipts = sum(KINDS[e.kind].pushes for e in events) if pinned else None
    phase.bad_http = sum(s != 200 for s in status)
    arrivals = got["arrived"]
    last = start
    for i, event in enumerate(events):
        times = arrivals.get(event.token) or []
        phase.missing += not times
        phase.extra += max(0, len(times) - 1)
        if times:
            phase.latencies_ms.append((times[0] - sent[i]) * 1000)
            phase.kinds.append(event.kind)
            last = max(last, times[0])
    phase.seconds = last - start if not rate else len(events) / rate
    return phase


# -- one target ---------------------------------------------------------------------------------
@dataclass
class Result:
    target: str  # its label: floor, floor-flex, bot-sqlite, bot-postgresql
    kind: str  # floor, floor-flex, sqlite or postgresql
    about: str  # what its database held
    closed: dict[str, Phase]  # by workload
    fixed: Phase
    kinds: dict[str, Phase] = field(default_factory=dict)  # one kind of event alone, by kind
    counts: dict[str, dict[str, float]] = field(default_factory=dict)  # instrumented, by kind
    shapes: dict[str, dict[str, int]] = field(default_factory=dict)  # statements, by kind
    memory: list[tuple[int, float, float]] = field(default_factory=list)  # pid, RSS, PSS MB
    log_errors: list[str] = field(default_factory=list)
    count_problems: int = 0
    instrumented: bool = False  # --profile: the workers ran under benchmarks/gunicorn_profile

    @property
    def phases(self) -> list[Phase]:
        return [*self.closed.values(), self.fixed, *self.kinds.values()]

    @property
    def problems(self) -> int:
        return sum(p.problems for p in self.phases) + self.count_problems + len(self.log_errors)

    @property
    def other(self) -> float:
        """The share of the machine's CPU that other processes took in the closed loops."""
        timed = [*self.closed.values(), *self.kinds.values()]
        machine = sum(p.cpu.get("machine", 0.0) for p in timed)
        return sum(p.cpu.get("other", 0.0) for p in timed) / machine if machine else math.nan

    @property
    def drift(self) -> list[str]:
        """The phases whose replies or pushes were not what the pinned workload says."""
        return [f"{p.name} {p.workload}".strip() for p in self.phases
                if (check := p.pinned_check()) and not check[0]]


def run_target(target: str, fake: Fake, args, tmp: Path, workloads: list[str]) -> Result:
    rng = random.Random(f"{args.seed}:{target}")
    floor = target.startswith("floor")
    label = target if floor else f"bot-{target}"
    db, extra_env = None, {}
    if floor:
        customers = [Customer(user_id(n), "X", 0) for n in range(1, args.customers + 1)]
        url, about = "sqlite://", "no database"
        if target == "floor-flex":
            extra_env["FLOOR_MESSAGES"] = str(canned_messages(tmp))
    else:
        db = open_database(target, args, tmp)
        customers, url, about = db.customers, db.url, db.about
    try:
        n = len(customers)
        main = FIXED_WORKLOAD if FIXED_WORKLOAD in workloads else workloads[0]
        warm = plan(rng, args.warmup, WORKLOADS[main], n)
        # the floor answers every event alike (one small text, no push): one closed loop
        closed = {w: plan(rng, args.events, WORKLOADS[w], n)
                  for w in ([main] if target == "floor" else workloads)}
        kinds = [k for k in KINDS if any(k in WORKLOADS[w] for w in workloads)]
        alone = {k: plan(rng, args.kind_events, {k: 1}, n) for k in kinds
                 if target != "floor" and args.kind_events}
        fixed = plan(rng, round(args.rate * args.seconds), WORKLOADS[main], n)
        counted = {k: plan(rng, args.count_events, {k: 1}, n) for k in kinds
                   if not floor and args.count_events}
        count_warm = plan(rng, min(args.warmup, 60), WORKLOADS[main], n) if counted else []

        used = None if db is None else recent_purchases(db.admin_url)

        def events(specs: list[Spec]) -> list[Event]:
            """Built just before their phase, with fresh coupons for its `核銷` events: so
            the wallets hold only what is left of earlier phases' coupons."""
            owners = [customers[s.customer].member_id for s in specs if s.kind == "verify"]
            codes = ["X"] * len(owners) if db is None else issue_free_drinks(db.admin_url,
                                                                              owners)
            built = build(specs, customers, codes, rng, used)
            for e in built:
                e.marker = None if floor else e.marker
            return built

        app = "benchmarks.floor_app:create_app()" if floor else "bot:create_app()"
        profile = (args.profile_mode, Path(args.profile).resolve()) if args.profile else None
        server = Gunicorn(app, label, url, fake, args.workers, tmp, extra_env, profile)
        meter = CpuMeter(server, fake, url if target == "postgresql" else None)
        pinned = target != "floor"
        result = Result(label, target, about, {}, Phase("fixed", 0), instrumented=bool(profile))
        try:
            measure("warm-up", server, fake, meter, events(warm), args.concurrency, None)
            fake.checks(args.checked_throughput)  # throughput: only the bot's cost counts
            for workload, specs in closed.items():
                result.closed[workload] = c = measure(
                    "closed", server, fake, meter, events(specs), args.concurrency, None,
                    workload=workload, pinned=pinned)
                report_phase(c)
            for kind, specs in alone.items():
                result.kinds[kind] = k = measure("kinds", server, fake, meter, events(specs),
                                                 args.concurrency, None, workload=kind,
                                                 pinned=True)
                report_alone(k)
            fake.checks(True)
            result.fixed = f = measure("fixed", server, fake, meter, events(fixed),
                                       args.rate_threads, args.rate, workload=main,
                                       pinned=pinned)
            report_phase(f)
            result.memory = worker_memory(server)
        finally:
            meter.close()
            server.stop()
        result.log_errors = server.errors()
        if counted:
            count_statements(result, app, url, fake, args, tmp, events(count_warm),
                             {k: events(specs) for k, specs in counted.items()})
        return result
    finally:
        if db is not None and db.cleanup:
            db.cleanup()


def count_statements(result: Result, app: str, url: str, fake: Fake, args, tmp: Path,
                     warm: list[Event], alone: dict[str, list[Event]]) -> None:
    """Per kind of event: SQL statements, commits, rollbacks and pool pings per event, counted
    in workers of their own (benchmarks/gunicorn_profile.py, count mode), on the same database
    after the timed phases, FakeLine checking every call. Nothing here is timed."""
    directory = tmp / f"{result.target}-count"
    directory.mkdir()
    server = Gunicorn(app, f"{result.target}-count", url, fake, args.workers, tmp, None,
                      ("count", directory))
    try:
        fake.checks(True)
        phases = [measure("warm-up", server, fake, None, warm, args.concurrency, None)]
        phases += [measure("count", server, fake, None, events, args.concurrency, None,
                           workload=kind) for kind, events in alone.items()]
    finally:
        server.stop()
    result.count_problems = sum(p.problems for p in phases)
    result.log_errors += server.errors()
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    shapes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in directory.glob("*.json"):
        saved = json.loads(path.read_text())
        for key, values in saved["totals"].items():
            if key.startswith("count:"):
                for name, value in values.items():
                    counts[key.split(":", 1)[1]][name] += value
        for key, values in saved.get("shapes", {}).items():
            if key.startswith("count:"):
                for shape, value in values.items():
                    shapes[key.split(":", 1)[1]][shape] += value
    result.counts, result.shapes = counts, shapes
    print(f"  statements counted in {sum(len(e) for e in alone.values())} more events"
          + (f"; PROBLEMS: {result.count_problems}" if result.count_problems else ""),
          flush=True)


def report_phase(p: Phase) -> None:
    what = (f"closed loop, {p.workload}, {p.events} events: {p.rate:,.0f} events/s"
            if p.name == "closed"
            else f"fixed rate, {p.workload}, {p.events} events at {p.events / p.seconds:.0f}/s "
                 f"(POSTs at most {p.lag_ms:.1f} ms late)")
    print(f"  {what}; reply latency p50 {p.pct(50):.1f} ms, p90 {p.pct(90):.1f}, "
          f"p99 {p.pct(99):.1f}, max {p.pct(100):.1f}; HTTP answer p50 "
          f"{p.pct(50, p.http_ms):.1f} ms, p99 {p.pct(99, p.http_ms):.1f}; "
          f"{p.fake['pushes']} pushes; FakeLine busy {p.fake['busy']:.1f} s", flush=True)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, latency in zip(p.kinds, p.latencies_ms, strict=True):
        by_kind[kind].append(latency)
    print("    p50/p99 ms by kind: " + ", ".join(
        f"{kind} {p.pct(50, v):.0f}/{p.pct(99, v):.0f}" for kind, v in sorted(by_kind.items())))
    c = p.cpu
    per = {k: p.cpu_ms(k) for k in ("workers", "postgres", "fakeline", "senders", "master",
                                    "other")}
    print("    CPU ms per event: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
          + f"; the machine was {c['machine'] / c['wall'] / (os.cpu_count() or 1):.0%} busy",
          flush=True)
    report_notes(p)


def report_alone(p: Phase) -> None:
    print(f"  {p.workload} alone, {p.events} events: {p.rate:,.0f} events/s, worker CPU "
          f"{p.cpu_ms('workers'):.2f} ms/event, PostgreSQL {p.cpu_ms('postgres'):.2f}; "
          f"p50/p99 {p.pct(50):.0f}/{p.pct(99):.0f} ms", flush=True)
    report_notes(p)


def report_notes(p: Phase) -> None:
    c = p.cpu
    if c.get("other", 0.0) > NOISY * c["machine"]:
        print(f"    NOTE: other processes took {c['other'] / c['machine']:.0%} of the CPU used "
              f"meanwhile (PostgreSQL's and the kernel's background work counts there too); "
              f"if something else was running, the events/s and latencies are pessimistic",
              flush=True)
    if (check := p.pinned_check()) and (not check[0] or p.receipts):
        print(f"    pinned workload: {check[1]}", flush=True)
    if p.problems:
        print(f"    PROBLEMS: {p.bad_http} HTTP answers not 200, {p.missing} events without a "
              f"reply, {p.extra} extra replies, {p.fake['wrong']} replies without the expected "
              f"text, {p.fake['rejected']} FakeLine rejections, {p.fake['failed']} calls "
              f"answered >= 400", flush=True)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "MISS"


def report_target(r: Result, floor: Result | None, args, flex: Result | None = None) -> None:
    """One bot target's table: throughput per workload against the floor, latency at the fixed
    rate, and per kind of event its worker CPU (beside floor-flex's, when it ran: what sending
    that kind's messages costs any bot here), statements and pushes."""
    base = floor.closed[next(iter(floor.closed))].rate if floor else math.nan
    print(f"\n{r.target} ({r.about}), {args.workers} sync workers")
    print(f"  {'closed loop':<12}{'events/s':>9}{'vs floor':>10}  target")
    for workload, c in r.closed.items():
        target = RATIO_TARGETS.get((workload, r.kind))
        ratio = c.rate / base
        judged = f">= {target:.2f} {verdict(ratio >= target if floor else None)}" \
            if target else "reported"
        shown = f"{ratio:10.3f}" if floor else f"{'-':>10}"
        print(f"  {workload:<12}{c.rate:9.0f}{shown}  {judged}")
    f = r.fixed
    print(f"  fixed rate, {f.workload}, {args.rate:.0f} events/s: p50 {f.pct(50):.1f} ms, p99 "
          f"{f.pct(99):.1f} ms; target p99 < {P99_TARGET_MS:.0f} ms: "
          f"{verdict(f.pct(99) < P99_TARGET_MS)}")
    if r.kinds or r.counts:
        alone = next(iter(r.kinds.values()), None)
        how = "INSTRUMENTED by --profile" if r.instrumented else "uninstrumented"
        print(f"  per event, by kind: CPU ms in a closed loop of {alone.events if alone else 0} "
              f"events of that kind alone (from /proc, {how}); SQL statements counted in "
              f"{args.count_events} more, instrumented")
        flex = flex if flex is not r and flex is not None and flex.kinds else None
        if flex:
            print("  flex: floor-flex's worker CPU for the same kind (the same messages sent, "
                  "nothing else done); own: the difference, the bot's own cost")
        head = (f"  {'kind':<9}{'worker CPU':>11}  {'target':<12}"
                + (f"{'flex':>6}{'own':>6}" if flex else "")
                + f"{'PG CPU':>7}{'SQL':>7}{'commits':>8}{'pings':>6}{'pushes':>7}")
        print(head)
        for kind in r.kinds or r.counts:
            p, n = r.kinds.get(kind), r.counts.get(kind, {})
            cpu = p.cpu_ms("workers") if p else math.nan
            target = KINDS[kind].target_ms
            judged = f"<= {target:.1f} {verdict(cpu <= target)}" if target and p else "-"
            pg = f"{p.cpu_ms('postgres'):7.2f}" if p and r.kind == "postgresql" else f"{'-':>7}"
            per = n.get("n") or math.nan
            pushes = f"{p.fake['pushes'] / p.events:7.2f}" if p else f"{'-':>7}"
            least = flex.kinds[kind].cpu_ms("workers") if flex and kind in flex.kinds \
                else math.nan
            beside = f"{least:6.2f}{cpu - least:6.2f}" if flex else ""
            print(f"  {kind:<9}{cpu:11.2f}  {judged:<12}{beside}{pg}"
                  f"{n.get('sql_n', 0) / per:7.1f}"
                  f"{n.get('commit_n', 0) / per:8.2f}"
                  f"{n.get('ping_n', 0) / per:6.2f}{pushes}")
        print("  pushes: per event, each of one message; pinned: "
              + ", ".join(f"{k} {v.pushes}" for k, v in KINDS.items() if v.pushes) + ", else 0")
    if r.memory:
        rss = [m[1] for m in r.memory]
        pss = [m[2] for m in r.memory]
        print(f"  worker RSS after the run: max {max(rss):.0f} MB, sum {sum(rss):.0f} MB over "
              f"{len(rss)} workers (PSS, shared pages split: sum {sum(pss):.0f} MB)")
    drift = r.drift
    print(f"  pinned workload: {'DIFFERS in ' + ', '.join(drift) if drift else 'as pinned'}; "
          f"problems: {r.problems}")
    if args.show_statements and r.shapes:
        for kind, shapes in r.shapes.items():
            per = r.counts.get(kind, {}).get("n") or 1
            print(f"  statements per {kind} event:")
            for shape, count in sorted(shapes.items(), key=lambda item: -item[1]):
                print(f"    {count / per:5.2f}  {shape}")
    for line in r.log_errors[:5]:
        print(f"  log: {line}")
    if len(r.log_errors) > 5:
        print(f"  log: ... {len(r.log_errors) - 5} more")


def report(results: list[Result], args) -> None:
    floor = next((r for r in results if r.target == "floor"), None)
    print(f"\n{os.cpu_count()} CPUs, {args.workers} gunicorn sync workers per target; closed "
          f"loops: {args.events} events from {args.concurrency} senders, FakeLine only "
          f"recording; fixed rate: {args.rate:.0f} events/s for {args.seconds:.0f} s, FakeLine "
          f"checking. Latency: POST to reply at FakeLine, ms.")
    if floor:
        c = floor.closed[next(iter(floor.closed))]
        print(f"floor: {c.rate:.0f} events/s in its closed loop ({c.workload} events; it "
              f"answers all alike), worker CPU {c.cpu_ms('workers'):.2f} ms/event, all "
              f"processes {c.cpu_per_event:.2f}; p50/p99 {floor.fixed.pct(50):.1f}/"
              f"{floor.fixed.pct(99):.1f} ms at {args.rate:.0f}/s; other processes took "
              f"{floor.other:.0%} of the CPU used in its closed loop; problems {floor.problems}")
    flex = next((r for r in results if r.target == "floor-flex"), None)
    for r in results:
        if r.target != "floor":
            report_target(r, floor, args, flex)
    bots = [r for r in results if r.target != "floor"]
    if not bots:
        return
    print(f"\nsummary: events/s and ratio to the floor per workload (targets: postbacks >= "
          f"{RATIO_TARGETS[('postbacks', 'sqlite')]:.1f} on SQLite, >= "
          f"{RATIO_TARGETS[('postbacks', 'postgresql')]:.1f} on PostgreSQL); p99 at "
          f"{args.rate:.0f}/s < {P99_TARGET_MS:.0f} ms; worker CPU ms/event: the costliest "
          f"card screen <= {SCREEN_MS:.0f}, earn <= {PURCHASE_MS:.0f}; other: the share of the "
          f"machine's CPU other processes took in the closed loops (high: noisy figures)")
    workloads = list(dict.fromkeys(w for r in bots for w in r.closed))
    head = f"{'target':<16}" + "".join(f"{w:>10}{'ratio':>12}" for w in workloads) + (
        f"{'p50':>7}{'p99':>7}{'':5}{'screen':>8}{'':5}{'earn':>7}{'':5}{'RSS MB':>7}"
        f"{'other':>6}{'pinned':>8}{'problems':>9}")
    print(head)
    print("-" * len(head))
    for r in bots:
        row = f"{r.target:<16}"
        for w in workloads:
            c = r.closed.get(w)
            if c is None:
                row += f"{'-':>10}{'-':>12}"
                continue
            ratio = c.rate / floor.closed[next(iter(floor.closed))].rate if floor else math.nan
            target = RATIO_TARGETS.get((w, r.kind))
            mark = verdict(ratio >= target) if target and floor else ""
            row += f"{c.rate:10.0f}" + (f"{ratio:7.3f} {mark:<4}" if floor else f"{'-':>7}{'':5}")
        screens = [r.kinds[k].cpu_ms("workers") for k in SCREENS if k in r.kinds]
        screen = max(screens) if screens else math.nan
        earn = r.kinds["earn"].cpu_ms("workers") if "earn" in r.kinds else math.nan
        row += (f"{r.fixed.pct(50):7.1f}{r.fixed.pct(99):7.1f} "
                f"{verdict(r.fixed.pct(99) < P99_TARGET_MS):<4}"
                + (f"{screen:8.2f} {verdict(screen <= SCREEN_MS):<4}" if screens
                   else f"{'-':>8}{'':5}")
                + (f"{earn:7.2f} {verdict(earn <= PURCHASE_MS):<4}" if "earn" in r.kinds
                   else f"{'-':>7}{'':5}")
                + f"{max((m[1] for m in r.memory), default=math.nan):7.0f}"
                + f"{r.other:6.0%}{'DIFFERS' if r.drift else 'ok':>8}{r.problems:9d}")
        print(row)
    noisy = [r.target for r in ([floor] if floor else []) + bots if r.other > NOISY]
    if noisy:
        print(f"NOTE: other processes took over {NOISY:.0%} of the CPU in the closed loops of "
              f"{', '.join(noisy)}: their events/s are understated (a slowed floor overstates "
              f"every ratio) and CPU per event may be inflated; rerun on a quieter machine")
    if any(r.instrumented for r in bots):
        print("NOTE: --profile ran every target's workers instrumented: their CPU and events/s "
              "are slower than the bot's own")


# -- profiles -----------------------------------------------------------------------------------
AREAS = [("/bot/", "bot (our code)"), ("/sqlalchemy/", "SQLAlchemy"),
         ("/psycopg", "psycopg"), ("/pydantic/", "pydantic (LINE SDK models)"),
         ("/linebot/", "LINE SDK"), ("/urllib3/", "urllib3"), ("/requests/", "requests"),
         ("/flask/", "Flask"), ("/werkzeug/", "Werkzeug"), ("/gunicorn/", "gunicorn"),
         ("/jinja2/", "Jinja2"), ("/json/", "json"), ("/http/", "http.client"),
         ("/email/", "http.client"), ("/socket.py", "sockets")]
BUILTINS = [("sqlite3", "sqlite3 (C)"), ("psycopg", "psycopg"), ("socket", "sockets"),
            ("select", "sockets"), ("poll", "sockets"), ("json", "json")]


def _area(filename: str, function: str) -> str:
    for part, area in AREAS:
        if part in filename:
            return area
    if filename.startswith("<sqlalchemy generated"):
        return "SQLAlchemy"
    if filename == "~":  # a built-in: place it by its name
        return next((area for part, area in BUILTINS if part in function), "other built-ins")
    return "other Python (" + Path(filename).name + ")"


def print_profiles(directory: str, label: str, lines: int) -> None:
    files = sorted(Path(directory).glob(f"{label}-*.pstats"))
    if not files:
        print(f"  (no profile written for {label})")
        return
    stats = pstats.Stats(*map(str, files))
    areas: dict[str, float] = defaultdict(float)
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        own, callers = row[2], row[4]  # tottime: the function's own time
        if filename == "~" and callers:  # a built-in (isinstance, getattr ...): its callers'
            for (caller_file, _, caller_function), by_caller in callers.items():
                areas[_area(caller_file, caller_function)] += by_caller[2]
        else:
            areas[_area(filename, function)] += own
    total = sum(areas.values()) or 1.0
    print(f"\n{label}: the workers' CPU in measured requests, by where the code lives "
          f"({total:.1f} s in all):")
    rest = 0.0
    for area, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        if seconds / total < 0.005:
            rest += seconds
        else:
            print(f"  {seconds / total:6.1%}  {seconds:7.2f} s  {area}")
    print(f"  {rest / total:6.1%}  {rest:7.2f} s  everything else")
    for key in ("cumulative", "tottime"):
        print(f"\ncProfile of {label}'s workers ({len(files)} files), by {key}:")
        stats.sort_stats(key).print_stats(lines)


def print_timers(directory: str, label: str) -> None:
    """Per phase and event kind, the mean per event of what the workers measured."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    requests: list[list] = []
    for path in Path(directory).glob(f"{label}-*.json"):
        saved = json.loads(path.read_text())
        requests += saved["requests"]
        for kind, values in saved["totals"].items():
            for key, value in values.items():
                totals[kind][key] += value
    cols = [("wall_ms", "wall"), ("cpu_ms", "CPU"), ("sql_n", "SQL n"), ("sql_ms", "SQL"),
            ("commit_n", "commits"), ("commit_ms", "commit"), ("ping_ms", "ping"),
            ("reply_ms", "reply"), ("push_n", "pushes"), ("push_ms", "push"),
            ("line_http_ms", "LINE HTTP")]
    for phase in ("closed", "kinds", "fixed"):
        kinds = sorted(k for k in totals if k.startswith(phase + ":"))
        if not kinds:
            continue
        print(f"\n{label}, {phase}: per event, inside the worker (ms; n = count); "
              "`reply`/`push` are LineClient calls, `LINE HTTP` the HTTP exchange in them")
        print(f"{'kind':<9}{'events':>7}" + "".join(f"{name:>10}" for _, name in cols))
        everything: dict[str, float] = defaultdict(float)
        for kind in kinds + [None]:
            row = everything if kind is None else totals[kind]
            if kind is not None:
                for key, value in row.items():
                    everything[key] += value
            n = row["n"] or 1
            name = "all" if kind is None else kind.split(":", 1)[1]
            print(f"{name:<9}{row['n']:7.0f}"
                  + "".join(f"{row.get(key, 0.0) / n:10.2f}" for key, _ in cols))
        mine = sorted((r for r in requests if r[0].startswith(phase + ":")), key=lambda r: r[1])
        if mine:
            print("percentiles of the requests' own wall time, and what the request at that "
                  "rank spent waiting for SQLite's write lock and in LINE calls:")
            for p in (50, 90, 99, 99.9):
                kind, wall, begin, line, _ = mine[min(len(mine) - 1, int(len(mine) * p / 100))]
                print(f"  p{p:<5} {wall:7.1f} ms  write lock {begin:6.1f}  LINE {line:6.1f}  "
                      f"({kind.split(':', 1)[1]})")


# -- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, of: " + ", ".join(WORKLOADS))
    parser.add_argument("--events", type=int, default=2000,
                        help="closed-loop events per workload")
    parser.add_argument("--concurrency", type=int, default=6, help="closed-loop senders")
    parser.add_argument("--kind-events", type=int, default=300,
                        help="events of each kind alone, for its worker CPU (0: skip)")
    parser.add_argument("--count-events", type=int, default=50,
                        help="events of each kind whose SQL statements are counted (0: skip)")
    parser.add_argument("--show-statements", action="store_true",
                        help="print each kind's statements and how often each ran per event")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed-rate events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="fixed-rate duration")
    parser.add_argument("--rate-threads", type=int, default=32,
                        help="senders for the fixed rate (enough to never wait on each other)")
    parser.add_argument("--warmup", type=int, default=200, help="events before measuring")
    parser.add_argument("--checked-throughput", action="store_true",
                        help="keep FakeLine's model and limit checks in the closed loops too")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn WEB_CONCURRENCY")
    parser.add_argument("--customers", type=int,
                        help="members sending events (default 200; with --members 10,000 of "
                             "them, drawn at random)")
    parser.add_argument("--members", type=int, default=0,
                        help="PostgreSQL only: seed benchmarks/jobs.py's data for this many "
                             "members (1000000: a few minutes) and draw the customers from them")
    parser.add_argument("--reuse", metavar="SCHEMA",
                        help="with --members: keep the seeded schema under this name, and "
                             "reuse it when it already holds that many members")
    parser.add_argument("--database", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--targets", help="comma-separated, of: " + ", ".join(TARGETS)
                        + " (default: all; with --members: floor, postgresql)")
    parser.add_argument("--seed", default="webhook", help="random seed of the workload")
    parser.add_argument("--profile", metavar="DIR",
                        help="measure inside every gunicorn worker, into DIR, and print it")
    parser.add_argument("--profile-mode", choices=("timers", "cprofile"), default="timers",
                        help="timers: per event kind, time in SQL, commits and LINE calls; "
                             "cprofile: the functions, all requests together")
    parser.add_argument("--profile-lines", type=int, default=40)
    args = parser.parse_args()
    default = ("floor", "postgresql") if args.members else DEFAULT_TARGETS
    targets = [t.strip() for t in (args.targets or ",".join(default)).split(",") if t.strip()]
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not workloads or (unknown := set(workloads) - set(WORKLOADS)):
        parser.error(f"unknown workloads: {', '.join(sorted(unknown)) or '(none)'}")
    if args.members and "sqlite" in targets:
        parser.error("--members seeds PostgreSQL only: leave sqlite out of --targets")
    if args.reuse and not args.members:
        parser.error("--reuse goes with --members")
    if args.reuse and not args.reuse.replace("_", "").isalnum():
        parser.error("--reuse: a schema name of letters, digits and _")
    if args.customers is None:
        args.customers = 10_000 if args.members else 200
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    fake = Fake()
    results: list[Result] = []
    began = time.perf_counter()
    try:
        for target in targets:
            label = target if target.startswith("floor") else f"bot-{target}"
            print(f"{label}: {args.workers} sync workers", flush=True)
            results.append(run_target(target, fake, args, tmp, workloads))
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args)
    print(f"(the whole run took {time.perf_counter() - began:.0f} s)")
    if args.profile:
        for r in results:
            if args.profile_mode == "cprofile":
                print_profiles(args.profile, r.target, args.profile_lines)
            else:
                print_timers(args.profile, r.target)


if __name__ == "__main__":
    main()
