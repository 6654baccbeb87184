"""What the live program's version check costs a webhook event.

    .venv/bin/python benchmarks/program_check.py [--database URL] [--accesses 40]

Each request pins the version in force (bot.bootstrap.Runtime.pin, a context variable) and
its handlers read `runtime.program` many times; at most every 2 s a process also looks for
a newer version (one indexed query). This prints the cost of each, and what they add to one
event that reads the program --accesses times, beside the worker CPU an event costs today
(about 2-6 ms, see README's Speed). A per-call cost under a microsecond is no slowdown.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bot.bootstrap import CHECK_EVERY, build
from bot.config import DEFAULT_PROGRAM, Config
from bot.loyalty import programs
from bot.migrate import upgrade


def per_call(fn, n: int) -> float:
    """Seconds per call of fn, the best of 5 rounds of n calls."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument("--accesses", type=int, default=40,
                        help="reads of runtime.program per event (the handlers' own)")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    rt = build(Config(database_url=url, program_path=str(DEFAULT_PROGRAM), secret_key="b"))
    try:
        read = per_call(lambda: rt.program, 200_000)

        def request() -> None:
            token = rt.pin()
            for _ in range(args.accesses):
                rt.program  # noqa: B018  (a handler's read)
            rt.unpin(token)

        pinned = per_call(request, 20_000)
        with rt.sessions() as session:
            lookup = per_call(lambda: programs.current_number(session), 500)
        print(f"database: {url.split('://')[0]}, program version {rt.program.version}")
        print(f"runtime.program, unpinned (a clock look, no query): {read * 1e9:8.0f} ns")
        print(f"one request: pin, {args.accesses} reads, unpin:      "
              f"{pinned * 1e6:8.2f} us")
        print(f"the version lookup (every {CHECK_EVERY:g} s per process):   "
              f"{lookup * 1e3:8.3f} ms")
        share = lookup / CHECK_EVERY / 100  # spread over the events of 2 s at 100 events/s
        print(f"per event at 100 events/s, all of it:               "
              f"{(pinned + share) * 1e6:8.2f} us")
    finally:
        rt.close()


if __name__ == "__main__":
    main()
