"""Every message renders in both languages, with normal and extreme data, within LINE's limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import re
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linebot.v3.messaging import FlexContainer, FlexMessage, TextMessage

from bot.line import flex, limits
from bot.line import messages as m
from bot.line.flex import (
    TEMPLATE_DIR,
    TemplateError,
    compile_template,
    fill,
    format_string,
    strings_table,
    template,
)
from bot.line.formatting import readable
from bot.line.limits import KINDS, MessageLimitError, carousel_sizes, check_messages, json_bytes
from bot.loyalty.errors import (
    CapReached,
    CouponExpired,
    MinimumSpendNotMet,
)
from bot.program import Faq, Milestone, Program, Reward
from bot.simulator.samples import (
    TODAY,
    claim,
    context,
    flex_samples,
    member,
    purchase,
    summary,
    view,
)
from tests import limits_reference

WEIRD = ('{{x}} "Mei" \'O\'Brien\' \\n 😀🎉👩‍👩‍👧 <b>&amp; ' * 6)[:200]
LONG_TITLE = '{{y}} "Grand" ' + "超級豪華手沖咖啡與蛋糕組合😀" * 12
LONG_TITLE_EN = '{{y}} "Grand" ' + "mega deluxe coffee set 😀 " * 12
LITERALS = ("{{x}}", "{{y}}")  # placeholders inside user data: they must come out as they are
PLACEHOLDER = re.compile(r"\{\{\s*@?[A-Za-z_][\w.]*\s*\}\}")
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
TEXT_FIELDS = {"date": "1990/05/17", "amount": 3200, "name": WEIRD, "tier": "Gold",
               "title": "NT$80 off", "points": 1_250_000, "balance": 9_999_999,
               "purchases": 120, "coupons": 15, "minutes": 2, "code": "7KQ-2M9-XHF",
               "until": "2027/01/06 12:03", "when": "2027/01/06 12:01",
               "member_code": "ABC-DEF-GHJ"}
TEXT_FIELDS_ZH = {"tier": "金卡會員", "title": "折價NT$80"}  # program texts come in the reader's


def normal(program: Program, lang: str) -> Iterator[tuple[str, list[dict]]]:
    ctx = context(program, lang)
    yield from flex_samples(program, ctx)
    for key in sorted(k[5:] for k in strings_table(lang) if k.startswith("text.")):
        local = TEXT_FIELDS if lang == "en" else {**TEXT_FIELDS, **TEXT_FIELDS_ZH}
        yield f"text {key}", m.text(ctx, key, **local, message="x")
    yield "error", m.error(ctx, MinimumSpendNotMet(minimum=150, amount=90, currency="TWD"))
    for status in ("open", "expired", "claimed", "cancelled"):  # text messages, no gallery
        yield f"staff_claim_status {status}", m.staff_claim_status(
            ctx, claim(program, 350, status, member("小美")))
    yield "birthday_confirm", m.birthday_confirm(ctx, dt.date(1990, 5, 17))
    yield "help_text", m.help_text(ctx)
    yield "privacy_notice", m.privacy_notice(ctx)
    yield "owner_alerts", m.owner_alerts(ctx, [
        ("allowance", {"percent": 92, "sent": 2760, "allowance": 3000}),
        ("webhooks", {"count": 3, "reason": "x"}), ("job_failed", {"job": "tags", "error": "x"})])
    yield "rules opted out", m.rules(ctx, True)
    for faq in program.faq:
        yield "faq_answer", m.faq_answer(ctx, faq)
    yield "tier_news up", m.tier_news(ctx, program.tiers[-1], True)
    yield "tier_news down", m.tier_news(ctx, program.tiers[0], False)

def extreme(program: Program, lang: str) -> Iterator[tuple[str, list[dict]]]:
    rewards = tuple(Reward(i, 100 * i, key) for i, key in enumerate(program.coupons, 1)) * 8
    program = dataclasses.replace(program, rewards=rewards, coupons={
        key: dataclasses.replace(t, title=LONG_TITLE, title_en=LONG_TITLE_EN)
        for key, t in program.coupons.items()})
    ctx, who, top = context(program, lang), member(WEIRD), member(WEIRD, "gold")
    local_title = LONG_TITLE_EN if lang == "en" else LONG_TITLE  # as callers pass titles
    many = [view(program, "pct10", n, LONG_TITLE, LONG_TITLE_EN) for n in range(100)]
    big_card = dataclasses.replace(program, stamps=dataclasses.replace(
        program.stamps, goal=50, milestones=(Milestone(10, "pct10"), Milestone(25, "nt50"))))
    yield "welcome", m.welcome(ctx, who, many[0])
    yield "points_card zero", m.points_card(ctx, summary(program, member(WEIRD, "member"),
                                                         balance=0, spend=0, lots=0))
    yield "points_card many lots", m.points_card(ctx, summary(program, top, lots=30))
    yield "stamp_card empty", m.stamp_card(ctx, summary(program, who, stamps=0, to_next=5))
    yield "stamp_card full", m.stamp_card(ctx, summary(program, who, stamps=10, to_next=0))
    yield "stamp_card goal 50", m.stamp_card(context(big_card, lang), summary(
        big_card, who, stamps=23, goal=50, to_next=2))
    for page in (1, 2, 9, 99):
        yield f"wallet page {page}", m.wallet(ctx, many, page)
    yield "wallet empty", m.wallet(ctx, [])
    yield "coupon_detail", m.coupon_detail(ctx, many[5])
    yield "member_card", m.member_card(ctx, who, summary(program, who, wallet=many))
    yield "rewards_catalog", m.rewards_catalog(ctx, 0)
    yield "rewards_catalog empty", m.rewards_catalog(
        context(dataclasses.replace(program, rewards=()), lang), 10**9)
    yield "reward_confirm", m.reward_confirm(ctx, rewards[-1], 0)
    yield "reward_issued", m.reward_issued(ctx, many[1], 0)
    yield "purchase_receipt", m.purchase_receipt(ctx, purchase(program, 20), 10**7, many[:20])
    yield "staff_purchase_recorded", m.staff_purchase_recorded(
        ctx, who, dataclasses.replace(purchase(program, 20, False), duplicate=True))
    yield "staff_confirm_purchase", m.staff_confirm_purchase(ctx, who, 10**8, "a&b=c/+?%{{x}}")
    yield "staff_confirm_purchase claim", m.staff_confirm_purchase(ctx, None, 10**8, "t")
    yield "staff_claim_code", m.staff_claim_code(ctx, dataclasses.replace(
        claim(program, 10**8), duplicate=True))
    yield "staff_claim_status", m.staff_claim_status(ctx, claim(program, 10**8, "claimed", who))
    yield "staff_redemption_ok", m.staff_redemption_ok(ctx, many[2], who, 10**8)
    yield "staff_redemption_failed", m.staff_redemption_failed(
        ctx, CouponExpired(until=dt.date(2026, 1, 1)), WEIRD * 10)
    yield "customer_coupon_used", m.customer_coupon_used(ctx, many[3])
    yield "birthday_gift", m.birthday_gift(ctx, who, many[4])
    yield "nudge", m.nudge(ctx, who, "stamps", 48, local_title)
    yield "expiry_warning", m.expiry_warning(
        ctx, who, [(TODAY + dt.timedelta(days=i), 5) for i in range(30)], many[:40],
        (TODAY, 49, 50))
    yield "text staff_welcome", m.text(ctx, "staff_welcome", name=WEIRD * 40)
    many_tiers = dataclasses.replace(program, tiers=tuple(
        dataclasses.replace(program.tiers[-1], key=f"t{n}", threshold=n * 1000,
                            name=LONG_TITLE, name_en=LONG_TITLE_EN,
                            benefits=(LONG_TITLE,) * 5, benefits_en=(LONG_TITLE_EN,) * 5)
        for n in range(10)))
    yield "rules", m.rules(context(many_tiers, lang))
    yield "birthday_confirm", m.birthday_confirm(ctx, dt.date(1900, 1, 1))
    chatty = dataclasses.replace(program, faq=tuple(
        Faq((f"{LONG_TITLE}{n}", f"{LONG_TITLE_EN}{n}"), LONG_TITLE * 40, LONG_TITLE_EN * 40)
        for n in range(50)))
    yield "help_text", m.help_text(context(chatty, lang))
    yield "privacy_notice", m.privacy_notice(context(dataclasses.replace(
        program, privacy_notice=LONG_TITLE * 40, privacy_notice_en=LONG_TITLE_EN * 40), lang))
    yield "faq_answer", m.faq_answer(context(chatty, lang), chatty.faq[0])
    yield "owner_alerts", m.owner_alerts(context(program, lang), [  # every job failing
        ("job_failed", {"job": "expiry-warnings", "error": ""})] * 200)
    yield "tier_news", m.tier_news(context(many_tiers, lang), many_tiers.tiers[-1], True)
    yield "error", m.error(ctx, CapReached(title=local_title * 40))


def rendered(program: Program) -> Iterator[tuple[str, str, str, list[dict]]]:
    for lang in ("zh-TW", "en"):
        for kind, scenarios in (("normal", normal), ("extreme", extreme)):
            for name, batch in scenarios(program, lang):
                yield lang, kind, name, batch


def texts(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict | list):
        for child in node.values() if isinstance(node, dict) else node:
            yield from texts(child)


@pytest.fixture(scope="module")
def everything(example_program: Program) -> list[tuple[str, str, str, list[dict]]]:
    return list(rendered(example_program))


def test_every_message_keeps_within_lines_limits_and_validates_with_the_sdk(everything):
    for lang, kind, name, batch in everything:
        where = f"{lang} {kind} {name}"
        check_messages(batch)
        for message in batch:
            if message["type"] == "text":
                TextMessage.from_dict(message)
                continue
            FlexMessage.from_dict(message)
            container = FlexContainer.from_dict(message["contents"])
            # the SDK silently drops a misspelt property: everything must survive a round trip
            assert _survives(message["contents"], container.to_dict()), where


def _survives(ours: Any, theirs: Any) -> bool:
    """`ours` is inside `theirs` (which may add SDK defaults such as animated=false)."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(
            key in theirs and _survives(value, theirs[key]) for key, value in ours.items())
    if isinstance(ours, list):
        return isinstance(theirs, list) and len(ours) == len(theirs) and all(
            _survives(a, b) for a, b in zip(ours, theirs, strict=True))
    return ours == theirs


