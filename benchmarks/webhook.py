"""Signed webhook events end to end: gunicorn + the bot on SQLite and PostgreSQL, against a floor.

    .venv/bin/python benchmarks/webhook.py                        # floor, SQLite, PostgreSQL
    .venv/bin/python benchmarks/webhook.py --targets floor,sqlite --events 500 --seconds 5
    .venv/bin/python benchmarks/webhook.py --profile /tmp/prof    # per event kind: SQL, LINE
    .venv/bin/python benchmarks/webhook.py --profile /tmp/prof --profile-mode cprofile

Every target runs under `gunicorn --config bot/gunicorn_conf.py` (sync workers, WEB_CONCURRENCY
= --workers, default 3: on 2 cores a third worker fills the CPU while another waits on the
database or on LINE) and replies to tests/fake_line.py's FakeLine, run in a process of its own
with Nagle off and its cyclic garbage collector run between phases only (it keeps every call
it receives: one full collection stalled every reply in flight for 150 ms). Targets:

  floor            benchmarks/floor_app.py: checks the signature, parses the JSON and sends one
                   small text reply with requests; no database, no SDK
  floor-flex       the same app sending the bot's own messages for each kind of event (its
                   reply, and for `集點`/`核銷` the customer's push), rendered once before the
                   run from sample data: the bot's I/O at no cost of its own, so its events/s
                   is the most any bot sending these messages could reach on this machine
  bot-sqlite       `bot:create_app()` on a SQLite file in a temporary folder
  bot-postgresql   `bot:create_app()` in a schema of its own in --database (dropped at the end)

Before gunicorn starts, the database is migrated and seeded through the loyalty functions:
--customers members (200), two staff members (also members), and one free-drink coupon per
`核銷` event to come, so every verification redeems a fresh code. Each webhook body holds one
event with its own webhookEventId and replyToken, from a customer or a staff member, mixed:

  55%  rich menu postbacks, 11% each: action=points, stamps, wallet, card, rewards
  15%  customer keywords typed in the chat: 點數, 集點卡, 優惠券, 會員卡
  20%  staff `集點 MEMBERCODE AMOUNT` (NT$80-480: a purchase, points, a stamp, a receipt push)
  10%  staff `核銷 CODE` (a coupon redeemed, a "coupon used" push to its owner)

An event's latency runs from just before its POST until its reply reached FakeLine (the
time the fake read the reply request, same monotonic clock); the webhook's own HTTP answer
does not count. Per target, after a warm-up:

  closed loop      --concurrency senders post --events events as fast as they are answered;
                   events/s = events / (last reply's arrival - first POST). FakeLine only
                   records the calls here (parses their JSON, no SDK model or LINE limit
                   checks: those cost its process more than some bots cost theirs, and the
                   two share the cores), so the throughput is the bot's against the floor's;
                   --checked-throughput keeps the checks
  fixed rate       --rate events/s for --seconds, each sent on its schedule whatever the
                   previous ones are doing; latency counts from the scheduled time; FakeLine
                   checks every call as in the tests

Per phase it prints latency percentiles, overall and by kind of event, and the CPU each
group of processes used per event (from /proc: workers, the PostgreSQL backends serving
them, FakeLine, the senders, anything else on the machine), then a table with the ratio to
the floor and the targets (end to end at least half the floor's events/s; p99 under 50 ms
at 100 events/s). It checks that every event got exactly one accepted reply with the
expected content, that FakeLine refused nothing and that the workers logged no errors or
warnings. Asserts nothing.

--profile runs the workers under benchmarks/gunicorn_profile.py (bot/gunicorn_conf.py plus
hooks; no bot code changes). Timers (the default) print, per event kind, the worker's wall
and CPU time, SQL statements and their time, commits, pool pings and the LINE calls;
cprofile prints the workers' CPU in the measured requests by library, then the top
functions. Both slow the workers down: read the proportions, not the events/s.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.fake_line lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text as sql  # noqa: E402

from bot import migrate  # noqa: E402
from bot.config import DEFAULT_PROGRAM, normalize_database_url  # noqa: E402
from bot.db import make_engine, make_sessionmaker, scratch_schema, transaction  # noqa: E402
from bot.loyalty.coupons import issue_coupon  # noqa: E402
from bot.loyalty.members import register_member  # noqa: E402
from bot.loyalty.staff import add_staff  # noqa: E402
from bot.loyalty.timeutil import utcnow  # noqa: E402
from bot.program import load_program  # noqa: E402
from tests.line_helpers import postback, sign, text, user_id  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "bench-channel-secret"
APPLICATION_NAME = "bench-webhook"  # PostgreSQL backends serving the benchmark
STAFF = [user_id(0xBE00 + i) for i in (1, 2)]
TARGETS = ("floor", "floor-flex", "sqlite", "postgresql")
RATIO_TARGET, P99_TARGET_MS = 0.5, 50.0
GUNICORN = Path(sys.executable).parent / "gunicorn"
# (share in %, label, what the reply must contain for the bot; customers read zh-TW)
MIX = [(11, "points", "我的點數"), (11, "stamps", "集點卡："), (11, "wallet", "我的優惠券"),
       (11, "card", "會員卡 "), (11, "rewards", "兌換好禮"), (15, "keyword", None),
       (20, "earn", "已記錄"), (10, "verify", "核銷成功")]
KEYWORDS = {"點數": "我的點數", "集點卡": "集點卡：", "優惠券": "我的優惠券", "會員卡": "會員卡 "}
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
            wrong = sum(1 for t, marker in markers.items() if marker and arrivals[t] and marker
                        not in json.dumps(arrivals[t][0][2], ensure_ascii=False))
            return {"arrived": {t: [a[0] for a in got if a[1] == 200]
                                for t, got in arrivals.items()},
                    "wrong": wrong, "rejected": len(self.rejections),
                    "failed": sum(c.status >= 400 for c in calls),
                    "pushes": sum(c.path == PUSH and c.status == 200 for c in calls),
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
@dataclass
class Spec:
    kind: str
    user: str
    words: str = ""  # the keyword a customer types
    arg: int = 0  # earn: the customer's index; verify: the coupon's index


@dataclass
class Event:
    kind: str
    token: str
    body: bytes
    signature: str
    marker: str | None
    phase: str = ""


def plan(rng: random.Random, n: int, customers: int, coupons: list[int]) -> list[Spec]:
    """n events in the MIX proportions, shuffled; verify events take the next coupon index."""
    kinds = [kind for share, kind, _ in MIX for _ in range(share)]
    chosen = [kinds[i % len(kinds)] for i in range(n)]
    rng.shuffle(chosen)
    specs = []
    for kind in chosen:
        customer = user_id(rng.randrange(1, customers + 1))
        if kind == "keyword":
            specs.append(Spec(kind, customer, rng.choice(list(KEYWORDS))))
        elif kind == "earn":
            specs.append(Spec(kind, rng.choice(STAFF), arg=rng.randrange(customers)))
        elif kind == "verify":
            coupons[0] += 1
            specs.append(Spec(kind, rng.choice(STAFF), arg=coupons[0] - 1))
        else:
            specs.append(Spec(kind, customer))
    return specs


def build(specs: list[Spec], member_codes: list[str], coupon_codes: list[str],
          rng: random.Random) -> list[Event]:
    markers = {kind: marker for _, kind, marker in MIX}
    events = []
    for s in specs:
        ids = {"event_id": uuid.uuid4().hex.upper()[:26]}
        if s.kind == "keyword":
            raw, marker = text(s.user, s.words, **ids), KEYWORDS[s.words]
        elif s.kind == "earn":
            raw = text(s.user, f"集點 {member_codes[s.arg]} {rng.randrange(80, 481)}", **ids)
            marker = markers[s.kind]
        elif s.kind == "verify":
            raw, marker = text(s.user, f"核銷 {coupon_codes[s.arg]}", **ids), markers[s.kind]
        else:
            raw, marker = postback(s.user, f"action={s.kind}", **ids), markers[s.kind]
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
    url: str
    cleanup: object = None


def open_database(kind: str, args, tmp: Path) -> Database:
    if kind == "sqlite":
        return Database(f"sqlite:///{tmp / 'loyalty.db'}")
    url, drop = scratch_schema(normalize_database_url(args.database),
                               f"bench_webhook_{os.getpid()}")
    return Database(f"{url}&application_name={APPLICATION_NAME}", drop)


def seed(url: str, customers: int, coupons: int) -> tuple[list[str], list[str]]:
    """Members (customers, then the staff), staff rights, and `coupons` free-drink coupons
    spread over the customers. Returns the customers' member codes and the coupon codes."""
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    now = utcnow()
    try:
        with transaction(make_sessionmaker(engine)) as session:
            members = [register_member(session, program, user_id(n), now,
                                       display_name=f"客人{n}").member
                       for n in range(1, customers + 1)]
            for i, staff in enumerate(STAFF, 1):
                register_member(session, program, staff, now, display_name=f"店員{i}")
                add_staff(session, staff, now, name=f"店員{i}", actor="benchmark")
            codes = [issue_coupon(session, program, members[i % customers].id, "free_drink",
                                  now, reason="benchmark").code for i in range(coupons)]
            member_codes = [m.member_code for m in members]
    finally:
        engine.dispose()
    return member_codes, codes


