"""The owner console in headless Chromium at a phone's width: the first owner, signing in,
the dashboard, a staff invite's QR and the clock page, with no script and no console error
under the page's CSP.

The README's picture of the console (docs/console.png) is the dashboard screenshot taken
here; `UPDATE_SCREENSHOTS=1` copies it there, to commit when the page has changed."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil

import pytest

from bot.config import ROOT
from bot.db import transaction
from bot.loyalty import accounts, daily
from bot.loyalty.members import find_by_code, find_by_line_user, register_member
from bot.loyalty.purchases import record_purchase
from bot.loyalty.report import build_report, report_period
from bot.loyalty.timeutil import utcnow
from bot.simulator.store import line_user_id
from tests.chromium import chrome, needs_chromium
from tests.line_helpers import user_id
from tests.live_app import free_port, served, simulator_config
from tests.test_simulator_browser import Page

pytestmark = needs_chromium
ARTIFACTS = ROOT / "test-artifacts"
TOKEN, PASSWORD = "console-browser-token", "a long owner password"


@pytest.fixture(scope="module")
def phone():
    driver = chrome(390, 844, phone=True)
    yield driver
    driver.quit()


@pytest.fixture
def console(tmp_path, sqlite_template, phone):
    path = tmp_path / "loyalty.db"
    shutil.copy(sqlite_template, path)
    config = dataclasses.replace(simulator_config(f"sqlite:///{path}", free_port()),
                                 console_setup_token=TOKEN)
    with served(config) as (app, base):
        yield app, base, phone


def fill(driver, values: dict[str, str], form: str = "main form") -> None:
    """Type into the page's (first) form, or the one `form` selects, send it, and wait for
    the next page. A <select> is set to the option of that value."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    found = driver.find_element(By.CSS_SELECTOR, form)
    for name, value in values.items():
        field = found.find_element(By.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
            continue
        field.clear()
        field.send_keys(value)
    click_and_wait(driver, found.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def click_and_wait(driver, button) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "main")
    # clicked in script: the phone emulation's tap misses a button scrolled into view
    driver.execute_script("arguments[0].click()", button)
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(page))


def text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "main").text


def errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]


def test_the_first_owner_signs_in_on_a_phone_and_reads_the_dashboard(console):
    app, base, driver = console
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), utcnow()).member
        record_purchase(session, rt.program, member.id, 1280, utcnow(), source="pos",
                        order_id="A-1", actor="test")
    driver.get(f"{base}/admin")
    assert driver.current_url.endswith("/admin/setup")
    fill(driver, {"token": TOKEN, "email": "owner@cafe.tw", "password": PASSWORD})
    assert "NT$1,280" in text(driver) and "會員總數" in text(driver)

    from selenium.webdriver.common.by import By

    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "header form button.link"))
    fill(driver, {"email": "owner@cafe.tw", "password": "not the password"})
    assert "電子郵件或密碼不正確" in text(driver)
    fill(driver, {"email": "owner@cafe.tw", "password": PASSWORD})
    assert "營收" in text(driver) and "數字統計至" not in text(driver)  # live: no clock yet
    with transaction(rt.sessions) as session:  # the clock's dashboard job runs
        daily.refresh(session, rt.program, utcnow())
    driver.get(f"{base}/admin/")
    assert "數字統計至" in text(driver)  # now from the daily figures, up to the job's run
    drawn = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('canvas[data-chart]')]"
        ".map(c => [c.dataset.chart, Chart.getChart(c).data.datasets.map(d => d.data)]))")
    with rt.sessions() as session:
        start, end = report_period(rt.program, None, None, utcnow())
        shown = build_report(session, rt.program, start, end, utcnow()).to_dict()
    weeks = shown["weeks"]
    assert drawn == {
        "weekly": [[w["purchases"] for w in weeks], [w["revenue"] for w in weeks]],
        "customers": [[w["new_customers"] for w in weeks],
                      [w["returning_customers"] for w in weeks]],
        "coupons": [[row["redeemed"] for row in shown["coupons"]["templates"]]],
        "funnel": [[step["cards"] for step in shown["stamps"]["steps"]]],
        "tiers": [[tier["members"] for tier in shown["tiers"]]]}
    assert drawn["weekly"][1] == [1280] or sum(drawn["weekly"][1]) == 1280
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "console-dashboard.png"
    driver.save_screenshot(str(shot))
    assert driver.execute_script("return window.innerWidth") == 390
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390  # nothing runs off a phone's screen
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / "console.png")
    driver.execute_script("document.querySelector('.charts').scrollIntoView()")
    driver.save_screenshot(str(ARTIFACTS / "console-charts.png"))

    driver.get(f"{base}/admin/members?q=1280")  # nobody: then by the member's code
    assert "找不到" in text(driver)
    driver.get(f"{base}/admin/members?q={member.member_code.lower()}")
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "td a"))
    fill(driver, {"delta": "30", "reason": "birthday bonus"})
    assert "已調整 +30 點" in text(driver)
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    driver.save_screenshot(str(ARTIFACTS / "console-member.png"))
    wrong_password = "/admin/login - Failed to load resource: the server responded with a " \
                     "status of 401"  # the page that said so, as intended
    assert [e for e in errors(driver) if wrong_password not in e] == []


