"""The API's OpenAPI 3.1 document. Request bodies are validated against these same schemas, so
what the document promises and what the server accepts cannot drift apart."""

from __future__ import annotations

from typing import Any

from bot.loyalty.api_tokens import SCOPES

MAX_AMOUNT = 100_000_000
NO_NUL = "^[^\\u0000]*$"  # PostgreSQL text cannot hold NUL: refused up front, not a 500


def text(max_length: int, min_length: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length,
            "pattern": NO_NUL, **extra}


def amount(minimum: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": MAX_AMOUNT, **extra}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any
        ) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        schema["required"] = required
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


TAG = {"type": "string", "pattern": "^[A-Za-z0-9_\\-\u3400-\u9fff]{1,64}$",
       "description": "letters, digits, _ and -; new, active, dormant, vip and "
                      "birthday_month are automatic and cannot be set by hand"}
NULLABLE_TEXT = {"type": ["string", "null"]}
DATE = {"type": "string", "format": "date"}
TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": obj({
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable machine code, e.g. expired, "
                 "not_yet_valid, already_redeemed, order_conflict, refund_conflict, "
                 "minimum_spend_not_met, quantity_exceeded, insufficient_points, not_found, "
                 "invalid_request, unauthorized, forbidden"},
        "errors": {"type": "array", "items": {"type": "string"}},
    }, ["type", "title", "status", "detail", "code"]),
    "MemberRef": obj({
        "member_code": text(20), "line_user_id": text(64), "phone": text(20),
    }, minProperties=1, maxProperties=1,
        description="Exactly one way to find the member."),
    "PurchaseRequest": obj({
        "member": ref("MemberRef"),
        "amount": amount(description="what the customer paid, in whole currency units"),
        "order_id": text(128, description="your order id; recording it twice records once"),
        "source": text(64, description="which system the order comes from (default: api)"),
        "categories": {"type": "object", "additionalProperties": amount(),
                       "propertyNames": text(64),
                       "description": "amounts per product category, for category multipliers"},
    }, ["member", "amount", "order_id"]),
    "ClaimRequest": obj({
        "amount": amount(1, description="what the customer paid, in whole currency units"),
        "order_id": text(128, description="your order id: reserved at once, so the same order "
                                          "cannot also be recorded through /purchases"),
        "source": text(64, description="which system the order comes from (default: api); "
                                       "[claims] minutes_by_source sets how long its codes live"),
        "categories": {"type": "object", "additionalProperties": amount(),
                       "propertyNames": text(64),
                       "description": "amounts per product category, for category multipliers"},
    }, ["amount", "order_id"]),
    "RefundRequest": obj({
        "order_id": text(128), "source": text(64), "refund_id": text(128),
        "amount": amount(1),
    }, ["order_id", "refund_id", "amount"]),
    "CouponCheckRequest": obj({
        "code": text(40), "order_amount": amount(), "member_code": text(20),
    }, ["code"]),
    "CouponRedeemRequest": obj({
        "code": text(40), "order_amount": amount(),
        "order_id": text(128, description="link the redemption to an order recorded before"),
        "source": text(64), "member_code": text(20),
    }, ["code"]),
    "RewardRequest": obj({
        "reward": text(40, description="the reward's key in the program ([[rewards]] key, "
                                       "which is its coupon's key unless set)"),
        "points": amount(1, description="the price your customer saw: if the program's price "
                                        "is another, nothing is charged (422 "
                                        "reward_price_changed)"),
    }, ["reward"]),
    "IssueRequest": obj({"template": text(64)}, ["template"]),
    "TagRequest": obj({"tag": TAG}, ["tag"]),
    "Tags": obj({"member_code": {"type": "string"},
                 "tags": {"type": "array", "items": {"type": "string"}}},
                ["member_code", "tags"]),
    "Coupon": obj({
        "code": {"type": "string"}, "template": {"type": "string"},
        "title": {"type": "string"}, "kind": {"type": "string"},
        "status": {"type": "string"}, "valid_from": TIME, "valid_until": TIME,
        "min_spend": {"type": "integer"}, "member_code": {"type": "string"},
    }, ["code", "template", "title", "kind", "status", "valid_from", "valid_until"]),
    "Member": obj({
        "member_code": {"type": "string"}, "display_name": {"type": "string"},
        "tier": {"type": "string"}, "status": {"type": "string"},
        "points_balance": {"type": "integer"}, "line_linked": {"type": "boolean"},
        "phone": NULLABLE_TEXT, "external_id": NULLABLE_TEXT,
        "birthday": {"type": ["string", "null"], "format": "date"}, "joined_at": TIME,
    }, ["member_code", "tier", "status", "points_balance", "line_linked", "joined_at"]),
    "MemberSummary": obj({
        "member": ref("Member"), "balance": {"type": "integer"},
        "expiring": {"type": "array", "items": obj({"date": DATE,
                                                    "points": {"type": "integer"}})},
        "tier": {"type": "string"}, "next_tier": NULLABLE_TEXT,
        "spend": {"type": "integer"}, "spend_to_next": {"type": ["integer", "null"]},
        "stamps": {"type": "integer"}, "stamp_goal": {"type": "integer"},
        "stamps_to_next_reward": {"type": "integer"},
        "coupons": {"type": "array", "items": ref("Coupon")},
    }, ["member", "balance", "tier", "stamps", "coupons"]),
    "PurchaseResult": obj({
        "purchase_id": {"type": "integer"}, "order_id": {"type": "string"},
        "source": {"type": "string"}, "member_code": {"type": "string"},
        "amount": {"type": "integer"}, "points_earned": {"type": "integer"},
        "stamps_earned": {"type": "integer"},
        "coupons_issued": {"type": "array", "items": ref("Coupon")},
        "balance": {"type": "integer"}, "tier": {"type": "string"},
        "duplicate": {"type": "boolean"},
    }, ["purchase_id", "order_id", "member_code", "amount", "points_earned", "balance"]),
    "Claim": obj({
        "code": {"type": "string", "description": "print it on the receipt: 領取 CODE"},
        "status": {"type": "string", "enum": ["open", "expired", "claimed", "cancelled"]},
        "order_id": {"type": "string"}, "source": {"type": "string"},
        "amount": {"type": "integer"}, "expires_at": TIME,
        "claim_url": {"type": "string", "description": "opens the shop's chat with the "
                                                       "claim typed: put it in the QR code"},
        "qr_png": {"type": "string", "description": "the QR code as a PNG image's address"},
        "member_code": {"type": ["string", "null"], "description": "who claimed it"},
        "claimed_at": {"type": ["string", "null"], "format": "date-time"},
        "duplicate": {"type": "boolean"},
    }, ["code", "status", "order_id", "amount", "expires_at", "claim_url"]),
    "RefundResult": obj({
        "refund_id": {"type": "string"}, "order_id": {"type": "string"},
        "amount": {"type": "integer"}, "points_reversed": {"type": "integer"},
        "points_unrecovered": {"type": "integer"}, "stamps_reversed": {"type": "integer"},
        "stamps_unrecovered": {"type": "integer"}, "duplicate": {"type": "boolean"},
    }, ["refund_id", "amount", "points_reversed", "points_unrecovered"]),
    "CouponCheck": obj({
        "valid": {"type": "boolean"}, "coupon": ref("Coupon"),
        "discount": {"type": "integer"},
    }, ["valid", "coupon", "discount"]),
    "Redemption": obj({
        "coupon": ref("Coupon"), "discount": {"type": "integer"},
        "purchase_id": {"type": ["integer", "null"]}, "redeemed_at": TIME,
    }, ["coupon", "discount", "redeemed_at"]),
    "Report": {"type": "object", "required": [
        "shop", "first_day", "last_day", "members", "sales", "coupons", "points", "stamps",
        "tiers", "pushes", "lifetime_value"],
        "description": "Definitions: README, Analytics."},
    "RewardResult": obj({"coupon": ref("Coupon"), "balance": {"type": "integer"}},
                        ["coupon", "balance"]),
}

