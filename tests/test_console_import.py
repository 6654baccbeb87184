"""The console's members import: the upload, its own size limit, the background import by
the clock's job, its progress, refused rows, and a restart after a crash that creates no
member twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import DEFAULT_PROGRAM, Config
from bot.jobs import JOBS, run_job
from bot.loyalty import import_queue, member_import
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog, Member, MemberImport, MemberImportPart, PointEntry
from tests.helpers import ledger_totals
from tests.test_console import (  # noqa: F401  (quick_hashes: a fixture, for every test)
    TOKEN,
    csrf,
    invite,
    quick_hashes,
    set_password,
    setup_owner,
    sign_in,
)

HEADER = "phone,name,birthday,points,external_id\n"


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


def pos_file(rows: int, start: int = 0) -> str:
    return HEADER + "".join(f"09{i:08d},會員{i},1990-01-{1 + i % 28:02d},{i % 50},POS-{i}\n"
                            for i in range(start, start + rows))


def upload(browser, text: str | bytes, name: str = "pos.csv"):
    data = text.encode() if isinstance(text, str) else text
    return browser.post("/admin/import", content_type="multipart/form-data", data={
        "csrf_token": csrf(browser, "/admin/import"), "file": (io.BytesIO(data), name)})


def run_clock(app, now: dt.datetime | None = None) -> str:
    return run_job(app.extensions["loyalty"].jobs(), JOBS["imports"], now or utcnow())


def count(app, model) -> int:
    with app.extensions["loyalty"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def the_import(app, import_id: int) -> MemberImport:
    with app.extensions["loyalty"].sessions() as session:
        return session.get(MemberImport, import_id)


def uploaded_id(answer) -> int:
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return int(answer.headers["Location"].rsplit("/", 1)[1])


def test_an_upload_waits_for_the_clock_which_imports_it_and_the_page_shows_every_count(
        app, browser):
    setup_owner(browser)
    text = pos_file(30) + "0912,Bad phone,,5,POS-X\n" + "0900000003,Twice,,1,POS-Y\n" \
        + "0900000040,Bad day,1990-02-30,0,POS-Z\n"
    import_id = uploaded_id(upload(browser, text))
    waiting = browser.get(f"/admin/import/{import_id}").get_data(as_text=True)
    assert "排隊中" in waiting and 'http-equiv="refresh"' in waiting
    assert "owner@cafe.tw 於 " in waiting and " 上傳，1 KB" in waiting
    assert count(app, Member) == 0  # nothing imported inside the web request

    said = run_clock(app)
    assert "33 of 33 rows, 30 imported, 0 already there, 3 refused" in said
    shown = browser.get(f"/admin/import/{import_id}").get_data(as_text=True)
    assert "完成" in shown and "已處理 33 / 33 列（100%）" in shown
    assert 'http-equiv="refresh"' not in shown  # done: the page stops reloading
    assert "<td>32</td><td>手機 &#39;0912&#39; 不是台灣的手機號碼（09xxxxxxxx）</td>" in shown
    assert "<td>33</td><td>手機 0900000003 也在第 5 行</td>" in shown
    assert "<td>34</td><td>生日 &#39;1990-02-30&#39; 不是 YYYY-MM-DD 或 YYYY/MM/DD 的日期" \
        in shown
    english = browser.get(f"/admin/import/{import_id}", headers={"Accept-Language": "en"})
    assert "<td>33</td><td>phone 0900000003 is also on line 5</td>" in \
        english.get_data(as_text=True)
    assert count(app, Member) == 30 and count(app, MemberImportPart) == 0  # bytes gone
    with app.extensions["loyalty"].sessions() as session:
        member = session.scalar(select(Member).where(Member.external_id == "POS-7"))
        assert (member.display_name, member.points_balance) == ("會員7", 7)
        actions = session.scalars(select(AuditLog.action).where(AuditLog.member_id.is_(None))
                                  ).all()
    assert ledger_totals(app.extensions["loyalty"].sessions, member.id) == (7, 7, 7)
    assert {"members.import.upload", "members.import", "members.import.finish"} <= set(actions)

    csv_text = browser.get(f"/admin/import/{import_id}/refused.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "\ufeffline,reason"
    assert [row.split(",")[0] for row in csv_text.splitlines()[1:]] == ["32", "33", "34"]

    again = uploaded_id(upload(browser, text))  # the same file again: nobody twice
    run_clock(app)
    job = the_import(app, again)
    assert (job.imported, job.skipped, job.refused) == (0, 30, 3)
    assert count(app, Member) == 30


def test_a_file_that_is_not_a_members_file_is_refused_at_once_and_nothing_is_stored(
        app, browser):
    setup_owner(browser)
    wrong = upload(browser, "name,mobile\nAmy,0912345678\n")
    assert wrong.status_code == 400
    assert "missing column(s): phone, birthday, points, external_id" in \
        wrong.get_data(as_text=True)
    big5 = upload(browser, b"phone,name,birthday,points,external_id\n"
                  .replace(b"name", "姓名".encode("big5")))
    assert big5.status_code == 400 and "UTF-8" in big5.get_data(as_text=True)
    none = browser.post("/admin/import", content_type="multipart/form-data",
                        data={"csrf_token": csrf(browser, "/admin/import")})
    assert none.status_code == 400 and "請先選擇要上傳的 CSV 檔" in none.get_data(as_text=True)
    assert count(app, MemberImport) == 0 and count(app, MemberImportPart) == 0


def test_a_file_past_the_upload_limit_gets_a_page_saying_so(config):
    app = create_app(dataclasses.replace(config, import_max_bytes=2 * 1024 * 1024))
    try:
        browser = app.test_client()
        setup_owner(browser)
        over_app_limit = pos_file(25_000)  # about 1.1 MB: past the app's 1 MB, not this one's
        assert 1024 * 1024 < len(over_app_limit.encode()) < 2 * 1024 * 1024
        assert upload(browser, over_app_limit).status_code == 302
        too_large = upload(browser, b"x" * (2 * 1024 * 1024 + 1))
        page = too_large.get_data(as_text=True)
        assert too_large.status_code == 413
        assert "檔案太大（2.0 MB），最大 2 MB" in page and "什麼都沒有匯入" in page
        assert count(app, MemberImport) == 1
        other = browser.post("/admin/members/X/coupon", data={"reason": "x" * 1_100_000})
        assert other.status_code == 413 and "送出的資料太大" in other.get_data(as_text=True)
    finally:
        app.extensions["loyalty"].engine.dispose()


def test_only_an_owner_imports(app, browser):
    setup_owner(browser)
    set_password(browser, invite(app, "mei@cafe.tw", "manager"))
    sign_in(browser, "mei@cafe.tw")
    page = browser.get("/admin/import")
    assert page.status_code == 403 and "只有店主可以匯入會員" in page.get_data(as_text=True)
    refused = browser.post("/admin/import", content_type="multipart/form-data", data={
        "csrf_token": csrf(browser, "/admin/members"),
        "file": (io.BytesIO(pos_file(3).encode()), "pos.csv")})
    assert refused.status_code == 403 and count(app, MemberImport) == 0


def test_an_import_stopped_by_a_crash_is_taken_over_and_creates_nobody_twice(
        app, browser, monkeypatch):
    setup_owner(browser)
    rt = app.extensions["loyalty"]
    import_id = uploaded_id(upload(browser, pos_file(50) + "0900000001,Twice,,0,POS-A\n"))
    real, calls = member_import._add_members, []

    def dies_on_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the process died")
        return real(*args, **kwargs)
    monkeypatch.setattr(member_import, "_add_members", dies_on_the_third_batch)
    with import_queue.transaction(rt.sessions) as session:
        claimed = import_queue.claim_next(session, utcnow())
    with pytest.raises(RuntimeError):
        import_queue.run_import(rt.sessions, rt.program, *claimed, batch_size=10)
    job = the_import(app, import_id)
    assert (job.status, job.rows_done, job.rows_total, job.imported) == ("running", 20, 51, 20)
    shown = browser.get(f"/admin/import/{import_id}").get_data(as_text=True)
    assert "已處理 20 / 51 列（39%）" in shown and "匯入中" in shown

    monkeypatch.setattr(member_import, "_add_members", real)
    assert run_clock(app) == "no file waiting"  # its runner may still be alive
    later = utcnow() + import_queue.STALE_AFTER + dt.timedelta(seconds=1)
    with import_queue.transaction(rt.sessions) as session:
        claimed = import_queue.claim_next(session, later)
    assert claimed[0] == import_id
    with pytest.raises(import_queue.ImportTakenOver), rt.sessions() as session:
        # the first runner, back: its next batch is not committed
        import_queue._beat(session, import_id, "the first runner's token", utcnow())
    said = import_queue.run_import(rt.sessions, rt.program, *claimed, batch_size=10)
    assert "51 of 51 rows, 50 imported, 0 already there, 1 refused" in said
    assert count(app, Member) == 50
    with rt.sessions() as session:
        assert session.scalar(select(func.sum(PointEntry.points))) == \
            sum(i % 50 for i in range(50))
        assert list(import_queue.refusals(session, import_id)) == [
            (52, "phone 0900000001 is also on line 3")]  # line 3 was the first run's


def test_the_clock_starts_its_other_jobs_without_waiting_for_an_import(
        monkeypatch, tmp_path, sqlite_template):
    from bot import scheduler

    path = tmp_path / "clock.db"
    path.write_bytes(sqlite_template.read_bytes())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    ran, added = [], []
    monkeypatch.setattr(scheduler, "run_safely", lambda rt, job: ran.append(job.name))
    monkeypatch.setattr(scheduler.BlockingScheduler, "add_job",
                        lambda self, func, trigger, args, **kw: added.append(args[1].name))
    monkeypatch.setattr(scheduler.BlockingScheduler, "start", lambda self: None)
    scheduler.main()
    assert "imports" in added and "imports" not in ran  # taken up by its cron, in its thread
    assert set(ran) == set(JOBS) - {"imports"}


def test_every_reason_a_row_is_refused_for_is_said_in_chinese_too(program):
    from bot.loyalty.import_file import read_csv
    from bot.loyalty.import_reasons import in_language
    from bot.loyalty.import_rows import FirstLines, parse_row

    text = HEADER + "".join([
        "0912345678,A,,1,P1\n", "0912345678,B,,1,P1\n",  # the same id and phone again
        "abc,C,1990-13-01,-5,P2\n", "0922333444,D,1800-01-01,1.5,P3\n",
        f"0933444555,{'E' * 201},,99999999999,{'x' * 129}\n", "0944555666,F,,,\n",
        "0955666777,G,,2,P4,extra\n", "0966777888,'H\x00,,3,P5\n"])
    rows, today = read_csv(io.StringIO(text)), dt.date(2026, 12, 1)
    seen = FirstLines(rows.repeats)
    reasons = ["; ".join(parse_row(line, raw, today, seen)[1]) for line, raw in rows]
    reasons.append("phone 0912345678 already belongs to member ABCDEFGHJ")
    said = [in_language(reason, "zh-TW") for reason in reasons if reason]
    assert said == [
        "external_id 'P1' 重複（第一次出現在第 2 行）；手機 0912345678 也在第 2 行",
        "手機 'abc' 不是台灣的手機號碼（09xxxxxxxx）；生日 '1990-13-01' 不是 YYYY-MM-DD 或 "
        "YYYY/MM/DD 的日期；點數 '-5' 不能是負數",
        "生日 '1800-01-01' 不在 1900-01-01 到今天之間；點數 '1.5' 不是整數",
        "external_id 超過 128 個字元；姓名超過 200 個字；點數 '99999999999' 超過 10,000,000",
        "缺少 external_id", "這一列有 6 欄，標題列卻有 5 欄", "含有 NUL 字元",
        "手機 0912345678 已經是會員 ABCDEFGHJ 的"]
    assert [in_language(reason, "en") for reason in reasons] == reasons


def test_a_file_that_breaks_after_its_header_fails_with_the_reason_and_imports_nobody(
        app, browser):
    setup_owner(browser)
    broken = (pos_file(5) + "0911111111,\"never closed,,1,POS-9\n").encode() + b"\xff\xfe\n"
    import_id = uploaded_id(upload(browser, broken))
    assert "import 1: not UTF-8 text" in run_clock(app)
    shown = browser.get(f"/admin/import/{import_id}").get_data(as_text=True)
    assert "失敗" in shown and "無法匯入這個檔案：not UTF-8 text" in shown
    assert 'http-equiv="refresh"' not in shown
    assert count(app, Member) == 0 and count(app, MemberImportPart) == 0
