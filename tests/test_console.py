"""The owner console: who gets in, how long they stay, what protects its forms."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from unittest import mock

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import DEFAULT_PROGRAM, Config
from bot.console.words import WORDS
from bot.db import transaction
from bot.jobs import JOBS, JobContext, run_job
from bot.line import qr
from bot.line.client import LineClient
from bot.loyalty import accounts, coupons, daily, staff
from bot.loyalty import dashboard as figures
from bot.loyalty.errors import UnknownCode
from bot.loyalty.members import member_by_id, register_member
from bot.loyalty.purchases import record_purchase
from bot.loyalty.report import build_report, report_period
from bot.loyalty.summary import member_summary
from bot.loyalty.timeutil import utcnow
from bot.models import (
    AuditLog,
    ConsoleAccount,
    ConsoleLoginFailure,
    Coupon,
    OutboxMessage,
    Purchase,
    Staff,
)
from bot.outbox import deliver, enqueue
from tests.line_helpers import CHANNEL_SECRET, user_id

SHOPS_HASHER = accounts._hasher  # before any test swaps it
TOKEN = "setup-token-from-the-paas"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """Argon2id with its smallest cost: these tests are about sessions and forms, and the
    shop's cost (about 0.15 s a hash here) would make every sign-in slow. The stored form
    still says argon2id, which one test checks with the real parameters."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", quick)
    monkeypatch.setattr(accounts, "_DUMMY", quick.hash("not a password anyone has"))


def test_passwords_are_stored_as_argon2id_hashes_that_verify(sessions, monkeypatch):
    monkeypatch.setattr(accounts, "_hasher", SHOPS_HASHER)
    with transaction(sessions) as session:
        account, token = accounts.add_account(session, "o@cafe.tw", "owner", utcnow(),
                                              actor="test")
        accounts.set_password_by_link(session, token, PASSWORD, utcnow())
        stored = account.password_hash
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in stored
    with transaction(sessions) as session:
        assert accounts.sign_in(session, "o@cafe.tw", PASSWORD, "127.0.0.1", utcnow())


@pytest.fixture
def config(db_url) -> Config:
    return Config(database_url=db_url, program_path=str(DEFAULT_PROGRAM),
                  secret_key="console-test-secret", console_setup_token=TOKEN,
                  public_base_url="https://cafe.example")


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    app.extensions["loyalty"].engine.dispose()


@pytest.fixture
def browser(app):
    return app.test_client()


def csrf(browser, path: str) -> str:
    page = browser.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def setup_owner(browser, email: str = "owner@cafe.tw") -> None:
    answer = browser.post("/admin/setup", data={
        "csrf_token": csrf(browser, "/admin/setup"), "token": TOKEN, "email": email,
        "password": PASSWORD})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"


def sign_in(browser, email: str, password: str = PASSWORD, **headers):
    return browser.post("/admin/login", headers=headers, data={
        "csrf_token": csrf(browser, "/admin/login"), "email": email, "password": password})


def invite(app, email: str, role: str) -> str:
    with transaction(app.extensions["loyalty"].sessions) as session:
        _, token = accounts.add_account(session, email, role, utcnow(), actor="test")
    return token


def set_password(browser, token: str, password: str = PASSWORD):
    path = f"/admin/password/{token}"
    return browser.post(path, data={"csrf_token": csrf(browser, path), "password": password})


# -- the first owner -------------------------------------------------------------------------
def test_the_first_owner_is_made_with_the_setup_token_which_then_opens_nothing(app, browser):
    assert browser.get("/admin/login").headers["Location"] == "/admin/setup"
    wrong = browser.post("/admin/setup", data={
        "csrf_token": csrf(browser, "/admin/setup"), "token": "guess", "email": "x@cafe.tw",
        "password": PASSWORD})
    assert wrong.status_code == 400 and "CONSOLE_SETUP_TOKEN" in wrong.get_data(as_text=True)
    setup_owner(browser)
    assert "會員總數" in browser.get("/admin/").get_data(as_text=True)
    other = app.test_client()
    again = other.post("/admin/setup", data={
        "csrf_token": csrf(other, "/admin/login"), "token": TOKEN, "email": "thief@evil.tw",
        "password": PASSWORD})
    assert "已經有店主帳號" in again.get_data(as_text=True)
    with app.extensions["loyalty"].sessions() as session:
        assert [a.email for a in accounts.accounts(session)] == ["owner@cafe.tw"]


def test_without_a_setup_token_the_setup_page_says_how_to_make_an_owner(config, db_url):
    app = create_app(dataclasses.replace(config, console_setup_token=""))
    browser = app.test_client()
    answer = browser.post("/admin/setup", data={
        "csrf_token": csrf(browser, "/admin/setup"), "token": "", "email": "o@cafe.tw",
        "password": PASSWORD})
    assert answer.status_code == 400 and "owner add" in answer.get_data(as_text=True)
    app.extensions["loyalty"].engine.dispose()


# -- signing in ------------------------------------------------------------------------------
def test_a_wrong_password_is_refused_and_five_in_a_row_throttle_the_account(app, browser):
    setup_owner(browser)
    stranger = app.test_client()
    for _ in range(5):
        assert sign_in(stranger, "owner@cafe.tw", "wrong password!").status_code == 401
    throttled = sign_in(stranger, "owner@cafe.tw")  # even the right password, for now
    assert throttled.status_code == 429 and "15" in throttled.get_data(as_text=True)
    later = utcnow() + dt.timedelta(minutes=16)
    with mock.patch("bot.console.views.utcnow", lambda: later):
        assert sign_in(stranger, "owner@cafe.tw").status_code == 302


def failed_before(app, address: str, times: int) -> None:
    """Failed sign-ins from this address a moment ago (as the throttle records them)."""
    with transaction(app.extensions["loyalty"].sessions) as session:
        session.add_all(ConsoleLoginFailure(email=f"nobody{n}@cafe.tw", address=address,
                                            at=utcnow()) for n in range(times))