PROBLEM = {"application/problem+json": {"schema": ref("Problem")}}
ERRORS = {
    "400": {"description": "The request is malformed or breaks the schema", "content": PROBLEM},
    "401": {"description": "No valid bearer token", "content": PROBLEM},
    "403": {"description": "The token lacks the scope", "content": PROBLEM},
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": ref(schema)}}


def _op(summary: str, scope: str, ok: tuple[str, str], *, body: str | None = None,
        fails: dict[str, str] | None = None, params: list[dict] | None = None,
        idempotent: bool = False) -> dict[str, Any]:
    responses = {ok[0]: {"description": "Done", "content": _json(ok[1])}, **ERRORS}
    for status, why in (fails or {}).items():
        responses[status] = {"description": why, "content": PROBLEM}
    op: dict[str, Any] = {"summary": summary, "security": [{"bearer": [scope]}],
                          "responses": responses, "x-scope": scope}
    parameters = list(params or [])
    if idempotent:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "description": "Retry safely: the same key and body gets the first "
                                          "response again; the same key with another body, 409.",
                           "schema": text(255, pattern="^[\\x21-\\x7e]+$")})
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": True, "content": _json(body)}
    return op


CODE_PARAM = {"name": "member_code", "in": "path", "required": True, "schema": text(20)}
CLAIM_PARAM = {"name": "code", "in": "path", "required": True, "schema": text(20)}
RULES = "Refused by a loyalty rule (see code)"