def test_every_message_function_is_rendered_with_normal_and_extreme_data(everything):
    public = {name for name, value in vars(m).items() if inspect.isfunction(value)
              and value.__module__ == m.__name__ and not name.startswith("_")}
    for kind in ("normal", "extreme"):
        for lang in ("zh-TW", "en"):
            seen = {name.split()[0] for lg, k, name, _ in everything if (lg, k) == (lang, kind)}
            assert public <= seen, public - seen


def test_names_with_braces_stay_literal_and_no_placeholder_is_left(everything):
    for lang, _kind, name, batch in everything:
        left = set(PLACEHOLDER.findall("\n".join(texts(batch))))
        assert left <= set(LITERALS), f"{lang} {name}: {left}"
    welcome = next(b for lang, k, n, b in everything if k == "extreme" and n == "welcome")
    assert any(WEIRD in text for text in texts(welcome))


def test_english_messages_carry_no_chinese_except_the_programs_own_names(everything,
                                                                         example_program):
    allowed = [WEIRD, member().display_name]
    for lang, kind, name, batch in everything:
        if lang != "en":
            continue
        for text in texts(batch):
            for value in allowed:
                text = text.replace(value, "")
            assert not CJK.search(text), f"{kind} {name}: {text!r}"


def test_the_wallet_pages_eleven_coupons_and_a_more_bubble(example_program):
    ctx = context(example_program, "en")
    coupons = [view(example_program, "nt50", n) for n in range(100)]
    seen = []
    page, pages = 1, 0
    while page:
        carousel = m.wallet(ctx, coupons, page)[0]["contents"]
        bubbles = carousel["contents"]
        assert len(bubbles) <= 12
        buttons = [b["body"]["contents"][-1]["action"] for b in bubbles if "hero" not in b]
        seen += [b["hero"]["action"]["data"] for b in bubbles if "hero" in b]
        assert len(buttons) <= 1
        page = int(buttons[0]["data"].split("page=")[1].split("&")[0]) if buttons else 0
        assert not buttons or (buttons[0]["data"] == f"action=wallet&page={pages + 2}"
                               "&via=wallet" and len(bubbles) == 12)
        pages += 1
    assert pages == 9
    assert seen == [f"action=coupon&id={n}&via=wallet" for n in range(100)]
    assert len(m.wallet(ctx, coupons[:12])[0]["contents"]["contents"]) == 12


def test_expiry_warning_with_nothing_expiring_sends_nothing(example_program):
    ctx = context(example_program, "zh-TW")
    assert m.expiry_warning(ctx, member(), [], []) == []


def test_nudge_knows_only_stamps_and_points(example_program):
    with pytest.raises(ValueError):
        m.nudge(context(example_program, "en"), member(), "visits", 2, "x")


def test_largest_carousels_stay_well_under_the_50_kb_limit(everything):
    sizes = [json_bytes(message["contents"]) for _, _, _, batch in everything
             for message in batch if message["type"] == "flex"]
    assert max(sizes) < 45 * 1024


