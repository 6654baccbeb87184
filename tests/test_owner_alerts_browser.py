"""The owner's alerts in headless Chromium at a phone's width: the banner a stopped clock
raises on every page, the link code's QR for the owner's LINE chat, and a manager refused
the alerts page; no console error under the page's CSP."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import update

from bot.db import transaction
from bot.jobs import JOBS, run_job
from bot.loyalty.timeutil import utcnow
from bot.models import JobRun
from tests import test_console_browser as shots
from tests.chromium import needs_chromium
from tests.test_console_browser import ARTIFACTS, PASSWORD, account, fill, text
from tests.test_jobs import make_runtime

pytestmark = needs_chromium
phone, console = shots.phone, shots.console  # the console tests' phone and served app


def banner(driver) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, "[data-alerts]")
    return found[0].text if found else ""


def test_a_stopped_clock_shows_on_every_page_and_the_owner_links_line(console):
    app, base, driver = console
    rt = app.extensions["loyalty"]
    account(app, "owner@cafe.tw", "owner")
    account(app, "mei@cafe.tw", "manager")
    run_job(make_runtime(rt.sessions, rt.program, rt.config), JOBS["tags"], utcnow())
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "owner@cafe.tw", "password": PASSWORD})
    assert banner(driver) == ""  # the clock ran just now
    with transaction(rt.sessions) as session:  # the clock stops: its last run is 40 minutes old
        session.execute(update(JobRun).values(
            last_completed_at=utcnow() - dt.timedelta(minutes=40)))
    for path in ("/admin/", "/admin/campaigns", "/admin/staff"):
        driver.get(f"{base}{path}")
        assert "排程已經 40 分鐘沒有執行" in banner(driver), path
    driver.get(f"{base}/admin/alerts")
    assert "排程已經 40 分鐘沒有執行" in text(driver) and "還沒有連結 LINE" in text(driver)
    fill(driver, {}, form="main form.inline")
    assert re.search(r"店主 [0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}", text(driver)), text(driver)
    drawn = driver.execute_script(  # the QR image loaded under the page's CSP
        "const i = document.getElementById('link-qr'); return i.complete && i.naturalWidth")
    assert drawn and drawn > 100
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-alerts.png"))
    assert shots.errors(driver) == []
    driver.delete_all_cookies()  # a manager on the same phone: the banner, not the page
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "mei@cafe.tw", "password": PASSWORD})
    assert "排程已經 40 分鐘沒有執行" in banner(driver)
    driver.get(f"{base}/admin/alerts")
    assert "只有店主可以設定提醒" in text(driver)
    refused = "/admin/alerts - Failed to load resource: the server responded with a status " \
              "of 403"  # the page that said so, as intended
    assert [e for e in shots.errors(driver) if refused not in e] == []
