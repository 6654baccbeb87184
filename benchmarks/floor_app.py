"""The floor for benchmarks/webhook.py: the least a LINE webhook can do, under the same gunicorn.

    gunicorn --config bot/gunicorn_conf.py 'benchmarks.floor_app:create_app()'

POST /callback checks X-Line-Signature (HMAC-SHA256 of the body, compare_digest), parses the
JSON and answers every event that has a replyToken with one small text message, sent to
LINE_API_BASE_URL with a plain HTTP client (one kept-alive requests.Session per worker).
No database, no SDK, no templates: whatever the bot takes beyond this is the bot's own cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import requests
from flask import Flask, request


def create_app() -> Flask:
    secret = os.environ["LINE_CHANNEL_SECRET"].encode()
    reply_url = os.environ["LINE_API_BASE_URL"].rstrip("/") + "/v2/bot/message/reply"
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
            if token:
                http.post(reply_url, headers=headers, timeout=(3.05, 10), data=json.dumps(
                    {"replyToken": token, "messages": [{"type": "text", "text": "OK"}]}))
        return "OK", 200

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
