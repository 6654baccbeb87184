"""The simulator's Flex renderer: faithful to LINE's layout rules, inert for any input."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.simulator.flex_html import render_message
from tests.test_flex_messages import rendered

CSS = Path(__file__).resolve().parents[1] / "bot" / "simulator" / "static" / "flex.css"
HOSTILE = ('<script>alert(1)</script>', '" onmouseover="x', "'><img src=x onerror=alert(1)>")


class Page(HTMLParser):
    """Every start tag with its attributes, and the text, of rendered HTML."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def having(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.elements if name in (attrs.get("class") or "").split()]

    @property
    def text(self) -> str:
        return "".join(self.texts)


def bubble(*contents: Any, layout: str = "vertical", **box: Any) -> dict:
    return {"type": "bubble", "body": {"type": "box", "layout": layout,
                                       "contents": list(contents), **box}}


def flex(contents: Any, alt: str = "alt") -> dict:
    return {"type": "flex", "altText": alt, "contents": contents}


def page(message: Any, qr_payload: Any = None) -> Page:
    return Page(render_message(message, qr_payload))


def styles(attrs: dict[str, str | None]) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in (attrs.get("style") or "").split(";") if part)
    return {name.strip(): value.strip() for name, value in pairs}


def assert_inert(result: Page) -> None:
    for tag, attrs in result.elements:
        assert tag not in ("script", "iframe", "object", "embed"), tag
        assert not any(name.startswith("on") for name in attrs), attrs


# -- escaping -------------------------------------------------------------------------------
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_in_every_place_comes_out_as_plain_text(hostile):
    action = {"type": "postback", "label": hostile, "data": hostile, "displayText": hostile}
    message = flex(bubble(
        {"type": "text", "text": hostile},
        {"type": "text", "contents": [{"type": "span", "text": hostile}]},
        {"type": "button", "action": action}), alt=hostile)
    for result in (page(message), page({"type": "text", "text": hostile})):
        assert_inert(result)
        assert hostile in result.text
    result = page(message)
    assert result.text.count(hostile) == 4  # text, span, button label, alt text
    assert json.loads(result.having("sim-action")[0]["data-action"]) == action


def test_a_text_message_keeps_its_newlines_inside_a_chat_bubble():
    result = page({"type": "text", "text": "line one\nline two"})
    assert result.having("sim-text")
    assert "line one\nline two" in result.text


# -- actions --------------------------------------------------------------------------------
ACTIONS = [
    {"type": "postback", "label": "Go", "data": "action=wallet&page=2", "displayText": "下一頁",
     "inputOption": "openKeyboard"},
    {"type": "message", "label": "Hi", "text": "集點 ABC"},
    {"type": "uri", "label": "Web", "uri": "https://cafe.example/?a=1&b=\"2\""},
    {"type": "datetimepicker", "label": "Birthday", "data": "bday", "mode": "date",
     "initial": "1990-01-01", "max": "2026-12-31", "min": "1900-01-01"},
    {"type": "clipboard", "label": "Copy", "clipboardText": "MQT-WZ4"},
    {"type": "camera", "label": "Camera"},
]


@pytest.mark.parametrize("action", ACTIONS, ids=[a["type"] for a in ACTIONS])
def test_an_action_round_trips_through_the_data_action_attribute(action):
    message = flex({**bubble({"type": "button", "action": action},
                             {"type": "text", "text": "t", "action": action},
                             {"type": "image", "url": "https://x.example/a.png",
                              "action": action},
                             {"type": "box", "layout": "vertical", "contents": [],
                              "action": action}),
                    "action": action})
    found = page(message).having("sim-action")
    assert len(found) == 5  # bubble, button, text, image, box
    assert all(json.loads(attrs["data-action"]) == action for attrs in found)


