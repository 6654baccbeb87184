"""Pushes are delivered once, whatever LINE answers; QR images are served only for our own
opaque tokens."""

from __future__ import annotations

import base64
import io
from urllib.parse import unquote

import pytest
from itsdangerous import URLSafeSerializer
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from bot.db import transaction
from bot.line.client import LineClient
from bot.line.qr import coupon_payload, member_payload, qr_url
from bot.loyalty.members import register_member, unfollow
from bot.loyalty.timeutil import utcnow
from bot.models import Member, OutboxMessage
from bot.outbox import deliver, deliver_queued, enqueue, queued_in
from bot.privacy import ref
from tests.line_helpers import user_id

ALICE = user_id(1)
HELLO = [{"type": "text", "text": "謝謝光臨"}]


def queue(app, key="receipt:1"):
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = register_member(session, state.program, ALICE, utcnow()).member
        row = enqueue(session, member, "receipt", key, HELLO, utcnow())
        session.flush()
        return row.id if row else None


def send(app, row_id):
    state = app.extensions["loyalty"]
    return deliver(state.sessions, LineClient(state.config), [row_id], utcnow())


def status(app, row_id):
    with app.extensions["loyalty"].sessions() as session:
        row = session.get(OutboxMessage, row_id)
        return row.status, row.attempts


def test_a_push_is_queued_once_per_dedupe_key(app):
    assert queue(app) is not None
    assert queue(app) is None


def test_a_push_is_delivered_with_its_retry_key(app, fake_line):
    row = queue(app)
    assert send(app, row) == 1
    [call] = fake_line.calls_to("/message/push")
    with app.extensions["loyalty"].sessions() as session:
        assert call.headers["X-Line-Retry-Key"] == session.get(OutboxMessage, row).retry_key
    assert status(app, row) == ("sent", 1)
    assert send(app, row) == 0 and len(fake_line.pushes()) == 1


def test_a_server_error_is_retried_later_with_the_same_key_and_delivered_once(app, fake_line):
    row = queue(app)
    fake_line.fail_next("/message/push", 500)
    assert send(app, row) == 0
    assert status(app, row) == ("pending", 1)
    assert send(app, row) == 1
    assert len(fake_line.messages_to(ALICE)) == 1
    keys = {c.headers["X-Line-Retry-Key"] for c in fake_line.calls_to("/message/push")}
    assert len(keys) == 1


def test_a_timeout_after_line_accepted_is_not_delivered_twice(app, fake_line):
    import bot.line.client as client_module

    row = queue(app)
    fake_line.delay_next("/message/push", 0.5)
    original = client_module.TIMEOUT
    client_module.TIMEOUT = (1, 0.2)
    try:
        assert send(app, row) == 0  # timed out: fate unknown
    finally:
        client_module.TIMEOUT = original
    fake_line.wait_for(lambda: fake_line.messages_to(ALICE))
    assert send(app, row) == 1  # 409 for the same key: counted as delivered
    assert len(fake_line.messages_to(ALICE)) == 1
    assert status(app, row)[0] == "sent"


def test_a_client_error_is_recorded_as_failed_and_not_retried(app, fake_line):
    row = queue(app)
    fake_line.fail_next("/message/push", 400)
    send(app, row)
    assert status(app, row) == ("failed", 1)


def test_a_push_delivered_right_after_its_commit_is_not_read_back_and_shown_once(app, fake_line):
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = register_member(session, state.program, ALICE, utcnow()).member
        row = enqueue(session, member, "receipt", "receipt:1", HELLO, utcnow())
        rows = queued_in(session)
    client = LineClient(state.config)
    assert deliver(state.sessions, client, [row.id], utcnow()) == 1  # the sender job won
    assert deliver_queued(state.sessions, client, rows, utcnow()) == 1  # 409: delivered
    assert len(fake_line.messages_to(ALICE)) == 1
    assert status(app, row.id) == ("sent", 1)


def test_a_link_of_a_pos_record_obeys_the_receipts_setting_like_every_receipt(
        client, app, fake_line):
    """One rule for every push that reports a change: with receipts off, nothing is pushed."""
    import dataclasses
    import io

    from bot.loyalty.import_file import read_csv
    from bot.loyalty.member_import import import_members
    from bot.loyalty.staff import add_staff
    from tests.line_helpers import follow, post, text

    state = app.extensions["loyalty"]
    state.program = dataclasses.replace(state.program, receipts=False)
    clerk = user_id(9)
    post(client, [follow(ALICE), follow(clerk)])
    with transaction(state.sessions) as session:
        add_staff(session, clerk, utcnow(), name="Amy", actor="test")
        code = session.scalars(select(Member.member_code).where(
            Member.line_user_id == ALICE)).one()
    with state.sessions() as session:
        import_members(session, state.program, read_csv(io.StringIO(
            "phone,name,birthday,points,external_id\n0933111222,Old Alice,,40,P1\n")),
            utcnow(), commit=session.commit)
    post(client, [text(clerk, f"綁定 {code} 0933111222")])
    assert "40" in str(fake_line.replies()[-1]["messages"])  # the link was made
    with state.sessions() as session:
        assert session.scalars(select(OutboxMessage)).all() == []
    assert fake_line.pushes() == []


