"""The console's import in Debian's chromium on a phone: a file uploaded through the page,
its progress shown as the page reloads itself (no script: the CSP allows none inline) while
the clock's job imports it, to the end, with the refused rows and their download."""

from __future__ import annotations

import re
import threading
import time

from bot.db import transaction
from bot.loyalty import import_queue
from bot.loyalty.timeutil import utcnow
from tests.chromium import needs_chromium
from tests.test_console_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    PASSWORD,
    account,
    click_and_wait,
    console,
    errors,
    fill,
    phone,
    text,
)

pytestmark = needs_chromium
ROWS = 200


def reloading_text(driver) -> str:
    """text(driver) of a page that reloads itself: a reload between finding <main> and
    reading it leaves a stale element; read the new page instead."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            return text(driver)
        except StaleElementReferenceException:
            time.sleep(0.05)
    return text(driver)


def test_an_owner_uploads_a_file_on_a_phone_and_watches_it_imported_with_refused_rows(
        console, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    app, base, driver = console
    rt = app.extensions["loyalty"]
    account(app, "owner@cafe.tw", "owner")
    driver.get(f"{base}/admin/login")
    fill(driver, {"email": "owner@cafe.tw", "password": PASSWORD})
    driver.get(f"{base}/admin/import")
    assert "還沒有匯入過" in text(driver)
    path = tmp_path / "pos.csv"
    path.write_text("phone,name,birthday,points,external_id\n" + "".join(
        f"09{i:08d},客人{i},,{i},POS-{i}\n" for i in range(ROWS - 2))
        + "0912,壞手機,,0,POS-A\n" + "0900000001,重複,,0,POS-B\n", encoding="utf-8")
    driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(path))
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#import-form button"))
    assert "排隊中" in text(driver) and "每分鐘會接手" in text(driver)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-import-queued.png"))

    def clock() -> None:  # the clock process, slowed to a batch of 10 every 0.3 s
        with transaction(rt.sessions) as session:
            claim = import_queue.claim_next(session, utcnow())

        def slow_now():
            time.sleep(0.3)
            return utcnow()
        import_queue.run_import(rt.sessions, rt.program, *claim, batch_size=10,
                                clock=slow_now)
    worker = threading.Thread(target=clock)
    worker.start()
    seen, deadline = set(), time.monotonic() + 60
    while "完成" not in (shown := reloading_text(driver)) and time.monotonic() < deadline:
        seen.update(re.findall(r"已處理 ([\d,]+) / 200 列", shown))
        time.sleep(0.3)
    worker.join()
    assert "完成" in text(driver), text(driver)
    assert {int(n) for n in seen} & set(range(1, ROWS)), seen  # progress between the ends
    assert "已處理 200 / 200 列（100%）" in text(driver)
    assert driver.find_element(By.ID, "import-imported").text == "198"
    assert driver.find_element(By.ID, "import-refused").text == "2"
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#refused tbody tr")]
    assert rows == ["200 手機 '0912' 不是台灣的手機號碼（09xxxxxxxx）",
                    "201 手機 0900000001 也在第 3 行"]
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-import.png"))
    link = driver.find_element(By.PARTIAL_LINK_TEXT, "下載全部").get_attribute("href")
    downloaded = driver.execute_async_script(
        "fetch(arguments[0]).then(r => r.text()).then(arguments[1])", link)
    assert downloaded.splitlines()[1:] == [
        "200,手機 '0912' 不是台灣的手機號碼（09xxxxxxxx）", "201,手機 0900000001 也在第 3 行"]
    driver.find_element(By.PARTIAL_LINK_TEXT, "所有匯入").click()
    assert "pos.csv" in text(driver) and "完成" in text(driver)
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    driver.save_screenshot(str(ARTIFACTS / "console-import-list.png"))
    assert errors(driver) == []
