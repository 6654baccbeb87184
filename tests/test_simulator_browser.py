"""The simulator in headless Chromium (Debian's chromium and chromedriver), read from the DOM.

Screenshots go to test-artifacts/. The README's picture of the simulator (docs/simulator.png)
is the one the first test takes; `UPDATE_SCREENSHOTS=1` copies it there, to commit when the
page has changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from bot.config import ROOT
from tests.chromium import chrome, needs_chromium
from tests.live_app import free_port, served, simulator_config

pytestmark = needs_chromium
ARTIFACTS = ROOT / "test-artifacts"
WAIT = 20  # seconds: the first event warms up the app


@pytest.fixture(scope="module")
def browser():
    driver = chrome(1280, 1000)
    yield driver
    driver.quit()


@pytest.fixture
def site(tmp_path, sqlite_template, browser):
    path = tmp_path / "loyalty.db"
    shutil.copy(sqlite_template, path)
    # with an OA basic id a QR holds a line.me link that opens the chat with the text typed
    config = simulator_config(f"sqlite:///{path}", free_port(), line_oa_basic_id="@cafe")
    with served(config) as (app, base):
        browser.get(f"{base}/simulator")
        browser.get_log("browser")  # start each test with an empty console
        yield Page(browser, base)


class Page:
    """What a person sees and does on the simulator page."""

    def __init__(self, driver, base: str):
        self.driver, self.base = driver, base

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def until(self, check, what: str):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT, poll_frequency=0.1).until(
            lambda _: check(), message=f"waited {WAIT}s for {what}")

    def persona(self, key: str) -> None:
        self.find(f'.sim-persona[data-persona="{key}"]').click()

    def bot_messages(self, key: str) -> list:
        return self.all(f'.sim-conversation[data-persona="{key}"] .sim-from-bot')

    def said(self, key: str, count_before: int, what: str) -> str:
        """Wait for the bot's next message in `key`'s chat; its visible text."""
        self.until(lambda: len(self.bot_messages(key)) > count_before, what)
        from selenium.webdriver.common.by import By

        message = self.bot_messages(key)[count_before]
        self.driver.execute_script("arguments[0].scrollIntoView()", message)
        return message.find_element(By.CSS_SELECTOR, ".sim-msg").get_attribute("textContent")

    def follow(self, key: str) -> str:
        self.persona(key)
        before = len(self.bot_messages(key))
        self.find("#sim-follow").click()
        return self.said(key, before, f"{key}'s welcome")

    def tap_area(self, key: str, label: str) -> str:
        before = len(self.bot_messages(key))
        self.find(f'.sim-richmenu:not([hidden]) .sim-area[aria-label="{label}"]').click()
        if label == "生日":  # a datetime picker: LINE asks for the date first
            self.until(lambda: self.find("#sim-picker").get_attribute("open") is not None,
                       "the date picker")
            self.driver.execute_script(
                "document.querySelector('#sim-picker-input').value = '1995-12-01'")
            self.find("#sim-picker-ok").click()
        return self.said(key, before, f"the answer to {label}")

    def confirm_birthday(self, key: str) -> str:
        """Tap the first quick reply (確定 / Yes) under the bot's last message."""
        before = len(self.bot_messages(key))
        self.all(f'.sim-conversation[data-persona="{key}"] .sim-chip')[-3].click()
        return self.said(key, before, "the birthday saved")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser")
                if entry["level"] == "SEVERE"]