PATHS: dict[str, dict[str, Any]] = {
    "/purchases": {"post": _op(
        "Record a purchase: points, stamps, tier; once per (source, order id)",
        "purchases:write", ("201", "PurchaseResult"), body="PurchaseRequest", idempotent=True,
        fails={"404": "No such member", "409": "Order id (order_conflict) or "
               "Idempotency-Key reused with different details", "422": RULES})},
    "/claims": {"post": _op(
        "Record an order without its customer and get a one-time claim code (a QR the customer "
        "scans with LINE); the receipt is the bot's free reply to the customer",
        "purchases:write", ("201", "Claim"), body="ClaimRequest", idempotent=True,
        fails={"409": "Order id already recorded with other details (order_conflict), or "
               "Idempotency-Key reused", "422": RULES + " (claims_off: [claims] is not on)"})},
    "/claims/{code}": {"get": _op(
        "A claim code's state: open, expired, claimed (by whom, when) or cancelled",
        "purchases:write", ("200", "Claim"), params=[CLAIM_PARAM],
        fails={"404": "No such claim code"})},
    "/claims/{code}/cancel": {"post": _op(
        "Cancel a claim code nobody has taken: its order is refunded in full", "purchases:write",
        ("200", "Claim"), params=[CLAIM_PARAM], idempotent=True,
        fails={"404": "No such claim code", "409": "Already claimed or cancelled"})},
    "/refunds": {"post": _op(
        "Refund (part of) an order by refund id; points and stamps taken back in proportion",
        "purchases:write", ("201", "RefundResult"), body="RefundRequest", idempotent=True,
        fails={"404": "No such order", "409": "Refund id reused for another order or "
               "amount (refund_conflict), or Idempotency-Key reused", "422": RULES})},
    "/members/{member_code}": {"get": _op(
        "Find a member by the member code on their card", "members:read", ("200", "Member"),
        params=[CODE_PARAM], fails={"404": "No such member"})},
    "/members/by-line-user/{line_user_id}": {"get": _op(
        "Find a member by LINE user id", "members:read", ("200", "Member"),
        params=[{"name": "line_user_id", "in": "path", "required": True, "schema": text(64)}],
        fails={"404": "No such member"})},
    "/members/by-phone/{phone}": {"get": _op(
        "Find a member by phone (0912-345-678, +886 912 345 678, ...)", "members:read",
        ("200", "Member"),
        params=[{"name": "phone", "in": "path", "required": True, "schema": text(20)}],
        fails={"404": "No such member"})},
    "/members/{member_code}/summary": {"get": _op(
        "Balance, expiring points, tier, stamp card and coupon wallet",
        "members:read", ("200", "MemberSummary"), params=[CODE_PARAM],
        fails={"404": "No such member"})},
    "/members/{member_code}/rewards": {"post": _op(
        "Exchange the member's points for a catalog reward", "points:redeem",
        ("201", "RewardResult"), body="RewardRequest", params=[CODE_PARAM], idempotent=True,
        fails={"404": "No such member or reward", "409": "Idempotency-Key reused",
               "422": RULES})},
    "/members/{member_code}/coupons": {"post": _op(
        "Give the member a coupon from a template", "coupons:issue", ("201", "Coupon"),
        body="IssueRequest", params=[CODE_PARAM], idempotent=True,
        fails={"404": "No such member or template", "409": "Idempotency-Key reused",
               "422": RULES})},
    "/members/{member_code}/tags": {"post": _op(
        "Tag a member (for campaign segments)", "members:write", ("200", "Tags"),
        body="TagRequest", params=[CODE_PARAM],
        fails={"404": "No such member", "422": "An automatic tag"})},
    "/members/{member_code}/tags/{tag}": {"delete": _op(
        "Untag a member", "members:write", ("200", "Tags"),
        params=[CODE_PARAM, {"name": "tag", "in": "path", "required": True, "schema": TAG}],
        fails={"404": "No such member", "422": "An automatic tag"})},
    "/coupons/validate": {"post": _op(
        "Check a coupon for an order, changing nothing", "coupons:redeem",
        ("200", "CouponCheck"), body="CouponCheckRequest",
        fails={"404": "No such coupon", "409": "Already redeemed", "422": RULES})},
    "/coupons/redeem": {"post": _op(
        "Redeem a coupon once, optionally against a recorded order", "coupons:redeem",
        ("200", "Redemption"), body="CouponRedeemRequest", idempotent=True,
        fails={"404": "No such coupon or order", "409": "Already redeemed, or "
               "Idempotency-Key reused", "422": RULES})},
    "/reports/summary": {"get": _op(
        "The analytics report for local days from..to (default: the last 30 days)",
        "reports:read", ("200", "Report"),
        params=[{"name": "from", "in": "query", "required": False, "schema": DATE},
                {"name": "to", "in": "query", "required": False, "schema": DATE}])},
}
for _path, _shown, _why in (("/claims", "Claim", "The same order again: its first code"),
                            ("/purchases", "PurchaseResult", "Recorded before: the first result"),
                            ("/refunds", "RefundResult", "Refunded before: the first result")):
    PATHS[_path]["post"]["responses"]["200"] = {"description": _why, "content": _json(_shown)}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Loyalty bot API", "version": "1.0.0",
                 "description": "Record purchases and refunds from a POS or web shop, look up "
                                "members, check and redeem coupons, exchange points. Errors "
                                "are RFC 9457 problem details with a stable `code`."},
        "servers": [{"url": "/api/v1"}],
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "Tokens come from `flask --app bot api-token create`; scopes: "
                           + ", ".join(f"{k} ({v})" for k, v in SCOPES.items())}}},
        "paths": PATHS,
    }