def test_failures_are_counted_per_client_address_through_the_trusted_router_only(
        config, browser, app):
    setup_owner(browser)
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    failed_before(app, "203.0.113.9", 19)
    # no proxy is trusted: the header is ignored, the failure counts for the socket's address
    assert sign_in(app.test_client(), "x@cafe.tw", "wrong password!", **forwarded
                   ).status_code == 401
    assert sign_in(app.test_client(), "owner@cafe.tw", **forwarded).status_code == 302
    trusting = create_app(dataclasses.replace(config, trusted_proxy_hops=1))
    assert sign_in(trusting.test_client(), "x@cafe.tw", "wrong password!", **forwarded
                   ).status_code == 401  # the twentieth from that address
    assert sign_in(trusting.test_client(), "owner@cafe.tw", **forwarded).status_code == 429
    assert sign_in(trusting.test_client(), "owner@cafe.tw",
                   **{"X-Forwarded-For": "198.51.100.7"}).status_code == 302
    trusting.extensions["loyalty"].engine.dispose()


def test_a_session_idle_for_thirty_minutes_is_sent_back_to_sign_in(app, browser):
    setup_owner(browser)
    later = utcnow() + dt.timedelta(minutes=31)
    with mock.patch("bot.console.views.utcnow", lambda: later):
        answer = browser.get("/admin/")
        assert answer.status_code == 302 and "expired=1" in answer.headers["Location"]
        assert "逾時" in browser.get(answer.headers["Location"]).get_data(as_text=True)


def test_an_active_session_still_ends_twelve_hours_after_sign_in(app, browser):
    setup_owner(browser)
    start = utcnow()
    for minutes in range(20, 12 * 60, 20):  # used every 20 minutes all day
        with mock.patch("bot.console.views.utcnow",
                        lambda m=minutes: start + dt.timedelta(minutes=m)):
            assert browser.get("/admin/").status_code == 200
    with mock.patch("bot.console.views.utcnow", lambda: start + dt.timedelta(hours=12, minutes=1)):
        assert browser.get("/admin/").status_code == 302


def test_every_sign_in_gets_a_new_session_and_sign_out_ends_it(app, browser):
    setup_owner(browser)
    before = browser.get_cookie("console", path="/admin").value
    browser.post("/admin/logout", data={"csrf_token": csrf(browser, "/admin/")})
    assert browser.get("/admin/").status_code == 302
    assert sign_in(browser, "owner@cafe.tw").status_code == 302
    assert browser.get_cookie("console", path="/admin").value != before


def test_the_session_cookie_is_http_only_lax_and_secure_over_https(app, browser):
    answer = browser.post("/admin/setup", data={
        "csrf_token": csrf(browser, "/admin/setup"), "token": TOKEN, "email": "o@cafe.tw",
        "password": PASSWORD})
    cookie = next(v for k, v in answer.headers.items()
                  if k == "Set-Cookie" and v.startswith("console="))
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/admin"} <= {
        part.strip() for part in cookie.split(";")}


# -- forms and headers ---------------------------------------------------------------------------
def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(app, browser):
    setup_owner(browser)
    answer = browser.post("/admin/accounts", data={"action": "invite", "email": "m@cafe.tw",
                                                    "role": "manager"})
    assert answer.status_code == 400 and "表單已過期" in answer.get_data(as_text=True)
    with app.extensions["loyalty"].sessions() as session:
        assert [a.email for a in accounts.accounts(session)] == ["owner@cafe.tw"]


def test_pages_forbid_inline_script_framing_and_caching_and_insist_on_https(app, browser):
    answer = browser.get("/admin/setup")
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "<script" not in answer.get_data(as_text=True)


# -- accounts --------------------------------------------------------------------------------------
def test_an_owner_invites_a_manager_who_sets_a_password_once_and_cannot_manage_accounts(
        app, browser):
    setup_owner(browser)
    page = browser.post("/admin/accounts", data={
        "csrf_token": csrf(browser, "/admin/accounts"), "action": "invite",
        "email": "Mei@Cafe.tw", "role": "manager"}).get_data(as_text=True)
    link = re.search(r"https://cafe\.example(/admin/password/[\w-]+)", page).group(1)
    manager = app.test_client()
    assert manager.get(link).status_code == 200
    too_short = manager.post(link, data={"csrf_token": csrf(manager, link), "password": "short"})
    assert too_short.status_code == 400 and "10" in too_short.get_data(as_text=True)
    assert manager.post(link, data={"csrf_token": csrf(manager, link),
                                    "password": PASSWORD}).status_code == 200
    assert manager.get(link).status_code == 404  # used once
    assert sign_in(manager, "mei@cafe.tw").status_code == 302
    assert manager.get("/admin/").status_code == 200
    assert manager.get("/admin/accounts").status_code == 403


def test_removing_an_account_ends_its_sessions_at_once_but_never_the_last_owner(
        app, browser):
    setup_owner(browser)
    manager = app.test_client()
    set_password(manager, invite(app, "mei@cafe.tw", "manager"))
    sign_in(manager, "mei@cafe.tw")
    assert manager.get("/admin/").status_code == 200
    browser.post("/admin/accounts", data={"csrf_token": csrf(browser, "/admin/accounts"),
                                          "action": "remove", "email": "mei@cafe.tw"})
    assert manager.get("/admin/").status_code == 302
    last = browser.post("/admin/accounts", data={
        "csrf_token": csrf(browser, "/admin/accounts"), "action": "remove",
        "email": "owner@cafe.tw"})
    assert last.status_code == 400 and "最後一個店主" in last.get_data(as_text=True)
    with app.extensions["loyalty"].sessions() as session:
        actions = session.scalars(select(AuditLog.action).where(
            AuditLog.actor == "console:owner@cafe.tw")).all()
    assert "console.account_remove" in actions and "console.account_add" not in actions


def test_a_password_change_ends_the_accounts_other_sessions(app, browser):
    setup_owner(browser)
    laptop = app.test_client()
    sign_in(laptop, "owner@cafe.tw")
    answer = browser.post("/admin/account/password", data={
        "csrf_token": csrf(browser, "/admin/account/password"), "old": PASSWORD,
        "new": "an even longer password"})
    assert answer.status_code == 200
    assert laptop.get("/admin/").status_code == 302
    assert browser.get("/admin/").status_code == 302
    assert sign_in(browser, "owner@cafe.tw", "an even longer password").status_code == 302