def test_a_customer_follows_and_each_rich_menu_area_shows_its_card(site):
    welcome = site.follow("mei")
    assert "歡迎加入" in welcome and "小美" in welcome
    answers = {label: site.tap_area("mei", label)
               for label in ("我的點數", "集點卡", "優惠券", "會員卡", "兌換好禮", "生日")}
    assert "點" in answers["我的點數"] and "一般會員" in answers["我的點數"]
    assert "/ 10" in answers["集點卡"]
    assert re.search(r"[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", answers["優惠券"])
    assert "會員" in answers["會員卡"] and "小美" in answers["會員卡"]
    assert "兌換好禮" in answers["兌換好禮"]
    assert "1995/12/01" in answers["生日"] and "只能設定一次" in answers["生日"]
    assert "已記下你的生日 1995/12/01" in site.confirm_birthday("mei")
    cards = site.all('.sim-conversation[data-persona="mei"] .flex-bubble')
    qr_codes = site.all('.sim-conversation[data-persona="mei"] img[src*="/qr/"]')
    assert len(cards) >= 5 and len(qr_codes) >= 2  # the coupon's and the member card's
    site.until(lambda: all(site.driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        for img in qr_codes), "the QR images")
    site.driver.execute_script(
        "document.querySelector('.sim-conversation[data-persona=\"mei\"] .sim-scan')"
        ".scrollIntoView({block: 'center'})")
    shot = site.screenshot("simulator-customer")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / "simulator.png")
    assert site.console_errors() == []


def test_staff_redeem_a_coupon_they_scan_in_the_customers_chat(site):
    site.follow("mei")
    site.tap_area("mei", "優惠券")
    scan = site.all('.sim-conversation[data-persona="mei"] .sim-scan')[0]
    code = re.fullmatch(r"核銷 ([0-9A-Z]{9})", scan.get_attribute("data-scan")).group(1)
    kai_before = len(site.bot_messages("kai"))
    mei_before = len(site.bot_messages("mei"))
    site.driver.execute_script("arguments[0].click()", scan)

    assert site.find("#sim-who").text == "店員 Kai"  # the scan opens the staff chat ...
    assert site.find("#sim-text").get_attribute("value") == f"核銷 {code}"  # ... text typed
    site.find(".sim-send").click()
    result = site.said("kai", kai_before, "the redemption result")
    assert "核銷成功" in result and "小美" in result
    told = site.said("mei", mei_before, "the customer's confirmation")
    assert "優惠券已使用" in told
    badge = site.find('.sim-persona[data-persona="mei"] .sim-badge')
    assert badge.is_displayed() and badge.text == "1"
    site.screenshot("simulator-staff")
    assert site.console_errors() == []


def test_a_customer_scans_the_claim_code_on_the_staff_screen_and_gets_the_receipt(site):
    site.follow("mei")
    site.persona("kai")
    kai_before, mei_before = len(site.bot_messages("kai")), len(site.bot_messages("mei"))
    site.find("#sim-text").send_keys("集點 350")
    site.find(".sim-send").click()
    card = site.said("kai", kai_before, "the claim code")
    assert "領取碼" in card and "NT$350" in card
    scan = site.all('.sim-conversation[data-persona="kai"] .sim-scan')[-1]
    site.driver.execute_script("arguments[0].click()", scan)

    assert site.find("#sim-who").text != "店員 Kai"  # the customer scans it ...
    typed = site.find("#sim-text").get_attribute("value")
    assert re.fullmatch(r"領取 [0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", typed)  # ... text typed
    site.find(".sim-send").click()
    receipt = site.said("mei", mei_before + 0, "the receipt")
    assert "11" in receipt  # NT$350 / 30: the receipt is the bot's reply
    assert site.console_errors() == []


