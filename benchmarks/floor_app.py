"""The floor for benchmarks/webhook.py: the least a LINE webhook can do, under the same gunicorn.

    gunicorn --config bot/gunicorn_conf.py 'benchmarks.floor_app:create_app()'

POST /callback checks X-Line-Signature (HMAC-SHA256 of the body, compare_digest), parses the
JSON and answers every event that has a replyToken with one small text message, sent to
LINE_API_BASE_URL with a plain HTTP client (one kept-alive requests.Session per worker).
No database, no SDK, no templates: whatever the bot takes beyond this is the bot's own cost.

With FLOOR_MESSAGES (a JSON file written by benchmarks/webhook.py for its `floor-flex` target)
it sends the bot's own messages instead, rendered once beforehand: an event whose postback
data or first word is a key of the file gets that key's "reply" and, if the entry has one,
one "push" to the event's sender with an X-Line-Retry-Key, as the bot's receipts do. That is
the I/O the bot does, at no cost of its own: its events/s is what any bot sending these
messages could reach here, since FakeLine checks every body against the SDK's models.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid

import requests
from flask import Flask, request


def create_app() -> Flask:
    secret = os.environ["LINE_CHANNEL_SECRET"].encode()
    base = os.environ["LINE_API_BASE_URL"].rstrip("/") + "/v2/bot/message"
    reply_url, push_url = f"{base}/reply", f"{base}/push"
    canned = _canned(os.environ.get("FLOOR_MESSAGES"))
    headers = {"Authorization": f"Bearer {os.environ['LINE_CHANNEL_ACCESS_TOKEN']}",
               "Content-Type": "application/json"}
    http = requests.Session()
    app = Flask(__name__)

    @app.post("/callback")
    def callback():
        body = request.get_data(cache=False)
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, request.headers.get("X-Line-Signature", "")
                                   .encode("ascii", "replace")):
            return "invalid signature", 400
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError):
            return "not a LINE webhook body", 400
        for event in events:
            token = event.get("replyToken") if isinstance(event, dict) else None
            if not token:
                continue
            answer = canned.get(_key(event)) or canned[None]
            http.post(reply_url, headers=headers, timeout=(3.05, 10),
                      data=f'{{"replyToken": {json.dumps(token)}, {answer["reply"]}')
            if answer["push"]:
                user = json.dumps(event.get("source", {}).get("userId"))
                http.post(push_url, timeout=(3.05, 10), data=f'{{"to": {user}, {answer["push"]}',
                          headers={**headers, "X-Line-Retry-Key": str(uuid.uuid4())})
        return "OK", 200

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


def _canned(path: str | None) -> dict[str | None, dict[str, str | None]]:
    """key -> {"reply": '"messages": [...]}', "push": the same or None}: JSON tails, made once."""
    def tail(messages: list | None) -> str | None:
        return json.dumps({"messages": messages})[1:] if messages else None

    table: dict = {}
    if path:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    canned = {key: {"reply": tail(v["reply"]), "push": tail(v.get("push"))}
              for key, v in table.items()}
    return {**canned, None: {"reply": tail([{"type": "text", "text": "OK"}]), "push": None}}


def _key(event: dict) -> str:
    if "postback" in event:
        return str(event["postback"].get("data"))
    words = str(event.get("message", {}).get("text", "")).split()
    return words[0] if words else ""
