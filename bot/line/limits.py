"""LINE's message limits that the SDK models do not enforce, checked before we send.

Lengths are counted in UTF-16 code units, as LINE counts them (an emoji counts as 2), so a
message that passes here is never refused for its length. Sizes are compact UTF-8 JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


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
        _check_container(message.get("contents"), f"{where}.contents")
    if "quickReply" in message:
        _check_quick_reply(message["quickReply"], f"{where}.quickReply")
    for path, node in _walk(message, where):
        _check_node(node, path, image_schemes)


def _check_container(container: Any, where: str) -> None:
    if not isinstance(container, dict):
        raise MessageLimitError(where, "flex contents must be a bubble or a carousel")
    if container.get("type") == "carousel":
        bubbles = container.get("contents") or []
        if not 1 <= len(bubbles) <= MAX_BUBBLES:
            raise MessageLimitError(where, f"{len(bubbles)} bubbles; 1 to {MAX_BUBBLES} allowed")
        _size(container, MAX_CAROUSEL_BYTES, where)
        for i, bubble in enumerate(bubbles):
            _size(bubble, MAX_BUBBLE_BYTES, f"{where}.contents[{i}]")
    else:
        _size(container, MAX_BUBBLE_BYTES, where)


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


def _walk(node: Any, where: str) -> Iterator[tuple[str, dict]]:
    """Every object nested inside `node` (not `node` itself), with its path.

    A stack rather than nested generators, and paths only for containers: every reply is
    walked, and a carousel holds thousands of values."""
    stack = [(node, where)]
    while stack:
        current, path = stack.pop()
        is_dict = isinstance(current, dict)
        for key, child in current.items() if is_dict else enumerate(current or []):
            if isinstance(child, dict | list):
                inner = f"{path}.{key}" if is_dict else f"{path}[{key}]"
                if isinstance(child, dict):
                    yield inner, child
                stack.append((child, inner))


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
    size = json_bytes(value)
    if size > limit:
        raise MessageLimitError(where, f"{size:,} bytes of JSON; at most {limit:,}")
