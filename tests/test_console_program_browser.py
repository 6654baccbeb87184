"""In Chromium: the owner edits the earning rate and a coupon template in the console, and,
with no restart, the next staff purchase in the simulator earns by the new rate and the
clock's next birthday job gives the edited coupon. Rolling the rate back takes points away
from members, so it waits out the notice period: meanwhile purchases keep the better rate
and the points card announces the change."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from tests.chromium import chrome, needs_chromium
from tests.live_app import free_port, served, simulator_config
from tests.test_console_browser import click_and_wait, errors, fill, text
from tests.test_simulator_browser import Page

pytestmark = needs_chromium
TOKEN, PASSWORD = "program-browser-token", "a long owner password"


@pytest.fixture(scope="module")
def driver():
    driver = chrome(1280, 1000)
    yield driver
    driver.quit()


@pytest.fixture
def shop(tmp_path, sqlite_template, driver):
    path = tmp_path / "loyalty.db"
    shutil.copy(sqlite_template, path)
    config = dataclasses.replace(simulator_config(f"sqlite:///{path}", free_port(),
                                                  line_oa_basic_id="@cafe"),
                                 console_setup_token=TOKEN)
    with served(config) as (app, base):
        driver.get(f"{base}/admin")
        fill(driver, {"token": TOKEN, "email": "owner@cafe.tw", "password": PASSWORD})
        driver.get_log("browser")
        yield app, base, Page(driver, base)


def review_and_save(driver) -> str:
    from selenium.webdriver.common.by import By

    click_and_wait(driver, driver.find_element(
        By.CSS_SELECTOR, "form[action$='/program/save'] button"))
    return text(driver)


def staff_purchase(site: Page, amount: int) -> str:
    """Kai (staff) scans Mei's member card and records a purchase; Mei's receipt."""
    site.persona("mei")
    site.tap_area("mei", "會員卡")
    card_qr = site.all('.sim-conversation[data-persona="mei"] .sim-scan')[-1]
    site.driver.execute_script("arguments[0].click()", card_qr)
    site.find("#sim-text").send_keys(str(amount))
    before = len(site.bot_messages("mei"))
    site.find(".sim-send").click()
    return site.said("mei", before, "Mei's receipt")


def test_an_edited_rate_and_coupon_are_in_force_at_once_and_a_rollback_undoes_them(shop):
    from selenium.webdriver.support.ui import Select

    app, base, site = shop
    driver = site.driver
    driver.get(f"{base}/admin/program/earning")
    fill(driver, {"amount_per_point": "10"})
    assert "earning.amount_per_point: 30 -> 10" in text(driver)
    assert "第 2 版已生效" in review_and_save(driver)

    driver.get(f"{base}/admin/program/coupons/bday_member")
    assert "生日快樂" in text(driver)  # the card as customers see it now
    fill(driver, {"title_en": "Happy birthday! A free pastry", "gift_en": "A free pastry"})
    assert "A free pastry" in text(driver)  # the review shows the card to come
    assert "第 3 版已生效" in review_and_save(driver)

    driver.get(f"{base}/simulator")
    site.follow("mei")
    receipt = staff_purchase(site, 300)
    assert "+30" in receipt.replace(" ", "")  # NT$300 at NT$10 a point

    assert "Welcome" in site.follow("emma")
    site.tap_area("emma", "生日")
    site.confirm_birthday("emma")
    Select(site.find("#sim-job")).select_by_value("birthday")
    driver.execute_script("document.querySelector('#sim-at').value = '2026-12-01T09:00'")
    site.find("#sim-run").click()
    site.until(lambda: "birthday messages queued" in site.find("#sim-clock-result").text,
               "the job's summary")
    before = len(site.bot_messages("emma"))
    site.tap_area("emma", "我的點數")
    assert "A free pastry" in site.said("emma", before + 1, "the birthday card")

    driver.get(f"{base}/admin/program")
    from selenium.webdriver.common.by import By

    click_and_wait(driver, driver.find_element(
        By.CSS_SELECTOR, "tr[data-version='1'] form button"))
    assert "第 4 版已儲存，將於" in text(driver)  # a point per NT$30 takes points away
    driver.get(f"{base}/simulator")
    receipt = staff_purchase(site, 600)
    assert "+60" in receipt.replace(" ", "")  # still NT$10 a point until then
    site.persona("mei")
    card = site.tap_area("mei", "我的點數")
    assert "權益異動預告" in card and "每消費 NT$30 得 1 點（現在 NT$10）" in card
    site.screenshot("points-card-changes-coming")
    assert errors(driver) == []
