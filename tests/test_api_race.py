"""Twenty POS retries of one purchase at once, to gunicorn with several workers on
PostgreSQL: one purchase, and every caller gets the same first answer."""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import func, select

from bot.config import DEFAULT_PROGRAM
from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.api_tokens import create_token
from bot.loyalty.members import register_member
from bot.loyalty.timeutil import utcnow
from bot.models import Member, Purchase
from bot.program import load_program
from tests.line_helpers import user_id
from tests.test_gunicorn_race import gunicorn  # noqa: F401  (the server fixture)

pytestmark = pytest.mark.slow


def test_concurrent_requests_with_one_idempotency_key_make_one_purchase(gunicorn, pg_url):  # noqa: F811
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        code = register_member(session, load_program(DEFAULT_PROGRAM), user_id(1),
                               utcnow()).member.member_code
        secret = create_token(session, "pos", ["purchases:write"], utcnow(), actor="test")[1]
    body = {"member": {"member_code": code}, "amount": 900, "order_id": "race-1"}
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "till-3-sale-881"}
    answers, gate = [], threading.Barrier(20)

    def post() -> None:
        gate.wait()
        reply = requests.post(f"{gunicorn}/api/v1/purchases", json=body, headers=headers,
                              timeout=30)
        answers.append((reply.status_code, reply.json()))

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(answers) == 20
        assert {status for status, _ in answers} == {201}
        assert all(answer == answers[0] for answer in answers)
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Purchase)) == 1
            assert session.scalars(select(Member)).one().points_balance == 30
    finally:
        engine.dispose()