# -- the template filler ----------------------------------------------------------------------
STRINGS = {"hello": "Hi {name}, {n} left", "bare": "plain",
           "left": "{n:n:coupon/coupons} left for {name}", "many": "{n:,}: {a}{n:n:x/y}"}


def compiled_fill(node: Any, fields: dict, strings: dict) -> Any:
    return compile_template(node)(fields, strings)


FILLERS = pytest.mark.parametrize("filler", [fill, compiled_fill], ids=["walker", "compiled"])


@FILLERS
def test_a_value_holding_a_placeholder_is_not_expanded(filler):
    node = {"type": "text", "text": "{{a}} / {{@hello}}"}
    out = filler(node, {"a": "{{b}}", "b": "boom", "name": "{{b}} {n}", "n": 3}, STRINGS)
    assert out == {"type": "text", "text": "{{b}} / Hi {{b}} {n}, 3 left"}
    assert node == {"type": "text", "text": "{{a}} / {{@hello}}"}  # the template is untouched


@FILLERS
def test_each_repeats_and_if_unless_drop_parts(filler):
    node = {"contents": [
        {"$each": "rows", "$unless": "hidden", "text": "{{label}} of {{total}}"},
        {"$if": "more", "text": "{{@bare}}"},
        {"$unless": "more", "text": "none"}],
        "footer": {"$if": "more", "text": "x"}}
    rows = [{"label": "a", "hidden": False}, {"label": "b", "hidden": True},
            {"label": "c", "hidden": False}]
    out = filler(node, {"rows": rows, "total": 3, "more": False}, STRINGS)
    assert out == {"contents": [{"text": "a of 3"}, {"text": "c of 3"}, {"text": "none"}]}


MISTAKES = [
    ({"text": "{{missing}}"}, {}, "no field 'missing'"),
    ({"text": "{{@nope}}"}, {}, "no string 'nope'"),
    ({"text": "{{@hello}}"}, {"name": "x"}, "string 'hello' cannot be filled: KeyError('n')"),
    ({"hero": {"$each": "rows"}}, {"rows": []}, "$each 'rows' outside an array"),
    ({"$each": "rows"}, {"rows": []}, "$each 'rows' outside an array"),
    ({"contents": [{"$each": "rows"}]}, {"rows": "not a list"}, "field 'rows' must be a list"),
    ({"contents": [{"$each": "rows"}]}, {}, "no field 'rows'"),
    ({"contents": [{"$each": "rows"}]}, {"rows": [{}, 3]}, "items of 'rows' must be objects"),
    ({"contents": [{"$if": "shown"}]}, {}, "no field 'shown'"),
    ({"hero": {"$unless": "hidden"}}, {}, "no field 'hidden'"),
    ({"text": "{{flag}}"}, {"flag": True}, "field 'flag' is not text: True"),
    ({"text": "{{flag}}"}, {"flag": None}, "field 'flag' is not text: None"),
    ({"text": "{{flag}}"}, {"flag": 1.5}, "field 'flag' is not text: 1.5"),
    ({"text": "{{flag}}"}, {"flag": ["x"]}, "field 'flag' is not text: ['x']"),
    # the first mistake in the walker's order is the one reported
    ({"a": "{{one}}", "b": {"$if": "two"}, "c": "{{three}}"}, {}, "no field 'one'"),
    ({"a": "{{one}}", "b": {"$if": "two"}, "c": "{{three}}"}, {"one": "1"}, "no field 'two'"),
    ({"a": "{{one}}", "b": {"$if": "two", "x": "{{four}}"}, "c": "{{three}}"},
     {"one": "1", "two": True}, "no field 'four'"),
    ({"a": "{{one}}", "b": {"$if": "two", "x": "{{four}}"}, "c": "{{three}}"},
     {"one": "1", "two": False}, "no field 'three'"),
    ({"c": [{"$each": "rows", "$if": "on", "t": "{{@left}}"}]},
     {"rows": [{"on": True, "n": 1}], "name": "x"}, None),
    ({"c": [{"$each": "rows", "$if": "on", "t": "{{@left}}"}]}, {"rows": [{"on": True}]},
     "string 'left' cannot be filled: KeyError('n')"),
]


@FILLERS
@pytest.mark.parametrize("node, fields, error", MISTAKES)
def test_template_mistakes_fail_loudly_with_the_same_words(filler, node, fields, error):
    if error is None:
        filler(node, fields, STRINGS)
        return
    with pytest.raises(TemplateError) as raised:
        filler(node, fields, STRINGS)
    assert str(raised.value) == error


@FILLERS
def test_a_dropped_part_looks_nothing_up(filler):
    node = {"contents": [
        {"$if": "off", "text": "{{missing}}", "more": {"$each": "nowhere"}},
        {"$unless": "on", "text": "{{@nope}}"},
        {"$each": "rows", "$if": "show", "text": "{{gone}}", "x": [{"$each": "absent"}]},
        {"$each": "rows", "$unless": "show", "text": "{{label}}"}],
        "hero": {"$if": "off", "$each": "rows"},  # dropped before it could be refused
        "footer": {"$unless": "on", "text": "{{@left}}"}}
    out = filler(node, {"off": False, "on": 1, "rows": [{"show": "", "label": "kept"}]}, STRINGS)
    assert out == {"contents": [{"text": "kept"}]}


@FILLERS
def test_each_layers_the_items_fields_over_the_outer_ones_and_nests(filler):
    node = {"contents": [{"$each": "rows", "text": "{{name}}/{{shop}}", "cells": [
        {"$each": "cells", "$if": "on", "text": "{{name}}.{{n}} {{@left}}"},
        {"$unless": "last", "text": "-"}]}]}
    fields = {"name": "outer", "shop": "S", "last": False, "rows": [
        {"name": "r1", "cells": [{"on": True, "n": 1}, {"on": False, "n": 2},
                                 {"on": True, "n": 2, "name": "c3"}]},
        {"name": "r2", "cells": [], "last": True}]}
    assert filler(node, fields, STRINGS) == {"contents": [
        {"text": "r1/S", "cells": [{"text": "r1.1 1 coupon left for r1"},
                                   {"text": "c3.2 2 coupons left for c3"}, {"text": "-"}]},
        {"text": "r2/S", "cells": []}]}


@FILLERS
def test_plural_strings_and_names_that_look_like_placeholders(filler):
    name = '{{x}} "Mei" \'O\'Brien\' {n} \\ 😀'
    node = {"a": "{{@left}}", "b": "{{name}}: {{ name }}", "c": "{{@many}}", "d": "{{x}}"}
    fields = {"name": name, "x": "{{name}}", "a": "{a}"}
    one = filler(node, {**fields, "n": 1}, STRINGS)
    assert one == {"a": f"1 coupon left for {name}", "b": f"{name}: {name}",
                   "c": "1: {a}1 x", "d": "{{name}}"}
    assert filler(node, {**fields, "n": 1234}, STRINGS)["c"] == "1,234: {a}1234 y"
    counted = {"a": "{{@left}}"}  # a count that is text already
    assert filler(counted, {**fields, "n": "1"}, STRINGS) == {"a": f"1 coupon left for {name}"}
    assert filler(counted, {**fields, "n": "2"}, STRINGS) == {"a": f"2 coupons left for {name}"}