def test_the_owner_command_adds_an_account_with_a_one_time_link(app):
    runner = app.test_cli_runner()
    added = runner.invoke(args=["owner", "add", "Boss@Cafe.tw", "--role", "owner"])
    assert added.exit_code == 0, added.output
    link = re.search(r"https://cafe\.example(/admin/password/[\w-]+)", added.output).group(1)
    assert "password not set yet" in runner.invoke(args=["owner", "list"]).output
    browser = app.test_client()
    assert set_password(browser, link.rsplit("/", 1)[1]).status_code == 200
    assert sign_in(browser, "boss@cafe.tw").status_code == 302
    again = runner.invoke(args=["owner", "add", "boss@cafe.tw"])
    assert again.exit_code != 0 and "has an account already" in again.output
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalar(select(ConsoleAccount.role)) == "owner"


# -- the dashboard -----------------------------------------------------------------------------
def test_the_dashboard_shows_the_reports_figures_for_the_period(app, browser):
    setup_owner(browser)
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), utcnow()).member
        for amount in (1200, 800):
            record_purchase(session, rt.program, member.id, amount, utcnow(), source="pos",
                            order_id=f"o-{amount}", actor="test")
    page = browser.get("/admin/").get_data(as_text=True)
    revenue = re.search(r'data-figure="revenue"><th scope="row">[^<]+</th><td>([^<]+)</td>',
                        page).group(1)
    assert revenue == "NT$2,000"
    assert browser.get("/admin/?from=2026-13-01").status_code == 200  # a bad date: default


# -- members -----------------------------------------------------------------------------------
def test_a_member_is_found_by_phone_in_any_spelling_code_or_name_and_corrected_with_a_reason(
        app, browser):
    setup_owner(browser)
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), utcnow(),
                                 display_name="王小美").member
        member.phone = "0912345678"  # as stored
        code = member.member_code
    for query in ("0912-345-678", code.lower(), "小美"):
        page = browser.get(f"/admin/members?q={query}").get_data(as_text=True)
        assert f'data-member="{code}"' in page, query
    assert "找不到" in browser.get("/admin/members?q=nobody").get_data(as_text=True)
    path = f"/admin/members/{code}"
    refused = browser.post(path, data={"csrf_token": csrf(browser, path), "delta": "50",
                                       "reason": " "})
    assert refused.status_code == 400 and "請寫下原因" in refused.get_data(as_text=True)
    too_long = browser.post(path, data={"csrf_token": csrf(browser, path), "delta": "50",
                                        "reason": "x" * 600})
    assert too_long.status_code == 400 and "原因最多" in too_long.get_data(as_text=True)
    for delta in ("1e3", "9" * 30, "9" * 5000):  # never a server error, nothing changed
        huge = browser.post(path, data={"csrf_token": csrf(browser, path), "delta": delta,
                                        "reason": "x"})
        assert huge.status_code == 400 and "請輸入非零的整數點數" in huge.get_data(as_text=True)
    done = browser.post(path, data={"csrf_token": csrf(browser, path), "delta": "50",
                                    "reason": "咖啡機故障補償"}).get_data(as_text=True)
    assert "已調整 +50 點" in done and "咖啡機故障補償" in done
    with rt.sessions() as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.member_id == member.id,
                                                       AuditLog.points_delta == 50)).one()
    assert entry.actor == "console:owner@cafe.tw" and entry.reason == "咖啡機故障補償"
    assert browser.get("/admin/members/ZZZ-ZZZ-ZZZ").status_code == 404


# -- corrections, erasure, export ------------------------------------------------------------
@pytest.fixture
def shop(app, browser):
    """An owner (browser) and a manager signed in, and a member who bought NT$1,200."""
    setup_owner(browser)
    manager = app.test_client()
    set_password(manager, invite(app, "mei@cafe.tw", "manager"))
    assert sign_in(manager, "mei@cafe.tw").status_code == 302
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), utcnow(),
                                 display_name="王小美").member
        purchase = record_purchase(session, rt.program, member.id, 1200, utcnow(),
                                   source="pos", order_id="A-1", actor="test").purchase
        ids = (member.id, member.member_code, purchase.id)
    return rt, manager, ids


def post(client, path: str, **fields):
    page = f"/admin/members/{path.split('/')[3]}"
    return client.post(path, data={"csrf_token": csrf(client, page), **fields})


def audit_rows(rt, member_id: int, action: str) -> list[AuditLog]:
    with rt.sessions() as session:
        return list(session.scalars(select(AuditLog).where(
            AuditLog.member_id == member_id, AuditLog.action == action)))


def card_stamps(rt, member_id: int) -> int:
    with rt.sessions() as session:
        return member_summary(session, rt.program, member_by_id(session, member_id),
                              utcnow()).stamps


def test_a_manager_gives_and_takes_back_stamps_with_a_reason_and_bad_input_changes_nothing(
        shop):
    rt, manager, (member_id, code, _) = shop
    path = f"/admin/members/{code}/stamps"
    before = card_stamps(rt, member_id)  # the purchase's stamp and the starter stamp
    given = post(manager, path, stamps="1", reason="集點卡蓋錯格")
    assert given.status_code == 200 and "集章已調整 +1 章" in given.get_data(as_text=True)
    assert card_stamps(rt, member_id) == before + 1
    for fields, says in (({"stamps": "-9", "reason": "x"}, f"只有 {before + 1} 章"),
                         ({"stamps": "one", "reason": "x"}, "1 到 10"),
                         ({"stamps": "11", "reason": "x"}, "1 到 10"),
                         ({"stamps": "9" * 5000, "reason": "x"}, "1 到 10"),
                         ({"stamps": "0", "reason": "x"}, "1 到 10"),
                         ({"stamps": "-1", "reason": "  "}, "請寫下原因"),
                         ({"stamps": "1", "reason": "長" * 201}, "原因最多 200 個字")):
        refused = post(manager, path, **fields)
        assert refused.status_code == 400 and says in refused.get_data(as_text=True), fields
    assert card_stamps(rt, member_id) == before + 1
    taken = post(manager, path, stamps="-1", reason="重複蓋章")
    assert "集章已調整 -1 章" in taken.get_data(as_text=True)
    assert card_stamps(rt, member_id) == before
    rows = audit_rows(rt, member_id, "stamps.adjust")
    assert [(r.actor, r.reason, r.details["stamps"]) for r in rows] == [
        ("console:mei@cafe.tw", "集點卡蓋錯格", 1), ("console:mei@cafe.tw", "重複蓋章", -1)]


