"""LINE's message limits that the SDK models do not enforce, checked before we send.

Lengths are counted in UTF-16 code units, as LINE counts them (an emoji counts as 2), so a
message that passes here is never refused for its length. Sizes are compact UTF-8 JSON.

Every send is checked, so the check is one walk that builds a node's path only for an error
and runs a node's full check only when a quick look finds something it might refuse. The
walk also bounds the message's JSON size from above; only a message whose bound exceeds the
bubble limit is serialised, each bubble once, a carousel's size added up from its bubbles'.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.line.flex import units

KINDS = ("reply", "push", "multicast", "narrowcast", "broadcast")
MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_ALT_TEXT = 1500
MAX_BUBBLES = 12
MAX_BUBBLE_BYTES = 30 * 1024
MAX_CAROUSEL_BYTES = 50 * 1024
MAX_POSTBACK_DATA = 300
MAX_DISPLAY_TEXT = 300
MAX_MESSAGE_ACTION_TEXT = 300
MAX_FLEX_LABEL = 40
MAX_QUICK_REPLY_ITEMS = 13
MAX_QUICK_REPLY_LABEL = 20
MAX_URI = 1000
MAX_IMAGE_URL = 2000
IMAGE_SCHEMES = ("https://",)
URI_SCHEMES = ("https://", "http://", "line://", "tel:", "mailto:")


class MessageLimitError(ValueError):
    """A message LINE would refuse; str() says which message, where, and which limit."""

    def __init__(self, where: str, problem: str):
        self.where, self.problem = where, problem
        super().__init__(f"{where}: {problem}")


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # what json.dumps builds


def json_bytes(value: Any) -> int:
    return len(_JSON.encode(value).encode())


def check_messages(messages: list[dict], kind: str = "reply",
                   image_schemes: tuple[str, ...] = IMAGE_SCHEMES) -> None:
    """Raise MessageLimitError if LINE would refuse this batch of messages.

    `image_schemes`: how image URLs may start (LINE takes https only; the local simulator
    also takes the app's own http address)."""
    if kind not in KINDS:
        raise ValueError(f"unknown send kind {kind!r}; one of {', '.join(KINDS)}")
    if not messages:
        raise MessageLimitError(kind, "no messages: a request needs 1 to 5")
    if len(messages) > MAX_MESSAGES:
        raise MessageLimitError(kind, f"{len(messages)} messages; at most {MAX_MESSAGES}")
    for i, message in enumerate(messages):
        _check_message(message, f"{kind} messages[{i}]", image_schemes)


def _check_message(message: dict, where: str, image_schemes: tuple[str, ...]) -> None:
    if not isinstance(message, dict):
        raise MessageLimitError(where, "a message must be an object")
    kind = message.get("type")
    if kind == "text":
        _length(message.get("text"), MAX_TEXT, f"{where}.text", required=True)
    elif kind == "flex":
        _length(message.get("altText"), MAX_ALT_TEXT, f"{where}.altText", required=True)
        _check_flex(message, where, image_schemes)
        return
    if "quickReply" in message:
        _check_quick_reply(message["quickReply"], f"{where}.quickReply")
    _check_nodes(message, where, image_schemes)


def _check_flex(message: dict, where: str, image_schemes: tuple[str, ...]) -> None:
    """The contents' shape, their sizes, the quick reply, then every node: the first error
    in that order. The nodes are walked first, for the size bound; what the walk raised
    waits until the sizes and the quick reply have had their say."""
    container, inside = message.get("contents"), f"{where}.contents"
    _check_shape(container, inside)
    failed: BaseException | None = None
    try:
        bound = _check_nodes(message, where, image_schemes, _MAX_OBJECTS)
    except Exception as exc:  # anything: it is raised again below
        bound, failed = None, exc
    if bound is None or bound > MAX_BUBBLE_BYTES:
        _check_sizes(container, inside)
    if "quickReply" in message:
        _check_quick_reply(message["quickReply"], f"{where}.quickReply")
    if isinstance(failed, _Unwalked):  # a cycle, or far more than LINE takes: walk it all
        _check_nodes(message, where, image_schemes)
    elif failed is not None:
        raise failed


def _check_shape(container: Any, where: str) -> None:
    if not isinstance(container, dict):
        raise MessageLimitError(where, "flex contents must be a bubble or a carousel")
    if container.get("type") == "carousel":
        bubbles = container.get("contents") or []
        if not 1 <= len(bubbles) <= MAX_BUBBLES:
            raise MessageLimitError(where, f"{len(bubbles)} bubbles; 1 to {MAX_BUBBLES} allowed")


def _check_sizes(container: dict, where: str) -> None:
    """The sizes, serialised: the carousel's, then each bubble's; or the bubble's."""
    if container.get("type") == "carousel":
        bubbles = container.get("contents") or []
        sizes = carousel_sizes(container)
        if sizes is None:  # not plain JSON: serialise as a whole, for the same error
            _size(container, MAX_CAROUSEL_BYTES, where)
            for i, bubble in enumerate(bubbles):
                _size(bubble, MAX_BUBBLE_BYTES, f"{where}.contents[{i}]")
            return
        total, each = sizes
        _over(total, MAX_CAROUSEL_BYTES, where)
        for i, size in enumerate(each):
            _over(size, MAX_BUBBLE_BYTES, f"{where}.contents[{i}]")
    else:
        _size(container, MAX_BUBBLE_BYTES, where)


def carousel_sizes(carousel: dict) -> tuple[int, list[int]] | None:
    """The carousel's compact JSON size and each bubble's, serialising every bubble once.

    The carousel's JSON is its JSON with `"contents":[]` with the bubbles' JSON put in
    between the brackets, separated by commas. None when that cannot be relied on (not a
    plain dict holding a list) or when serialising fails: measure the whole then."""
    bubbles = carousel.get("contents") if type(carousel) is dict else None
    if type(bubbles) is not list or not bubbles:
        return None
    try:
        each = [json_bytes(bubble) for bubble in bubbles]
        shell = json_bytes({**carousel, "contents": []})
    except (TypeError, ValueError, RecursionError):  # not JSON, circular, too deep
        return None
    return shell + sum(each) + len(each) - 1, each


def _check_quick_reply(quick_reply: Any, where: str) -> None:
    items = quick_reply.get("items") if isinstance(quick_reply, dict) else None
    if not items or len(items) > MAX_QUICK_REPLY_ITEMS:
        raise MessageLimitError(where, f"quick reply needs 1 to {MAX_QUICK_REPLY_ITEMS} items")
    for i, item in enumerate(items):
        action = item.get("action") if isinstance(item, dict) else None
        label = action.get("label") if isinstance(action, dict) else None
        _length(label, MAX_QUICK_REPLY_LABEL, f"{where}.items[{i}].action.label", required=True)


def _check_node(node: dict, where: str, image_schemes: tuple[str, ...]) -> None:
    kind = node.get("type")
    if kind in ("postback", "datetimepicker", "richmenuswitch"):
        _length(node.get("data"), MAX_POSTBACK_DATA, f"{where}.data", required=True)
        _length(node.get("displayText"), MAX_DISPLAY_TEXT, f"{where}.displayText")
    elif kind == "message" and "text" in node:
        _length(node.get("text"), MAX_MESSAGE_ACTION_TEXT, f"{where}.text", required=True)
    elif kind == "uri":
        _url(node.get("uri"), MAX_URI, f"{where}.uri", URI_SCHEMES)
    elif kind == "button":
        action = node.get("action")
        label = action.get("label") if isinstance(action, dict) else None
        _length(label, MAX_FLEX_LABEL, f"{where}.action.label", required=True)
    elif kind in ("image", "icon"):
        _url(node.get("url"), MAX_IMAGE_URL, f"{where}.url", image_schemes)
    elif kind in ("text", "span") and not node.get("contents"):
        # LINE refuses a flex text or span whose text is empty or missing
        _length(node.get("text"), None, f"{where}.text", required=True)


class _Unwalked(Exception):
    """The walk met more objects than any message LINE takes could hold."""


_MAX_OBJECTS = 100_000
_DEEPEST = 100  # deeper, serialising may exceed Python's recursion limit: let it say so
_CONTROL = re.compile(r"[\x00-\x1f]")  # escaped in JSON: \n is 2 bytes, \u0001 is 6


def _check_nodes(message: dict, where: str, image_schemes: tuple[str, ...],
                 most: float = float("inf")) -> int | None:
    """`_check_node` for every object nested inside `message`, in the order of the walk
    before (each object's child objects, then the last one's children first); then an upper
    bound of the message's compact UTF-8 JSON size, or None if it holds anything but plain
    JSON values or nests deeper than _DEEPEST. More than `most` objects raise _Unwalked.

    A quick look (`_FINE`) passes most objects; only one it cannot pass gets its path built
    and the full check, which then raises or passes exactly as it did for every object.

    The bound: every text (keys and values) as UTF-8, plus 1 byte per quote or backslash and
    5 per control character (escapes), plus 6 bytes per object member (quotes, colon, comma
    and the value's quotes), 3 per array item, 2 per object or array and 24 per number, true,
    false or null (a float's repr is at most 24 characters)."""
    stack: list[tuple[Any, Any, int]] = [(message, where, 0)]
    pop, push = stack.pop, stack.append
    texts: list[str] = []
    text, keys = texts.append, texts.extend
    known = type(message) is dict
    objects = members = items = scalars = 0
    while stack:
        current, place, depth = pop()
        objects += 1
        if objects > most:
            raise _Unwalked
        if depth > _DEEPEST:
            known = False
        depth += 1
        dotted = type(current) is dict or isinstance(current, dict)
        if dotted:
            members += len(current)
            keys(current)  # joined below: a key that is not text is not plain JSON
            pairs = current.items()
        else:
            items += len(current)
            pairs = enumerate(current or [])
        for key, child in pairs:
            kind = type(child)
            if kind is str:
                text(child)
                continue
            if kind is dict:
                inner = (place, key, dotted)
                node_type = child.get("type")
                if type(node_type) is str:
                    fine = _FINE.get(node_type)
                    if fine is not None and not fine(child, image_schemes):
                        _check_node(child, _path(inner), image_schemes)
                elif node_type is not None:
                    _check_node(child, _path(inner), image_schemes)
                push((child, inner, depth))
            elif kind is list:
                push((child, (place, key, dotted), depth))
            elif kind is bool or child is None or kind is float or (
                    kind is int and -10**20 < child < 10**20):
                scalars += 1
            else:
                known = False
                if isinstance(child, dict | list):  # subclasses, as the walk took them
                    inner = (place, key, dotted)
                    if isinstance(child, dict):
                        _check_node(child, _path(inner), image_schemes)
                    push((child, inner, depth))
    if not known:
        return None
    try:
        joined = "".join(texts)
        size = len(joined.encode())
    except (TypeError, UnicodeEncodeError):  # a key that is not text, a lone surrogate
        return None
    if _CONTROL.search(joined):
        size += 5 * len(_CONTROL.findall(joined))
    size += joined.count('"') + joined.count("\\")
    return size + 6 * members + 3 * items + 2 * objects + 24 * scalars


def _path(place: Any) -> str:
    """`messages[0].contents.body.contents[2]` from the walk's (parent, key, dotted) links."""
    parts = []
    while type(place) is tuple:
        place, key, dotted = place
        parts.append(f".{key}" if dotted else f"[{key}]")
    return place + "".join(reversed(parts))


def _short(text: Any, limit: int) -> bool:
    """Non-empty text of at most `limit` UTF-16 units (one unit or two per character)."""
    return type(text) is str and text != "" and (len(text) * 2 <= limit or units(text) <= limit)


def _fine_postback(node: dict, image_schemes: tuple[str, ...]) -> bool:
    shown = node.get("displayText")
    return _short(node.get("data"), MAX_POSTBACK_DATA) and (
        shown is None or _short(shown, MAX_DISPLAY_TEXT))


def _fine_message(node: dict, image_schemes: tuple[str, ...]) -> bool:
    return "text" not in node or _short(node.get("text"), MAX_MESSAGE_ACTION_TEXT)


def _fine_uri(node: dict, image_schemes: tuple[str, ...]) -> bool:
    uri = node.get("uri")
    return _short(uri, MAX_URI) and uri.startswith(URI_SCHEMES)


def _fine_button(node: dict, image_schemes: tuple[str, ...]) -> bool:
    action = node.get("action")
    return isinstance(action, dict) and _short(action.get("label"), MAX_FLEX_LABEL)


def _fine_image(node: dict, image_schemes: tuple[str, ...]) -> bool:
    url = node.get("url")
    return _short(url, MAX_IMAGE_URL) and url.startswith(image_schemes)


def _fine_text(node: dict, image_schemes: tuple[str, ...]) -> bool:
    if node.get("contents"):
        return True
    text = node.get("text")
    return type(text) is str and text != ""


# node type -> a quick look that passes only what `_check_node` passes
_FINE = {"postback": _fine_postback, "datetimepicker": _fine_postback,
         "richmenuswitch": _fine_postback, "message": _fine_message, "uri": _fine_uri,
         "button": _fine_button, "image": _fine_image, "icon": _fine_image,
         "text": _fine_text, "span": _fine_text}


def _length(text: Any, limit: int | None, where: str, required: bool = False) -> None:
    if text is None and not required:
        return
    if not isinstance(text, str) or not text:
        raise MessageLimitError(where, "must be non-empty text")
    if limit is not None and units(text) > limit:
        raise MessageLimitError(where, f"{units(text)} characters; at most {limit}")


def _url(url: Any, limit: int, where: str, schemes: tuple[str, ...]) -> None:
    _length(url, limit, where, required=True)
    if not url.startswith(schemes):
        raise MessageLimitError(where, f"must start with {' or '.join(schemes)}: {url[:60]!r}")


def _size(value: Any, limit: int, where: str) -> None:
    _over(json_bytes(value), limit, where)


def _over(size: int, limit: int, where: str) -> None:
    if size > limit:
        raise MessageLimitError(where, f"{size:,} bytes of JSON; at most {limit:,}")