def test_a_compiled_template_builds_new_objects_at_every_call():
    node = {"type": "bubble", "body": {"contents": [{"type": "filler"}, {"text": "{{a}}"}],
                                       "style": {"x": [1, [2.5, None]]}},
            "list": [{"$each": "rows", "deep": {"k": ["v"]}}]}
    render = compile_template(node)
    one, two = render({"a": "1", "rows": [{}]}, {}), render({"a": "1", "rows": [{}]}, {})
    assert one == two == fill(node, {"a": "1", "rows": [{}]}, {})
    assert not _containers(one) & _containers(two)
    assert not (_containers(one) | _containers(two)) & _containers(node)
    one["body"]["style"]["x"][1].append("changed")
    assert render({"a": "1", "rows": [{}]}, {}) == two


def _nested(depth: int, wrap: Any) -> Any:
    node: Any = {"text": "{{a}}"}
    for _ in range(depth):
        node = wrap(node)
    return {"root": node}


@pytest.mark.parametrize("node", [
    _nested(250, lambda node: [node]),  # more brackets than Python's parser nests
    _nested(120, lambda node: {"$if": "a", "c": node}),  # more indentation than it takes
    _nested(25, lambda node: {"c": [{"$each": "rows", "x": node}]}),  # more nested loops
], ids=["brackets", "ifs", "loops"])
def test_a_template_too_deep_for_python_is_walked(node):
    fields = {"a": "x", "rows": [{"rows": []}]}
    assert compile_template(node)(fields, {}) == fill(node, fields, {})


def _containers(node: Any) -> set[int]:
    """The ids of every dict and list in `node`: only meaningful while `node` is alive."""
    if isinstance(node, dict):
        return {id(node)}.union(*(_containers(v) for v in node.values()))
    if isinstance(node, list):
        return {id(node)}.union(*(_containers(v) for v in node))
    return set()