def test_a_coupon_issued_from_a_template_reaches_the_wallet_with_the_reason_audited(shop):
    rt, manager, (member_id, code, _) = shop
    path = f"/admin/members/{code}/coupon"
    for fields, says in (({"template": "no_such", "reason": "x"}, "沒有「no_such」"),
                         ({"template": "free_drink", "reason": ""}, "請寫下原因")):
        refused = post(manager, path, **fields)
        assert refused.status_code == 400 and says in refused.get_data(as_text=True)
    given = post(manager, path, template="free_drink", reason="等太久的補償")
    shown = re.search(r"已發送「任選飲品一杯」，代碼 ([0-9A-Z-]{11})", given.get_data(as_text=True))
    assert given.status_code == 200 and shown
    with rt.sessions() as session:
        wallet = [v.display_code for v in coupons.wallet(session, rt.program, member_id,
                                                           utcnow())
                  if v.template.key == "free_drink"]
        reason = session.scalar(select(Coupon.reason).where(Coupon.member_id == member_id,
                                                            Coupon.status == "issued")
                                .order_by(Coupon.id.desc()))
    assert wallet == [shown.group(1)] and reason == "manual"
    [row] = audit_rows(rt, member_id, "coupon.issue")[-1:]
    assert (row.actor, row.reason, row.details["template"]) == (
        "console:mei@cafe.tw", "等太久的補償", "free_drink")


def test_the_birthday_is_corrected_with_a_reason_and_an_impossible_date_is_refused(shop):
    rt, manager, (member_id, code, _) = shop
    path = f"/admin/members/{code}/birthday"
    for fields, says in (({"birthday": "2999-01-01", "reason": "x"}, "生日日期不正確"),
                         ({"birthday": "1990-02-30", "reason": "x"}, "生日日期不正確"),
                         ({"birthday": "1990-02-03", "reason": ""}, "請寫下原因")):
        refused = post(manager, path, **fields)
        assert refused.status_code == 400 and says in refused.get_data(as_text=True)
    assert audit_rows(rt, member_id, "member.birthday") == []
    fixed = post(manager, path, birthday="1990-02-03", reason="顧客當初選錯月份")
    assert "生日已改為 1990/02/03" in fixed.get_data(as_text=True)
    with rt.sessions() as session:
        assert member_by_id(session, member_id).birthday == dt.date(1990, 2, 3)
    [row] = audit_rows(rt, member_id, "member.birthday")
    assert (row.actor, row.reason) == ("console:mei@cafe.tw", "顧客當初選錯月份")


def test_the_dashboards_period_downloads_as_the_whole_report_in_csv(app, shop):
    import csv as csv_module
    import io

    rt, manager, _ = shop
    today = utcnow().astimezone(rt.program.timezone).date()
    first = today - dt.timedelta(days=6)
    dashboard = manager.get(f"/admin/?from={first}&to={today}").get_data(as_text=True)
    link = f"/admin/report.csv?from={first}&amp;to={today}"
    assert f'href="{link}"' in dashboard and "下載這段期間的完整報表" in dashboard
    answer = manager.get(link.replace("&amp;", "&"))
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        f'attachment; filename="report-{first:%Y%m%d}-{today:%Y%m%d}.csv"')
    body = answer.get_data(as_text=True)
    assert body.startswith("\ufeff")  # Excel reads it as UTF-8
    rows = {(r["section"], r["metric"]): r["value"]
            for r in csv_module.DictReader(io.StringIO(body[1:]))}
    assert rows["report", "shop"] == "山嵐咖啡" and rows["report", "first_day"] == str(first)
    assert rows["sales", "purchases"] == "1" and rows["sales", "revenue"] == "1200"
    assert rows["members", "new"] == "1"
    backwards = manager.get(f"/admin/report.csv?from={today}&to={first}")
    assert backwards.status_code == 400 and backwards.mimetype == "text/html"
    assert "沒有下載報表" in backwards.get_data(as_text=True)
    assert manager.get("/admin/report.csv?from=2026-02-30").status_code == 400
    signed_out = app.test_client().get("/admin/report.csv")
    assert signed_out.status_code == 302 and "/admin/login" in signed_out.headers["Location"]


def test_a_member_is_tagged_and_untagged_by_hand_and_automatic_or_bad_tags_are_refused(
        shop):
    from bot.loyalty.segments import member_tags

    rt, manager, (member_id, code, _) = shop
    path = f"/admin/members/{code}/tags"
    for fields, says in (({"tag": "vip"}, "「vip」是系統每天自動計算的標籤"),
                         ({"tag": "coffee club"}, "「coffee club」不能當標籤"),
                         ({"tag": "and"}, "「and」不能當標籤"),
                         ({"tag": ""}, "不能當標籤")):
        refused = post(manager, path, action="add", **fields)
        assert refused.status_code == 400 and says in refused.get_data(as_text=True)
    with rt.sessions() as session:
        assert member_tags(session, member_id) == []
    added = post(manager, path, action="add", tag="Coffee-Club")
    assert "已加上標籤「coffee-club」" in added.get_data(as_text=True)
    assert 'data-tag="coffee-club"' in added.get_data(as_text=True)
    again = post(manager, path, action="add", tag="coffee-club")
    assert "已經有標籤「coffee-club」" in again.get_data(as_text=True)
    post(manager, path, action="add", tag="豆子會員")
    with rt.sessions() as session:
        assert member_tags(session, member_id) == ["coffee-club", "豆子會員"]
    removed = post(manager, path, action="remove", tag="coffee-club")
    assert "已移除標籤「coffee-club」" in removed.get_data(as_text=True)
    missing = post(manager, path, action="remove", tag="coffee-club")
    assert "沒有標籤「coffee-club」" in missing.get_data(as_text=True)
    with rt.sessions() as session:
        assert member_tags(session, member_id) == ["豆子會員"]
    rows = [(r.action, r.actor, r.details["tag"]) for r in audit_rows(rt, member_id, "tag.add")
            + audit_rows(rt, member_id, "tag.remove")]
    assert rows == [("tag.add", "console:mei@cafe.tw", "coffee-club"),
                    ("tag.add", "console:mei@cafe.tw", "豆子會員"),
                    ("tag.remove", "console:mei@cafe.tw", "coffee-club")]


