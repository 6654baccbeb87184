"""The owner makes and revokes the POS's API tokens in the console: the secret is shown once
and works at once with the scopes chosen, a revoked token stops at once, managers cannot
touch them, and bad input names what is wrong and changes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.members import register_member
from bot.loyalty.timeutil import utcnow
from bot.models import ApiToken, AuditLog
from tests import test_console_program as console
from tests.test_console import csrf, invite, set_password, setup_owner, sign_in

# the console's app (the example program, a setup token) and its test client, quick hashes
app, browser, quick_hashes = console.app, console.browser, console.quick_hashes

PAGE = "/admin/tokens"


def post(browser, **fields):
    return browser.post(PAGE, data={"csrf_token": csrf(browser, PAGE), **fields})


@pytest.fixture
def owner(browser):
    setup_owner(browser)
    assert sign_in(browser, "owner@cafe.tw").status_code == 302
    return browser


@pytest.fixture
def member_code(app):
    state = app.extensions["loyalty"]
    with transaction(state.sessions) as session:
        return register_member(session, state.program, "U" + "a" * 32, utcnow(),
                               display_name="王小明").member.member_code


def api(app, secret: str, path: str):
    return app.test_client().get(f"/api/v1{path}", headers={"Authorization": f"Bearer {secret}"})


def test_a_token_made_in_the_console_works_once_shown_and_stops_when_revoked(
        app, owner, member_code):
    made = post(owner, action="create", name="櫃台收銀機", scope=["members:read"])
    page = made.get_data(as_text=True)
    assert made.status_code == 200 and "請現在複製到收銀系統的設定裡" in page
    secret = re.search(r'<code id="token-secret">([^<]+)</code>', page).group(1)
    assert secret.startswith("lbt_")
    assert api(app, secret, f"/members/{member_code}").status_code == 200
    assert api(app, secret, "/reports/summary").status_code == 403  # not its scope
    listed = owner.get(PAGE).get_data(as_text=True)
    assert secret not in listed and secret[:12] in listed  # shown once: the prefix after
    assert "櫃台收銀機" in listed and "查詢會員與摘要" in listed
    with app.extensions["loyalty"].sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.scopes == "members:read" and row.token_hash != secret
    revoked = post(owner, action="revoke", token=str(row.id))
    assert "已撤銷，立即失效" in revoked.get_data(as_text=True)
    assert api(app, secret, f"/members/{member_code}").status_code == 401
    assert "data-revoked" in owner.get(PAGE).get_data(as_text=True)
    with app.extensions["loyalty"].sessions() as session:
        trail = session.execute(select(AuditLog.action, AuditLog.actor).where(
            AuditLog.action.like("api_token.%")).order_by(AuditLog.id)).all()
    assert trail == [("api_token.create", "console:owner@cafe.tw"),
                     ("api_token.revoke", "console:owner@cafe.tw")]


@pytest.mark.parametrize("fields, says", [
    ({"name": "", "scope": ["members:read"]}, "請為權杖取一個 1 到 100 字的名稱"),
    ({"name": "x" * 101, "scope": ["members:read"]}, "請為權杖取一個 1 到 100 字的名稱"),
    ({"name": "網路商店"}, "請至少選一項權限"),
    ({"name": "網路商店", "scope": ["members:read", "admin:all"]}, "沒有這種權限：admin:all"),
])
def test_a_token_the_form_cannot_make_is_named_and_nothing_is_made(app, owner, fields, says):
    answer = post(owner, action="create", **fields)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and says in page and "token-secret" not in page
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_revoking_a_token_that_is_not_there_says_so(app, owner):
    for which in ("999", "lbt_nothere", "9" * 30):
        answer = post(owner, action="revoke", token=which)
        assert answer.status_code == 400 and "找不到權杖" in answer.get_data(as_text=True)


def test_a_manager_cannot_see_or_make_tokens(app, browser):
    setup_owner(browser)
    manager = app.test_client()
    set_password(manager, invite(app, "mei@cafe.tw", "manager"))
    assert sign_in(manager, "mei@cafe.tw").status_code == 302
    refused = manager.get(PAGE)
    assert refused.status_code == 403
    assert "只有店主可以管理 API 權杖" in refused.get_data(as_text=True)
    assert 'href="/admin/tokens"' not in manager.get("/admin/").get_data(as_text=True)
    forged = manager.post(PAGE, data={"csrf_token": csrf(manager, "/admin/"),
                                      "action": "create", "name": "x", "scope": "members:read"})
    assert forged.status_code == 403
    with app.extensions["loyalty"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 0
