"""The LINE Messaging API client: the only place that talks to LINE over HTTP."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import select
import socket
import ssl
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    MessagingApiBlob,
)

from bot.config import Config
from bot.line.limits import IMAGE_SCHEMES, MessageLimitError, check_messages
from bot.outbox import MULTICAST_MAX
from bot.privacy import ref

log = logging.getLogger("bot.line")
TIMEOUT = (3.05, 10)  # connect, read (seconds)
QUOTA_TTL = 300.0  # seconds LINE's quota reading is reused (less what this client sent since)
MESSAGE = "/v2/bot/message"
REPLY, PUSH, MULTICAST = f"{MESSAGE}/reply", f"{MESSAGE}/push", f"{MESSAGE}/multicast"
UNIT_LIST = f"{MESSAGE}/aggregation/list"
INSIGHT_UNITS = "/v2/bot/insight/message/event/aggregation"


@dataclass(frozen=True)
class Profile:
    display_name: str
    language: str


@dataclass(frozen=True)
class SendResult:
    """delivered: LINE has it (200, or 409 for a retry key it already accepted).
    retry: a timeout, 429 or 5xx; try again later with the same retry key.
    refused: LINE answered that it did not take it (4xx): sending again cannot show it twice.
    limit_reached: a 429 because the month's messages are used up."""

    delivered: bool
    retry: bool = False
    error: str = ""
    refused: bool = False
    limit_reached: bool = False


def configuration(config: Config) -> Configuration:
    """With LINE_API_BASE_URL every call (uploads too) goes there; otherwise the SDK's hosts."""
    if config.line_api_base_url:
        return Configuration(host=config.line_api_base_url,
                             access_token=config.line_channel_access_token)
    return Configuration(access_token=config.line_channel_access_token)


class Transport:
    """POSTs to LINE's API host over one keep-alive connection per thread: HTTP/1.1 written
    and read here, on a plain (or TLS) socket.

    The SDK's urllib3 pool manager spent about twice the CPU of the exchange itself on every
    reply (pool lookup, retry and timeout objects, header dictionaries), and http.client
    still spent about 5% of a card screen's instructions (7% of a purchase's) reading LINE's
    few answer headers through the email package. The request goes in one write; the answer
    is read by its Content-Length (or chunks, or until the server closes). Timeouts are the
    same as urllib3's (TIMEOUT: connect, then read); certificates are checked against the
    system's CAs. A kept connection the server has since closed is noticed before use. A
    request is sent again only if it could not be sent whole on a kept connection (so LINE
    cannot have acted on it); once sent, a failure is the caller's "fate unknown"."""

    def __init__(self, base_url: str | None) -> None:
        parts = urlsplit(base_url or "")
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        default_port = self.port == (443 if self.https else 80)
        name = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        self._host_header = name if default_port else f"{name}:{self.port}"
        self._local = threading.local()
        self._tls = ssl.create_default_context() if self.https else None

    def post(self, path: str, body: bytes, headers: dict[str, str]
             ) -> tuple[int, str, bytes, dict[str, str]]:
        """(status, reason, body, headers) of LINE's answer."""
        request = self._head(path, len(body), headers) + body
        conn, kept = self._connection()
        try:
            try:
                conn.sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                if not kept:
                    raise
                conn.close()  # never reached LINE whole: once more, on a new connection
                conn, kept = self._connection()
                conn.sock.sendall(request)
            status, reason, data, answer_headers, close = read_response(conn.reader)
        except BaseException:
            conn.close()
            raise
        if close:
            conn.close()
        return status, reason, data, answer_headers

    def _head(self, path: str, length: int, headers: dict[str, str]) -> bytes:
        lines = [f"POST {self.prefix}{path} HTTP/1.1", f"Host: {self._host_header}",
                 "Accept-Encoding: identity", f"Content-Length: {length}"]
        for name, value in headers.items():
            line = f"{name}: {value}"
            if "\r" in line or "\n" in line:  # would split into a header of its own
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(line)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _connection(self) -> tuple[_Connection, bool]:
        """This thread's connection, connected, and whether it was kept from before."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if not readable:  # a kept connection has nothing to read unless it was closed
                return conn, True
            conn.close()
        connect, read = TIMEOUT
        sock = socket.create_connection((self.host, self.port), timeout=connect)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(read)
        except BaseException:
            sock.close()
            raise
        conn = self._local.conn = _Connection(sock)
        return conn, False


class _Connection:
    """A socket and its buffered reader."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        if self.sock is not None:
            with suppress(OSError):
                self.reader.close()
            with suppress(OSError):
                self.sock.close()
            self.sock = None


MAX_LINE = 65536  # bytes in a status or header line, as http.client allows
MAX_HEADERS = 100