def _exactly(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would pass ==)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_exactly(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_exactly(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _outcome(render: Any, *args: Any) -> tuple:
    try:
        return "ok", render(*args)
    except Exception as exc:  # any error: the point is to compare them
        return type(exc), str(exc)


def _same_outcome(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and (_exactly(a[1], b[1]) if a[0] == "ok" else a[1] == b[1])


@pytest.fixture(scope="module")
def filled(example_program: Program) -> list[tuple[str, dict, dict]]:
    """(template, fields, strings) of every message the bot renders, normal and extreme, in
    both languages, each checked on the way: the compiled output is the walker's, and new."""
    seen, calls, real = [], [], m._renderer

    def checked(name: str):
        compiled = real(name)

        def render(fields: dict, strings: dict) -> Any:
            ours, again = compiled(fields, strings), compiled(fields, strings)
            walked = fill(m._tagged(name), fields, strings)
            assert _exactly(ours, walked), name
            assert json.dumps(ours, ensure_ascii=False) == json.dumps(walked, ensure_ascii=False)
            assert not _containers(ours) & _containers(again), name
            assert not _containers(ours) & _containers(m._tagged(name)), name
            calls.append((name, fields, strings))
            seen.append(name)
            return ours
        return render

    m._renderer = checked
    try:
        list(rendered(example_program))
        for lang in ("zh-TW", "en"):
            list(flex_samples(example_program, context(example_program, lang)))
    finally:
        m._renderer = real
    return calls


def test_every_template_compiled_renders_exactly_what_the_walker_renders(filled):
    names = {path.stem for path in TEMPLATE_DIR.glob("*.json")
             if not path.name.startswith("strings.")}
    assert {name for name, _, _ in filled} == names


def test_compiled_templates_fail_like_the_walker_when_a_field_is_missing_or_wrong(filled):
    """Every field of one rendering per template and language taken away or given a value of
    the wrong kind: the same output (the field was in a dropped part) or the same error."""
    done = set()
    for name, fields, strings in filled:
        if (name, id(strings)) in done:
            continue
        done.add((name, id(strings)))
        compiled, tagged = m._renderer(name), m._tagged(name)
        for key in fields:
            for broken in (
                    {k: v for k, v in fields.items() if k != key},
                    {**fields, key: True}, {**fields, key: None}, {**fields, key: 2.5},
                    {**fields, key: [{}]}, {**fields, key: "x"}):
                walked = _outcome(fill, tagged, broken, strings)
                assert _same_outcome(_outcome(compiled, broken, strings), walked), (name, key)


NAMES = ("a", "b", "rows", "on", "n")
TEXTS = st.sampled_from(["x", "{{a}}", "{{b}} and {{a}}!", "{{ a }}", "{{@hello}}",
                         "{{@left}}", "{{@bare}}{{n}}", "{{rows}}", "{{@nope}}", "{{missing}}",
                         "{x}", "{{", "{{1}}", "'\"\\"])
SCALARS = TEXTS | st.integers(-3, 3) | st.booleans() | st.none() | st.just(1.5)


def _template_objects(children: Any) -> Any:
    return st.builds(
        lambda markers, body, first: {**markers, **body} if first else {**body, **markers},
        st.dictionaries(st.sampled_from(flex.MARKERS), st.sampled_from(NAMES), max_size=2),
        st.dictionaries(st.sampled_from(["type", "text", "contents", "hero"]), children,
                        max_size=3),
        st.booleans())


TEMPLATES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=3)
                         | _template_objects(children), max_leaves=12)
FIELD_VALUES = st.recursive(
    st.sampled_from(["v", "{{a}}", "", "1"]) | st.integers(0, 2) | st.booleans() | st.none(),
    lambda children: st.lists(st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
                              max_size=2), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(TEMPLATES, st.dictionaries(st.sampled_from(NAMES), FIELD_VALUES, max_size=5))
def test_compiled_templates_agree_with_the_walker_on_any_template(node, fields):
    strings = {**STRINGS, "hello": "Hi {a}"}
    assert _same_outcome(_outcome(compiled_fill, node, fields, strings),
                         _outcome(fill, node, fields, strings))


def _reference_format(strings: dict, key: str, fields: dict) -> str:
    """format_string as it was: string.Formatter at every call."""
    if key not in strings:
        raise TemplateError(f"no string {key!r}")
    try:
        return flex._PLURALS.vformat(strings[key], (), fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"string {key!r} cannot be filled: {exc!r}") from None


def test_every_strings_entry_formats_as_string_formatter_formats_it():
    for lang in ("zh-TW", "en"):
        table = strings_table(lang)
        for key, text in table.items():
            names = _fields(text)
            for value in (1, 2, "1", "12", "x", 1234567):
                fields = dict.fromkeys(names, value)
                assert format_string(table, key, fields) == _reference_format(
                    table, key, fields), key
            for missing in names:
                fields = {name: 1 for name in names if name != missing}
                assert _same_outcome(_outcome(format_string, table, key, fields),
                                     _outcome(_reference_format, table, key, fields))


@settings(max_examples=300, deadline=None)
@given(st.text("ab n{}:!/rs,0.[]x", max_size=14),
       st.fixed_dictionaries({}, optional={"a": st.sampled_from([1, "1", 2.5, "x"]),
                                           "b": st.just([1]), "n": st.integers(0, 2)}))
def test_any_strings_entry_formats_or_fails_as_string_formatter_does(text, fields):
    strings = {"k": text}
    assert _same_outcome(_outcome(format_string, strings, "k", fields),
                         _outcome(_reference_format, strings, "k", fields))


def test_both_strings_tables_have_the_same_keys_and_fields():
    zh, en = strings_table("zh-TW"), strings_table("en")
    assert zh.keys() == en.keys()
    # by design: "2026/11/22" vs "Nov 22, 2026", and 15% off is "85 折" in Taiwan
    for key in zh.keys() - {"date", "value.percent_off"}:
        assert _fields(zh[key]) == _fields(en[key]), key


def test_every_string_a_template_names_exists():
    for path in TEMPLATE_DIR.glob("*.json"):
        if path.name.startswith("strings."):
            continue
        for key in re.findall(r"\{\{@([\w.]+)\}\}", json.dumps(template(path.stem))):
            assert key in strings_table("zh-TW"), f"{path.name}: {key}"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# -- the limits themselves --------------------------------------------------------------------
def _bubble(*contents: dict) -> dict:
    return {"type": "bubble", "body": {"type": "box", "layout": "vertical",
                                       "contents": list(contents) or [{"type": "filler"}]}}


def _flex(contents: dict, alt: str = "alt") -> dict:
    return {"type": "flex", "altText": alt, "contents": contents}


def _postback(data: str, label: str = "Go") -> dict:
    return {"type": "button", "action": {"type": "postback", "label": label, "data": data}}


@pytest.mark.parametrize("batch, problem", [
    ([], "no messages"),
    ([{"type": "text", "text": "hi"}] * 6, "at most 5"),
    ([{"type": "text", "text": "x" * 5001}], "at most 5000"),
    ([{"type": "text", "text": "😀" * 2501}], "at most 5000"),
    ([_flex(_bubble(), "a" * 1501)], "at most 1500"),
    ([_flex({"type": "carousel", "contents": [_bubble()] * 13})], "13 bubbles"),
    ([_flex(_bubble({"type": "text", "text": "x" * 31000}))], "bytes of JSON"),
    ([_flex(_bubble(_postback("d" * 301)))], "at most 300"),
    ([_flex(_bubble(_postback("ok", "L" * 41)))], "at most 40"),
    ([_flex(_bubble({"type": "text", "text": ""}))], "non-empty"),
    ([_flex(_bubble({"type": "image", "url": "http://x.example/a.png"}))], "https://"),
    ([{"type": "text", "text": "hi", "quickReply": {"items": [
        {"type": "action", "action": {"type": "message", "label": "a", "text": "a"}}] * 14}}],
     "1 to 13"),
])
def test_check_messages_refuses_what_line_would_refuse(batch, problem):
    with pytest.raises(MessageLimitError, match=re.escape(problem)):
        check_messages(batch, "push")


def test_check_messages_accepts_a_full_carousel_and_knows_its_send_kinds():
    check_messages([_flex({"type": "carousel", "contents": [_bubble()] * 12})] * 5)
    with pytest.raises(ValueError):
        check_messages([{"type": "text", "text": "hi"}], "telepathy")


def _both_checks(batch: Any, *args: Any) -> tuple:
    """What check_messages does with `batch`, which must be what the walk before did."""
    ours = _outcome(check_messages, batch, *args)
    assert _same_outcome(ours, _outcome(limits_reference.check_messages, batch, *args))
    return ours


def test_check_messages_passes_and_refuses_what_it_did_before(everything):
    for _, _, _, batch in everything:
        assert _both_checks(batch)[0] == "ok"
        for message in batch:  # each message once more with a few things LINE refuses
            if message["type"] != "flex":
                continue
            broken = json.loads(json.dumps(message))
            buttons = [node for node in _objects(broken) if node.get("type") == "button"]
            texts = [node for node in _objects(broken) if node.get("type") in ("text", "span")]
            for button in buttons[-1:]:
                button["action"]["label"] = "L" * 41
            for text in texts[1:2]:
                text["text"] = ""
            assert _both_checks([broken], "push")[0] is MessageLimitError


def _objects(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    for child in node if isinstance(node, list) else ():
        yield from _objects(child)


def _big(n: int) -> dict:
    return _bubble({"type": "text", "text": "字" * n})


@pytest.mark.parametrize("batch, problem", [
    # each bubble fits, the carousel does not: its size is added up, to the byte
    ([_flex({"type": "carousel", "contents": [_big(6000)] * 3})], "54,"),
    # the sizes come first, then the first refused node in the walk's order
    ([_flex({"type": "carousel", "contents": [
        _bubble(_postback("d" * 301)), _big(11000)]})], "contents[1]: 33,"),
    ([_flex(_bubble(_postback("d" * 301), _postback("ok", "L" * 41),
                    {"type": "box", "contents": [{"type": "text", "text": ""}]}))],
     "contents[1].action.label"),
    ([_flex(_bubble({"type": "icon", "url": "https://x.example/a.png"}, {"type": "text"})),
      _flex(_bubble(), "")], "messages[0].contents.body.contents[1].text"),
    ([_flex({"type": "carousel", "contents": [_bubble(), _bubble({"type": "span"})]},
            "a" * 1501)], "altText"),
    ([{"type": "text", "text": "hi", "quickReply": {"items": [
        {"type": "action", "action": {"type": "message", "label": "a", "text": "t" * 301}}]}}],
     "quickReply.items[0].action.text"),
    ([{"type": "text", "text": "hi", "quickReply": {"items": [
        {"type": "action", "action": {"type": "uri", "label": "a", "uri": "ftp://x"}}]}}],
     "must start with https://"),
    ([_flex(_bubble({"type": "button", "action": {"type": "datetimepicker", "label": "x",
                                                  "data": "d", "displayText": ""}}))],
     "displayText: must be non-empty text"),
    # an emoji counts 2: short enough in characters, too long for LINE
    ([_flex(_bubble(_postback("😀" * 151)))], "data: 302 characters; at most 300"),
    ([_flex(_bubble(_postback("ok", "😀" * 21)))], "label: 42 characters; at most 40"),
    ([_flex(_bubble({"type": "image", "url": "https://" + "😀" * 997}))],
     "url: 2002 characters; at most 2000"),
])
def test_check_messages_says_what_it_said_before(batch, problem):
    kind, text = _both_checks(batch, "push")
    assert kind is MessageLimitError and problem in text, text


class _Node(dict):
    """A dict of another class: the walk took dict subclasses as objects too."""


@pytest.mark.parametrize("batch, schemes", [
    ([_flex(_bubble({"type": "text", "text": "x", "extra": {1, 2}}))], None),  # not JSON
    ([_flex({"type": "carousel", "contents": [_bubble(), _bubble({"type": "text",
                                                                  "text": "\ud800"})]})],
     None),  # a lone surrogate cannot be UTF-8
    ([_flex({"type": "carousel", "contents": [_bubble(), {"type": "bubble",
                                                          "body": {1, 2}}]})], None),
    ([_flex({"type": "carousel", "contents": (_bubble(), _bubble())})], None),
    ([_flex({"type": "carousel", "contents": [_bubble()], "x": float("nan")})], None),
    ([_flex(_bubble(_Node(type="text", text="")))], None),
    ([_flex(_bubble(_Node(type="image", url="https://x.example/a.png")))], ["https://"]),
    ([_flex(_bubble({"type": "image", "url": "https://x.example/a.png"}))], ["https://"]),
    ([_flex(_bubble({"type": ["text"], "text": ""}, {"type": "text", "text": 3}))], None),
    ([{"type": "text", "text": "hi", "x": [[{"type": "uri", "uri": 5}]]}], None),
    ([{"type": "text", "text": "a\udc00", "x": {1: 2}}], None),  # never serialised
])
def test_check_messages_fails_on_odd_input_as_it_did_before(batch, schemes):
    _both_checks(batch)
    if schemes:  # a list where a tuple belongs
        _both_checks(batch, "reply", schemes)


def test_a_circular_carousel_fails_as_it_did_before():
    carousel = {"type": "carousel", "contents": [_bubble()]}
    carousel["contents"][0]["body"]["contents"].append(carousel)
    assert _both_checks([_flex(carousel)])[0] is ValueError
    bubble = _bubble({"type": "text", "text": ""})
    bubble["body"]["contents"].append(bubble)
    assert _both_checks([_flex(bubble)])[0] is ValueError
    assert _both_checks([_flex(_bubble({"type": "text", "text": "a\udc00"}))])[0] is (
        UnicodeEncodeError)


def test_a_message_holding_more_than_any_message_could_is_checked_as_before():
    many = [{}] * 100_001
    assert _both_checks([{**_flex(_bubble()), "x": many}]) == ("ok", None)
    kind, text = _both_checks([{**_flex(_bubble()), "quickReply": {"items": many}}])
    assert kind is MessageLimitError and "1 to 13 items" in text
    kind, text = _both_checks([{**_flex(_bubble({"type": "text"})), "x": many}])
    assert kind is MessageLimitError and "contents.body.contents[0].text" in text


def test_a_message_nested_deeper_than_json_encodes_fails_as_before():
    node: Any = {"type": "text", "text": "x"}
    for _ in range(5000):
        node = [node]
    assert _both_checks([_flex(_bubble({"type": "box", "contents": node}))])[0] is (
        RecursionError)
    shallow = [[{"type": "text", "text": "x"}]]
    assert limits._check_nodes({"x": shallow}, "m", limits.IMAGE_SCHEMES) is not None


def test_only_a_message_near_the_limits_is_serialised(everything, monkeypatch):
    class Refusing:
        def encode(self, value: Any) -> str:
            raise AssertionError("serialised")
    monkeypatch.setattr(limits, "_JSON", Refusing())
    normal = [batch for _, kind, name, batch in everything
              if kind == "normal" and name in ("points_card", "stamp_card", "member_card")]
    for batch in normal:
        check_messages(batch)
    with pytest.raises(AssertionError, match="serialised"):
        check_messages([_flex(_big(10_300))])  # 30,900 bytes and more: over 30 KB


PLAIN_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**19, 10**19) | st.floats()
    | st.text(st.characters(blacklist_categories=["Cs"]), max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=6).filter(lambda key: key != "type"), children, max_size=4),
    max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6).filter(lambda key: key != "type"), PLAIN_JSON,
                       max_size=4))
