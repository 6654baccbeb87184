"""A fake LINE Messaging API: a real HTTP server on 127.0.0.1 that the real SDK talks to.

Point the SDK at it with ``fake.configuration()`` (``Configuration(host=fake.base_url,
access_token=fake.access_token)``); blob calls such as rich menu uploads reach the same host.
Every call lands in ``fake.calls``. Message and rich menu bodies are parsed with the SDK's own
models and checked against the limits the SDK does not enforce (GUIDE section 5); what LINE
would refuse is answered ``400 {"message": ..., "details": [{"message", "property"}]}`` and
listed in ``fake.rejections``. Lengths count UTF-16 code units and "KB"/"MB" mean 1000/10**6
bytes: where LINE's wording is loose, the fake takes the stricter reading.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs

from linebot.v3.messaging import (
    Configuration,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuRequest,
)
from pydantic.v1 import ValidationError

MESSAGES_MAX, TEXT_MAX, ALT_TEXT_MAX, QUICK_REPLY_MAX, POSTBACK_DATA_MAX = 5, 5000, 1500, 13, 300
CAROUSEL_MAX_BUBBLES, BUBBLE_MAX_BYTES, CAROUSEL_MAX_BYTES = 12, 30_000, 50_000
MULTICAST_MAX_USERS = 500
RICH_MENU_MAX_AREAS, CHAT_BAR_TEXT_MAX, IMAGE_MAX_BYTES = 20, 14, 1_000_000
IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
USER_ID = re.compile(r"U[0-9a-f]{32}")
RETRY_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
MESSAGE = "/v2/bot/message"
REPLY, PUSH, MULTICAST = f"{MESSAGE}/reply", f"{MESSAGE}/push", f"{MESSAGE}/multicast"
AUTH_MISSING = ("Authorization header required. "
                "Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'")
AUTH_INVALID = ("Authentication failed. "
                "Confirm that the access token in the authorization header is valid.")
SCRIPTED = {429: "The API rate limit has been exceeded. Try again later.",
            500: "Internal Server Error", 503: "Service Unavailable"}
T = TypeVar("T")


class Headers(dict[str, str]):
    """Request headers, keys lower-cased; ``headers["Authorization"]`` works too."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class Call:
    method: str
    path: str  # without the query string
    headers: Headers
    json: Any  # the parsed JSON body, or None (uploads, GETs, malformed JSON)
    body: bytes  # the raw body: the image bytes for uploads
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: int = 0
    response: Any = None
    rejected: bool = False  # refused by a LINE rule (not a scripted failure, quota or lookup miss)
    query: dict[str, str] = field(default_factory=dict)  # the query string's parameters


class LineError(Exception):
    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None,
                 *, rejection: bool = True, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []
        self.rejection, self.headers, self.extra = rejection, headers or {}, extra or {}