def test_a_refund_takes_back_its_share_once_and_bad_amounts_or_orders_change_nothing(
        app, shop):
    rt, manager, (member_id, code, purchase_id) = shop
    path = f"/admin/members/{code}/refund"
    with transaction(rt.sessions) as session:  # another member's purchase
        other = register_member(session, rt.program, user_id(2), utcnow()).member
        theirs = record_purchase(session, rt.program, other.id, 500, utcnow(), source="pos",
                                 order_id="B-1", actor="test").purchase.id
    for fields, says in (
            ({"purchase": purchase_id, "amount": "1201"}, "最多 NT$1,200"),
            ({"purchase": purchase_id, "amount": "12.5"}, "請輸入 1 以上的整數金額"),
            ({"purchase": purchase_id, "amount": "0"}, "請輸入 1 以上的整數金額"),
            ({"purchase": purchase_id, "amount": "9" * 5000}, "請輸入 1 以上的整數金額"),
            ({"purchase": theirs, "amount": "100"}, "找不到這筆訂單"),
            ({"purchase": "x", "amount": "100"}, "找不到這筆訂單"),
            ({"purchase": str(10 ** 30), "amount": "100"}, "找不到這筆訂單"),
            ({"purchase": purchase_id, "amount": "100", "reason": ""}, "請寫下原因")):
        refused = post(manager, path, **{"reason": "退貨", "key": "k0", **fields})
        assert refused.status_code == 400 and says in refused.get_data(as_text=True), fields
    with rt.sessions() as session:
        assert session.get(Purchase, purchase_id).refunded_amount == 0
        balance = member_by_id(session, member_id).points_balance
    done = post(manager, path, purchase=purchase_id, amount="600", reason="半份退貨", key="k1")
    assert "已退款 NT$600：收回 20 點" in done.get_data(as_text=True)
    again = post(manager, path, purchase=purchase_id, amount="600", reason="半份退貨", key="k1")
    assert "沒有重複退款" in again.get_data(as_text=True)
    with rt.sessions() as session:
        assert session.get(Purchase, purchase_id).refunded_amount == 600
        assert member_by_id(session, member_id).points_balance == balance - 20
    [row] = audit_rows(rt, member_id, "refund")
    assert (row.actor, row.reason, row.details["amount"]) == (
        "console:mei@cafe.tw", "半份退貨", 600)


def test_only_an_owner_erases_a_member_after_typing_the_member_code_again(app, browser, shop):
    rt, manager, (member_id, code, _) = shop
    path = f"/admin/members/{code}/erase"
    assert 'data-form="erase"' not in manager.get(f"/admin/members/{code}").get_data(
        as_text=True)
    refused = post(manager, path, confirm=code)
    assert refused.status_code == 403
    assert "只有店主可以刪除會員的個人資料" in refused.get_data(as_text=True)
    wrong = post(browser, path, confirm="ABC-DEF-GHJ")
    assert wrong.status_code == 400 and "沒有刪除任何資料" in wrong.get_data(as_text=True)
    with rt.sessions() as session:
        assert member_by_id(session, member_id).display_name == "王小美"
    erased = post(browser, path, confirm=f"{code[:3]}-{code[3:6]}-{code[6:]}".lower())
    assert erased.status_code == 200 and "個人資料已刪除" in erased.get_data(as_text=True)
    with rt.sessions() as session:
        member = member_by_id(session, member_id)
        assert (member.status, member.display_name, member.line_user_id) == ("erased", "", None)
    [row] = audit_rows(rt, member_id, "member.erase")
    assert row.actor == "console:owner@cafe.tw"


