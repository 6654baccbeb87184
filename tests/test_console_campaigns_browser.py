"""The campaigns page in headless Chromium at a phone's width: the live count as the form
changes, a refused form that makes nothing, a campaign created and sent now by the clock,
its results, and a claim campaign opened; no console error under the page's CSP."""

from __future__ import annotations

import re

from bot.db import transaction
from bot.jobs import JOBS, run_job
from bot.loyalty import segments
from bot.loyalty.members import register_member
from bot.loyalty.timeutil import utcnow
from bot.models import Campaign
from tests import test_console_browser as shots
from tests.chromium import needs_chromium
from tests.line_helpers import user_id
from tests.test_console_browser import ARTIFACTS, PASSWORD, account, click_and_wait, fill, text
from tests.test_jobs import make_runtime

pytestmark = needs_chromium
phone, console = shots.phone, shots.console  # the console tests' phone and served app


def count_says(driver, words: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shown = driver.find_element(By.CSS_SELECTOR, "[data-reach]")
    WebDriverWait(driver, 10).until(lambda _: words in shown.text)
    return shown.text


def button(driver, form: str, value: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'{form} button[value="{value}"]')


def choose(driver, name: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.NAME, name)).select_by_value(value)


def tick(driver, name: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]')
    driver.execute_script("arguments[0].click()", box)


def test_a_manager_counts_creates_and_sends_a_campaign_on_a_phone(console):
    app, base, driver = console
    rt = app.extensions["loyalty"]
    account(app, "owner@cafe.tw", "owner")
    account(app, "mei@cafe.tw", "manager")
    with transaction(rt.sessions) as session:
        for n in range(1, 4):
            member = register_member(session, rt.program, user_id(n), utcnow()).member
            segments.add_tag(session, member, "regulars" if n < 3 else "family", utcnow(),
                             actor="test")
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "mei@cafe.tw", "password": PASSWORD})
    driver.get(f"{base}/admin/campaigns")
    assert "還沒有活動" in text(driver)
    create = "form[data-form=create]"
    count_says(driver, "會送到 3 位會員，需要 0 則 LINE 推播")  # everyone, before any choice
    tick(driver, "include", "regulars")
    tick(driver, "push", "1")
    said = count_says(driver, "會送到 2 位會員，需要 2 則 LINE 推播")
    assert "本月額度還剩 3,000 則" in said
    driver.execute_script("document.querySelector('[data-reach]').scrollIntoView()")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-campaign-count.png"))
    # a claim campaign without its keyword: said on the page, nothing made
    tick(driver, "mode", "claim")
    count_says(driver, "關鍵字領取的活動要填領取關鍵字")
    click_and_wait(driver, button(driver, create, "create"))
    assert "關鍵字領取的活動要填領取關鍵字" in text(driver)
    with rt.sessions() as session:
        assert session.query(Campaign).count() == 0
    tick(driver, "mode", "issue")
    choose(driver, "template", "nt50")
    click_and_wait(driver, button(driver, create, "create"))
    assert "活動「折價NT$50」已建立（草稿）" in text(driver)
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    click_and_wait(driver, button(driver, "form[data-form=send]", "send_now"))
    assert "會在一分鐘內由排程發送" in text(driver)
    run_job(make_runtime(rt.sessions, rt.program, rt.config), JOBS["campaigns"], utcnow())
    driver.get(f"{base}/admin/campaigns")
    card = text(driver)
    assert re.search(r"已發送 \d{4}/\d{2}/\d{2}", card), card
    issued = driver.execute_script(
        "return document.querySelector('[data-figure=issued]').textContent")
    assert issued == "2"
    # a claim campaign, opened: members may send its keyword
    choose(driver, "template", "free_drink")
    tick(driver, "mode", "claim")
    from selenium.webdriver.common.by import By

    driver.find_element(By.NAME, "keyword").send_keys("搶飲料")
    count_says(driver, "會送到 3 位會員")  # a fresh form: every member
    click_and_wait(driver, button(driver, create, "create"))
    click_and_wait(driver, button(driver, "[data-campaign^=c] form", "open"))
    assert "開放領取了" in text(driver) and "開放領取中" in text(driver)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-campaigns.png"))
    refused = "/admin/campaigns - Failed to load resource: the server responded with a " \
              "status of 400"  # the page that refused the claim campaign without a keyword
    assert [e for e in shots.errors(driver) if refused not in e] == []
