"""Instructions per webhook event, by kind: a measure that does not move with the machine.

    .venv/bin/python benchmarks/webhook_instructions.py                 # SQLite, every kind
    .venv/bin/python benchmarks/webhook_instructions.py --kinds points,earn --events 30
    .venv/bin/python benchmarks/webhook_instructions.py --database postgresql://postgres@127.0.0.1:5432/test

benchmarks/webhook.py's CPU figures come from /proc, and on a shared machine the same code
moved by a third from one run to the next. This script counts the instructions the bot's
process executes instead, under `valgrind --tool=callgrind` (on every machine here): the same
code, events and database give the same count, whatever else the machine does, so two
versions can be compared from one run of each.

The app (`bot:create_app()`, as gunicorn loads it) is called directly as a WSGI application
in one process, with webhook.py's pinned events (a fixed seed) signed as LINE signs them; its
replies and pushes go over HTTP to tests/fake_line.py's FakeLine, recording only, in a process
of its own that valgrind does not trace. Counted: everything the bot's process does for an
event (signature, JSON, SQL on the client side and, on SQLite, the database engine itself,
rendering, the limit checks, the reply and push requests); not counted: gunicorn's HTTP
parsing, FakeLine, and PostgreSQL's server processes. Startup and a warm-up of --warmup
events per kind run uninstrumented; then each kind's --events events are counted alone.

Instructions are not milliseconds (a cache miss costs more than an add): read the ratios
between two versions, and webhook.py for time. Under valgrind the process runs about 50 times
slower: the default run takes a few minutes.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import webhook as bench

KINDS = ["points", "stamps", "wallet", "card", "rewards", "keyword", "earn", "verify"]
CONTROL = r"""
#include <valgrind/callgrind.h>
void counting_on(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void counted(const char *name) { CALLGRIND_DUMP_STATS_AT(name); CALLGRIND_STOP_INSTRUMENTATION; }
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--events", type=int, default=30, help="counted per kind")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted, per kind")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a temporary file) or a PostgreSQL URL")
    parser.add_argument("--seed", default="webhook-instructions")
    parser.add_argument("--app", choices=["bot", "floor"], default="bot",
                        help="floor: benchmarks/floor_app.py (signature, JSON, one text "
                             "reply with requests) given the same events, for scale")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the folder, inside valgrind
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    if args.child:
        count(args, kinds, Path(args.child))
    else:
        run(args, kinds)


def run(args, kinds: list[str]) -> None:
    """Build the control library, run this script under callgrind, report the dumps."""
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="webhook-instructions-"))
    try:
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(work / "control.so"),
                        "-x", "c", "-"], input=CONTROL.encode(), check=True)
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={work}/callgrind.out", sys.executable,
                   __file__, "--child", str(work), *sys.argv[1:]]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts every run
        print(f"counting {args.events} events of each of {', '.join(kinds)} on "
              f"{args.database.split('://')[0]} under callgrind (minutes)"
              f"{', the floor app' if args.app == 'floor' else ''} ...", flush=True)
        done = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise SystemExit(f"the counted run failed:\n{done.stderr[-3000:]}")
        report(work, kinds, args.events)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(work: Path, kinds: list[str], events: int) -> None:
    totals = {}
    for dump in work.glob("callgrind.out*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if trigger and total:
            totals[trigger.group(1)] = int(total.group(1))
    print(f"\n{'kind':10} {'instructions/event':>20}")
    for kind in kinds:
        found = totals.get(kind)
        shown = f"{found / events / 1e6:17.2f} M" if found else "(no dump)"
        print(f"{kind:10} {shown:>20}")


def count(args, kinds: list[str], work: Path) -> None:
    """Inside valgrind: seed, warm up, then count each kind's events alone."""
    control = ctypes.CDLL(str(work / "control.so"))
    fake = bench.Fake()
    fake.checks(False)
    options = argparse.Namespace(customers=200, members=0, reuse=None,
                                 database=args.database if "://" in args.database
                                 else bench.DEFAULT_URL)
    db = bench.open_database("sqlite" if "://" not in args.database else "postgresql",
                             options, work)
    try:
        os.environ.update({
            "DATABASE_URL": db.url, "LOYALTY_PROGRAM": str(bench.DEFAULT_PROGRAM),
            "SECRET_KEY": "benchmark", "LINE_CHANNEL_SECRET": bench.SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": fake.access_token,
            "LINE_API_BASE_URL": fake.base_url, "LINE_OA_BASIC_ID": "@mountainmist",
            "PUBLIC_BASE_URL": "https://cafe.example"})
        if args.app == "floor":
            from floor_app import create_app
        else:
            from bot import create_app

        app = create_app()
        rng, used = random.Random(args.seed), set()
        for kind in kinds:
            specs = bench.plan(rng, args.warmup + args.events, {kind: 1}, len(db.customers))
            codes = bench.issue_free_drinks(db.admin_url, [db.customers[s.customer].member_id
                                                           for s in specs if s.kind == "verify"])
            events = bench.build(specs, db.customers, codes, rng, used)
            for event in events[:args.warmup]:
                post(app, event)
            control.counting_on()
            for event in events[args.warmup:]:
                post(app, event)
            control.counted(kind.encode())
    finally:
        fake.stop()
        if db.cleanup:
            db.cleanup()


def post(app, event) -> None:
    """One signed webhook POST, as gunicorn hands it to the app; anything but 200 stops."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/callback", "SERVER_NAME": "bench",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(event.body), "CONTENT_LENGTH": str(len(event.body)),
               "CONTENT_TYPE": "application/json", "HTTP_X_LINE_SIGNATURE": event.signature,
               "wsgi.errors": sys.stderr}
    status = []
    b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    if not status[0].startswith("200"):
        raise SystemExit(f"{event.kind}: the webhook answered {status[0]}")


if __name__ == "__main__":
    main()