def test_buttons_show_the_action_label_and_lines_button_styles():
    result = page(flex(bubble(
        {"type": "button", "style": "primary", "action": ACTIONS[0]},
        {"type": "button", "style": "secondary", "height": "sm", "action": ACTIONS[1]},
        {"type": "button", "style": "link", "color": "#123456", "action": ACTIONS[2]})))
    assert [len(result.having(f"flex-button-{s}")) for s in ("primary", "secondary", "link")] \
        == [1, 1, 1]
    assert result.having("flex-button-sm") and len(result.having("flex-button-md")) == 2
    assert styles(result.having("flex-btn")[2]) == {"color": "#123456"}
    assert "Go" in result.text and "Web" in result.text


def test_quick_reply_items_become_chips_carrying_their_actions():
    items = [{"type": "action", "action": a} for a in ACTIONS[:2]]
    result = page({"type": "text", "text": "hi", "quickReply": {"items": items}})
    assert len(result.having("sim-quick")) == 1
    chips = result.having("sim-chip")
    assert [json.loads(c["data-action"]) for c in chips] == ACTIONS[:2]


# -- sanitising -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    "red", "#12345", "#1234567", "#GGGGGG", "#123456; background: url(x)", "10px;top:0",
    "expression(alert(1))", "12 px", "-3px", "1e3px", "calc(1px)", "１２px", 12, None,
])
def test_colours_and_sizes_that_are_not_valid_never_reach_a_style(bad):
    node = {"type": "box", "layout": "vertical", "contents": [
        {"type": "text", "text": "x", "color": bad, "size": bad, "margin": bad},
        {"type": "image", "url": "https://x.example/a.png", "size": bad,
         "backgroundColor": bad, "aspectRatio": bad}],
        "backgroundColor": bad, "borderColor": bad, "borderWidth": bad, "cornerRadius": bad,
        "width": bad, "height": bad, "paddingAll": bad, "spacing": bad, "offsetTop": bad,
        "background": {"type": "linearGradient", "angle": bad, "startColor": bad,
                       "endColor": "#000000"}}
    result = page(flex(bubble(node)))
    for _, attrs in result.elements:
        style = attrs.get("style") or ""
        assert "url(" not in style and "expression" not in style
        assert not isinstance(bad, str) or bad not in style, style
    assert "background-image" not in styles(result.having("flex-box")[1])  # half a gradient


def test_valid_colours_and_sizes_come_through_with_eight_digit_colours_as_rgba():
    result = page(flex(bubble(
        {"type": "text", "text": "x", "color": "#FF000080", "size": "xxl", "margin": "13px"},
        {"type": "text", "text": "y", "size": "5xl", "color": "#00ff00"},
        backgroundColor="#11223344", paddingAll="5%", cornerRadius="md", borderWidth="semi-bold",
        background={"type": "linearGradient", "angle": "90deg", "startColor": "#000000",
                    "endColor": "#ffffff", "centerColor": "#ff0000", "centerPosition": "30%"})))
    first, second = (styles(t) for t in result.having("flex-text"))
    assert first["color"] == "rgba(255, 0, 0, 0.502)" and first["font-size"] == "29px"
    assert first["margin-top"] == "13px"
    assert second == {"flex": "0 0 auto", "font-size": "74px", "color": "#00ff00"}
    box = styles(result.having("flex-box")[0])
    assert box["background-color"] == "rgba(17, 34, 51, 0.267)"
    assert (box["padding"], box["border-radius"], box["border-width"]) == ("5%", "8px", "3px")
    assert box["background-image"] == \
        "linear-gradient(90deg, #000000 0%, #ff0000 30%, #ffffff 100%)"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:image/png;base64,AAAA",
                                 "/qr/x.png", "//evil.example/x.png", "http://a b/x.png"])
def test_only_http_images_reach_an_img_tag(url):
    result = page(flex(bubble({"type": "image", "url": url},
                              {"type": "box", "layout": "baseline",
                               "contents": [{"type": "icon", "url": url}]})))
    image = page({"type": "image", "originalContentUrl": url, "previewImageUrl": url})
    for each in (result, image):
        assert not [attrs for tag, attrs in each.elements if tag == "img"]