def _length(text: Any) -> int:
    return len(str(text).encode("utf-16-le")) // 2


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _walk(node: Any, path: str) -> Iterable[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _postback_limits(node: Any, path: str, bad: Callable[[str, str], None]) -> None:
    for where, obj in _walk(node, path):
        if obj.get("type") == "postback" and _length(obj.get("data", "")) > POSTBACK_DATA_MAX:
            bad(f"{where}.data", f"Length must be between 0 and {POSTBACK_DATA_MAX}")


def message_limits(body: dict[str, Any]) -> list[dict[str, str]]:
    """LINE's limits on a reply/push/multicast body that the SDK's models do not check."""
    details: list[dict[str, str]] = []

    def bad(prop: str, message: str) -> None:
        details.append({"message": message, "property": prop})

    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MESSAGES_MAX:
        bad("messages", f"Size must be between 1 and {MESSAGES_MAX}")
    for i, msg in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(msg, dict):
            continue
        at = f"messages[{i}]"
        if msg.get("type") in ("text", "textV2") and _length(msg.get("text", "")) > TEXT_MAX:
            bad(f"{at}.text", f"Length must be between 0 and {TEXT_MAX}")
        if "altText" in msg and _length(msg["altText"]) > ALT_TEXT_MAX:
            bad(f"{at}.altText", f"Length must be between 0 and {ALT_TEXT_MAX}")
        contents = msg.get("contents")
        if msg.get("type") == "flex" and isinstance(contents, dict):
            carousel = contents.get("type") == "carousel"
            bubbles = contents.get("contents") if carousel else [contents]
            bubbles = bubbles if isinstance(bubbles, list) else []
            if carousel:
                if not 1 <= len(bubbles) <= CAROUSEL_MAX_BUBBLES:
                    bad(f"{at}.contents.contents",
                        f"Size must be between 1 and {CAROUSEL_MAX_BUBBLES}")
                if _json_bytes(contents) > CAROUSEL_MAX_BYTES:
                    bad(f"{at}.contents", f"Carousel JSON exceeds {CAROUSEL_MAX_BYTES} bytes")
            for j, bubble in enumerate(bubbles):
                if _json_bytes(bubble) > BUBBLE_MAX_BYTES:
                    where = f"{at}.contents.contents[{j}]" if carousel else f"{at}.contents"
                    bad(where, f"Bubble JSON exceeds {BUBBLE_MAX_BYTES} bytes")
        quick = msg.get("quickReply")
        items = quick.get("items") if isinstance(quick, dict) else None
        if isinstance(items, list) and len(items) > QUICK_REPLY_MAX:
            bad(f"{at}.quickReply.items", f"Size must be between 1 and {QUICK_REPLY_MAX}")
        _postback_limits(msg, at, bad)
    return details


def rich_menu_limits(menu: dict[str, Any]) -> list[dict[str, str]]:
    """LINE's rules for a rich menu object (size, ratio, areas inside the image, chat bar)."""
    details: list[dict[str, str]] = []

    def bad(prop: str, message: str) -> None:
        details.append({"message": message, "property": prop})

    for key in ("size", "selected", "name", "chatBarText", "areas"):
        if key not in menu:
            bad(key, "must be specified")
    size = menu.get("size") if isinstance(menu.get("size"), dict) else {}
    width, height = size.get("width"), size.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and height > 0):
        bad("size", "width and height must be positive integers")
        width = height = None
    else:
        if not 800 <= width <= 2500:
            bad("size.width", "Width must be between 800 and 2500")
        if height < 250:
            bad("size.height", "Height must be 250 or more")
        if width / height < 1.45:
            bad("size", "Aspect ratio (width / height) must be 1.45 or more")
    if _length(menu.get("chatBarText", "")) > CHAT_BAR_TEXT_MAX:
        bad("chatBarText", f"Length must be between 0 and {CHAT_BAR_TEXT_MAX}")
    areas = menu.get("areas") if isinstance(menu.get("areas"), list) else []
    if len(areas) > RICH_MENU_MAX_AREAS:
        bad("areas", f"Size must be between 0 and {RICH_MENU_MAX_AREAS}")
    for i, area in enumerate(areas):
        b = area.get("bounds") if isinstance(area, dict) else None
        nums = [b.get(k) for k in ("x", "y", "width", "height")] if isinstance(b, dict) else []
        if len(nums) != 4 or not all(isinstance(n, int) for n in nums):
            bad(f"areas[{i}].bounds", "x, y, width and height must be integers")
        elif width is not None and height is not None and not (
                nums[0] >= 0 and nums[1] >= 0 and nums[2] > 0 and nums[3] > 0
                and nums[0] + nums[2] <= width and nums[1] + nums[3] <= height):
            bad(f"areas[{i}].bounds", "The area must lie inside the rich menu image")
    _postback_limits(areas, "areas", bad)
    return details


def _validate(model: Any, body: dict[str, Any], details: list[dict[str, str]]) -> None:
    """Limits first; if they pass, the SDK's model must accept the body too. Raises 400."""
    if not details:
        try:
            model.from_dict(body)
        except ValidationError as exc:
            details = [{"message": e["msg"], "property": ".".join(map(str, e["loc"]))}
                       for e in exc.errors()]
        except Exception as exc:  # from_dict raises ValueError/TypeError/KeyError on odd shapes
            details = [{"message": f"{type(exc).__name__}: {exc}"[:500]}]
    if details:
        raise LineError(400, f"The request body has {len(details)} error(s)", details)


