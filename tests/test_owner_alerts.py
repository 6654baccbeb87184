"""The owner's alerts: a stopped clock, the month's allowance nearly used, webhooks failing
and a clock job failing are on every console page; an owner who linked their LINE chat gets
one message a day at most listing them, through the outbox and billed like any push."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import func, select, update

from bot import scheduler
from bot.db import transaction
from bot.jobs import JOBS, Job, run_job
from bot.line import handlers, messages
from bot.loyalty import accounts
from bot.loyalty.members import register_member
from bot.loyalty.timeutil import utcnow
from bot.models import ConsoleAccount, JobRun, OutboxMessage, WebhookFailure
from bot.outbox.sender import month_sent
from tests import test_console as console_tests
from tests.line_helpers import follow, post, text, user_id
from tests.test_console import PASSWORD, csrf, sign_in
from tests.test_jobs import make_runtime

quick_hashes = console_tests.quick_hashes  # quick password hashes for the sign-ins
OWNER_LINE = user_id(9)


def account(app, email: str, role: str) -> None:
    with transaction(app.extensions["loyalty"].sessions) as session:
        _, token = accounts.add_account(session, email, role, utcnow(), actor="test")
        accounts.set_password_by_link(session, token, PASSWORD, utcnow())


@pytest.fixture
def owner(app):
    """The owner signed in (a test client), the clock having run a minute ago."""
    account(app, "owner@cafe.tw", "owner")
    browser = app.test_client()
    assert sign_in(browser, "owner@cafe.tw").status_code == 302
    clock_ran(app, utcnow() - dt.timedelta(minutes=1))
    return browser


def clock_ran(app, at: dt.datetime, job: str = "tags") -> None:
    rt = app.extensions["loyalty"]
    run_job(make_runtime(rt.sessions, rt.program, rt.config), JOBS[job], at)


def banner(browser, path: str = "/admin/") -> list[str]:
    page = browser.get(path).get_data(as_text=True)
    block = re.search(r"<div class=\"alerts\"[^>]*>(.*?)</div>", page, re.S)
    return re.findall(r"<p>(.*?)</p>", block.group(1)) if block else []


def test_a_stopped_clock_is_on_every_page_and_healthz_says_how_long(app, owner):
    assert banner(owner) == []
    # the clock stops: its last run is now 20 minutes old
    with transaction(app.extensions["loyalty"].sessions) as session:
        session.execute(update(JobRun).values(
            last_completed_at=utcnow() - dt.timedelta(minutes=20)))
    for path in ("/admin/", "/admin/members", "/admin/campaigns", "/admin/clock"):
        assert banner(owner, path) == [
            "排程已經 20 分鐘沒有執行：推播、活動與到期處理都停了。請檢查 clock 程序。"], path
    assert app.test_client().get("/healthz").get_json()["clock_last_ran_seconds_ago"] >= 1200
    clock_ran(app, utcnow())  # it runs again
    assert banner(owner) == []


def test_a_clock_that_never_ran_is_said_and_the_signed_out_see_nothing(app):
    account(app, "owner@cafe.tw", "owner")
    browser = app.test_client()
    assert banner(browser, "/admin/login") == []
    sign_in(browser, "owner@cafe.tw")
    assert banner(browser)[0].startswith("排程（clock）從未執行")


def test_the_allowance_nearly_used_is_said_with_its_figures(app, owner):
    rt = app.extensions["loyalty"]
    rt.program = dataclasses.replace(rt.program, monthly_push_budget=20)
    sent(rt, 17)
    assert banner(owner) == []  # 85%
    sent(rt, 1)
    assert banner(owner) == ["本月 LINE 訊息額度已用 90%（18／20 則）。"]


def sent(rt, pushes: int) -> None:
    """`pushes` billed pushes this month, as the sender records them."""
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, f"U-sent-{utcnow().timestamp()}",
                                 utcnow()).member
        for n in range(pushes):
            session.add(OutboxMessage(
                member_id=member.id, line_user_id=member.line_user_id, kind="receipt",
                dedupe_key=f"t:{member.id}:{n}", payload={"messages": []},
                retry_key=f"k-{member.id}-{n}", created_at=utcnow(), status="sent",
                sent_at=utcnow(), via="push", attempts=1, last_error=""))


def test_a_webhook_event_that_fails_is_counted_and_said(app, owner, client, monkeypatch):
    def broken(session, env, event):
        raise RuntimeError("a bug in a handler")
    monkeypatch.setitem(handlers.HANDLERS, "message", broken)
    assert post(client, [text(user_id(1), "點數")]).status_code == 200
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookFailure)) == 1
    assert banner(owner) == ["最近一小時有 1 個 LINE 事件處理失敗（最後一次：lost: "
                             "RuntimeError: a bug in a handler）。"]


def test_a_failed_job_is_said_until_it_completes_again(app, owner):
    rt = app.extensions["loyalty"]

    def broken(rt, since, now):
        raise ValueError("the tags went missing")
    scheduler.run_safely(rt, Job("tags", {"hour": 2}, broken, "tags"))
    assert banner(owner) == ["排程工作「tags」上次執行失敗：ValueError: the tags went missing"]
    scheduler.run_safely(rt, JOBS["tags"])
    assert banner(owner) == []


def link(owner) -> str:
    page = owner.post("/admin/alerts", data={"csrf_token": csrf(owner, "/admin/alerts"),
                                             "action": "link"}).get_data(as_text=True)
    return re.search(r"店主 ([0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3})", page).group(1)


def test_an_owner_links_their_line_and_gets_one_alert_message_a_day(app, owner, client,
                                                                    fake_line):
    rt = app.extensions["loyalty"]
    assert "還沒有連結 LINE" in owner.get("/admin/alerts").get_data(as_text=True)
    post(client, [follow(OWNER_LINE)])
    post(client, [text(OWNER_LINE, "店主 AAA-BBB-CCC")])
    assert "連結碼無效或已過期" in fake_line.replies()[-1]["messages"][0]["text"]
    replies = len(fake_line.replies())
    post(client, [text(OWNER_LINE, "店主 你好")])  # the word alone is a customer's, not a command
    assert all("連結碼" not in r["messages"][0].get("text", "")
               for r in fake_line.replies()[replies:])
    post(client, [text(OWNER_LINE, f"店主 {link(owner)}")])
    assert "已連結店家後台" in fake_line.replies()[-1]["messages"][0]["text"]
    assert "已連結：" in owner.get("/admin/alerts").get_data(as_text=True)
    clock = make_runtime(rt.sessions, rt.program, rt.config)
    now = utcnow().astimezone(rt.program.timezone).replace(hour=12).astimezone(dt.UTC)
    assert run_job(clock, JOBS["alerts"], now) == "0 alerts; 0 owners told"  # all is well

    def broken(rt, since, now):
        raise ValueError("the tags went missing")
    scheduler.run_safely(rt, Job("tags", {"hour": 2}, broken, "tags"))
    billed = month(rt, now)
    for later in (0, 15, 30):  # the job runs every 15 minutes, or on two clocks at once
        run_job(clock, JOBS["alerts"], now + dt.timedelta(minutes=later))
        run_job(clock, JOBS["send"], now + dt.timedelta(minutes=later))
    got = fake_line.messages_to(OWNER_LINE)
    assert [m["text"] for m in got] == [
        "⚠️ 店家後台提醒\n・排程工作「自動標籤」上次執行失敗\n詳情請看店家後台。"]
    assert month(rt, now) == billed + 1  # one billed push
    run_job(clock, JOBS["alerts"], now + dt.timedelta(days=1))  # the next day: again
    run_job(clock, JOBS["send"], now + dt.timedelta(days=1))
    assert len(fake_line.messages_to(OWNER_LINE)) == 2


def month(rt, now: dt.datetime) -> int:
    with rt.sessions() as session:
        return month_sent(session, rt.program, now)


def test_unlinked_no_message_goes_and_a_manager_cannot_open_the_page(app, owner, client,
                                                                      fake_line):
    rt = app.extensions["loyalty"]
    post(client, [follow(OWNER_LINE)])
    post(client, [text(OWNER_LINE, f"owner {link(owner)}")])
    assert "Linked to the shop console" in fake_line.replies()[-1]["messages"][0]["text"]
    page = owner.post("/admin/alerts", data={"csrf_token": csrf(owner, "/admin/alerts"),
                                             "action": "unlink"})
    assert "已取消連結" in page.get_data(as_text=True)
    with rt.sessions() as session:
        assert session.scalars(select(ConsoleAccount.line_member_id)).all() == [None]
    clock = make_runtime(rt.sessions, rt.program, rt.config)

    def broken(rt, since, now):
        raise ValueError("boom")
    scheduler.run_safely(rt, Job("tags", {"hour": 2}, broken, "tags"))
    assert run_job(clock, JOBS["alerts"], utcnow()) == "1 alerts; 0 owners told"
    account(app, "mei@cafe.tw", "manager")
    manager = app.test_client()
    sign_in(manager, "mei@cafe.tw")
    refused = manager.get("/admin/alerts")
    assert refused.status_code == 403 and "只有店主可以設定提醒" in refused.get_data(as_text=True)
    assert banner(manager)[0].startswith("排程工作「tags」上次執行失敗")  # managers see it too


def test_every_clock_job_has_a_name_in_the_alert_message(app):
    rt = app.extensions["loyalty"]
    for name in JOBS:
        said = messages.owner_alerts(rt.render("zh-TW"), [("job_failed", {"job": name})])
        assert "排程工作「" in said[0]["text"] and name not in said[0]["text"], name
        assert rt.render("en").strings(f"alert.job.{name}"), name