# -- gunicorn -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, app: str, label: str, database_url: str, fake: Fake, args, tmp: Path,
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.log = tmp / f"{label}.log"
        env = {**os.environ, "DATABASE_URL": database_url, "LOYALTY_PROGRAM": str(DEFAULT_PROGRAM),
               "SECRET_KEY": "benchmark", "LINE_CHANNEL_SECRET": SECRET,
               "LINE_CHANNEL_ACCESS_TOKEN": fake.access_token,
               "LINE_API_BASE_URL": fake.base_url, "LINE_OA_BASIC_ID": "@mountainmist",
               "PUBLIC_BASE_URL": "https://cafe.example", "PORT": str(self.port),
               "WEB_CONCURRENCY": str(args.workers), **(extra_env or {})}
        config = "bot/gunicorn_conf.py"
        if args.profile:
            config = "benchmarks/gunicorn_profile.py"
            env.update(BENCH_PROFILE_DIR=str(Path(args.profile).resolve()),
                       BENCH_PROFILE_LABEL=label, BENCH_PROFILE_MODE=args.profile_mode)
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


# -- the senders --------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    events: int
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

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def pct(self, p: float, values: list[float] | None = None) -> float:
        values = sorted(self.latencies_ms if values is None else values)
        return values[max(0, math.ceil(p / 100 * len(values)) - 1)] if values else math.nan

    @property
    def cpu_per_event(self) -> float:
        """CPU ms per event of every process taking part (not `other`)."""
        ours = ("workers", "master", "postgres", "fakeline", "senders")
        return sum(self.cpu.get(k, 0.0) for k in ours) * 1000 / self.events

    @property
    def problems(self) -> int:
        return (self.bad_http + self.missing + self.extra + self.fake.get("wrong", 0)
                + self.fake.get("rejected", 0) + self.fake.get("failed", 0))


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