def test_a_birthday_card_from_the_clock_panel_rides_the_reply_to_the_next_tap(site):
    from selenium.webdriver.support.ui import Select

    assert "Welcome" in site.follow("emma")
    assert "Is your birthday 1995/12/01?" in site.tap_area("emma", "生日")
    assert "your birthday is 1995/12/01" in site.confirm_birthday("emma")
    Select(site.find("#sim-job")).select_by_value("birthday")
    site.driver.execute_script(
        "document.querySelector('#sim-at').value = '2026-12-01T09:00'")
    site.find("#sim-run").click()
    site.until(lambda: "waiting for a free reply" in site.find("#sim-clock-result").text,
               "the job's summary")
    assert "1 birthday messages queued" in site.find("#sim-clock-result").text
    before = len(site.bot_messages("emma"))
    site.tap_area("emma", "我的點數")  # her next tap: the card comes with the answer, unbilled
    assert "Happy birthday" in site.said("emma", before + 1, "the birthday card")
    assert site.all('.sim-conversation[data-persona="emma"] .sim-from-bot')[-1].get_attribute(
        "data-via") == "reply"
    site.screenshot("simulator-birthday")
    assert site.console_errors() == []


def test_every_template_renders_in_the_gallery_without_a_console_error(site):
    site.driver.get(f"{site.base}/simulator/gallery")
    site.driver.execute_script("[...document.images].forEach(i => { i.loading = 'eager'; })")
    site.until(lambda: site.driver.execute_script(
        "return [...document.images].every(i => i.complete)"), "the gallery's images")
    templates = {p.stem for p in (ROOT / "flex_templates").glob("*.json")
                 if not p.stem.startswith("strings.")}
    samples = [s.get_attribute("data-sample") for s in site.all(".sim-sample")]
    assert {s.split()[0] for s in samples} == templates
    assert len(samples) >= 2 * len(templates)
    assert site.all(".sim-unknown") == []
    broken = site.driver.execute_script(
        "return [...document.images].filter(i => !i.naturalWidth).map(i => i.src)")
    assert broken == []
    site.screenshot("gallery")
    assert site.console_errors() == [], json.dumps(site.console_errors(), ensure_ascii=False)


def test_a_customer_who_blocks_the_shop_loses_the_menu_until_unblocking(site):
    site.follow("jie")
    site.find("#sim-follow").click()  # block
    site.until(lambda: site.find(".sim-blocked-note").is_displayed(), "the blocked chat")
    assert not site.find("#sim-text").is_displayed()
    assert site.find("#sim-follow").text == "Unblock the shop (follow)"
    assert "歡迎" in site.follow("jie")  # unblocking sends a follow: welcome back
    site.until(lambda: site.find("#sim-text").is_displayed(), "the chat box again")
    assert site.console_errors() == []


def test_flex_buttons_work_staff_confirm_a_large_purchase_and_the_customer_redeems_points(site):
    from selenium.webdriver.common.by import By

    def button(key: str, label: str):
        last = site.bot_messages(key)[-1]
        return next(b for b in last.find_elements(By.CSS_SELECTOR, ".sim-action")
                    if b.text.strip() == label)

    site.follow("mei")
    site.tap_area("mei", "會員卡")
    card_qr = site.all('.sim-conversation[data-persona="mei"] .sim-scan')[-1]
    site.driver.execute_script("arguments[0].click()", card_qr)
    typed = site.find("#sim-text").get_attribute("value")
    assert re.fullmatch(r"集點 [0-9A-Z]{9} ", typed)  # the amount is the staff's to type
    site.find("#sim-text").send_keys("4000")
    before = len(site.bot_messages("kai"))
    site.find(".sim-send").click()
    assert "金額較大" in site.said("kai", before, "the confirmation step")
    mei_before = len(site.bot_messages("mei"))
    button("kai", "確認集點").click()
    assert "消費已記錄" in site.said("kai", before + 1, "the recorded purchase")
    assert "消費明細" in site.said("mei", mei_before, "the customer's receipt")

    site.persona("mei")
    catalog = site.tap_area("mei", "兌換好禮")
    assert "兌換好禮" in catalog
    before = len(site.bot_messages("mei"))
    button("mei", "兌換").click()
    assert "確認兌換" in site.said("mei", before, "the reward's confirmation step")
    button("mei", "確認兌換").click()
    assert "兌換成功" in site.said("mei", before + 1, "the reward coupon")
    assert site.console_errors() == []
