"""check_messages as it was before it walked once and sized carousels from their bubbles: the
reference its replacement must agree with (same errors, in the same order), and what the
benchmark compares it with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot.line.limits import (
    IMAGE_SCHEMES,
    KINDS,
    MAX_ALT_TEXT,
    MAX_BUBBLE_BYTES,
    MAX_BUBBLES,
    MAX_CAROUSEL_BYTES,
    MAX_MESSAGES,
    MAX_TEXT,
    MessageLimitError,
    _check_node,
    _check_quick_reply,
    _length,
    _size,
)


def check_messages(messages: list[dict], kind: str = "reply",
                   image_schemes: tuple[str, ...] = IMAGE_SCHEMES) -> None:
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


def _walk(node: Any, where: str) -> Iterator[tuple[str, dict]]:
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
