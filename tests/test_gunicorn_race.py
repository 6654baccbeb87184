"""30 staff phones send `核銷 CODE` for one coupon at once, to gunicorn with several workers
on PostgreSQL: exactly one succeeds, 29 hear "already used", the customer hears once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.config import DEFAULT_PROGRAM
from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.members import register_member
from bot.loyalty.staff import add_staff
from bot.loyalty.timeutil import utcnow
from bot.models import Coupon, Redemption
from tests.conftest import _empty_postgresql
from tests.line_helpers import CHANNEL_SECRET, sign, text, user_id

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER, CLERK = user_id(1), user_id(9)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The gunicorn command (.venv/bin/gunicorn) after importing, in the master, the libraries each
# worker imports (LINE's SDK alone takes 1.6 s): four workers importing them at once on two
# cores took 7 to 9 s to answer, now about 3. Each worker still builds its own app
# (`bot:create_app()`, its engine and LINE client) after the fork.
LIBRARIES = ("flask", "sqlalchemy.orm", "psycopg", "linebot.v3.messaging", "linebot.v3.webhooks")
GUNICORN = (f"import sys, {', '.join(LIBRARIES)}; from gunicorn.app.wsgiapp import run; "
            "sys.argv[0] = 'gunicorn'; sys.exit(run())")


@pytest.fixture
def gunicorn(pg_url, fake_line, tmp_path):
    _empty_postgresql(pg_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg_url, "LOYALTY_PROGRAM": str(DEFAULT_PROGRAM),
           "SECRET_KEY": "race", "LINE_CHANNEL_SECRET": CHANNEL_SECRET,
           "PUBLIC_BASE_URL": "https://cafe.example",
           "LINE_CHANNEL_ACCESS_TOKEN": fake_line.access_token,
           "LINE_API_BASE_URL": fake_line.base_url, "LINE_OA_BASIC_ID": "@mountainmist",
           "PORT": str(port), "WEB_CONCURRENCY": "4",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", GUNICORN, "--config", "bot/gunicorn_conf.py",
                             "--threads", "4", "bot:create_app()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail(f"gunicorn did not start: {proc.stderr.read1().decode()}")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_thirty_simultaneous_verifications_of_one_code_succeed_once(gunicorn, pg_url, fake_line):
    engine = make_engine(pg_url)
    program_sessions = make_sessionmaker(engine)
    from bot.program import load_program

    program = load_program(DEFAULT_PROGRAM)
    with transaction(program_sessions) as session:
        register_member(session, program, CUSTOMER, utcnow())
        add_staff(session, CLERK, utcnow(), name="阿明", actor="test")
        code = session.scalars(select(Coupon.code)).one()
    bodies = [json.dumps({"destination": "U0", "events": [text(CLERK, f"核銷 {code}")]}).encode()
              for _ in range(30)]
    barrier, statuses = threading.Barrier(30), []

    def send(body: bytes) -> None:
        barrier.wait()
        statuses.append(requests.post(f"{gunicorn}/callback", data=body, timeout=30, headers={
            "X-Line-Signature": sign(body), "Content-Type": "application/json"}).status_code)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 30
    replies = [json.dumps(r["messages"], ensure_ascii=False) for r in fake_line.replies()]
    assert len(replies) == 30
    assert sum("核銷成功" in r for r in replies) == 1
    assert sum("已經使用過" in r for r in replies) == 29
    fake_line.wait_for(lambda: fake_line.messages_to(CUSTOMER))
    time.sleep(0.5)  # any second confirmation would have arrived by now
    assert len(fake_line.pushes()) == 1
    with program_sessions() as session:
        assert len(session.scalars(select(Redemption)).all()) == 1
    engine.dispose()