def test_a_push_queued_again_under_its_dedupe_key_keeps_the_first_row(app):
    first = queue(app)
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        member = register_member(session, state.program, ALICE, utcnow()).member
        assert enqueue(session, member, "receipt", "receipt:1", [{"type": "text", "text": "x"}],
                       utcnow()) is None
        assert session.get(OutboxMessage, first).payload == {"messages": HELLO}


def test_a_member_who_blocked_the_account_is_skipped(app, fake_line):
    row = queue(app)
    with transaction(app.extensions["loyalty"].sessions) as session:
        unfollow(session, ALICE, utcnow())
    send(app, row)
    assert status(app, row)[0] == "skipped" and fake_line.pushes() == []


def test_qr_payloads_open_the_chat_with_the_command_typed():
    assert coupon_payload("@cafe", "7KQ2M9XHF") == \
        "https://line.me/R/oaMessage/%40cafe/?%E6%A0%B8%E9%8A%B7%207KQ2M9XHF"
    assert unquote(member_payload("@cafe", "ABC").split("?")[1]) == "集點 ABC "
    assert coupon_payload("", "7KQ2M9XHF") == "核銷 7KQ2M9XHF"


def test_a_qr_url_serves_a_cacheable_png_and_a_forged_one_is_404(client, app):
    url = qr_url("test-key", "https://cafe.example", "核銷 7KQ2M9XHF")
    path = url.removeprefix("https://cafe.example")
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "max-age" in response.headers["Cache-Control"]
    assert Image.open(io.BytesIO(response.data)).size[0] > 100
    assert client.get(path.replace(".png", "x.png")).status_code == 404
    forged = qr_url("another-key", "https://cafe.example", "核銷 7KQ2M9XHF")
    assert client.get(forged.removeprefix("https://cafe.example")).status_code == 404


def test_a_qr_url_does_not_reveal_its_code_even_decoded(client):
    url = qr_url("test-key", "https://cafe.example", coupon_payload("@cafe", "7KQ2M9XHF"))
    token = url.removeprefix("https://cafe.example/qr/").removesuffix(".png")
    readable = base64.urlsafe_b64decode(token[1:] + "=" * (-len(token[1:]) % 4))
    assert b"7KQ2M9XHF" not in readable and "7KQ2M9XHF" not in url
    assert url == qr_url("test-key", "https://cafe.example",  # LINE caches it by URL
                         coupon_payload("@cafe", "7KQ2M9XHF"))
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert client.get(f"/qr/{tampered}.png").status_code == 404
    assert client.get(f"/qr/q{'A' * 5000}.png").status_code == 404


def test_a_qr_url_of_the_earlier_signed_kind_still_shows_its_image(client):
    """Customers' chats hold cards made before QR tokens were encrypted."""
    old = URLSafeSerializer("test-key", salt="qr-image").dumps("核銷 7KQ2M9XHF")
    response = client.get(f"/qr/{old}.png")
    assert response.status_code == 200 and response.mimetype == "image/png"


def test_staff_commands_in_the_cli_add_list_invite_and_remove(app, fake_line):
    runner = app.test_cli_runner()
    clerk = user_id(9)
    assert runner.invoke(args=["staff", "add", "not-an-id"]).exit_code != 0
    added = runner.invoke(args=["staff", "add", clerk, "--name", "阿明"])
    assert added.exit_code == 0 and "richmenu deploy" in added.output  # no menu live yet
    assert runner.invoke(args=["richmenu", "deploy"]).exit_code == 0
    assert runner.invoke(args=["staff", "add", user_id(8)]).output.endswith("linked\n")
    assert fake_line.user_rich_menus[user_id(8)]
    assert "阿明" in runner.invoke(args=["staff", "list"]).output
    assert "員工" in runner.invoke(args=["staff", "invite", "--name", "小華"]).output
    result = runner.invoke(args=["staff", "remove", clerk])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(args=["staff", "list"]).output
    assert clerk not in listed and user_id(8) in listed
    assert fake_line.calls_to(f"/user/{clerk}/richmenu", "DELETE")
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalars(select(OutboxMessage)).all() == []


def test_a_failed_push_is_logged_without_the_customers_line_id(app, fake_line, caplog):
    row = queue(app)
    fake_line.fail_next("/message/push", 400)
    send(app, row)
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed and not any(ALICE in line for line in failed)
    assert ref(ALICE) in failed[0]


def test_a_failed_statement_names_it_but_not_its_values(engine):
    secret = "U-secret-line-id-0912345678"
    with pytest.raises(DBAPIError) as failed, engine.begin() as conn:
        conn.execute(text("INSERT INTO processed_events (event_id, event_type, processed_at) "
                          "VALUES (:a, :b, NULL)"), {"a": secret, "b": "x"})
    assert "processed_events" in str(failed.value) and secret not in str(failed.value)
