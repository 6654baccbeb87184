"""A POS file uploaded through the console's import page, imported by the clock's job in a
process of its own: its rows/s and peak RSS, for files of 20,000 and 200,000 rows.

    .venv/bin/python benchmarks/console_import.py                  # SQLite in a temp folder
    .venv/bin/python benchmarks/console_import.py postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/console_import.py --rows 2000 20000   # other sizes

For each size: a fresh database (SQLite file, or a PostgreSQL schema of its own, dropped at
the end), an owner signed in through the app's own test client, the file (1 row in 1,000
repeats an earlier external id, 1 in 1,000 has a bad phone: both refused with their line)
uploaded to /admin/import as a browser sends it; then a child process, as the clock
process would, runs the `imports` job while this one reads the import's page every few
seconds and prints its progress and the child's RSS (/proc). The child's peak RSS (VmHWM,
reset to its RSS just before the job) and that RSS are printed at the end: constant memory
means the peak does not grow with the file. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot import migrate  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.bootstrap import build  # noqa: E402
from bot.config import DEFAULT_PROGRAM, Config, normalize_database_url  # noqa: E402
from bot.db import scratch_schema, transaction  # noqa: E402
from bot.jobs import JOBS, run_job  # noqa: E402
from bot.loyalty import accounts  # noqa: E402
from bot.loyalty.timeutil import utcnow  # noqa: E402

PASSWORD = "benchmark owner password"
NAMES = ("王小明", "林美玲", "Chen Wei", "陳志豪", "張淑芬", "李家豪")


def write_pos_file(path: Path, rows: int) -> None:
    """A POS export, written a row at a time (never whole in memory)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,name,birthday,points,external_id\n")
        for i in range(rows):
            external_id = i - 500 if i % 1000 == 999 else i  # a repeat: refused
            phone = f"09{i:08d}" if i % 1000 != 998 else "12345"  # not a mobile: refused
            out.write(f"{phone},{NAMES[i % len(NAMES)]}{i},19{50 + i % 50}-"
                      f"{1 + i % 12:02d}-{1 + i % 28:02d},{i % 2000},POS-{external_id:07d}\n")


def config(url: str) -> Config:
    return Config(database_url=url, program_path=str(DEFAULT_PROGRAM),
                  secret_key="benchmark-secret", public_base_url="http://127.0.0.1:5000")


def rss_mb() -> float:
    """This process's peak RSS so far (VmHWM: getrusage's ru_maxrss would count the parent's
    memory at the fork, which Linux carries over an exec)."""
    return proc_mb(os.getpid(), "VmHWM")


def clock_child(url: str, report) -> None:
    """The clock process's part: the `imports` job, and its figures."""
    rt = build(config(url)).jobs()
    # the high-water mark back to the current RSS (Linux 4.0+): importing the app's modules
    # peaks about 55 MB above where it settles, which would hide the job's own peak
    Path("/proc/self/clear_refs").write_text("5")
    before = rss_mb()
    began = time.perf_counter()
    said = run_job(rt, JOBS["imports"], utcnow())
    report.send(dict(said=said, wall=time.perf_counter() - began, before=before,
                     peak=rss_mb()))


def proc_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def signed_in_owner(app):
    with transaction(app.extensions["loyalty"].sessions) as session:
        _, token = accounts.add_account(session, "owner@bench.tw", "owner", utcnow(),
                                        actor="benchmark")
        accounts.set_password_by_link(session, token, PASSWORD, utcnow())
    browser = app.test_client()
    browser.post("/admin/login", data={"csrf_token": csrf(browser, "/admin/login"),
                                       "email": "owner@bench.tw", "password": PASSWORD})
    return browser


def csrf(browser, path: str) -> str:
    page = browser.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def run(label: str, url: str, path: Path, rows: int) -> None:
    migrate.upgrade(url)
    app = create_app(config(url))
    browser = signed_in_owner(app)
    began = time.perf_counter()
    with path.open("rb") as stream:
        answer = browser.post("/admin/import", content_type="multipart/form-data", data={
            "csrf_token": csrf(browser, "/admin/import"), "file": (stream, "pos.csv")})
    page_path = answer.headers["Location"]
    print(f"{label}: {rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) uploaded in "
          f"{time.perf_counter() - began:.1f} s -> {page_path}", flush=True)
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=clock_child, args=(url, send))
    child.start()
    samples = []
    while child.is_alive() and not receive.poll(3):
        page = browser.get(page_path, headers={"Accept-Language": "en"}).get_data(as_text=True)
        shown = re.search(r"([\d,]+) of ([\d,]+) rows done \((\d+)%\)", page)
        rss = proc_mb(child.pid)
        samples.append(rss)
        print(f"  page: {shown.group(0) if shown else 'checking the file'}; "
              f"importing process RSS {rss:.0f} MB", flush=True)
    figures = receive.recv()
    child.join()
    page = browser.get(page_path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    shown = re.search(r"([\d,]+) of ([\d,]+) rows done \((\d+)%\)", page)
    app.extensions["loyalty"].engine.dispose()
    print(f"  {figures['said']}")
    print(f"  page at the end: {shown.group(0) if shown else '?'}")
    print(f"{label} {rows:,} rows: {rows / figures['wall']:,.0f} rows/s "
          f"({figures['wall']:.0f} s); importing process peak RSS {figures['peak']:.0f} MB "
          f"({figures['before']:.0f} MB before the job; sampled while importing "
          f"{min(samples or [0]):.0f}-{max(samples or [0]):.0f} MB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postgres_url", nargs="?")
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    args = parser.parse_args()
    for rows in args.rows:
        folder = Path(tempfile.mkdtemp())
        try:
            path = folder / "pos.csv"
            write_pos_file(path, rows)
            if args.postgres_url:
                url, drop = scratch_schema(normalize_database_url(args.postgres_url),
                                           f"bench_console_import_{os.getpid()}")
                try:
                    run("PostgreSQL", url, path, rows)
                finally:
                    drop()
            else:
                run("SQLite", f"sqlite:///{folder / 'bench.db'}", path, rows)
        finally:
            shutil.rmtree(folder)


if __name__ == "__main__":
    sys.exit(main())