def test_the_walks_size_bound_is_never_below_the_json_size(message):
    bound = limits._check_nodes(message, "m", limits.IMAGE_SCHEMES)
    assert bound is not None and bound >= json_bytes(message)


@pytest.mark.parametrize("value", ['"' * 1000, "\\" * 1000, "\x01" * 1000, "\n" * 1000,
                                   "😀" * 1000, "字" * 1000, "\u200d" * 1000,
                                   [float("inf"), float("-inf"), float("nan"), -1e-300] * 100,
                                   [-10**19, True, False, None] * 100, [[]] * 500, [{}] * 500])
def test_the_walks_size_bound_holds_for_escapes_wide_characters_and_numbers(value):
    message = {"type": "flex", value if isinstance(value, str) else "x": value}
    bound = limits._check_nodes(message, "m", limits.IMAGE_SCHEMES)
    assert bound is not None and bound >= json_bytes(message)


@pytest.mark.parametrize("odd", [{1: "x"}, ("x",), {"x"}, 10**30, _Node(a=1), b"x", "\udc00"])
def test_the_walk_gives_no_bound_for_what_is_not_plain_json(odd):
    assert limits._check_nodes({"x": [odd]}, "m", limits.IMAGE_SCHEMES) is None
    assert limits._check_nodes(_Node(x=1), "m", limits.IMAGE_SCHEMES) is None


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=4), children, max_size=3), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=4).filter(lambda key: key != "contents"), JSON,
                       max_size=3), st.lists(JSON, min_size=1, max_size=4), st.integers(0, 3))
def test_a_carousels_size_is_its_shells_plus_its_bubbles_and_commas(others, bubbles, at):
    items = list(others.items())
    items.insert(min(at, len(items)), ("contents", bubbles))
    carousel = dict(items)
    assert carousel_sizes(carousel) == (json_bytes(carousel), [json_bytes(b) for b in bubbles])
    assert json_bytes(carousel) == len(json.dumps(carousel, ensure_ascii=False,
                                                  separators=(",", ":")).encode())