def test_only_an_owner_exports_and_only_after_typing_the_password_again(app, browser, shop):
    rt, manager, (_, code, _) = shop
    assert manager.get("/admin/export").status_code == 403
    refused = manager.post("/admin/export", data={"csrf_token": csrf(manager, "/admin/"),
                                                  "password": PASSWORD})
    assert refused.status_code == 403 and "只有店主可以匯出" in refused.get_data(as_text=True)
    wrong = browser.post("/admin/export", data={"csrf_token": csrf(browser, "/admin/export"),
                                                "password": "not my password"})
    assert wrong.status_code == 401 and "密碼不正確" in wrong.get_data(as_text=True)
    assert "text/csv" not in wrong.headers["Content-Type"]
    sent = browser.post("/admin/export", data={"csrf_token": csrf(browser, "/admin/export"),
                                               "password": PASSWORD})
    assert sent.status_code == 200 and sent.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in sent.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(sent.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "member_code" and [r[0] for r in rows[1:]] == [code]
    assert rows[1][4] == "王小美"
    with rt.sessions() as session:
        assert session.scalars(select(AuditLog.actor).where(
            AuditLog.action == "members.export")).all() == ["console:owner@cafe.tw"]
        failures = session.scalars(select(ConsoleLoginFailure.email)).all()
    assert failures == ["owner@cafe.tw"]  # the wrong password counts toward the throttle


def test_a_correction_posted_without_its_csrf_token_is_refused_and_changes_nothing(shop):
    rt, manager, (member_id, code, _) = shop
    before = card_stamps(rt, member_id)
    answer = manager.post(f"/admin/members/{code}/stamps", data={"stamps": "1",
                                                                 "reason": "x"})
    assert answer.status_code == 400 and "表單已過期" in answer.get_data(as_text=True)
    assert card_stamps(rt, member_id) == before
    assert audit_rows(rt, member_id, "stamps.adjust") == []


def test_every_console_word_exists_in_both_languages():
    assert set(WORDS["zh-TW"]) == set(WORDS["en"])
    for key in WORDS["en"]:
        fields = [set(re.findall(r"\{(\w+)\}", WORDS[lang][key])) for lang in WORDS]
        assert fields[0] == fields[1], key


def test_the_dashboard_shows_the_clock_jobs_daily_figures_up_to_their_time_for_any_dates(
        app, browser):
    setup_owner(browser)
    rt = app.extensions["loyalty"]
    jobs = JobContext(rt.program, rt.sessions, render=lambda language: None)
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), utcnow()).member
        record_purchase(session, rt.program, member.id, 1200, utcnow(), source="pos",
                        order_id="o-1", actor="test")
    ran = utcnow()
    assert "computed in" in run_job(jobs, JOBS["dashboard"], ran)
    today = ran.astimezone(rt.program.timezone).date()
    month = (today - dt.timedelta(days=29), today)
    with rt.sessions() as session:
        kept = figures.kept(session, rt.program, *month, ran)
        live = figures.compute(session, rt.program, *month, ran)
    assert (kept.current, kept.previous) == (live.current, live.previous)
    with transaction(rt.sessions) as session:  # bought after the job ran
        record_purchase(session, rt.program, member.id, 800, utcnow(), source="pos",
                        order_id="o-2", actor="test")

    def revenue(path: str) -> tuple[str, bool]:
        page = browser.get(path).get_data(as_text=True)
        shown = re.search(r'data-figure="revenue"><th scope="row">[^<]+</th><td>([^<]+)</td>',
                          page).group(1)
        up_to = ran.astimezone(rt.program.timezone).strftime("%Y/%m/%d %H:%M")
        return shown, 'class="freshness"' in page and f"數字統計至 {up_to}" in page
    week = f"from={today - dt.timedelta(days=6)}&to={today}"
    assert revenue("/admin/") == ("NT$1,200", True)  # the job's figures, up to its run
    assert revenue(f"/admin/?{week}") == ("NT$1,200", True)  # any dates: the same figures
    ran = utcnow()
    run_job(jobs, JOBS["dashboard"], ran)  # the next run counts the new purchase
    assert revenue(f"/admin/?{week}") == ("NT$2,000", True)
    with transaction(rt.sessions) as session:  # the clock stopped 40 minutes ago
        daily.refresh(session, rt.program, utcnow() - dt.timedelta(minutes=40))
    record = browser.get(f"/admin/?{week}").get_data(as_text=True)
    assert "NT$2,000" in record and 'class="freshness"' not in record  # computed live


# -- staff -------------------------------------------------------------------------------------
def staff_post(client, **fields):
    return client.post("/admin/staff", data={"csrf_token": csrf(client, "/admin/staff"),
                                             **fields})


def make_staff(rt, n: int, name: str):
    """A customer who joined as staff with an invite, as the staff chat does it."""
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(n), utcnow()).member
        code = staff.create_invite(session, utcnow(), name=name, actor="test")
        worker = staff.join_with_invite(session, code, user_id(n), member, utcnow())
        session.flush()
        return worker.id


def test_a_manager_invites_staff_with_a_code_and_qr_that_types_it_and_the_code_works(
        config, shop):
    rt, manager, _ = shop
    page = staff_post(manager, action="invite", name="阿明").get_data(as_text=True)
    code = re.search(r'<code id="invite-code">員工 ([0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3})</code>',
                     page).group(1)
    image = re.search(r'<img src="(/qr/[\w-]+\.png)"', page).group(1)
    assert qr.payload(config.secret_key, image[4:-4]) == f"員工 {code}"  # no OA id: the text
    picture = manager.get(image)
    assert picture.status_code == 200 and picture.data.startswith(b"\x89PNG")
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(7), utcnow()).member
        worker = staff.join_with_invite(session, code, user_id(7), member, utcnow())
        assert worker is not None and worker.name == "阿明"
    listed = manager.get("/admin/staff").get_data(as_text=True)
    today = utcnow().astimezone(rt.program.timezone).strftime("%Y/%m/%d")
    assert re.search(rf'data-staff="{worker.id}">\s*<td>阿明</td>\s*<td>{today}</td>', listed)
    with rt.sessions() as session:
        assert session.scalars(select(AuditLog.actor).where(
            AuditLog.action == "staff.invite")).all() == ["console:mei@cafe.tw"]


def test_with_an_oa_id_the_invite_qr_opens_the_chat_with_the_code_typed(config, db_url):
    app = create_app(dataclasses.replace(config, line_oa_basic_id="@mountainmist"))
    browser = app.test_client()
    setup_owner(browser)
    page = staff_post(browser, action="invite").get_data(as_text=True)
    code = re.search(r'員工 ([0-9A-Z-]{11})</code>', page).group(1)
    token = re.search(r'<img src="/qr/([\w-]+)\.png"', page).group(1)
    held = qr.payload(config.secret_key, token)
    assert held.startswith("https://line.me/R/oaMessage/%40mountainmist/?")
    assert qr.typed_text(held) == f"員工 {code}" and held in page  # the link is shown too
    app.extensions["loyalty"].engine.dispose()