def measure(name: str, server: Gunicorn, fake: Fake, meter: CpuMeter, events: list[Event],
            threads: int, rate: float | None) -> Phase:
    fake.reset()
    for e in events:
        e.phase = name
    cpu_before = meter.snapshot()
    start, sent, late, http_ms, status = send(server.port, events, threads, rate)
    got = fake.wait({e.token: e.marker for e in events}, timeout=60)
    cpu = meter.used(cpu_before, meter.snapshot())
    phase = Phase(name, len(events), http_ms=http_ms, fake=got, lag_ms=max(late), cpu=cpu)
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
    target: str
    closed: Phase
    fixed: Phase
    log_errors: list[str]


def run_target(target: str, fake: Fake, args, tmp: Path) -> Result:
    rng = random.Random(f"{args.seed}:{target}")
    n_fixed = round(args.rate * args.seconds)
    coupons = [0]
    specs = [plan(rng, n, args.customers, coupons) for n in (args.warmup, args.events, n_fixed)]
    db, floor, extra_env = None, target.startswith("floor"), {}
    if floor:
        member_codes, coupon_codes, url = ["X"] * args.customers, ["X"] * coupons[0], "sqlite://"
        if target == "floor-flex":
            extra_env["FLOOR_MESSAGES"] = str(canned_messages(tmp))
    else:
        db = open_database(target, args, tmp)
        url = db.url
    try:
        if db is not None:
            began = time.perf_counter()
            migrate.upgrade(url)
            member_codes, coupon_codes = seed(url, args.customers, coupons[0])
            print(f"  migrated and seeded {args.customers} customers, {len(STAFF)} staff and "
                  f"{coupons[0]} coupons in {time.perf_counter() - began:.1f} s", flush=True)
        warmup, closed, fixed = (build(s, member_codes, coupon_codes, rng) for s in specs)
        if floor:
            for e in warmup + closed + fixed:
                e.marker = None
        app = "benchmarks.floor_app:create_app()" if floor else "bot:create_app()"
        label = target if floor else f"bot-{target}"
        server = Gunicorn(app, label, url, fake, args, tmp, extra_env)
        meter = CpuMeter(server, fake, url if target == "postgresql" else None)
        try:
            measure("warm-up", server, fake, meter, warmup, args.concurrency, None)
            fake.checks(args.checked_throughput)  # throughput: only the bot's cost counts
            c = measure("closed", server, fake, meter, closed, args.concurrency, None)
            fake.checks(True)
            report_phase(c)
            f = measure("fixed", server, fake, meter, fixed, args.rate_threads, args.rate)
            report_phase(f)
        finally:
            meter.close()
            server.stop()
        return Result(label, c, f, server.errors())
    finally:
        if db is not None and db.cleanup:
            db.cleanup()