LIMIT_TEXTS = (st.sampled_from(["", "ok", "x" * 301, "😀" * 151, "😀" * 150, "L" * 41, "L" * 40,
                                "é" * 160, "😀" * 21, "https://a.example/x", "http://a.example/x",
                                "tel:1", "x" * 1001, "https://" + "😀" * 500])
               | st.none() | st.integers(0, 2))
NODE_TYPES = st.sampled_from(["postback", "datetimepicker", "richmenuswitch", "message", "uri",
                              "button", "image", "icon", "text", "span", "box", None, 3])


def _limit_nodes(children: Any) -> Any:
    body = st.dictionaries(st.sampled_from(["data", "displayText", "text", "uri", "url",
                                            "label", "action", "contents"]),
                           children, max_size=4)
    return st.builds(lambda kind, rest: rest if kind is None else {"type": kind, **rest},
                     NODE_TYPES, body)


LIMIT_NODES = st.recursive(LIMIT_TEXTS, lambda children: st.lists(children, max_size=3)
                           | _limit_nodes(children), max_leaves=10)
QUICK_REPLIES = st.just({}) | st.builds(
    lambda items: {"quickReply": {"items": items}},
    st.lists(st.builds(lambda action: {"type": "action", "action": action}, LIMIT_NODES),
             max_size=14))
LIMIT_MESSAGES = st.one_of(
    st.builds(lambda alt, contents, quick: {"type": "flex", "altText": alt,
                                            "contents": contents, **quick},
              LIMIT_TEXTS, LIMIT_NODES | st.builds(
                  lambda bubbles: {"type": "carousel", "contents": bubbles},
                  st.lists(LIMIT_NODES, max_size=13)), QUICK_REPLIES),
    st.builds(lambda text, quick: {"type": "text", "text": text, **quick},
              LIMIT_TEXTS, QUICK_REPLIES),
    LIMIT_NODES)


@settings(max_examples=300, deadline=None)
@given(st.lists(LIMIT_MESSAGES, max_size=6), st.sampled_from((*KINDS, "fax")),
       st.sampled_from([("https://",), ("https://", "http://a.example/")]))
def test_check_messages_agrees_with_the_walk_before_on_any_batch(batch, kind, schemes):
    _both_checks(batch, kind, schemes)


def test_one_word_per_thing_stamps_are_zhang_and_points_are_dian(everything, example_program):
    """zh-TW counts stamps in 章 and points in 點; English says stamps and points in full."""
    for lang, kind, name, batch in everything:
        text = "\n".join(texts(batch))
        if lang == "en":
            assert not re.search(r"\bpts\b", text), f"{kind} {name}: {text!r}"
        elif name.startswith(("stamp_card", "nudge")) and "point" not in name:
            assert not re.search(r"集(?:滿)?\s*\d[\d,]*\s*點", text), f"{kind} {name}: {text!r}"
    zh = context(example_program, "zh-TW")
    card = "\n".join(texts(m.stamp_card(zh, summary(example_program, member(), stamps=3,
                                                    to_next=2))))
    assert "再集 2 章" in card and "集滿 5 章" in card
    assert "再集 3 章" in "\n".join(texts(m.nudge(zh, member(), "stamps", 3, "任選飲品一杯")))


def test_money_and_dates_are_written_one_way_in_both_languages(everything, example_program):
    """NT$1,234 and 2027/01/06, never `TWD 150`, `50 元`, `Nov 22, 2026` or an ISO date."""
    for lang, kind, name, batch in everything:
        text = "\n".join(shown(batch))
        for wrong in (r"TWD", r"\d\s*元", r"\d{4}-\d\d-\d\d", r"\b(?:Jan|Nov|Dec) \d",
                      r"\d\.\d\d\b"):
            assert not re.search(wrong, text), f"{lang} {kind} {name}: {wrong} in {text!r}"
    for lang in ("zh-TW", "en"):
        ctx = context(example_program, lang)
        points = "\n".join(texts(m.points_card(ctx, summary(example_program, member()))))
        assert "2026/11/22" in points and "NT$8,000" in points
        voided = m.text(ctx, "voided_purchase", amount=3200)[0]["text"]
        assert "NT$3,200" in voided and "元" not in voided
        refused = MinimumSpendNotMet(minimum=1500, amount=90, currency="TWD").message(lang)
        assert "NT$1,500" in refused and "NT$90" in refused
        assert "2027/01/06" in CouponExpired(until=dt.date(2027, 1, 6)).message(lang)


def test_no_zero_counts_and_english_plurals(everything, example_program):
    """"1 張優惠券即將到期", not "0 點、1 張優惠券"; "1 coupon", "2 coupons", never "coupon(s)"."""
    for lang, kind, name, batch in everything:
        text = "\n".join(texts(batch))
        assert "(s)" not in text, f"{lang} {kind} {name}"
        if name.startswith(("expiry_warning", "nudge", "wallet", "staff_purchase_recorded")):
            assert not re.search(r"(?<![\d,])0 (?:點|張|章)", text), f"{lang} {kind} {name}"
        if lang == "en":
            assert not re.search(r"(?<![\d,])1 (?:points|coupons|stamps|purchases)\b", text), (
                f"{kind} {name}: {text!r}")
    zh, en = context(example_program, "zh-TW"), context(example_program, "en")
    coupon = view(example_program)
    assert m.expiry_warning(zh, member(), [], [coupon])[0]["altText"] == "1 張優惠券即將到期"
    assert m.expiry_warning(en, member(), [], [coupon])[0]["altText"] == "Expiring soon: 1 coupon"
    both = m.expiry_warning(en, member(), [(TODAY, 1)], [coupon, coupon])[0]["altText"]
    assert both == "Expiring soon: 1 point, 2 coupons"
    one = "\n".join(texts(m.rewards_catalog(en, 99)))
    assert "\n1 more point needed" in one and not re.search(r"(?<![\d,])1 more points", one)


def shown(node: Any) -> Iterator[str]:
    """What a reader sees: texts, alt texts, button labels and what a tap types."""
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("text", "altText", "label", "displayText") and isinstance(child, str):
                yield child
            else:
                yield from shown(child)
    elif isinstance(node, list):
        for child in node:
            yield from shown(child)


CODE = re.compile(r"\b[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}\b")
ZH_KEEPS = ("NT$", "QR", "LINE", *LITERALS)  # what Taiwanese cards write in Latin letters


def test_zh_tw_cards_show_no_english_words_and_english_cards_no_chinese(everything,
                                                                        example_program):
    names = [WEIRD, member().display_name, "Amy"]  # people's names are as they are
    for lang, kind, name, batch in everything:
        for text in shown(batch):
            for value in names:
                text = text.replace(value, "")
            if lang == "en":
                assert not CJK.search(text), f"{kind} {name}: {text!r}"
                continue
            if kind == "extreme":  # its titles are made up to stress the layout
                continue
            text = CODE.sub("", re.sub(r"https?://\S+", "", text))  # links are links
            for value in ZH_KEEPS:
                text = text.replace(value, "")
            assert not re.search(r"[A-Za-z]{2,}", text), f"{kind} {name}: {text!r}"


