"""LINE messages as HTML for the simulator page: a faithful Flex renderer that is inert by design.

Every string from a message is escaped, colours, sizes and URLs pass the checks of `flex_css`
or are dropped, and a malformed message renders (with a visible `sim-unknown` marker where a
part makes no sense) rather than raising. Actions are never run: they ride along as JSON in
`data-action` for the page's own script. Layout rules follow LINE's simulator stylesheet: in a
horizontal or baseline box children share the width (flex 1 by default), in a vertical box they
keep their natural height (flex 0), and `spacing` is a leading margin on every child but the
first, a filler, a spacer and the child right after a spacer.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from bot.simulator import flex_css as css

QrPayload = Callable[[str], str | None]
Style = tuple[str, str | None]
BLOCKS = ("header", "hero", "body", "footer")
MAX_DEPTH = 40  # deeper than any real design; keeps hostile nesting from exhausting the stack
SCAN_LABEL = "Scan QR"


@dataclass(frozen=True)
class Slot:
    """Where a component sits: its parent's layout ("block" for a bubble block) and lead gap."""

    axis: str
    gap: str | None = None
    depth: int = 0


def render_message(message: Any, qr_payload: QrPayload | None = None) -> str:
    """One Messaging API message object as HTML; malformed input renders and never raises."""
    if not isinstance(message, dict):
        return _placeholder(type(message).__name__)
    kind, flex = message.get("type"), _Flex(qr_payload)
    if kind == "text":
        body = _wrap("text", f'<div class="sim-text">{_esc(message.get("text"))}</div>')
    elif kind == "flex":
        body = _wrap("flex", flex.container(message.get("contents"))
                     + f'<div class="sim-alt">{_esc(message.get("altText"))}</div>')
    elif kind == "image":
        body = _wrap("image", flex.picture(
            message.get("previewImageUrl") or message.get("originalContentUrl"),
            message.get("originalContentUrl"), "sim-image"))
    else:
        body = _placeholder(kind)
    return body + _quick_reply(message.get("quickReply"))


def _wrap(kind: str, inner: str) -> str:
    return f'<div class="sim-msg sim-msg-{kind}">{inner}</div>'


def _placeholder(kind: Any) -> str:
    return f'<div class="sim-msg sim-placeholder">[{_esc(str(kind))}]</div>'


def _unknown(kind: Any) -> str:
    return f'<div class="sim-unknown">unsupported: {_esc(str(kind)[:40])}</div>'


def _esc(value: Any) -> str:
    return html.escape(value, quote=True) if isinstance(value, str) else ""


def _style(styles: list[Style]) -> str:
    body = "; ".join(f"{name}: {value}" for name, value in styles if value)
    return f' style="{_esc(body)}"' if body else ""


def _tag(classes: list[str], styles: list[Style], inner: str, action: Any = None,
         tag: str = "div", extra: str = "") -> str:
    """An element; an action adds `sim-action` and its JSON (escaped) in `data-action`."""
    if isinstance(action, dict):
        classes = [*classes, "sim-action"]
        extra += f' data-action="{_esc(json.dumps(action, ensure_ascii=False, default=str))}"'
        if tag == "div":
            extra += ' role="button" tabindex="0"'
    return f'<{tag} class="{" ".join(classes)}"{_style(styles)}{extra}>{inner}</{tag}>'


def _quick_reply(quick: Any) -> str:
    items = quick.get("items") if isinstance(quick, dict) else None
    chips = []
    for item in items if isinstance(items, list) else []:
        action = item.get("action") if isinstance(item, dict) else None
        if not isinstance(action, dict):
            continue
        icon = css.url(item.get("imageUrl"))
        image = f'<img class="sim-chip-icon" src="{_esc(icon)}" alt="" loading="lazy">' \
            if icon else ""
        chips.append(_tag(["sim-chip"], [], image + _esc(action.get("label")), action,
                          "button", ' type="button"'))
    return f'<div class="sim-quick">{"".join(chips)}</div>' if chips else ""