# -- layout ---------------------------------------------------------------------------------
def test_horizontal_box_children_take_flex_1_unless_flex_is_given():
    result = page(flex(bubble(
        {"type": "text", "text": "a"}, {"type": "text", "text": "b", "flex": 0},
        {"type": "text", "text": "c", "flex": 3}, {"type": "box", "layout": "vertical",
                                                   "contents": [], "width": "40px"},
        layout="horizontal")))
    assert [styles(t)["flex"] for t in result.having("flex-text")] == \
        ["1 0 0", "0 0 auto", "3 0 0"]
    assert styles(result.having("flex-box")[1])["flex"] == "0 0 auto"  # a width wins


def test_vertical_box_children_keep_their_height_unless_flex_is_given():
    result = page(flex(bubble({"type": "text", "text": "a"},
                              {"type": "text", "text": "b", "flex": 2}, {"type": "filler"})))
    assert [styles(t)["flex"] for t in result.having("flex-text")] == ["0 0 auto", "2 0 auto"]
    assert styles(result.having("flex-filler")[0])["flex"] == "1 0 0"


def test_spacing_is_lines_gap_before_every_child_but_the_first_and_margin_overrides_it():
    result = page(flex(bubble(*({"type": "text", "text": str(i)} for i in range(3)),
                              {"type": "separator", "margin": "xxl"}, spacing="md")))
    margins = [styles(t).get("margin-top") for t in result.having("flex-text")]
    assert margins == [None, "8px", "8px"]
    assert styles(result.having("flex-separator")[0])["margin-top"] == "20px"


def test_a_baseline_box_lines_up_icons_and_texts_sideways():
    icon = {"type": "icon", "url": "https://x.example/star.png", "size": "sm",
            "aspectRatio": "2:1"}
    result = page(flex(bubble(icon, {"type": "text", "text": "4.5", "margin": "md"},
                              layout="baseline")))
    assert result.having("flex-box-baseline")
    assert styles(result.having("flex-icon")[0])["font-size"] == "14px"
    assert styles(result.having("flex-icon-img")[0])["width"] == "2.0em"
    assert styles(result.having("flex-text")[0])["margin-inline-start"] == "8px"
    assert ".flex-box-baseline {\n  align-items: baseline;" in CSS.read_text()


def test_a_carousel_puts_every_bubble_in_one_sideways_scrolling_row():
    sizes = ["nano", "micro", "deca", "hecto", "kilo", "mega", "giga"]
    carousel = {"type": "carousel", "contents": [
        {**bubble({"type": "text", "text": size}), "size": size} for size in sizes]}
    result = page(flex(carousel))
    assert len(result.having("flex-carousel")) == 1
    assert [b["class"].split()[1] for b in result.having("flex-bubble")] == \
        [f"flex-size-{s}" for s in sizes]
    rule = CSS.read_text().split(".flex-slider {")[1].split("}")[0]
    assert "overflow-x: auto" in rule and "scroll-snap-type: x" in rule
    assert "align-items: stretch" in rule  # bubbles of one carousel share a height


def test_texts_wrap_and_clamp_only_when_asked():
    result = page(flex(bubble({"type": "text", "text": "a\nb"},
                              {"type": "text", "text": "a\nb", "wrap": True, "maxLines": 2,
                               "align": "center", "decoration": "line-through"})))
    plain, wrapped = result.having("flex-text")
    assert "flex-nowrap" in plain["class"] and "flex-clamp" in wrapped["class"]
    assert styles(wrapped)["text-decoration"] == "line-through"
    assert ("br", {}) in result.elements


# -- images and QR codes ----------------------------------------------------------------------
def test_a_qr_image_gets_a_scan_button_holding_its_payload():
    qr = "https://cafe.example/qr/abc.png"
    payloads = {qr: '核銷 "ABC" <x>'}
    message = flex(bubble({"type": "image", "url": qr, "aspectRatio": "1:1"},
                          {"type": "image", "url": "https://cafe.example/cake.png"}))
    result = page(message, payloads.get)
    assert [a["data-scan"] for a in result.having("sim-scan")] == ['核銷 "ABC" <x>']
    assert all(a.get("loading") == "lazy" for tag, a in result.elements if tag == "img")
    assert not page(message).having("sim-scan")
    image = {"type": "image", "originalContentUrl": qr, "previewImageUrl": qr}
    assert page(image, payloads.get).having("sim-scan")