def report_phase(p: Phase) -> None:
    what = (f"closed loop, {p.events} events: {p.rate:,.0f} events/s" if p.name == "closed"
            else f"fixed rate, {p.events} events at {p.events / p.seconds:.0f}/s (POSTs at most "
                 f"{p.lag_ms:.1f} ms late)")
    print(f"  {what}; reply latency p50 {p.pct(50):.1f} ms, p90 {p.pct(90):.1f}, "
          f"p99 {p.pct(99):.1f}, max {p.pct(100):.1f}; HTTP answer p50 "
          f"{p.pct(50, p.http_ms):.1f} ms, p99 {p.pct(99, p.http_ms):.1f}; "
          f"{p.fake['pushes']} pushes; FakeLine busy {p.fake['busy']:.1f} s", flush=True)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, latency in zip(p.kinds, p.latencies_ms, strict=True):
        by_kind[kind].append(latency)
    print("  p50/p99 ms by kind: " + ", ".join(
        f"{kind} {p.pct(50, v):.0f}/{p.pct(99, v):.0f}" for kind, v in sorted(by_kind.items())))
    c = p.cpu
    per = {k: c.get(k, 0.0) * 1000 / p.events for k in ("workers", "postgres", "fakeline",
                                                         "senders", "master", "other")}
    print("  CPU ms per event: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items())
          + f"; the machine was {c['machine'] / c['wall'] / (os.cpu_count() or 1):.0%} busy",
          flush=True)
    if c.get("other", 0.0) > 0.15 * c["machine"]:
        print(f"  NOTE: other processes took {c['other'] / c['machine']:.0%} of the CPU used "
              f"meanwhile (PostgreSQL's and the kernel's background work counts there too); "
              f"if something else was running, these figures are pessimistic", flush=True)
    if p.problems:
        print(f"  PROBLEMS: {p.bad_http} HTTP answers not 200, {p.missing} events without a "
              f"reply, {p.extra} extra replies, {p.fake['wrong']} replies without the expected "
              f"text, {p.fake['rejected']} FakeLine rejections, {p.fake['failed']} calls "
              f"answered >= 400", flush=True)


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
    for phase in ("closed", "fixed"):
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
    parser.add_argument("--events", type=int, default=2000, help="closed-loop events")
    parser.add_argument("--concurrency", type=int, default=6, help="closed-loop senders")
    parser.add_argument("--rate", type=float, default=100.0, help="fixed-rate events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="fixed-rate duration")
    parser.add_argument("--rate-threads", type=int, default=32,
                        help="senders for the fixed rate (enough to never wait on each other)")
    parser.add_argument("--warmup", type=int, default=200, help="events before measuring")
    parser.add_argument("--checked-throughput", action="store_true",
                        help="keep FakeLine's model and limit checks in the closed loop too")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn WEB_CONCURRENCY")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--database", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated, of: " + ", ".join(TARGETS))
    parser.add_argument("--seed", default="webhook", help="random seed of the workload")
    parser.add_argument("--profile", metavar="DIR",
                        help="measure inside every gunicorn worker, into DIR, and print it")
    parser.add_argument("--profile-mode", choices=("timers", "cprofile"), default="timers",
                        help="timers: per event kind, time in SQL, commits and LINE calls; "
                             "cprofile: the functions, all requests together")
    parser.add_argument("--profile-lines", type=int, default=40)
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    fake = Fake()
    results: list[Result] = []
    try:
        for target in targets:
            label = target if target.startswith("floor") else f"bot-{target}"
            print(f"{label}: {args.workers} sync workers", flush=True)
            results.append(run_target(target, fake, args, tmp))
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args)
    if args.profile:
        for r in results:
            if args.profile_mode == "cprofile":
                print_profiles(args.profile, r.target, args.profile_lines)
            else:
                print_timers(args.profile, r.target)