def test_staff_activity_is_the_reports_for_the_chosen_days(shop):
    rt, manager, (member_id, _, _) = shop
    worker = make_staff(rt, 5, "小華")
    with transaction(rt.sessions) as session:
        for n, amount in enumerate((1500, 2700)):
            record_purchase(session, rt.program, member_id, amount, utcnow(), source="line",
                            order_id=f"s-{n}", staff_id=worker, actor=f"staff:{worker}")
        staff.record_refusal(session, session.get(Staff, worker), "verify", UnknownCode(),
                             utcnow(), code="NOPE")
    page = manager.get("/admin/staff").get_data(as_text=True)
    row = re.search(rf'data-activity="{worker}">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert "小華" in row and cells[:5] == ["2", "NT$4,200", "0", "0", "1"]
    with rt.sessions() as session:  # the report's figures, every one
        start, end = report_period(rt.program, None, None, utcnow())
        [figures] = build_report(session, rt.program, start, end, utcnow()).staff
    assert cells == [f"{figures.purchases:,}", f"NT${figures.revenue:,}",
                     *(f"{n:,}" for n in (figures.redemptions, figures.voids, figures.refused,
                                          figures.claims_made, figures.claims_claimed,
                                          figures.claims_expired))]
    today = utcnow().astimezone(rt.program.timezone).date()
    long_ago = f"from={today.replace(year=today.year - 2)}&to={today.replace(year=today.year - 1)}"
    earlier = manager.get(f"/admin/staff?{long_ago}").get_data(as_text=True)
    row = re.search(rf'data-activity="{worker}">(.*?)</tr>', earlier, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row)[:2] == ["0", "NT$0"]
    backwards = manager.get(f"/admin/staff?from={today}&to={today.replace(year=today.year - 1)}")
    assert backwards.status_code == 400 and "日期不正確" in backwards.get_data(as_text=True)


def test_removing_staff_ends_their_rights_once_and_bad_forms_change_nothing(shop):
    rt, manager, _ = shop
    worker = make_staff(rt, 5, "小華")
    refused = manager.post("/admin/staff", data={"action": "remove", "user": user_id(5)})
    assert refused.status_code == 400 and "表單已過期" in refused.get_data(as_text=True)
    for fields, says in (({"action": "invite", "name": "長" * 41}, "姓名最多 40 個字"),
                         ({"action": "fire", "user": user_id(5)}, "什麼都沒有改變"),
                         ({"action": "remove", "user": user_id(6)}, "找不到這位員工")):
        answer = staff_post(manager, **fields)
        assert answer.status_code == 400 and says in answer.get_data(as_text=True), fields
    with rt.sessions() as session:
        assert [w.id for w in staff.active_staff(session)] == [worker]
        assert session.scalars(select(AuditLog.action).where(
            AuditLog.action.like("staff.%"), AuditLog.actor.like("console:%"))).all() == []
    done = staff_post(manager, action="remove", user=user_id(5))
    assert done.status_code == 200 and "小華 已不是員工" in done.get_data(as_text=True)
    assert f'data-staff="{worker}"' not in done.get_data(as_text=True)
    with rt.sessions() as session:
        assert staff.active_staff(session) == []
        assert staff.find_active_staff(session, user_id(5)) is None  # the chat asks this
        assert session.scalars(select(AuditLog.actor).where(
            AuditLog.action == "staff.remove")).all() == ["console:mei@cafe.tw"]
    again = staff_post(manager, action="remove", user=user_id(5))
    assert again.status_code == 400 and "找不到這位員工" in again.get_data(as_text=True)


def test_with_line_set_up_removing_staff_unlinks_their_staff_menu(config, fake_line):
    app = create_app(dataclasses.replace(
        config, line_channel_secret=CHANNEL_SECRET,
        line_channel_access_token=fake_line.access_token,
        line_oa_basic_id="@mountainmist", line_api_base_url=fake_line.base_url))
    browser = app.test_client()
    setup_owner(browser)
    make_staff(app.extensions["loyalty"], 5, "小華")
    assert staff_post(browser, action="remove", user=user_id(5)).status_code == 200
    assert len(fake_line.calls_to(f"/user/{user_id(5)}/richmenu", "DELETE")) == 1
    app.extensions["loyalty"].engine.dispose()


# -- the clock and messages --------------------------------------------------------------------
def test_the_clock_page_shows_each_jobs_schedule_and_last_run_in_shop_time(shop):
    rt, manager, _ = shop
    ran = utcnow()
    run_job(JobContext(rt.program, rt.sessions, render=lambda language: None),
            JOBS["dashboard"], ran)
    page = manager.get("/admin/clock").get_data(as_text=True)
    row = re.search(r'data-job="dashboard">(.*?)</tr>', page, re.S).group(1)
    assert "每 10 分鐘" in row and "computed in" in row
    assert ran.astimezone(rt.program.timezone).strftime("%Y/%m/%d %H:%M") in row
    assert "每天 09:00" in re.search(r'data-job="birthday">(.*?)</tr>', page, re.S).group(1)
    assert "從未執行" in re.search(r'data-job="send">(.*?)</tr>', page, re.S).group(1)
    assert set(re.findall(r'data-job="([\w-]+)"', page)) == set(JOBS)
    manager.set_cookie("lang", "en", path="/admin")
    english = manager.get("/admin/clock").get_data(as_text=True)
    assert "daily at 09:00" in english and "every 10 minutes" in english
    assert "Sent by push this month" in english and "每天" not in english


@pytest.fixture
def outbox(config, fake_line):
    """A shop with LINE (the fake) and five messages to one member: one pushed, two in one
    push LINE refused with a 400, one whose fate is unknown (500s for over a day), one
    queued."""
    app = create_app(dataclasses.replace(
        config, line_channel_secret=CHANNEL_SECRET,
        line_channel_access_token=fake_line.access_token,
        line_oa_basic_id="@mountainmist", line_api_base_url=fake_line.base_url))
    rt = app.extensions["loyalty"]
    owner = app.test_client()
    setup_owner(owner)
    manager = app.test_client()
    set_password(manager, invite(app, "mei@cafe.tw", "manager"))
    sign_in(manager, "mei@cafe.tw")
    start = utcnow()
    ids = {}
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), start).member
        for name in ("sent", "refused", "refused2", "unknown", "queued"):
            ids[name] = enqueue(session, member, "nudge", f"t:{name}",
                                [{"type": "text", "text": name}], start,
                                push_key="0" * 8 + "-1111-2222-3333-" + "4" * 12
                                if name.startswith("refused") else None).id
    line = LineClient(rt.config)
    deliver(rt.sessions, line, [ids["sent"]], start)
    fake_line.fail_next("/message/push", 400)
    deliver(rt.sessions, line, [ids["refused"]], start)  # with refused2: one push
    fake_line.fail_next("/message/push", 500, times=2)
    deliver(rt.sessions, line, [ids["unknown"]], start)
    deliver(rt.sessions, line, [ids["unknown"]], start + dt.timedelta(hours=25))
    yield rt, owner, manager, ids
    app.extensions["loyalty"].engine.dispose()


