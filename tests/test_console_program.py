"""The owner edits the program in the console: a review of what changes, then a new version
that the running app uses at once; managers read, conflicts are refused, rollbacks work."""

from __future__ import annotations

import html
import re

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from bot.app import create_app
from bot.config import DEFAULT_PROGRAM, Config
from bot.loyalty import accounts, programs
from bot.loyalty.timeutil import utcnow
from bot.models import AuditLog
from tests.test_console import (
    TOKEN,
    csrf,
    invite,
    set_password,
    setup_owner,
    sign_in,
)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """Argon2id at its smallest cost, as in the console's other tests."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", quick)
    monkeypatch.setattr(accounts, "_DUMMY", quick.hash("not a password anyone has"))


@pytest.fixture
def app(db_url):
    app = create_app(Config(database_url=db_url, program_path=str(DEFAULT_PROGRAM),
                            secret_key="console-test-secret", console_setup_token=TOKEN,
                            public_base_url="https://cafe.example"))
    yield app
    app.extensions["loyalty"].engine.dispose()


@pytest.fixture
def browser(app):
    return app.test_client()


def owner(browser) -> None:
    setup_owner(browser)
    assert sign_in(browser, "owner@cafe.tw").status_code == 302


def review(browser, path: str, **fields):
    return browser.post(path, data={"csrf_token": csrf(browser, path), **fields})


def save(browser, page: str):
    proposal = re.search(r'<textarea name="proposal" hidden>(.*?)</textarea>', page, re.S)
    base = re.search(r'name="base" value="(\d*)"', page).group(1)
    return browser.post("/admin/program/save", data={
        "csrf_token": csrf(browser, "/admin/program"), "base": base,
        "proposal": html.unescape(proposal.group(1))})


def earning_form(**changes) -> dict[str, str]:
    return {"base": "1", "amount_per_point": "30", "rounding": "floor",
            "multipliers": "beans = 2 咖啡豆 / Coffee beans\nmerch = 1.5 周邊商品 / Merchandise",
            "c0-name": "聖誕雙倍點數",
            "c0-name_en": "Christmas double points", "c0-starts": "2026-12-24",
            "c0-ends": "2026-12-26", "c0-multiplier": "2", **changes}


def live(app):
    return app.extensions["loyalty"].program


def test_the_owner_changes_the_earning_rate_after_seeing_what_changes(app, browser):
    owner(browser)
    answer = review(browser, "/admin/program/earning", **earning_form(amount_per_point="10"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "earning.amount_per_point: 30 -&gt; 10" in page and "儲存為新版本" in page
    assert live(app).amount_per_point == 30  # nothing saved by a review
    saved = save(browser, page)
    assert saved.status_code == 302 and saved.headers["Location"].endswith("saved=2")
    assert live(app).amount_per_point == 10 and live(app).version == 2
    shown = browser.get(saved.headers["Location"]).get_data(as_text=True)
    assert "第 2 版已生效" in shown and "owner@cafe.tw" in shown
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalars(select(AuditLog.actor).where(
            AuditLog.action == "program.save")).all() == ["console:owner@cafe.tw"]


def test_a_mistake_is_named_and_nothing_can_be_saved(app, browser):
    owner(browser)
    answer = review(browser, "/admin/program/earning", **earning_form(amount_per_point="abc"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "earning.amount_per_point" in page and "whole number" in page
    assert 'name="proposal"' not in page
    bad = review(browser, "/admin/program/earning", **earning_form(multipliers="beans two"))
    assert bad.status_code == 400 and "beans two" in bad.get_data(as_text=True)
    assert live(app).version == 1


def test_the_owner_names_a_category_as_customers_read_it(app, browser):
    owner(browser)
    form = browser.get("/admin/program/earning").get_data(as_text=True)
    assert "beans = 2 咖啡豆 / Coffee beans\nmerch = 1.5 周邊商品 / Merchandise" in form
    unchanged = review(browser, "/admin/program/earning", **earning_form())
    assert "earning.category_names." not in unchanged.get_data(as_text=True)  # kept
    renamed = review(browser, "/admin/program/earning", **earning_form(
        multipliers="beans = 2 精品咖啡豆 / Specialty beans\nmerch = 1.5"))
    page = renamed.get_data(as_text=True)
    assert renamed.status_code == 200
    assert "earning.category_names.beans: &#39;咖啡豆&#39; -&gt; &#39;精品咖啡豆&#39;" in page
    assert "earning.category_names.merch: removed" in page
    assert save(browser, page).status_code == 302
    program = live(app)
    assert program.category_names == {"beans": "精品咖啡豆"}
    assert program.category_names_en == {"beans": "Specialty beans"}
    assert program.category_multipliers["merch"] == 1.5
    bad = review(browser, "/admin/program/earning", **earning_form(
        multipliers="beans = 2 咖啡豆 / 咖啡豆 beans"))
    assert bad.status_code == 400
    assert "earning.category_names_en.beans" in bad.get_data(as_text=True)
    assert live(app).version == 2


def test_a_coupon_template_is_edited_with_its_card_previewed(app, browser):
    owner(browser)
    form = browser.get("/admin/program/coupons/nt50").get_data(as_text=True)
    assert "折價NT$50" in form and "sim-msg" in form  # the card as customers see it now
    answer = review(browser, "/admin/program/coupons/nt50", base="1", kind="amount_off",
                    title="折價NT$80", title_en="NT$80 off", amount="80", valid_days="60")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "coupons.nt50.amount: 50 -&gt; 80" in page and "折價NT$80" in page
    assert "sim-msg" in page  # the preview of the edited card
    assert "這項修改會減少會員的權益" not in page  # a reward's coupon giving more
    assert save(browser, page).status_code == 302
    template = live(app).coupons["nt50"]
    assert (template.title, template.amount) == ("折價NT$80", 80)


def test_a_rewards_coupon_made_to_give_less_is_announced_first(app, browser):
    owner(browser)
    answer = review(browser, "/admin/program/coupons/nt50", base="1", kind="amount_off",
                    title="折價NT$30", amount="30", valid_days="60")
    assert "的兌換內容調整" in answer.get_data(as_text=True)
    assert save(browser, answer.get_data(as_text=True)).status_code == 302
    assert live(app).coupons["nt50"].amount == 50 and live(app).coming


def test_while_a_saved_version_waits_the_editors_list_what_they_start_from(app, browser):
    owner(browser)
    slower = review(browser, "/admin/program/earning", **earning_form(amount_per_point="40"))
    assert save(browser, slower.get_data(as_text=True)).status_code == 302  # waits 30 days
    added = review(browser, "/admin/program/new-coupon", base="2", key="latte_art",
                   kind="free_gift", title="拉花體驗", valid_days="10")
    assert save(browser, added.get_data(as_text=True)).status_code == 302
    assert live(app).version == 1 and "latte_art" not in live(app).coupons
    shown = browser.get("/admin/program").get_data(as_text=True)
    assert "目前生效的是第 1 版" in shown
    assert 'data-editing-from="3"' in shown and "以下的編輯會從第 3 版開始" in shown
    assert 'data-template="latte_art"' in shown  # the editors start from version 3
    assert "每 NT$40 得 1 點" in shown and "目前每 NT$40" not in shown
    form = browser.get("/admin/program/earning").get_data(as_text=True)
    assert 'name="amount_per_point" inputmode="numeric" value="40"' in form


def test_with_no_version_waiting_the_editors_list_the_live_one(app, browser):
    owner(browser)
    shown = browser.get("/admin/program").get_data(as_text=True)
    assert "data-editing-from" not in shown and "目前每 NT$30 得 1 點" in shown
    assert 'data-template="nt50"' in shown


def test_a_new_template_needs_a_free_key_of_plain_letters(app, browser):
    owner(browser)
    taken = review(browser, "/admin/program/new-coupon", base="1", key="nt50",
                   kind="free_gift", title="x", valid_days="10")
    assert taken.status_code == 400 and "nt50" in taken.get_data(as_text=True)
    bad = review(browser, "/admin/program/new-coupon", base="1", key="咖啡",
                 kind="free_gift", title="x", valid_days="10")
    assert bad.status_code == 400
    answer = review(browser, "/admin/program/new-coupon", base="1", key="weekend30",
                    kind="amount_off", title="週末折NT$30", amount="30",
                    valid_until="2026-12-31")
    assert "coupons.weekend30.amount: added (30)" in answer.get_data(as_text=True)
    assert save(browser, answer.get_data(as_text=True)).status_code == 302
    assert live(app).coupons["weekend30"].valid_until.isoformat() == "2026-12-31"


def test_an_edit_begun_before_anothers_save_is_refused_with_who_and_when(app, browser):
    owner(browser)
    opened = review(browser, "/admin/program/earning", **earning_form(amount_per_point="10"))
    first = opened.get_data(as_text=True)
    with app.extensions["loyalty"].sessions() as session, session.begin():
        programs.save(session, programs.data_of(session, 1), base=1, actor="cli",
                      source="apply", now=utcnow())
    late = save(browser, first)
    assert late.status_code == 409
    assert "cli" in late.get_data(as_text=True) and "重新載入" in late.get_data(as_text=True)
    again = review(browser, "/admin/program/earning", **earning_form(amount_per_point="10"))
    assert again.status_code == 400 and "cli" in again.get_data(as_text=True)
    assert live(app).amount_per_point == 30


def test_the_whole_program_can_be_edited_as_text(app, browser):
    owner(browser)
    text = browser.get("/admin/program/toml").get_data(as_text=True)
    assert "amount_per_point = 30" in text
    broken = review(browser, "/admin/program/toml", base="1", text="[shop\nname = 1")
    assert broken.status_code == 400 and "line 1" in broken.get_data(as_text=True)
    body = html.unescape(re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', text,
                                   re.S).group(1))
    answer = review(browser, "/admin/program/toml", base="1",
                    text=body.replace("goal = 10", "goal = 8"))
    assert "stamps.goal: 10 -&gt; 8" in answer.get_data(as_text=True)
    assert save(browser, answer.get_data(as_text=True)).status_code == 302
    assert live(app).stamps.goal == 8


def test_a_change_that_takes_away_is_shown_as_such_and_waits_out_the_notice(app, browser):
    owner(browser)
    page = review(browser, "/admin/program/earning",
                  **earning_form(amount_per_point="60")).get_data(as_text=True)
    assert "這項修改會減少會員的權益" in page and "儲存後 30 天才生效" in page
    assert "起：每消費 NT$60 得 1 點（現在 NT$30）" in page
    saved = save(browser, page)
    shown = browser.get(saved.headers["Location"]).get_data(as_text=True)
    assert "第 2 版已儲存，將於" in shown and "data-pending" in shown
    assert (live(app).version, live(app).amount_per_point) == (1, 30)
    assert [c.kind for c in live(app).coming] == ["earn_slower"]


def test_rollback_from_the_console_brings_the_old_version_back(app, browser):
    owner(browser)
    page = review(browser, "/admin/program/earning",
                  **earning_form(amount_per_point="10")).get_data(as_text=True)
    assert save(browser, page).status_code == 302 and live(app).amount_per_point == 10
    answer = browser.post("/admin/program/rollback/1",
                          data={"csrf_token": csrf(browser, "/admin/program")})
    assert answer.status_code == 302
    assert live(app).amount_per_point == 10 and live(app).coming  # takes away: it waits
    shown = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "back to version 1" in shown and "第 3 版已儲存，將於" in shown


def test_a_manager_reads_the_program_but_cannot_change_it(app, browser):
    owner(browser)
    manager = app.test_client()
    set_password(manager, invite(app, "m@cafe.tw", "manager"))
    assert sign_in(manager, "m@cafe.tw").status_code == 302
    shown = manager.get("/admin/program")
    assert shown.status_code == 200 and "/admin/program/earning" not in shown.get_data(
        as_text=True)
    assert manager.get("/admin/program/earning").status_code == 403
    refused = manager.post("/admin/program/rollback/1",
                           data={"csrf_token": csrf(manager, "/admin/program")})
    assert refused.status_code == 403 and live(app).version == 1


def test_only_the_card_preview_pages_allow_inline_styles_and_none_allows_inline_scripts(
        app, browser):
    owner(browser)
    plain = browser.get("/admin/program").headers["Content-Security-Policy"]
    card = browser.get("/admin/program/coupons/nt50").headers["Content-Security-Policy"]
    assert "unsafe-inline" not in plain
    assert "style-src 'self' 'unsafe-inline'" in card and "script-src 'self';" in card


# -- the settings, rewards and stamp card forms ----------------------------------------------
def form_values(page: str) -> dict[str, str]:
    """The values a browser would send back from a page's first editing form, unchanged."""
    form = page[page.index('<form method="post" class="stack">'):]
    form = form[:form.index("</form>")]
    values = {}
    for name, value in re.findall(r'<input (?:type="(?:hidden|date)" )?name="([^"]+)"'
                                  r'[^>]*?value="([^"]*)"', form):
        values[name] = html.unescape(value)
    for name, body in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        values[name] = html.unescape(body)
    for name in re.findall(r'<input type="checkbox" name="([^"]+)" value="1" checked>', form):
        values[name] = "1"
    for name, body in re.findall(r'<select name="([^"]+)">(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        values[name] = chosen.group(1) if chosen else ""
    values.pop("csrf_token", None)
    return values


def test_every_settings_form_sent_back_unchanged_changes_nothing(app, browser):
    from bot.console.program import SETTINGS

    owner(browser)
    for section in SETTINGS:
        path = f"/admin/program/settings/{section}"
        answer = review(browser, path, **form_values(browser.get(path).get_data(as_text=True)))
        assert answer.status_code == 200, (section, answer.get_data(as_text=True)[-800:])
        assert "<li>no change</li>" in answer.get_data(as_text=True), section
    for path in ("/admin/program/rewards", "/admin/program/stamps", "/admin/program/tiers"):
        answer = review(browser, path, **form_values(browser.get(path).get_data(as_text=True)))
        assert "<li>no change</li>" in answer.get_data(as_text=True), path


def test_a_settings_form_changes_its_section_and_names_a_mistake(app, browser):
    owner(browser)
    path = "/admin/program/settings/expiry"
    values = form_values(browser.get(path).get_data(as_text=True))
    assert values == {"base": "1", "mode": "lot", "months": "12", "end_of_month": "1"}
    wrong = review(browser, path, **{**values, "months": "0"})
    assert wrong.status_code == 400 and "expiry.months" in wrong.get_data(as_text=True)
    longer = review(browser, path, **{**values, "months": "18"})
    assert "expiry.months: 12 -&gt; 18" in longer.get_data(as_text=True)
    assert save(browser, longer.get_data(as_text=True)).status_code == 302
    assert live(app).expiry_months == 18
    staff = form_values(browser.get("/admin/program/settings/staff").get_data(as_text=True))
    answer = review(browser, "/admin/program/settings/staff",
                    **{**staff, "confirm_above": "5,000"})
    assert "staff.confirm_above: 3000 -&gt; 5000" in answer.get_data(as_text=True)
    assert browser.get("/admin/program/settings/nope").status_code == 404


def test_a_reward_is_added_and_one_made_dearer_waits_out_the_notice(app, browser):
    owner(browser)
    values = form_values(browser.get("/admin/program/rewards").get_data(as_text=True))
    assert values["r0-key"] == "nt50" and values["rows"] == "4"
    values.update({"r3-key": "drink", "r3-coupon": "free_drink", "r3-points": "300"})
    added = review(browser, "/admin/program/rewards", **values)
    assert "rewards[drink].points: added (300)" in added.get_data(as_text=True)
    assert save(browser, added.get_data(as_text=True)).status_code == 302
    assert live(app).reward("drink").points == 300

    values = form_values(browser.get("/admin/program/rewards").get_data(as_text=True))
    dearer = review(browser, "/admin/program/rewards", **{**values, "r0-points": "120"})
    page = dearer.get_data(as_text=True)
    assert "這項修改會減少會員的權益" in page and "需要 120 點（現在 100 點）" in page
    assert save(browser, page).status_code == 302
    assert live(app).reward("nt50").points == 100 and live(app).coming


def test_the_stamp_card_form_moves_a_milestone_for_new_cards(app, browser):
    owner(browser)
    values = form_values(browser.get("/admin/program/stamps").get_data(as_text=True))
    assert (values["goal"], values["m0-at"], values["m0-reward"]) == ("10", "5", "pct10")
    answer = review(browser, "/admin/program/stamps",
                    **{**values, "m0-at": "4", "m1-at": "8", "m1-reward": "nt50"})
    page = answer.get_data(as_text=True)
    assert "stamps.milestones[0].at: 5 -&gt; 4" in page
    assert "stamps.milestones[1].reward: added (&#39;nt50&#39;)" in page
    assert save(browser, page).status_code == 302
    assert [(m.at, m.reward) for m in live(app).stamps.milestones] == [(4, "pct10"),
                                                                       (8, "nt50")]
    bad = review(browser, "/admin/program/stamps", **{**values, "m0-at": "12"})
    assert bad.status_code == 400 and "stamps.milestones[0].at" in bad.get_data(as_text=True)


def test_a_tier_gets_a_benefit_at_once_and_loses_one_after_the_notice(app, browser):
    owner(browser)
    values = form_values(browser.get("/admin/program/tiers").get_data(as_text=True))
    assert values["t0-key"] == "member" and values["rows"] == str(len(live(app).tiers) + 1)
    gold = next(i for i in range(len(live(app).tiers)) if values[f"t{i}-key"] == "gold")
    benefits = values[f"t{gold}-benefits"].splitlines()
    english = values[f"t{gold}-benefits_en"].splitlines()
    more = review(browser, "/admin/program/tiers", **{
        **values, f"t{gold}-benefits": "\n".join([*benefits, "免費外帶杯"]),
        f"t{gold}-benefits_en": "\n".join([*english, "A free takeaway cup"])})
    assert "這項修改會減少會員的權益" not in more.get_data(as_text=True)
    assert save(browser, more.get_data(as_text=True)).status_code == 302
    assert "免費外帶杯" in live(app).tier("gold").benefits
    values = form_values(browser.get("/admin/program/tiers").get_data(as_text=True))
    fewer = review(browser, "/admin/program/tiers", **{
        **values, f"t{gold}-benefits": "\n".join(benefits[1:]),
        f"t{gold}-benefits_en": "\n".join(english[1:])})
    assert f"不再提供「{benefits[0]}」" in fewer.get_data(as_text=True)
    bad = review(browser, "/admin/program/tiers", **{**values, f"t{gold}-multiplier": "inf"})
    assert bad.status_code == 400 and f"tiers[{gold}].multiplier" in bad.get_data(as_text=True)


def test_a_rollback_from_a_page_opened_before_a_save_is_refused(app, browser):
    owner(browser)
    page = review(browser, "/admin/program/earning",
                  **earning_form(amount_per_point="10")).get_data(as_text=True)
    assert save(browser, page).status_code == 302  # version 2
    stale = browser.post("/admin/program/rollback/1", data={
        "csrf_token": csrf(browser, "/admin/program"), "base": "1"})  # opened at version 1
    assert stale.status_code == 409 and "重新載入" in stale.get_data(as_text=True)
    assert live(app).version == 2
    assert browser.post("/admin/program/rollback/99999999999", data={
        "csrf_token": csrf(browser, "/admin/program"), "base": "2"}).status_code == 404


def test_text_of_the_wrong_shape_is_named_not_a_server_error(app, browser):
    owner(browser)
    for text in ("rewards = 5", "rewards = true", "tiers = 1.5", "coupons = []"):
        answer = review(browser, "/admin/program/toml", base="1", text=text)
        assert answer.status_code == 400, text
    huge = review(browser, "/admin/program/toml", base="1", text="x" * 300_000)
    assert huge.status_code == 400


def test_a_retired_template_is_given_no_more_but_its_coupons_stay_usable(app, browser):
    from bot.db import transaction
    from bot.loyalty.coupons import issue_coupon
    from bot.loyalty.errors import CouponWindowClosed
    from bot.loyalty.members import register_member
    from bot.models import Coupon
    from tests.line_helpers import user_id

    owner(browser)
    rt = app.extensions["loyalty"]
    with transaction(rt.sessions) as session:
        member = register_member(session, rt.program, user_id(1), utcnow()).member.id
        issue_coupon(session, rt.program, member, "comeback", utcnow(), reason="test")
    used = review(browser, "/admin/program/coupons/nt50", base="1", kind="amount_off",
                  title="折價NT$50", amount="50", valid_days="60", retired="1")
    assert used.status_code == 400 and "rewards[0].coupon" in used.get_data(as_text=True)
    answer = review(browser, "/admin/program/coupons/comeback", base="1", kind="amount_off",
                    title="好久不見 折NT$80", amount="80", min_spend="200", valid_days="21",
                    retired="1")
    page = answer.get_data(as_text=True)
    assert "winback.coupon" in page  # the win-back still gives it: refused, named
    assert answer.status_code == 400
    answer = review(browser, "/admin/program/coupons/xmas_beans", base="1", kind="percent_off",
                    title="聖誕豆子85折", percent="15", valid_from="2026-12-01",
                    valid_until="2026-12-31", total_cap="300", per_member_cap="1",
                    retired="1")
    assert answer.status_code == 200
    assert save(browser, answer.get_data(as_text=True)).status_code == 302
    assert live(app).coupons["xmas_beans"].retired
    with pytest.raises(CouponWindowClosed), transaction(rt.sessions) as session:
        issue_coupon(session, live(app), member, "xmas_beans", utcnow(), reason="test")
    shown = browser.get(f"/admin/members/{member_code(app, member)}").get_data(as_text=True)
    assert 'value="xmas_beans"' not in shown and 'value="nt50"' in shown
    with rt.sessions() as session:
        assert session.scalars(select(Coupon.status)).all() == ["issued", "issued"]


def member_code(app, member_id: int) -> str:
    from bot.models import Member
    with app.extensions["loyalty"].sessions() as session:
        return session.get(Member, member_id).member_code


def test_a_points_campaign_is_added_on_the_earning_form(app, browser):
    owner(browser)
    values = form_values(browser.get("/admin/program/earning").get_data(as_text=True))
    assert values["c0-name"] == "聖誕雙倍點數" and values["c1-name"] == ""
    answer = review(browser, "/admin/program/earning", **{
        **values, "amount_per_point": "30", "rounding": "floor",
        "multipliers": "beans = 2\nmerch = 1.5", "c1-name": "週年慶", "c1-starts": "2027-03-01",
        "c1-ends": "2027-03-07", "c1-multiplier": "1.5"})
    page = answer.get_data(as_text=True)
    assert "earning.campaigns[週年慶].multiplier: added (1.5)" in page
    assert save(browser, page).status_code == 302
    assert [c.name for c in live(app).campaigns] == ["聖誕雙倍點數", "週年慶"]
    bad = review(browser, "/admin/program/earning", **{**values, "c0-ends": "2026-12-01"})
    assert bad.status_code == 400 and "earning.campaigns[0].ends" in bad.get_data(as_text=True)