def account(app, email: str, role: str) -> None:
    """An account with its password set, as its one-time link would."""
    with transaction(app.extensions["loyalty"].sessions) as session:
        _, token = accounts.add_account(session, email, role, utcnow(), actor="test")
        accounts.set_password_by_link(session, token, PASSWORD, utcnow())


def test_a_manager_finds_no_erase_form_and_one_sent_anyway_is_refused(console):
    app, base, driver = console
    rt = app.extensions["loyalty"]
    account(app, "owner@cafe.tw", "owner")
    account(app, "mei@cafe.tw", "manager")
    with transaction(rt.sessions) as session:
        code = register_member(session, rt.program, user_id(1), utcnow(),
                               display_name="王小美").member.member_code
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "mei@cafe.tw", "password": PASSWORD})
    driver.get(f"{base}/admin/members/{code}")
    from selenium.webdriver.common.by import By

    assert driver.find_elements(By.CSS_SELECTOR, "form[data-form=erase]") == []
    assert "請由店主操作" in text(driver)
    # the erase form an owner's page would have, sent with this page's own CSRF token
    driver.execute_script("""
        const form = document.querySelector('form[data-form=stamps]').cloneNode(true);
        form.action = location.pathname + '/erase';
        const confirm = form.querySelector('input[name=stamps]');
        Object.assign(confirm, {name: 'confirm', type: 'text', value: arguments[0]});
        form.querySelector('input[name=reason]').value = 'asked';
        document.querySelector('main').append(form);""", code)
    click_and_wait(driver, driver.find_elements(By.CSS_SELECTOR,
                                                "form[data-form=stamps] button")[-1])
    assert "只有店主可以刪除會員的個人資料" in text(driver)
    with rt.sessions() as session:
        member = find_by_code(session, code)
        assert (member.status, member.display_name) == ("active", "王小美")
    refused = f"/admin/members/{code}/erase - Failed to load resource: the server " \
              "responded with a status of 403"  # the page that said so, as intended
    assert [e for e in errors(driver) if refused not in e] == []


@pytest.fixture(scope="module")
def desktop():
    driver = chrome(1280, 1000)
    yield driver
    driver.quit()


def test_a_coupon_issued_in_the_console_is_in_the_customers_wallet_in_the_simulator(
        tmp_path, sqlite_template, desktop):
    path = tmp_path / "loyalty.db"
    shutil.copy(sqlite_template, path)
    with served(simulator_config(f"sqlite:///{path}", free_port())) as (app, base):
        site = Page(desktop, base)
        desktop.get(f"{base}/simulator")
        assert "小美" in site.follow("mei")
        with app.extensions["loyalty"].sessions() as session:
            code = find_by_line_user(session, line_user_id("mei")).member_code
        account(app, "owner@cafe.tw", "owner")
        account(app, "mei@cafe.tw", "manager")
        desktop.get(f"{base}/admin/login")
        fill(desktop, {"email": "mei@cafe.tw", "password": PASSWORD})
        desktop.get(f"{base}/admin/members?q=小美")
        from selenium.webdriver.common.by import By

        click_and_wait(desktop, desktop.find_element(By.CSS_SELECTOR, f'[data-member="{code}"] a'))
        fill(desktop, {"template": "cake_set", "reason": "生日派對訂位"},
             form="form[data-form=coupon]")
        issued = re.search(r"已發送「蛋糕套餐兌換券」，代碼 ([0-9A-Z-]{11})", text(desktop))
        assert issued, text(desktop)
        desktop.get(f"{base}/simulator")
        site.persona("mei")
        wallet = site.tap_area("mei", "優惠券")
        assert "蛋糕套餐兌換券" in wallet
        codes = [scan.get_attribute("data-scan") for scan in
                 site.all('.sim-conversation[data-persona="mei"] .sim-scan')]
        assert f"核銷 {issued.group(1).replace('-', '')}" in codes
        assert site.console_errors() == []


def test_a_manager_invites_staff_on_a_phone_and_the_qr_and_the_clock_page_show(console):
    app, base, driver = console
    account(app, "owner@cafe.tw", "owner")
    account(app, "mei@cafe.tw", "manager")
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "mei@cafe.tw", "password": PASSWORD})
    driver.get(f"{base}/admin/staff")
    assert "還沒有員工" in text(driver)
    fill(driver, {"name": "阿明"}, form="form.card")
    assert re.search(r"員工 [0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", text(driver)), text(driver)
    drawn = driver.execute_script(  # the QR image loaded under the page's CSP
        "const i = document.getElementById('invite-qr'); return i.complete && i.naturalWidth")
    assert drawn and drawn > 100
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-staff.png"))
    driver.get(f"{base}/admin/clock")
    assert "排程工作" in text(driver) and "每分鐘" in text(driver)
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    assert errors(driver) == []
    driver.delete_all_cookies()  # the owner, on the same phone: the rich menus' preview
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "owner@cafe.tw", "password": PASSWORD})
    driver.get(f"{base}/admin/richmenu")
    drawn = driver.execute_script("return [...document.querySelectorAll('img.richmenu')]"
                                  ".map(i => i.complete && i.naturalWidth)")
    assert drawn == [2500, 2500]  # both pictures, under the page's CSP
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    driver.save_screenshot(str(ARTIFACTS / "console-richmenu.png"))
    assert errors(driver) == []