def test_image_size_ratio_and_mode_follow_line():
    result = page(flex(bubble({"type": "image", "url": "https://x.example/a.png",
                               "size": "full", "aspectRatio": "20:13", "aspectMode": "cover"})))
    assert styles(result.having("flex-frame")[0])["width"] == "100%"
    assert styles(result.having("flex-ratio")[0])["padding-bottom"] == "65.0%"
    assert result.having("flex-img-cover")


# -- odd input --------------------------------------------------------------------------------
def test_an_unknown_component_shows_a_visible_marker():
    result = page(flex(bubble({"type": "hologram"}, {"type": "text", "text": "still here"})))
    assert "unsupported: hologram" in result.text and "still here" in result.text


@pytest.mark.parametrize("message", [
    None, "text", 3, [], {}, {"type": None}, {"type": "sticker", "packageId": "1"},
    {"type": "text"}, {"type": "text", "text": None, "quickReply": "x"},
    {"type": "text", "text": "x", "quickReply": {"items": [None, "x", {"action": 3}]}},
    flex(None), flex("bubble"), flex({"type": "carousel", "contents": None}),
    flex({"type": "carousel", "contents": ["x", None, {"type": "bubble"}]}),
    flex({"type": "bubble", "body": "box", "styles": "x", "size": ["mega"]}),
    flex(bubble(None, "text", 3, {"type": "box", "contents": "x", "layout": 7},
                {"type": "text", "contents": [None, {"type": "span"}]},
                {"type": "button", "action": "x"}, {"type": "video"},
                {"type": "image", "aspectRatio": "0:0"}, {"type": "filler", "flex": True})),
    flex(bubble(spacing=[], paddingAll={}, background={"type": "linearGradient"})),
    {"type": "image"},
])
def test_malformed_messages_render_without_raising(message):
    assert isinstance(render_message(message), str)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(
        ["box", "text", "image", "icon", "button", "separator", "filler", "spacer", "video",
         "span", "bubble", "carousel", "horizontal", "baseline", "md", "#12345678", "3:1",
         "https://x.example/a.png", *HOSTILE]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["type", "layout", "contents", "text", "url", "size", "flex", "margin", "spacing",
         "color", "action", "label", "altContent", "position", "offsetTop", "wrap",
         "maxLines", "aspectRatio", "style", "body", "hero", "styles", "background"]),
        inner, max_size=6),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(contents=JSON, body=JSON)
def test_any_json_at_all_renders_inert_without_raising(contents, body):
    for message in (flex(contents), flex(bubble(body)), flex({"type": "bubble", "body": body})):
        assert_inert(page(message))


def test_absurd_nesting_stops_with_a_marker_instead_of_exhausting_the_stack():
    node: dict = {"type": "text", "text": "deep"}
    for _ in range(5000):
        node = {"type": "box", "layout": "vertical", "contents": [node]}
    assert "unsupported: nesting too deep" in render_message(flex(bubble(node)))


def test_the_stylesheet_loads_nothing_from_outside():
    text = CSS.read_text()
    assert "url(" not in text and "@import" not in text and "@font-face" not in text


# -- every message the bot sends ----------------------------------------------------------------
def test_every_message_the_bot_sends_renders_completely_with_http_images(example_program):
    for lang, kind, name, batch in rendered(example_program):
        for message in batch:
            markup = render_message(message, lambda url: "payload" if "/qr/" in url else None)
            result = Page(markup)
            where = f"{lang} {kind} {name}"
            assert "sim-unknown" not in markup, where
            assert_inert(result)
            for tag, attrs in result.elements:
                assert tag != "img" or re.match(r"https?://", attrs["src"] or ""), where
                assert all(c.startswith(("sim-", "flex-")) for c in
                           (attrs.get("class") or "").split()), where
