"""The REST API as a POS sees it: tokens and scopes, purchases with Idempotency-Key, refunds,
member lookup, coupons checked and redeemed, rewards, problem details for every refusal."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.api_tokens import SCOPES, create_token
from bot.loyalty.coupons import issue_coupon
from bot.loyalty.members import adjust_points, register_member
from bot.loyalty.timeutil import utcnow
from bot.models import ApiToken, Coupon, Member, Purchase, Redemption
from tests.line_helpers import user_id

ALL = sorted(SCOPES)
CUSTOMER = user_id(1)


@pytest.fixture
def state(app):
    return app.extensions["loyalty"]


def token(state, scopes=ALL, name="pos") -> str:
    with transaction(state.sessions) as session:
        return create_token(session, name, scopes, utcnow(), actor="test")[1]


@pytest.fixture
def pos(client, state):
    """A client with a full-scope token, and a customer who follows the shop in LINE."""
    secret = token(state)
    with transaction(state.sessions) as session:
        member = register_member(session, state.program, CUSTOMER, utcnow(),
                                 display_name="王小明").member
        member.phone = "0912345678"
        code = member.member_code

    class Pos:
        member_code = code

        def call(self, method, path, body=None, headers=None, raw=None, auth=secret):
            hdrs = {"Authorization": f"Bearer {auth}", **(headers or {})}
            if body is not None:
                raw = json.dumps(body)
            reply = client.open(f"/api/v1{path}", method=method, data=raw, headers=hdrs,
                                content_type="application/json")
            return reply.status_code, reply.get_json(silent=True)

        def buy(self, amount, order_id, **extra):
            return self.call("POST", "/purchases", {"member": {"member_code": code},
                                                    "amount": amount, "order_id": order_id,
                                                    **extra}, headers=extra.pop("headers", None))
    return Pos()


def count(state, model, *where) -> int:
    with state.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def problem_code(reply) -> str:
    status, body = reply
    assert body["status"] == status and body["type"].endswith(body["code"]), body
    return body["code"]


# -- tokens ------------------------------------------------------------------------------------
def test_no_token_a_wrong_token_and_a_revoked_token_are_refused(pos, client, state):
    assert problem_code(pos.call("GET", f"/members/{pos.member_code}",
                                 auth="nonsense")) == "unauthorized"
    reply = client.get(f"/api/v1/members/{pos.member_code}")
    assert reply.status_code == 401
    assert reply.content_type == "application/problem+json"
    secret = token(state, ["members:read"], "reader")
    assert pos.call("GET", f"/members/{pos.member_code}", auth=secret)[0] == 200
    with transaction(state.sessions) as session:
        session.scalars(select(ApiToken).where(ApiToken.name == "reader")).one().revoked_at = \
            utcnow()
    assert pos.call("GET", f"/members/{pos.member_code}", auth=secret)[0] == 401


def test_a_token_works_only_within_its_scopes(pos, state):
    reader = token(state, ["members:read"], "reader")
    status, body = pos.call("POST", "/purchases", {"member": {"member_code": pos.member_code},
                                                    "amount": 100, "order_id": "A1"},
                            auth=reader)
    assert (status, body["code"]) == (403, "forbidden")
    assert "purchases:write" in body["detail"]
    assert count(state, Purchase) == 0


def test_tokens_are_stored_hashed(state):
    secret = token(state)
    with state.sessions() as session:
        row = session.scalars(select(ApiToken)).one()
    assert secret not in (row.token_hash, row.prefix) and len(row.token_hash) == 64


# -- purchases ---------------------------------------------------------------------------------
def test_a_purchase_earns_points_and_a_repeat_of_the_order_records_nothing_more(pos, state):
    status, body = pos.buy(300, "POS-1")
    assert status == 201
    assert body["points_earned"] == 10 and body["balance"] == 10  # NT$30 a point
    assert body["stamps_earned"] >= 1 and body["duplicate"] is False
    status, again = pos.buy(300, "POS-1")
    assert status == 200 and again["duplicate"] is True and again["balance"] == 10
    assert count(state, Purchase) == 1
    assert problem_code(pos.buy(999, "POS-1")) == "order_conflict"


def test_a_zero_amount_purchase_is_recorded_but_earns_no_stamp_not_even_the_starter(pos):
    status, body = pos.buy(0, "Z-1")  # e.g. an order a coupon paid for in full
    assert status == 201 and (body["points_earned"], body["stamps_earned"]) == (0, 0)
    assert pos.call("GET", f"/members/{pos.member_code}/summary")[1]["stamps"] == 0
    status, body = pos.buy(100, "Z-2")  # the first paid purchase, the same day
    assert status == 201 and body["stamps_earned"] == 2  # its visit stamp and the starter
    assert pos.call("GET", f"/members/{pos.member_code}/summary")[1]["stamps"] == 2


def test_the_customer_gets_a_receipt_in_line_once(pos, state, fake_line):
    pos.buy(300, "POS-2")
    pos.buy(300, "POS-2")
    pushes = fake_line.pushes()
    assert len(pushes) == 1 and pushes[0]["to"] == CUSTOMER
    assert "10" in json.dumps(pushes[0]["messages"], ensure_ascii=False)


def test_one_idempotency_key_gives_the_first_answer_and_refuses_another_body(pos, state):
    key = {"Idempotency-Key": "checkout-7f3a"}
    first = pos.call("POST", "/purchases", {"member": {"member_code": pos.member_code},
                                            "amount": 600, "order_id": "W-1"}, headers=key)
    again = pos.call("POST", "/purchases", {"member": {"member_code": pos.member_code},
                                            "amount": 600, "order_id": "W-1"}, headers=key)
    assert first == again and first[0] == 201
    other = pos.call("POST", "/purchases", {"member": {"member_code": pos.member_code},
                                            "amount": 700, "order_id": "W-2"}, headers=key)
    assert problem_code(other) == "idempotency_key_reused" and other[0] == 409
    assert count(state, Purchase) == 1


@pytest.mark.parametrize("body, where", [
    ({"member": {"member_code": "X"}, "amount": -5, "order_id": "B1"}, "amount"),
    ({"member": {"member_code": "X"}, "amount": 5}, "order_id"),
    ({"member": {}, "amount": 5, "order_id": "B1"}, "member"),
    ({"member": {"member_code": "X", "phone": "0912"}, "amount": 5, "order_id": "B1"},
     "member"),
    ({"member": {"member_code": "X"}, "amount": 5, "order_id": "B\x001"}, "order_id"),
    ({"member": {"member_code": "X"}, "amount": 5.5, "order_id": "B1"}, "amount"),
    ({"member": {"member_code": "X"}, "amount": 5, "order_id": "B1", "tip": 1}, "tip"),
])
def test_a_body_that_breaks_the_schema_is_a_400_naming_the_field(pos, state, body, where):
    status, problem = pos.call("POST", "/purchases", body)
    assert (status, problem["code"]) == (400, "invalid_request")
    assert any(where in error for error in problem["errors"]), problem
    assert count(state, Purchase) == 0


def test_a_body_that_is_not_json_is_a_400(pos, state):
    assert problem_code(pos.call("POST", "/purchases", raw=b"\xff{not json")) == \
        "invalid_request"


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"member": {"member_code": "X"}, "amount": 5, "order_id": "B1", "tip": '
    + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
], ids=["deep array", "deep object in a purchase"])
def test_json_nested_100000_deep_is_a_400_not_a_crash(pos, state, raw):
    for path in ("/purchases", "/refunds", "/coupons/validate"):
        status, problem = pos.call("POST", path, raw=raw)
        assert (status, problem["code"]) == (400, "invalid_request"), path
    assert count(state, Purchase) == 0


@pytest.mark.parametrize("body, where", [
    ({"member": {"phone": "0912345678"}, "amount": 5, "order_id": "A-\ud800"}, "order_id"),
    ({"member": {"member_code": "\udfffABC"}, "amount": 5, "order_id": "B1"},
     "member/member_code"),
    ({"member": {"phone": "0912345678\ud800"}, "amount": 5, "order_id": "B1"},
     "member/phone"),  # not a "no such member" 404: the text itself is broken
    ({"member": {"phone": "0912345678"}, "amount": 5, "order_id": "B1",
      "categories": {"\ud83d": 1}}, "categories"),
])
def test_a_string_with_a_lone_surrogate_is_a_400_naming_the_field(pos, state, body, where):
    status, problem = pos.call("POST", "/purchases", body)  # json.dumps writes \\ud800
    assert (status, problem["code"]) == (400, "invalid_request")
    assert any(error.startswith(where) for error in problem["errors"]), problem
    assert count(state, Purchase) == 0


def test_surrogate_bytes_are_a_400_but_an_emoji_escaped_as_a_pair_is_text(pos, state):
    body = '{"member": {"phone": "0912345678"}, "amount": 5, "order_id": "\ud800"}'
    raw = body.encode("utf-8", "surrogatepass")  # the bytes ED A0 80, not valid UTF-8
    assert problem_code(pos.call("POST", "/purchases", raw=raw)) == "invalid_request"
    status, bought = pos.buy(100, "\U0001f600-1")  # json.dumps writes \\ud83d\\ude00
    assert status == 201 and bought["order_id"] == "\U0001f600-1"


def test_an_unknown_member_is_a_404(pos, state):
    status, body = pos.call("POST", "/purchases", {"member": {"phone": "0987654321"},
                                                   "amount": 100, "order_id": "C1"})
    assert (status, body["code"]) == (404, "not_found")


def test_a_purchase_finds_the_member_by_phone_in_any_common_spelling(pos, state):
    status, body = pos.call("POST", "/purchases", {"member": {"phone": "+886 912-345-678"},
                                                   "amount": 90, "order_id": "P1"})
    assert status == 201 and body["member_code"] == pos.member_code


# -- refunds -----------------------------------------------------------------------------------
def test_a_refund_takes_the_points_back_once(pos, state):
    pos.buy(600, "R-1")
    refund = {"order_id": "R-1", "refund_id": "RF-1", "amount": 300}
    status, body = pos.call("POST", "/refunds", refund)
    assert status == 201 and body["points_reversed"] == 10
    status, body = pos.call("POST", "/refunds", refund)
    assert status == 200 and body["duplicate"] is True
    with state.sessions() as session:
        assert session.scalars(select(Member)).one().points_balance == 10
    assert problem_code(pos.call("POST", "/refunds", {"order_id": "nope", "refund_id": "x",
                                                      "amount": 1})) == "not_found"
    assert problem_code(pos.call("POST", "/refunds", {"order_id": "R-1", "refund_id": "RF-2",
                                                      "amount": 999})) == \
        "refund_exceeds_purchase"


def test_a_refund_id_reused_for_another_order_or_amount_is_a_409_and_reverses_nothing(
        pos, state):
    pos.buy(600, "R-1")
    pos.buy(600, "R-2")
    first = pos.call("POST", "/refunds", {"order_id": "R-1", "refund_id": "RF-1", "amount": 300})
    assert first[0] == 201 and first[1]["points_reversed"] == 10
    for reused in ({"order_id": "R-2", "refund_id": "RF-1", "amount": 300},
                   {"order_id": "R-1", "refund_id": "RF-1", "amount": 200}):
        status, problem = pos.call("POST", "/refunds", reused)
        assert (status, problem["code"]) == (409, "refund_conflict"), reused
        assert "refund id" in problem["detail"]
    assert pos.call("GET", f"/members/{pos.member_code}")[1]["points_balance"] == 30
    again = pos.call("POST", "/refunds", {"order_id": "R-1", "refund_id": "RF-1", "amount": 300})
    assert again[0] == 200 and again[1] == {**first[1], "duplicate": True}
    status, body = pos.call("POST", "/refunds", {"order_id": "R-2", "refund_id": "RF-2",
                                                 "amount": 600})
    assert status == 201 and body["points_reversed"] == 20  # R-2 was never touched
    doc = pos.call("GET", "/openapi.json")[1]
    assert "refund_conflict" in doc["paths"]["/refunds"]["post"]["responses"]["409"][
        "description"]


# -- members -----------------------------------------------------------------------------------
def test_a_member_is_found_by_code_line_user_or_phone(pos):
    for path in (pos.member_code, f"by-line-user/{CUSTOMER}", "by-phone/0912-345-678",
                 "by-phone/%2B886%20912%20345%20678"):
        status, body = pos.call("GET", f"/members/{path}")
        assert status == 200 and body["member_code"] == pos.member_code, path
        assert body["line_linked"] is True and body["display_name"] == "王小明"
    for path in ("ZZZZZZZZZ", "by-phone/0987654321", f"by-line-user/{user_id(2)}"):
        assert problem_code(pos.call("GET", f"/members/{path}")) == "not_found"
    assert problem_code(pos.call("GET", "/members/by-line-user/U%00")) == "invalid_request"


def test_the_summary_shows_balance_card_and_wallet(pos):
    pos.buy(300, "S-1")
    status, body = pos.call("GET", f"/members/{pos.member_code}/summary")
    assert status == 200
    assert body["balance"] == 10 and body["tier"] == "member"
    assert [c["template"] for c in body["coupons"]] == ["welcome"]
    assert pos.call("GET", "/members/ZZZZZZZZZ/summary")[0] == 404


# -- coupons -----------------------------------------------------------------------------------
def welcome_code(state) -> str:
    with state.sessions() as session:
        return session.scalars(select(Coupon.code)).one()


def test_validate_changes_nothing_and_redeem_works_once(pos, state):
    code = welcome_code(state)
    for _ in range(2):
        status, body = pos.call("POST", "/coupons/validate", {"code": code,
                                                              "order_amount": 200})
        assert status == 200 and body["valid"] is True and body["discount"] > 0
    assert count(state, Redemption) == 0
    status, body = pos.call("POST", "/coupons/redeem", {"code": code, "order_amount": 200})
    assert status == 200 and body["coupon"]["status"] == "redeemed"
    again = pos.call("POST", "/coupons/redeem", {"code": code})
    assert (again[0], problem_code(again)) == (409, "already_redeemed")
    assert problem_code(pos.call("POST", "/coupons/validate", {"code": code})) == \
        "already_redeemed"
    assert count(state, Redemption) == 1


def test_coupon_refusals_carry_their_codes(pos, state):
    with transaction(state.sessions) as session:
        member = session.scalars(select(Member)).one()
        past = utcnow() - dt.timedelta(days=400)
        old = issue_coupon(session, state.program, member.id, "nt50", past, reason="t").code
        big = issue_coupon(session, state.program, member.id, "nt120_over_500", utcnow(),
                           reason="t").code
    assert problem_code(pos.call("POST", "/coupons/validate", {"code": old})) == "expired"
    reply = pos.call("POST", "/coupons/redeem", {"code": big, "order_amount": 100})
    assert (reply[0], problem_code(reply)) == (422, "minimum_spend_not_met")
    assert problem_code(pos.call("POST", "/coupons/validate", {"code": "ABCDEFGHJ"})) in (
        "unknown_code", "not_found")
    assert count(state, Redemption) == 0


def test_a_redemption_against_an_order_is_linked_to_it(pos, state):
    _, bought = pos.buy(400, "L-1")
    status, body = pos.call("POST", "/coupons/redeem", {"code": welcome_code(state),
                                                        "order_id": "L-1",
                                                        "order_amount": 400})
    assert status == 200 and body["purchase_id"] == bought["purchase_id"]
    assert problem_code(pos.call("POST", "/coupons/redeem", {"code": welcome_code(state),
                                                             "order_id": "none"})) == "not_found"


# -- rewards and issuing -----------------------------------------------------------------------
def test_points_buy_a_reward_only_when_there_are_enough(pos, state):
    reward = min(state.program.rewards, key=lambda r: r.points)
    reply = pos.call("POST", f"/members/{pos.member_code}/rewards", {"reward": reward.key})
    assert (reply[0], problem_code(reply)) == (422, "insufficient_points")
    with transaction(state.sessions) as session:
        member = session.scalars(select(Member)).one()
        adjust_points(session, state.program, member.id, reward.points + 5, utcnow(),
                      reason="test", actor="test")
    status, body = pos.call("POST", f"/members/{pos.member_code}/rewards",
                            {"reward": reward.key})
    assert status == 201 and body["balance"] == 5
    assert body["coupon"]["template"] == reward.coupon
    assert problem_code(pos.call("POST", f"/members/{pos.member_code}/rewards",
                                 {"reward": "nope"})) == "unknown_reward"


def test_issuing_a_coupon_names_unknown_templates(pos, state):
    status, body = pos.call("POST", f"/members/{pos.member_code}/coupons", {"template": "nt50"})
    assert status == 201 and body["template"] == "nt50" and body["status"] == "issued"
    status, body = pos.call("POST", f"/members/{pos.member_code}/coupons", {"template": "nope"})
    assert (status, body["code"]) == (404, "unknown_template") and "nt50" in body["detail"]


# -- the document ------------------------------------------------------------------------------
def test_the_openapi_document_is_served_and_unknown_paths_are_problems(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1") and "/purchases" in doc["paths"]
    reply = client.get("/api/v1/nothing-here")
    assert reply.status_code == 404 and reply.get_json()["code"] == "not_found"
    reply = client.delete("/api/v1/purchases")
    assert reply.status_code == 405 and reply.get_json()["code"] == "method_not_allowed"


# -- the owner's commands ----------------------------------------------------------------------
def test_api_token_create_list_and_revoke_from_the_command_line(cli):
    from tests.cli_helpers import exited_cleanly

    made = cli("api-token", "create", "POS", "--scope", "purchases:write")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("lbt_") and "purchases:write" in made.stderr
    listed = cli("api-token", "list")
    assert "POS" in listed.stdout and "live" in listed.stdout and secret not in listed.stdout
    bad = cli("api-token", "create", "x", "--scope", "everything")
    assert bad.exit_code != 0 and "Traceback" not in bad.stderr
    assert exited_cleanly(bad), bad.exc_info
    gone = cli("api-token", "revoke", "1")
    assert gone.exit_code == 0 and "revoked" in gone.stdout
    assert "revoked" in cli("api-token", "list").stdout


# -- the report --------------------------------------------------------------------------------
def test_the_report_endpoint_counts_what_happened(pos, state):
    pos.buy(300, "RP-1")
    pos.buy(600, "RP-2")
    status, body = pos.call("GET", "/reports/summary")
    assert status == 200
    assert body["sales"]["purchases"] == 2 and body["sales"]["revenue"] == 900
    assert body["sales"]["repurchase_rate"] == 100.0 and body["members"]["new"] == 1
    assert pos.call("GET", "/reports/summary?from=2020-01-01&to=2020-01-31")[1]["sales"][
        "purchases"] == 0
    assert problem_code(pos.call("GET", "/reports/summary?from=2026-02-30")) == \
        "invalid_request"
    assert problem_code(pos.call("GET", "/reports/summary?from=2026-03-02&to=2026-03-01")) == \
        "invalid_request"