def test_an_owners_chinese_campaign_name_is_not_shown_to_english_readers(example_program):
    zh, en = context(example_program, "zh-TW"), context(example_program, "en")
    assert readable(zh, "聖誕快樂") == "聖誕快樂"
    assert readable(en, "聖誕快樂") == "Mountain Mist Café"
    assert readable(en, "Merry Xmas") == "Merry Xmas"


def test_the_rules_card_says_how_points_stamps_and_tiers_work(example_program):
    zh = "\n".join(shown(m.rules(context(example_program, "zh-TW"))))
    for rule in ("每消費 NT$30 累積 1 點", "點數在獲得後第 12 個月的月底到期",
                 "每次消費滿 NT$80 集 1 章", "每天最多集 1 章", "集滿 5 章：全品項9折",
                 "集滿 10 章：任選飲品一杯", "365 天內有效", "近 12 個月消費滿 NT$15,000",
                 "消費點數 1 倍", "消費點數 1.5 倍", "生日禮：生日快樂！免費蛋糕套餐",
                 "新品搶先試喝", "生日當天"):
        assert rule in zh, rule
    en = "\n".join(shown(m.rules(context(example_program, "en"))))
    for rule in ("Every NT$30 you spend earns 1 point", "1.5× points on every purchase",
                 "First taste of new drinks", "valid for 365 days"):
        assert rule in en, rule


def test_customers_read_a_categorys_name_where_the_pos_has_a_key(example_program):
    """The rules say which products earn more, and a lower multiplier is announced, by the
    names the program gives them ("beans" is the POS's key, not a word for customers)."""
    from fractions import Fraction

    from bot.line.formatting import coming
    from bot.program import Change

    rules = {lang: "\n".join(shown(m.rules(context(example_program, lang))))
             for lang in ("zh-TW", "en")}
    assert "咖啡豆 類商品點數 2 倍" in rules["zh-TW"]
    assert "周邊商品 類商品點數 1.5 倍" in rules["zh-TW"]
    assert "Coffee beans: 2× points" in rules["en"] and "Merchandise: 1.5× points" in rules["en"]
    assert "beans" not in rules["zh-TW"] and "merch:" not in rules["en"]
    lower = dataclasses.replace(
        example_program, coming=(Change("category_lower", "beans", Fraction(2), Fraction(3, 2)),),
        coming_at=dt.datetime(2027, 1, 31, 16, tzinfo=dt.UTC))
    assert coming(context(lower, "zh-TW")) == [
        "2027/02/01 起：咖啡豆 類商品點數 1.5 倍（現在 2 倍）"]
    assert coming(context(lower, "en")) == ["From 2027/02/01: Coffee beans earns x1.5 points "
                                            "(now x2)"]
    unnamed = dataclasses.replace(lower, category_names={"merch": "周邊商品"},
                                  category_names_en={})
    assert "beans 類商品點數 1.5 倍" in coming(context(unnamed, "zh-TW"))[0]
    assert "beans earns x1.5" in coming(context(unnamed, "en"))[0]
    # no English name: English cards fall back to the Chinese one, as for every name
    assert "周邊商品: 1.5× points" in "\n".join(shown(m.rules(context(unnamed, "en"))))


def test_the_rules_card_tells_of_points_campaigns_until_they_are_over(example_program):
    def rules(lang: str, today: dt.date) -> str:
        return "\n".join(shown(m.rules(context(example_program, lang), today=today)))

    before = rules("zh-TW", dt.date(2026, 12, 7))
    assert "聖誕雙倍點數：2026/12/24–2026/12/26 點數 2 倍" in before
    assert "聖誕雙倍點數" in rules("zh-TW", dt.date(2026, 12, 26))  # its last day
    assert "聖誕雙倍點數" not in rules("zh-TW", dt.date(2026, 12, 27))
    assert "Christmas double points: 2× points, 2026/12/24–2026/12/26" in rules(
        "en", dt.date(2026, 12, 7))
    many = dataclasses.replace(example_program, campaigns=tuple(
        dataclasses.replace(example_program.campaigns[0], name=f"活動{i}",
                            starts=dt.date(2027, 1, 10 - i), ends=dt.date(2027, 1, 20))
        for i in range(5)))
    listed = re.findall(r"活動(\d)", "\n".join(shown(m.rules(context(many, "zh-TW"),
                                                              today=dt.date(2027, 1, 1)))))
    assert listed == ["4", "3", "2"]  # the soonest three


def test_the_points_card_and_tier_news_show_the_tiers_benefits(example_program):
    zh = context(example_program, "zh-TW")
    card = "\n".join(shown(m.points_card(zh, summary(example_program, member(tier="gold")))))
    assert "金卡會員禮遇" in card and "新品搶先試喝" in card and "消費點數 1.5 倍" in card
    news = m.tier_news(zh, example_program.tier("gold"), True)[0]["text"]
    assert "金卡會員" in news and "新品搶先試喝" in news
    assert "新品搶先試喝" not in m.tier_news(zh, example_program.tier("gold"), False)[0]["text"]
    receipt = "\n".join(shown(m.purchase_receipt(zh, purchase(example_program), 10, [])))
    assert "新品搶先試喝" in receipt


def test_the_stamp_card_shows_its_last_day(example_program):
    zh = context(example_program, "zh-TW")
    card = "\n".join(shown(m.stamp_card(zh, dataclasses.replace(
        summary(example_program, member()), stamps_until=dt.date(2027, 1, 6)))))
    assert "有效期限至 2027/01/06" in card
    endless = dataclasses.replace(summary(example_program, member()), stamps_until=None)
    assert "有效期限" not in "\n".join(shown(m.stamp_card(zh, endless)))


def test_the_expiry_warning_points_to_a_reward_or_says_how_many_points_are_missing(
        example_program):
    zh, rewards = context(example_program, "zh-TW"), example_program.rewards
    soon = [(TODAY, 40)]
    short = "\n".join(shown(m.expiry_warning(zh, member(), soon, [], None, (rewards[0], 60))))
    assert "再 60 點就能兌換「折價NT$50」" in short
    rich = "\n".join(shown(m.expiry_warning(zh, member(), soon, [], None, (rewards[1], 0))))
    assert "可以兌換「蛋糕套餐兌換券」" in rich
    coupons_only = m.expiry_warning(zh, member(), [], [view(example_program)], None,
                                    (rewards[0], 0))
    assert "兌換" not in "\n".join(shown(coupons_only)).replace("兌換好禮", "")