def _kind(node: Any) -> Any:
    return node.get("type") if isinstance(node, dict) else None


def _flex(node: dict, slot: Slot, main_size: bool = False) -> Style:
    """LINE's flex: grow only; children of horizontal boxes start from zero width, and a box
    given its own width (height in a vertical box) keeps it unless `flex` says otherwise."""
    if slot.axis == "block":
        return ("flex", None)
    across = slot.axis != "vertical"
    grow = css.count(node.get("flex"))
    if grow is None:
        grow = int(across and not main_size)
    if grow == 0:
        return ("flex", "0 0 auto")
    return ("flex", f"{grow} 0 {'0' if across and not main_size else 'auto'}")


def _lead(node: dict, slot: Slot) -> Style:
    """`margin` replaces the box's spacing before this child, on the parent's main axis."""
    if slot.axis == "block" or node.get("position") == "absolute":
        return ("margin-top", None)
    value = css.length(node.get("margin"), css.SPACING) or slot.gap
    return ("margin-top" if slot.axis == "vertical" else "margin-inline-start", value)


def _offsets(node: dict) -> list[Style]:
    at = {key: css.length(node.get(key), css.SPACING) for key in
          ("offsetTop", "offsetBottom", "offsetStart", "offsetEnd")}
    position = "absolute" if node.get("position") == "absolute" else None
    return [("position", position), ("top", at["offsetTop"]), ("bottom", at["offsetBottom"]),
            ("inset-inline-start", at["offsetStart"]), ("inset-inline-end", at["offsetEnd"])]


def _item(node: dict, slot: Slot) -> list[Style]:
    return [_flex(node, slot), _lead(node, slot), *_offsets(node)]


def _font(node: dict) -> list[Style]:
    return [("font-size", css.length(node.get("size"), css.TEXT_SIZES, percent=False)),
            ("color", css.color(node.get("color"))),
            ("font-weight", css.choice(node.get("weight"), css.WEIGHTS)),
            ("font-style", css.choice(node.get("style"), css.STYLES)),
            ("text-decoration", css.choice(node.get("decoration"), css.DECORATIONS))]


def _box_look(node: dict) -> list[Style]:
    pad = {key: css.length(node.get(key), css.SPACING) for key in
           ("paddingAll", "paddingTop", "paddingBottom", "paddingStart", "paddingEnd")}
    border = css.length(node.get("borderWidth"), css.BORDER_WIDTHS, percent=False)
    return [("padding", pad["paddingAll"]), ("padding-top", pad["paddingTop"]),
            ("padding-bottom", pad["paddingBottom"]),
            ("padding-inline-start", pad["paddingStart"]),
            ("padding-inline-end", pad["paddingEnd"]),
            ("background-color", css.color(node.get("backgroundColor"))),
            ("background-image", css.gradient(node.get("background"))),
            ("border-width", border), ("border-color", css.color(node.get("borderColor"))),
            ("border-radius", css.length(node.get("cornerRadius"), css.SPACING, percent=False)),
            ("justify-content", css.choice(node.get("justifyContent"), css.JUSTIFY)),
            ("align-items", css.choice(node.get("alignItems"), css.ALIGN_ITEMS))]


