"""The console's move of a membership to a customer's new LINE account: a manager does it on
the member's page with the code of the new account's member card; a second try and a wrong
code are said in words; in chromium on a phone, the main path."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.db import transaction
from bot.loyalty.codes import format_code
from bot.loyalty.members import adjust_points, find_by_line_user, register_member
from bot.loyalty.purchases import record_purchase
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog, Member
from tests.chromium import needs_chromium
from tests.line_helpers import user_id
from tests.test_console import (  # noqa: F401  (quick_hashes: a fixture, for every test)
    csrf,
    invite,
    quick_hashes,
    set_password,
    setup_owner,
    sign_in,
)
from tests.test_console_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    PASSWORD,
    account,
    console,
    errors,
    fill,
    phone,
    text,
)
from tests.test_console_import import app, browser, config  # noqa: F401  (fixtures)


def customer(shop, user: str, points: int = 0, spend: int = 0) -> Member:
    rt = shop.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user, utcnow()).member
        if points:
            adjust_points(session, rt.program, member.id, points, utcnow(), reason="gift",
                          actor="test")
        if spend:
            record_purchase(session, rt.program, member.id, spend, utcnow(), source="pos",
                            order_id=f"order-{user}", actor="test")
        return member


def move_form(client, code: str, new_code: str, reason: str = "new phone, ID seen"):
    return client.post(f"/admin/members/{code}/move", data={
        "csrf_token": csrf(client, f"/admin/members/{code}"), "new_code": new_code,
        "reason": reason})


def test_a_manager_moves_a_membership_once_and_a_second_try_is_refused_in_words(
        app, browser):  # noqa: F811
    setup_owner(browser)
    set_password(browser, invite(app, "mei@cafe.tw", "manager"))
    sign_in(browser, "mei@cafe.tw")
    old = customer(app, user_id(1), spend=500)
    new = customer(app, user_id(2), points=12)
    page = browser.get(f"/admin/members/{old.member_code}").get_data(as_text=True)
    assert "轉移到新的 LINE 帳號" in page and 'name="new_code"' in page

    done = move_form(browser, old.member_code, format_code(new.member_code))
    shown = done.get_data(as_text=True)
    assert done.status_code == 200, shown
    assert f"新帳號（會員碼 {format_code(new.member_code)}）的 12 點" in shown
    rt = app.extensions["loyalty"]
    with rt.sessions() as session:
        assert find_by_line_user(session, user_id(2)).id == old.id
        actor = session.scalar(select(AuditLog.actor).where(AuditLog.action == "member.moved"))
    assert actor == "console:mei@cafe.tw"

    again = move_form(browser, old.member_code, new.member_code)
    assert again.status_code == 400
    assert f"會員碼 {format_code(new.member_code)} 的帳號已經轉移過了（併入 " \
           f"{format_code(old.member_code)}）" in again.get_data(as_text=True)
    shopper = customer(app, user_id(3), spend=200)
    refused = move_form(browser, old.member_code, shopper.member_code)
    assert refused.status_code == 400 and "已有自己的消費" in refused.get_data(as_text=True)
    with rt.sessions() as session:
        assert session.get(Member, shopper.id).line_user_id == user_id(3)


@needs_chromium
def test_the_owner_moves_a_membership_on_a_phone(console):  # noqa: F811
    from selenium.webdriver.common.by import By

    shop, base, driver = console
    account(shop, "owner@cafe.tw", "owner")
    old = customer(shop, user_id(11), spend=800)
    new = customer(shop, user_id(12), points=20)
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "owner@cafe.tw", "password": PASSWORD})
    driver.get(f"{base}/admin/members/{old.member_code}")
    before = int(driver.find_element(By.CSS_SELECTOR, "[data-balance]").text.replace(",", ""))
    fill(driver, {"new_code": format_code(new.member_code).lower(),
                  "reason": "lost phone, ID card checked"}, form="form[data-form=move]")
    assert "已轉移到新的 LINE 帳號" in text(driver), text(driver)
    after = int(driver.find_element(By.CSS_SELECTOR, "[data-balance]").text.replace(",", ""))
    assert after == before + 20
    assert "lost phone, ID card checked" in text(driver)  # in the audit trail shown
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-move.png"))
    fill(driver, {"new_code": new.member_code, "reason": "again"},
         form="form[data-form=move]")
    assert re.search("已經轉移過了", text(driver))
    assert errors(driver) == [] or all("status of 400" in e for e in errors(driver))