def report(results: list[Result], args) -> None:
    floor = next((r for r in results if r.target == "floor"), None)
    print(f"\n{os.cpu_count()} CPUs, {args.workers} gunicorn sync workers per target; closed "
          f"loop: {args.events} events from {args.concurrency} senders; fixed rate: "
          f"{args.rate:.0f} events/s for {args.seconds:.0f} s. Latency: POST to reply at "
          f"FakeLine, ms. CPU/ev: CPU ms per event (closed loop) of the workers, PostgreSQL, "
          f"FakeLine and the senders together.")
    print(f"targets: events/s at least {RATIO_TARGET:.0%} of the floor's; p99 under "
          f"{P99_TARGET_MS:.0f} ms at {args.rate:.0f} events/s")
    head = (f"{'target':<16}{'events/s':>9}{'p50':>7}{'p99':>7}{'CPU/ev':>8} |{'p50@rate':>9}"
            f"{'p99@rate':>9} |{'vs floor':>9}  {'ratio':<6}{'p99':<6}{'problems':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        c, f = r.closed, r.fixed
        baseline = r.target.startswith("floor")
        ratio = c.rate / floor.closed.rate if floor else math.nan
        ratio_ok = "-" if baseline or not floor else "met" if ratio >= RATIO_TARGET else "MISS"
        p99_ok = "-" if baseline else "met" if f.pct(99) < P99_TARGET_MS else "MISS"
        problems = c.problems + f.problems + len(r.log_errors)
        print(f"{r.target:<16}{c.rate:9.0f}{c.pct(50):7.1f}{c.pct(99):7.1f}"
              f"{c.cpu_per_event:8.1f} |{f.pct(50):9.1f}{f.pct(99):9.1f} |{ratio:9.2f}  "
              f"{ratio_ok:<6}{p99_ok:<6}{problems:8d}")
    for r in results:
        for line in r.log_errors[:5]:
            print(f"{r.target} log: {line}")
        if len(r.log_errors) > 5:
            print(f"{r.target} log: ... {len(r.log_errors) - 5} more")


if __name__ == "__main__":
    main()