class _Flex:
    """Renders Flex containers and components; holds the page's QR look-up."""

    def __init__(self, qr_payload: QrPayload | None) -> None:
        self.qr_payload = qr_payload

    def container(self, node: Any) -> str:
        if _kind(node) == "carousel":
            bubbles = node.get("contents")
            inner = "".join(map(self.bubble, bubbles)) if isinstance(bubbles, list) else ""
            return f'<div class="flex-slider flex-carousel">{inner}</div>'
        return f'<div class="flex-slider flex-single">{self.bubble(node)}</div>'

    def bubble(self, node: Any) -> str:
        if _kind(node) != "bubble":
            return _unknown(_kind(node) or type(node).__name__)
        size = node.get("size") if node.get("size") in css.BUBBLE_SIZES else "mega"
        direction = "rtl" if node.get("direction") == "rtl" else "ltr"
        styles = node.get("styles") if isinstance(node.get("styles"), dict) else {}
        blocks = "".join(self.block(name, node, styles.get(name)) for name in BLOCKS)
        return _tag(["flex-bubble", f"flex-size-{size}"], [], blocks, node.get("action"),
                    extra=f' dir="{direction}"')

    def block(self, name: str, bubble: dict, look: Any) -> str:
        content = bubble.get(name)
        if content is None:
            return ""
        look = look if isinstance(look, dict) else {}
        line = css.color(look.get("separatorColor")) or "#d4d6da"
        styles = [("background-color", css.color(look.get("backgroundColor"))),
                  ("border-top", f"1px solid {line}" if look.get("separator") is True else None)]
        classes = ["flex-block", f"flex-{name}"]
        if name == "body" and bubble.get("footer") is not None:
            classes.append("flex-has-footer")
        return _tag(classes, styles, self.component(content, Slot("block")))

    def component(self, node: Any, slot: Slot) -> str:
        if slot.depth > MAX_DEPTH:
            return _unknown("nesting too deep")
        render = self.RENDERERS.get(_kind(node)) if isinstance(_kind(node), str) else None
        if render is None:
            return _unknown(_kind(node) if isinstance(node, dict) else type(node).__name__)
        return render(self, node, slot)

    def box(self, node: dict, slot: Slot) -> str:
        layout = node.get("layout") if node.get("layout") in css.LAYOUTS else "vertical"
        sizes = {key: css.length(node.get(key)) for key in
                 ("width", "maxWidth", "height", "maxHeight")}
        main = sizes["height" if slot.axis == "vertical" else "width"] is not None
        styles = [_flex(node, slot, main_size=main), _lead(node, slot), *_offsets(node),
                  *_box_look(node), ("width", sizes["width"]), ("max-width", sizes["maxWidth"]),
                  ("height", sizes["height"]), ("max-height", sizes["maxHeight"])]
        contents = node.get("contents")
        inner = self.children(contents if isinstance(contents, list) else [], layout,
                              css.length(node.get("spacing"), css.SPACING), slot.depth + 1)
        return _tag(["flex-box", f"flex-box-{layout}"], styles, inner, node.get("action"))

    def children(self, nodes: list, layout: str, gap: str | None, depth: int) -> str:
        out, previous = [], None
        for index, child in enumerate(nodes):
            quiet = index == 0 or _kind(child) in ("filler", "spacer") or \
                _kind(previous) == "spacer"
            out.append(self.component(child, Slot(layout, None if quiet else gap, depth)))
            previous = child
        return "".join(out)

    def text(self, node: dict, slot: Slot) -> str:
        wrap = node.get("wrap") is True
        lines = css.count(node.get("maxLines")) if wrap else None
        spacing = css.length(node.get("lineSpacing"), percent=False) if wrap else None
        classes = ["flex-text", "flex-wrap" if wrap else "flex-nowrap"]
        if lines:
            classes.append("flex-clamp")
        styles = [*_item(node, slot), *_font(node),
                  ("justify-content", css.choice(node.get("gravity"), css.GRAVITY))]
        line_style = [("text-align", css.choice(node.get("align"), css.TEXT_ALIGN)),
                      ("-webkit-line-clamp", str(lines) if lines else None),
                      ("line-height", f"calc(1.4em + {spacing})" if spacing else None)]
        inner = self.spans(node.get("contents")) or _esc(node.get("text"))
        if wrap:
            inner = inner.replace("\n", "<br>")
        return _tag(classes, styles, f"<p{_style(line_style)}>{inner}</p>", node.get("action"))

    def spans(self, spans: Any) -> str:
        return "".join(f'<span class="flex-span"{_style(_font(span))}>{_esc(span.get("text"))}'
                       "</span>" for span in spans if _kind(span) == "span") \
            if isinstance(spans, list) else ""

    def image(self, node: dict, slot: Slot) -> str:
        width = css.length(node.get("size"), css.IMAGE_SIZES) or css.IMAGE_SIZES["md"]
        tall = css.ratio(node.get("aspectRatio")) or 100.0
        fit = "cover" if node.get("aspectMode") == "cover" else "fit"
        picture = self.picture(node.get("url"), node.get("url"), f"flex-img flex-img-{fit}")
        frame = _tag(["flex-frame"], [("width", width),
                                      ("background-color", css.color(node.get("backgroundColor")))],
                     f'<div class="flex-ratio" style="padding-bottom: {tall}%">{picture}</div>',
                     node.get("action"))
        styles = [*_item(node, slot), ("align-items", css.choice(node.get("align"), css.ALIGN)),
                  ("justify-content", css.choice(node.get("gravity"), css.GRAVITY))]
        return _tag(["flex-image"], styles, frame)

    def picture(self, source: Any, original: Any, classes: str) -> str:
        """An <img> for an http(s) URL, then a scan button when the page knows it as a QR."""
        src = css.url(source)
        if src is None:
            return ""
        tag = f'<img class="{classes}" src="{_esc(src)}" alt="" loading="lazy">'
        target = css.url(original) or src
        payload = self.qr_payload(target) if self.qr_payload else None
        if isinstance(payload, str):
            tag += (f'<button type="button" class="sim-scan" data-scan="{_esc(payload)}">'
                    f"{SCAN_LABEL}</button>")
        return tag

    def icon(self, node: dict, slot: Slot) -> str:
        size = css.length(node.get("size"), css.TEXT_SIZES, percent=False) or "16px"
        tall = css.ratio(node.get("aspectRatio")) or 100.0
        src = css.url(node.get("url"))
        image = (f'<img class="flex-icon-img" src="{_esc(src)}" alt="" loading="lazy" '
                 f'style="width: {round(100 / tall, 4)}em">') if src else ""
        return _tag(["flex-icon"], [("flex", "0 0 auto"), _lead(node, slot), *_offsets(node),
                                    ("font-size", size)], image)

    def button(self, node: dict, slot: Slot) -> str:
        look = node.get("style") if node.get("style") in ("primary", "secondary") else "link"
        color = css.color(node.get("color"))
        height = "sm" if node.get("height") == "sm" else "md"
        action = node.get("action") if isinstance(node.get("action"), dict) else None
        paint = [("color" if look == "link" else "background-color", color)]
        label = f'<span>{_esc(action.get("label")) if action else ""}</span>'
        inner = _tag(["flex-btn"], paint, label, action, "button", ' type="button"')
        styles = [*_item(node, slot), ("justify-content",
                                       css.choice(node.get("gravity"), css.GRAVITY))]
        return _tag(["flex-button", f"flex-button-{look}", f"flex-button-{height}"], styles,
                    inner)

    def separator(self, node: dict, slot: Slot) -> str:
        return _tag(["flex-separator"], [_lead(node, slot),
                                         ("border-color", css.color(node.get("color")))], "")

    def filler(self, node: dict, slot: Slot) -> str:
        grow = css.count(node.get("flex"))
        return _tag(["flex-filler"], [("flex", f"{1 if grow is None else grow} 0 0")], "")

    def spacer(self, node: dict, slot: Slot) -> str:
        size = css.length(node.get("size"), css.SPACING, percent=False) or css.SPACING["md"]
        along = "height" if slot.axis == "vertical" else "width"
        return _tag(["flex-spacer"], [(along, size)], "")

    def video(self, node: dict, slot: Slot) -> str:
        """LINE shows `altContent` wherever video cannot play; so does the simulator."""
        if isinstance(node.get("altContent"), dict):
            return self.component(node["altContent"], Slot(slot.axis, slot.gap, slot.depth + 1))
        return _tag(["flex-video"], _item(node, slot), "video")

    RENDERERS: ClassVar[dict[str, Callable[[_Flex, dict, Slot], str]]] = {
        "box": box, "text": text, "image": image, "icon": icon, "button": button,
        "separator": separator, "filler": filler, "spacer": spacer, "video": video,
    }