def status_of(rt, row_id: int) -> str:
    with rt.sessions() as session:
        return session.get(OutboxMessage, row_id).status


def test_the_outbox_counts_and_latest_failures_with_lines_reason(outbox):
    rt, _, manager, ids = outbox
    assert [status_of(rt, ids[n]) for n in ("sent", "refused", "refused2", "unknown",
                                            "queued")] == [
        "sent", "failed", "failed", "failed", "pending"]
    page = manager.get("/admin/clock").get_data(as_text=True)
    counts = dict(re.findall(r'data-count="(\w+)"><th scope="row">[^<]+</th><td>([^<]+)</td>',
                             page))
    assert counts == {"pending": "1", "pushed": "1", "replied": "0", "failed": "3",
                      "dropped": "0"}
    refused = re.search(rf'data-failed="{ids["refused"]}">(.*?)</tr>', page, re.S).group(1)
    unknown = re.search(rf'data-failed="{ids["unknown"]}">(.*?)</tr>', page, re.S).group(1)
    assert "400" in refused and f'data-retry="{ids["refused"]}"' in refused
    assert "undelivered for 24 hours" in unknown and "data-retry" not in unknown
    assert "結果不明，不重送" in unknown
    assert "集點提醒" in refused and ">nudge<" not in page  # kinds in the reader's words
    assert page.count("data-retry=") == 2 and f'data-retry="{ids["refused2"]}"' in page


def test_only_a_push_line_refused_is_sent_again_and_every_other_retry_changes_nothing(
        outbox, fake_line):
    rt, owner, manager, ids = outbox
    no_token = manager.post("/admin/clock", data={"message": ids["refused"]})
    assert no_token.status_code == 400 and "表單已過期" in no_token.get_data(as_text=True)
    for wanted in (ids["unknown"], ids["sent"], ids["queued"], "abc", "9" * 40, "-1"):
        answer = manager.post("/admin/clock", data={
            "csrf_token": csrf(manager, "/admin/clock"), "message": wanted})
        assert answer.status_code == 400, wanted
        assert "只有 LINE 明確拒收（4xx）的推播可以重送" in answer.get_data(as_text=True)
    assert [status_of(rt, ids[n]) for n in ("sent", "refused", "refused2", "unknown",
                                            "queued")] == [
        "sent", "failed", "failed", "failed", "pending"]
    done = manager.post("/admin/clock", data={"csrf_token": csrf(manager, "/admin/clock"),
                                              "message": ids["refused"]})
    assert done.status_code == 200 and "已放回佇列" in done.get_data(as_text=True)
    assert status_of(rt, ids["refused"]) == "pending"
    again = owner.post("/admin/clock", data={"csrf_token": csrf(owner, "/admin/clock"),
                                             "message": ids["refused"]})
    assert again.status_code == 400  # pending now: not twice
    with rt.sessions() as session:
        assert session.scalars(select(AuditLog.details).where(
            AuditLog.action == "outbox.retry", AuditLog.actor == "console:mei@cafe.tw")
        ).one()["outbox_id"] == ids["refused"]
    deliver(rt.sessions, LineClient(rt.config), [ids["refused"]], utcnow())
    assert status_of(rt, ids["refused"]) == "sent"
    # the other half of the refused push, sent again later, goes under a key of its own
    assert manager.post("/admin/clock", data={"csrf_token": csrf(manager, "/admin/clock"),
                                              "message": ids["refused2"]}).status_code == 200
    deliver(rt.sessions, LineClient(rt.config), [ids["refused2"]], utcnow())
    assert status_of(rt, ids["refused2"]) == "sent"
    assert [m["text"] for m in fake_line.messages_to(user_id(1))] == [
        "sent", "refused", "refused2"]


# -- rich menus ----------------------------------------------------------------------------------
def test_an_owner_previews_both_rich_menus_and_deploys_them_to_line(outbox, fake_line):
    rt, owner, manager, _ = outbox
    with transaction(rt.sessions) as session:
        staff.add_staff(session, user_id(9), utcnow(), name="阿明", actor="test")
    page = owner.get("/admin/richmenu").get_data(as_text=True)
    assert 'data-menu="customer"' in page and 'data-menu="staff"' in page
    image = owner.get("/admin/richmenu/staff.png")
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert owner.get("/admin/richmenu/nobody.png").status_code == 404
    assert manager.get("/admin/richmenu").status_code == 403  # menus are the owner's
    assert owner.post("/admin/richmenu").status_code == 400  # no CSRF token: nothing sent
    assert fake_line.rich_menus == {}

    done = owner.post("/admin/richmenu", data={"csrf_token": csrf(owner, "/admin/richmenu")})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "1／1" in done.get_data(as_text=True)  # the staff member linked
    assert len(fake_line.rich_menus) == 2 and fake_line.default_rich_menu_id
    assert fake_line.user_rich_menus.get(user_id(9)) in fake_line.rich_menus
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "richmenu.deploy")) == 1
    again = owner.post("/admin/richmenu", data={"csrf_token": csrf(owner, "/admin/richmenu")})
    assert "新增 0 個、沿用 2 個" in again.get_data(as_text=True)  # nothing changed: reused
    assert len(fake_line.rich_menus) == 2


def test_an_account_with_the_longest_email_can_correct_a_member(app, browser):
    """Its actor, console: and an e-mail of 254 characters, fits the audit trail."""
    email = "o" * 64 + "@" + ".".join(["c" * 62, "d" * 62, "e" * 60]) + ".tw"
    assert len(email) == 254
    setup_owner(browser, email)
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        code = register_member(session, rt.program, user_id(1), utcnow()).member.member_code
    path = f"/admin/members/{code}"
    done = browser.post(path, data={"csrf_token": csrf(browser, path), "delta": "5",
                                    "reason": "test"})
    assert done.status_code == 200 and "已調整 +5 點" in done.get_data(as_text=True)
    with rt.sessions() as session:
        assert session.scalars(select(AuditLog.actor).where(
            AuditLog.points_delta == 5)).one() == f"console:{email}"
