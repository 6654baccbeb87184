"""The owner console: server-rendered pages under /admin for the shop's owner and managers.

Forms become domain verbs (bot.loyalty), exactly as the CLI and the API do. Security, all
here: a server-side session per sign-in (the cookie holds a random token, the database only
its hash), CSRF tokens on every form (Flask-WTF), a Content-Security-Policy with no inline
script, no caching of any page, HSTS when the app is served over https.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.console import alerts, campaigns, imports, moves, tokens, views  # noqa: F401  (pages on bp)
from bot.console import program as _program_pages  # noqa: F401  (its routes join bp)
from bot.console import program_settings as _settings_pages  # noqa: F401  (routes on bp)
from bot.console.views import bp

csrf = CSRFProtect()


def session_key(secret_key: str) -> str:
    """The console cookie's signing key: derived from SECRET_KEY for this purpose only, so
    it is not the key QR image tokens are made with."""
    return hmac.new(secret_key.encode(), b"owner console session", hashlib.sha256).hexdigest()


def init_app(app: Flask) -> None:
    """Register /admin, its cookie settings and CSRF checks (console forms only)."""
    config = app.extensions["loyalty"].config
    app.config.update(
        SECRET_KEY=session_key(config.secret_key), SESSION_COOKIE_NAME="console",
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.https, SESSION_COOKIE_PATH="/admin",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the console session
        WTF_CSRF_CHECK_DEFAULT=False)  # checked in the console's own before_request
    if config.trusted_proxy_hops:  # the PaaS router's X-Forwarded-For, that many hops deep
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxy_hops,  # type: ignore
                                x_proto=config.trusted_proxy_hops)
    csrf.init_app(app)
    app.register_blueprint(bp)
    views.init(csrf)