def read_response(reader: Any) -> tuple[int, str, bytes, dict[str, str], bool]:
    """One HTTP/1.x answer from `reader`: (status, reason, body, headers as sent, whether
    the connection must be closed after it). An interim 1xx answer is skipped. Raises
    http.client's errors for an answer that is not HTTP or ends early."""
    while True:
        line = _line(reader)
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection without "
                                                 "an answer")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise http.client.BadStatusLine(line[:100].decode("latin-1"))
        status = int(code)
        headers, lower = _headers(reader)
        if not 100 <= status < 200 or status == 101:
            break
    connection = lower.get("connection", "").lower()
    close = "close" in connection or version == "HTTP/1.0" and "keep-alive" not in connection
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        body = _chunked(reader)
    elif "content-length" in lower:
        try:
            length = int(lower["content-length"])
        except ValueError:
            raise http.client.HTTPException("a Content-Length that is not a number") from None
        body = reader.read(length)
        if len(body) < length:
            raise http.client.IncompleteRead(body, length - len(body))
    else:  # the body runs until the server closes the connection
        body, close = reader.read(), True
    return status, reason.strip(), body, headers, close


def _line(reader: Any) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("a status or header line")
    return line


def _headers(reader: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The header lines up to the blank line: (as sent, with lower-cased names)."""
    headers: dict[str, str] = {}
    lower: dict[str, str] = {}
    while True:
        line = _line(reader)
        if line in (b"\r\n", b"\n", b""):
            return headers, lower
        if len(headers) >= MAX_HEADERS:
            raise http.client.HTTPException(f"more than {MAX_HEADERS} headers")
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip(), value.strip()
        headers[name] = lower[name.lower()] = value


def _chunked(reader: Any) -> bytes:
    parts = []
    while True:
        size_line = _line(reader).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            _headers(reader)  # trailers, if any, up to the blank line
            return b"".join(parts)
        part = reader.read(size)
        if len(part) < size:
            raise http.client.IncompleteRead(b"".join(parts) + part, size - len(part))
        parts.append(part)
        _line(reader)  # the chunk's CRLF


class LineClient:
    def __init__(self, config: Config, *, aggregation_units: bool = False):
        self._api_client = ApiClient(configuration(config))
        self._transport = Transport(self._api_client.configuration.host)
        self.api = MessagingApi(self._api_client)
        self.blob = MessagingApiBlob(self._api_client)
        # LINE fetches images over https only; the local simulator shows the app's own QR
        # images from its plain http address
        self.image_schemes = (IMAGE_SCHEMES + (f"{config.public_base_url}/",)
                              if config.simulator else IMAGE_SCHEMES)
        self._quota: tuple[float, int | None] | None = None  # (read at, messages left)
        self._quota_lock = threading.Lock()
        # [messaging] aggregation_units: each push and multicast names its unit (its kind or
        # campaign) for LINE's per-unit statistics, until LINE refuses one (the account has
        # not applied for them): the message goes again without it, and no later one tries
        self.aggregation_units = aggregation_units

    def reply(self, reply_token: str, messages: list[dict]) -> SendResult:
        check_messages(messages, "reply", self.image_schemes)
        try:
            self._post(REPLY, {"replyToken": reply_token, "messages": messages})
        except Exception as exc:  # a lost reply must not undo the committed event
            log.warning("reply failed: %s", _describe(exc))
            refused = isinstance(exc, ApiException) and 400 <= (exc.status or 0) < 500
            return SendResult(False, error=_describe(exc), refused=refused)
        return SendResult(True)

    def push(self, user_id: str, messages: list[dict], retry_key: str,
             unit: str | None = None) -> SendResult:
        try:
            check_messages(messages, "push", self.image_schemes)
        except MessageLimitError as exc:  # resending cannot fix it: record, never retry
            return SendResult(False, error=str(exc))
        return self._send(PUSH, {"to": user_id, "messages": messages}, retry_key, unit=unit)

    def multicast(self, user_ids: list[str], messages: list[dict], retry_key: str,
                  unit: str | None = None) -> SendResult:
        try:
            check_messages(messages, "multicast", self.image_schemes)
        except MessageLimitError as exc:
            return SendResult(False, error=str(exc))
        if not 1 <= len(user_ids) <= MULTICAST_MAX:
            return SendResult(False, error=f"{len(user_ids)} recipients: 1 to "
                                           f"{MULTICAST_MAX} per multicast")
        return self._send(MULTICAST, {"to": user_ids, "messages": messages}, retry_key,
                          len(user_ids), unit=unit)

    def _send(self, path: str, body: dict, retry_key: str, recipients: int = 1,
              unit: str | None = None) -> SendResult:
        try:
            if unit and self.aggregation_units:
                try:
                    self._post(path, {**body, "customAggregationUnits": [unit]}, retry_key)
                except ApiException as exc:
                    if exc.status != 400 or "aggregation" not in _describe(exc).lower():
                        raise
                    # LINE took nothing (a 400): perhaps only the unit is refused. Without it
                    # from now on; this message goes again at once, under the same retry key
                    log.warning("LINE refused the aggregation unit %r (%s): sending without "
                                "units from now on", unit, _describe(exc))
                    self.aggregation_units = False
                    self._post(path, body, retry_key)
            else:
                self._post(path, body, retry_key)
        except ApiException as exc:
            if exc.status == 409:  # this retry key was accepted before: delivered
                return SendResult(delivered=True)
            error = _describe(exc)
            return SendResult(False, retry=exc.status == 429 or exc.status >= 500, error=error,
                              refused=400 <= exc.status < 500,
                              limit_reached=exc.status == 429 and "monthly limit" in error)
        except Exception as exc:  # timeout or connection error: fate unknown, retry same key
            return SendResult(False, retry=True, error=_describe(exc))
        self._spent(recipients)
        return SendResult(delivered=True)

    def unit_statistics(self, unit: str, first: dt.date, last: dt.date) -> dict | None:
        """LINE's statistics of one aggregation unit for days `first` to `last` (LINE's days,
        UTC+9; at most 30 days apart): {"overview": {...}, "messages": [...], "clicks": [...]},
        where LINE shows null for figures under 20 people. None when LINE gives none."""
        query = urlencode({"customAggregationUnit": unit, "from": f"{first:%Y%m%d}",
                           "to": f"{last:%Y%m%d}"})
        return self._get(f"{INSIGHT_UNITS}?{query}")

    def units_this_month(self) -> list[str]:
        """The aggregation units LINE has counted this month."""
        found = self._get(UNIT_LIST) or {}
        return list(found.get("customAggregationUnits") or [])

    def _get(self, path: str) -> dict | None:
        headers = dict(self._api_client.default_headers)
        try:
            answer = self._api_client.rest_client.pool_manager.request(
                "GET", self._api_client.configuration.host + path, headers=headers,
                timeout=urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1]))
        except Exception as exc:
            log.warning("LINE statistics unavailable: %s", _describe(exc))
            return None
        if not 200 <= answer.status <= 299:
            log.warning("LINE statistics unavailable: HTTP %s %s", answer.status,
                        answer.data[:200].decode("utf-8", "replace"))
            return None
        return json.loads(answer.data or b"{}")

    def _post(self, path: str, body: dict, retry_key: str | None = None) -> None:
        """POST a message body with the SDK's credentials and errors (ApiException for an
        answer outside 2xx).

        The body is serialised once, as UTF-8 JSON: our templates are checked against LINE's
        limits by check_messages, and the tests check every one against the SDK's own models,
        so the SDK's per-call walk over the body (sanitize_for_serialization, then an ASCII
        json.dumps twice the size for Chinese text) would add CPU to every event and nothing
        else."""
        headers = {**self._api_client.default_headers, "Content-Type": "application/json"}
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        status, reason, answer, answer_headers = self._transport.post(path, data, headers)
        if not 200 <= status <= 299:
            exc = ApiException(status=status, reason=reason)
            exc.body, exc.headers = answer, answer_headers
            raise exc

    def pushes_left(self) -> int | None:
        """This month's messages LINE still allows (its count includes broadcasts the owner
        sends from LINE Official Account Manager); None if unknown or unlimited. Read at
        most every QUOTA_TTL seconds, less what this client has sent since."""
        with self._quota_lock:
            if self._quota and time.monotonic() - self._quota[0] < QUOTA_TTL:
                return self._quota[1]
        left = self._read_quota()
        with self._quota_lock:
            self._quota = (time.monotonic(), left)
        return left

    def _read_quota(self) -> int | None:
        try:
            quota = self.api.get_message_quota(_request_timeout=TIMEOUT)
            if quota.type != "limited" or quota.value is None:
                return None
            used = self.api.get_message_quota_consumption(_request_timeout=TIMEOUT)
        except Exception as exc:  # unknown: the program's own budget still applies
            log.warning("push quota unavailable: %s", _describe(exc))
            return None
        return max(0, quota.value - (used.total_usage or 0))

    def _spent(self, recipients: int) -> None:
        with self._quota_lock:
            if self._quota and self._quota[1] is not None:
                self._quota = (self._quota[0], max(0, self._quota[1] - recipients))

    def leave(self, source: Any) -> bool:
        """Leave the group or room the event came from."""
        try:
            if getattr(source, "group_id", None):
                self.api.leave_group(source.group_id, _request_timeout=TIMEOUT)
            elif getattr(source, "room_id", None):
                self.api.leave_room(source.room_id, _request_timeout=TIMEOUT)
            else:
                return False
        except Exception as exc:  # it stays; its members still see no codes
            log.warning("could not leave a %s: %s", getattr(source, "type", "chat"),
                        _describe(exc))
            return False
        return True

    def profile(self, user_id: str) -> Profile | None:
        try:
            found = self.api.get_profile(user_id, _request_timeout=TIMEOUT)
        except Exception as exc:  # the profile is a nicety; joining works without it
            log.info("profile of %s unavailable: %s", ref(user_id), _describe(exc))
            return None
        return Profile(found.display_name or "", found.language or "")


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
        return f"HTTP {exc.status}: {(body or '')[:300]}"
    return f"{type(exc).__name__}: {exc}"[:300]