class FakeLine:
    """``with FakeLine() as fake:`` starts the server; ``fake.base_url`` is its address."""

    def __init__(self, access_token: str = "fake-channel-access-token") -> None:
        self.access_token = access_token
        # False: replies and pushes are recorded without the SDK's model and LINE's limit
        # checks (benchmarks/webhook.py's throughput phase, so that only the bot's cost
        # counts); every test keeps them
        self.checks = True
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.profiles: dict[str, dict[str, str]] = {}
        self.bot_info: dict[str, Any] = {
            "userId": "U" + "0" * 32, "basicId": "@fakeshop", "displayName": "Fake Shop",
            "chatMode": "bot", "markAsReadMode": "auto"}
        self.reset()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeLine:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-line", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeLine is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def configuration(self, access_token: str | None = None) -> Configuration:
        return Configuration(host=self.base_url, access_token=access_token or self.access_token)

    # -- scripting -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget calls, tokens, retry keys, scripts, rich menus and quota usage (not profiles)."""
        with self._lock:
            self._calls: list[Call] = []
            self._token_users: dict[str, str | None] = {}
            self._used_tokens: set[str] = set()
            self._accepted_keys: dict[str, tuple[str, Any]] = {}
            self._failures: list[list[Any]] = []
            self._delays: list[list[Any]] = []
            self.rich_menus: dict[str, dict[str, Any]] = {}
            self.rich_menu_images: dict[str, bytes] = {}
            self.default_rich_menu_id: str | None = None
            self.user_rich_menus: dict[str, str] = {}
            self.quota_limit: int | None = 10_000
            self.quota_used = 0
            # aggregation units: refused as for an account that has not applied for them,
            # else the recipients each unit has reached (LINE's own statistics stand in)
            self.units_refused = False
            self.unit_recipients: dict[str, int] = {}

    def add_profile(self, user_id: str, display_name: str, language: str = "zh-TW") -> None:
        self.profiles[user_id] = {"userId": user_id, "displayName": display_name,
                                  "language": language}

    def new_reply_token(self, user_id: str | None = None) -> str:
        """A token accepted once; with ``user_id`` its reply counts in ``messages_to``."""
        token = secrets.token_hex(16)
        with self._lock:
            self._token_users[token] = user_id
        return token

    def set_quota(self, limit: int | None, used: int | None = None) -> None:
        """``limit=None`` answers type "none"; pushes past the limit get 429."""
        with self._lock:
            self.quota_limit = limit
            if used is not None:
                self.quota_used = used

    def fail_next(self, path_suffix: str, status: int, times: int = 1) -> None:
        """The next ``times`` calls whose path ends with ``path_suffix`` answer ``status``."""
        with self._lock:
            self._failures.append([path_suffix, status, times])

    def delay_next(self, path_suffix: str, seconds: float, times: int = 1) -> None:
        """Hold the next matching calls ``seconds`` before handling them (they still deliver)."""
        with self._lock:
            self._delays.append([path_suffix, seconds, times])

    # -- what happened -------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def rejections(self) -> list[Call]:
        return [c for c in self.calls if c.rejected]

    def calls_to(self, path_suffix: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.path.endswith(path_suffix)
                and (method is None or c.method == method)]

    def _accepted(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path and c.status == 200]

    def replies(self) -> list[dict[str, Any]]:
        return [c.json for c in self._accepted(REPLY)]

    def pushes(self) -> list[dict[str, Any]]:
        return [c.json for c in self._accepted(PUSH)]

    def multicasts(self) -> list[dict[str, Any]]:
        return [c.json for c in self._accepted(MULTICAST)]

    def messages_to(self, user_id: str, replies: bool = False) -> list[dict[str, Any]]:
        """Messages delivered to ``user_id`` by push and multicast (and replies on tokens made
        with ``new_reply_token(user_id)`` if ``replies``), in order of delivery."""
        found: list[dict[str, Any]] = []
        for c in self.calls:
            if c.status != 200 or c.path not in (REPLY, PUSH, MULTICAST):
                continue
            to = c.json.get("to")
            if (c.path == PUSH and to == user_id or c.path == MULTICAST and user_id in to or replies
                    and c.path == REPLY and self._token_users.get(c.json["replyToken"]) == user_id):
                found.extend(c.json["messages"])
        return found

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` is truthy and return it; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(c.method, c.path, c.status) for c in self.calls]
                raise AssertionError(f"not met within {timeout}s; calls so far: {seen}")
            with self._changed:
                self._changed.wait(min(remaining, 0.05))

    # -- the server side -----------------------------------------------------------------------
    def _take(self, scripts: list[list[Any]], path: str) -> Any:
        with self._lock:
            for script in scripts:
                if path.endswith(script[0]):
                    script[2] -= 1
                    if script[2] <= 0:
                        scripts.remove(script)
                    return script[1]
        return None

    def _dispatch(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        delay = self._take(self._delays, call.path)
        if delay:
            time.sleep(delay)
        extra: dict[str, str] = {}
        try:
            auth = call.headers.get("authorization")
            if not auth or not auth.startswith("Bearer "):
                raise LineError(401, AUTH_MISSING)
            if auth != f"Bearer {self.access_token}":
                raise LineError(401, AUTH_INVALID)
            failure = self._take(self._failures, call.path)
            if failure is not None:
                call.status, call.response = failure, {"message": SCRIPTED.get(failure, "Error")}
            else:
                handler, params = self._route(call.method, call.path)
                with self._lock:
                    call.status, call.response = 200, handler(call, **params)
        except LineError as err:
            call.status, call.rejected, extra = err.status, err.rejection, err.headers
            call.response = {"message": err.message, **({"details": err.details}
                                                        if err.details else {}), **err.extra}
        except Exception as exc:  # a bug in the fake: say so instead of dropping the connection
            call.status, call.response = 500, {"message": f"fake_line bug: {exc!r}"}
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()
        return call.status, call.response, extra

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], dict[str, str]]:
        for verb, pattern, name in _ROUTES:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return getattr(self, name), match.groupdict()
        raise LineError(404, "Not found")

    @staticmethod
    def _body(call: Call) -> dict[str, Any]:
        if not isinstance(call.json, dict):
            raise LineError(400, "The request body could not be parsed as a JSON object")
        return call.json

    def _retry_key(self, call: Call) -> str | None:
        key = call.headers.get("x-line-retry-key")
        if key is None:
            return None
        if not RETRY_KEY.fullmatch(key):
            raise LineError(400, "The value for the 'X-Line-Retry-Key' header is invalid")
        if key in self._accepted_keys:
            request_id, response = self._accepted_keys[key]
            raise LineError(409, "The retry key is already accepted", rejection=False,
                            headers={"x-line-accepted-request-id": request_id}, extra=response)
        return key

    def _send(self, call: Call, model: Any, recipients: list[str]) -> dict[str, Any]:
        body = self._body(call)
        key = self._retry_key(call)
        if self.checks:
            details = message_limits(body)
            for i, to in enumerate(recipients):
                if not (isinstance(to, str) and USER_ID.fullmatch(to)):
                    details.append({"message": "invalid user ID", "property": f"to[{i}]"})
            _validate(model, body, details)
        units = body.get("customAggregationUnits") or []
        if units and self.units_refused:
            raise LineError(400, "Not allowed to use the customAggregationUnits")
        if self.quota_limit is not None and self.quota_used + len(recipients) > self.quota_limit:
            raise LineError(429, "You have reached your monthly limit.", rejection=False)
        self.quota_used += len(recipients)
        for unit in units:
            self.unit_recipients[unit] = self.unit_recipients.get(unit, 0) + len(recipients)
        response = self._sent(body) if call.path == PUSH else {}
        if key is not None:
            self._accepted_keys[key] = (call.request_id, response)
        return response

    @staticmethod
    def _sent(body: dict[str, Any]) -> dict[str, Any]:
        return {"sentMessages": [{"id": str(secrets.randbelow(10**18)),
                                  "quoteToken": secrets.token_urlsafe(16)}
                                 for _ in body["messages"]]}

    def _reply(self, call: Call) -> dict[str, Any]:
        body = self._body(call)
        if "x-line-retry-key" in call.headers:
            raise LineError(400, "X-Line-Retry-Key is not supported for reply messages")
        if self.checks:
            _validate(ReplyMessageRequest, body, message_limits(body))
        if body["replyToken"] in self._used_tokens:
            raise LineError(400, "Invalid reply token")
        self._used_tokens.add(body["replyToken"])
        self._token_users.setdefault(body["replyToken"], None)
        return self._sent(body)

    def _push(self, call: Call) -> dict[str, Any]:
        return self._send(call, PushMessageRequest, [self._body(call).get("to")])

    def _multicast(self, call: Call) -> dict[str, Any]:
        to = self._body(call).get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= MULTICAST_MAX_USERS:
            raise LineError(400, "The request body has 1 error(s)", [{
                "message": f"Size must be between 1 and {MULTICAST_MAX_USERS}", "property": "to"}])
        return self._send(call, MulticastRequest, to)

    def _quota(self, call: Call) -> dict[str, Any]:
        if self.quota_limit is None:
            return {"type": "none"}
        return {"type": "limited", "value": self.quota_limit}

    def _consumption(self, call: Call) -> dict[str, Any]:
        return {"totalUsage": self.quota_used}

    def _unit_list(self, call: Call) -> dict[str, Any]:
        return {"customAggregationUnits": sorted(self.unit_recipients)}

    def _unit_statistics(self, call: Call) -> dict[str, Any]:
        """Every recipient counts as one impression; LINE hides figures under 20 (null)."""
        unit, first, last = (call.query.get(k, "") for k in ("customAggregationUnit", "from",
                                                               "to"))
        if not (re.fullmatch(r"[0-9]{8}", first) and re.fullmatch(r"[0-9]{8}", last)):
            raise LineError(400, "from and to must be yyyyMMdd")
        seen = self.unit_recipients.get(unit, 0)
        shown = seen if seen >= 20 else None
        return {"overview": {"uniqueImpression": shown, "uniqueClick": None,
                             "uniqueMediaPlayed": None, "uniqueMediaPlayed100Percent": None},
                "messages": [], "clicks": []}

    def _info(self, call: Call) -> dict[str, Any]:
        return dict(self.bot_info)

    def _profile(self, call: Call, user: str) -> dict[str, Any]:
        if user not in self.profiles:
            raise LineError(404, "Not found", rejection=False)
        return dict(self.profiles[user])

    def _leave(self, call: Call, chat: str) -> dict[str, Any]:
        return {}

    def _menu(self, menu: str, *, with_image: bool = False) -> dict[str, Any]:
        if menu not in self.rich_menus:
            raise LineError(404, "Not found")
        if with_image and menu not in self.rich_menu_images:
            raise LineError(400, "must upload richmenu image before applying it to user")
        return self.rich_menus[menu]

    def _create_menu(self, call: Call) -> dict[str, Any]:
        body = self._body(call)
        _validate(RichMenuRequest, body, rich_menu_limits(body))
        menu_id = f"richmenu-{secrets.token_hex(16)}"
        self.rich_menus[menu_id] = {"richMenuId": menu_id, **body}
        return {"richMenuId": menu_id}

    def _list_menus(self, call: Call) -> dict[str, Any]:
        return {"richmenus": list(self.rich_menus.values())}

    def _get_menu(self, call: Call, menu: str) -> dict[str, Any]:
        return self._menu(menu)

    def _delete_menu(self, call: Call, menu: str) -> dict[str, Any]:
        self._menu(menu)
        del self.rich_menus[menu]
        self.rich_menu_images.pop(menu, None)
        if self.default_rich_menu_id == menu:
            self.default_rich_menu_id = None
        self.user_rich_menus = {u: m for u, m in self.user_rich_menus.items() if m != menu}
        return {}

    def _upload(self, call: Call, menu: str) -> dict[str, Any]:
        self._menu(menu)
        kind = (call.headers.get("content-type") or "").split(";")[0].strip().lower()
        if kind not in IMAGE_MAGIC:
            raise LineError(400, "Content-Type must be image/png or image/jpeg")
        if len(call.body) > IMAGE_MAX_BYTES:
            raise LineError(400, f"The image exceeds {IMAGE_MAX_BYTES} bytes")
        if not call.body.startswith(IMAGE_MAGIC[kind]):
            raise LineError(400, f"The body is not a {kind} image")
        if menu in self.rich_menu_images:
            raise LineError(400, "An image has already been uploaded to the richmenu")
        self.rich_menu_images[menu] = call.body
        return {}

    def _set_default(self, call: Call, menu: str) -> dict[str, Any]:
        self._menu(menu, with_image=True)
        self.default_rich_menu_id = menu
        return {}

    def _get_default(self, call: Call) -> dict[str, Any]:
        if self.default_rich_menu_id is None:
            raise LineError(404, "no default richmenu", rejection=False)
        return {"richMenuId": self.default_rich_menu_id}

    def _cancel_default(self, call: Call) -> dict[str, Any]:
        self.default_rich_menu_id = None
        return {}

    def _link(self, call: Call, user: str, menu: str) -> dict[str, Any]:
        if not USER_ID.fullmatch(user):
            raise LineError(400, "The value for the 'userId' parameter is invalid")
        self._menu(menu, with_image=True)
        self.user_rich_menus[user] = menu
        return {}

    def _get_link(self, call: Call, user: str) -> dict[str, Any]:
        if user not in self.user_rich_menus:
            raise LineError(404, "the user has no richmenu", rejection=False)
        return {"richMenuId": self.user_rich_menus[user]}

    def _unlink(self, call: Call, user: str) -> dict[str, Any]:
        self.user_rich_menus.pop(user, None)
        return {}


_ID = r"(?P<{}>[^/]+)"
_ROUTES: list[tuple[str, str, str]] = [
    ("POST", REPLY, "_reply"),
    ("POST", PUSH, "_push"),
    ("POST", MULTICAST, "_multicast"),
    ("GET", "/v2/bot/message/quota", "_quota"),
    ("GET", "/v2/bot/message/quota/consumption", "_consumption"),
    ("GET", "/v2/bot/info", "_info"),
    ("GET", "/v2/bot/message/aggregation/list", "_unit_list"),
    ("GET", "/v2/bot/insight/message/event/aggregation", "_unit_statistics"),
    ("GET", "/v2/bot/profile/" + _ID.format("user"), "_profile"),
    ("POST", "/v2/bot/group/" + _ID.format("chat") + "/leave", "_leave"),
    ("POST", "/v2/bot/room/" + _ID.format("chat") + "/leave", "_leave"),
    ("POST", "/v2/bot/richmenu", "_create_menu"),
    ("GET", "/v2/bot/richmenu/list", "_list_menus"),
    ("GET", "/v2/bot/richmenu/" + _ID.format("menu"), "_get_menu"),
    ("DELETE", "/v2/bot/richmenu/" + _ID.format("menu"), "_delete_menu"),
    ("POST", "/v2/bot/richmenu/" + _ID.format("menu") + "/content", "_upload"),
    ("POST", "/v2/bot/user/all/richmenu/" + _ID.format("menu"), "_set_default"),
    ("GET", "/v2/bot/user/all/richmenu", "_get_default"),
    ("DELETE", "/v2/bot/user/all/richmenu", "_cancel_default"),
    ("POST", "/v2/bot/user/" + _ID.format("user") + "/richmenu/" + _ID.format("menu"), "_link"),
    ("GET", "/v2/bot/user/" + _ID.format("user") + "/richmenu", "_get_link"),
    ("DELETE", "/v2/bot/user/" + _ID.format("user") + "/richmenu", "_unlink"),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's urllib3 pool expects
    # a response's headers and body go in two writes: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK, about 40 ms a LINE call
    disable_nagle_algorithm = True
    timeout = 30  # an idle kept-alive connection is dropped after this

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type")
                                                          or "application/json") else None
        except ValueError:
            parsed = None
        path, _, query = self.path.partition("?")
        call = Call(self.command, path, Headers(self.headers.items()), parsed, raw,
                    query={k: v[0] for k, v in parse_qs(query).items()})
        fake: FakeLine = self.server.fake  # type: ignore[attr-defined]
        status, payload, extra = fake._dispatch(call)
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-line-request-id", call.request_id)
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (a timeout test): nothing to answer
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass
