"""create_app: wiring only (configuration, program, database, blueprints, CLI)."""

from __future__ import annotations

import logging
import sys

from flask import Flask, g, jsonify, request
from sqlalchemy.orm import Session

from bot import api, console, simulator
from bot.api import http_problem
from bot.bootstrap import Runtime, build
from bot.cli import register_cli
from bot.config import Config
from bot.db import bounded, can_write, db_error
from bot.line import qr_images, webhook
from bot.loyalty.job_runs import seconds_since_clock_ran
from bot.loyalty.timeutil import utcnow

HEALTH_LOCK_WAIT = 5  # seconds: a check behind a long write still answers before a PaaS gives up


def create_app(config: Config | None = None) -> Flask:
    """Build the Flask app; raises ProgramError if the program file is unusable."""
    runtime = build(simulator.configure(config or Config.from_env()))
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(SECRET_KEY=runtime.config.secret_key, MAX_CONTENT_LENGTH=1024 * 1024)
    app.extensions["loyalty"] = runtime
    _logging(app)
    _pin_program(app, runtime)
    _health(app)
    webhook.init_app(app)
    app.register_blueprint(qr_images.bp)
    api.init_app(app)
    console.init_app(app)
    simulator.init_app(app)
    _errors(app)
    register_cli(app)
    return app


def _pin_program(app: Flask, runtime: Runtime) -> None:
    """A request uses one program version from start to end, even if a newer one goes live
    while it runs."""

    @app.before_request
    def pin() -> None:
        g.program_token = runtime.pin()

    @app.teardown_request
    def unpin(_exc: BaseException | None) -> None:
        token = g.pop("program_token", None)
        if token is not None:
            runtime.unpin(token)


def _errors(app: Flask) -> None:
    """No request, however malformed, gets a traceback; errors answer in plain words."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):  # unknown API paths and methods: problem JSON
            return http_problem(exc)
        return jsonify(status=exc.code, error=exc.name), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logging.getLogger("bot").exception("unhandled error")
        return jsonify(status=500, error="Internal Server Error"), 500


def _logging(app: Flask) -> None:
    """Log to stderr: a PaaS collects it, and CLI output on stdout stays clean for scripts."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("bot")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def _health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        """200 when the database takes a write, with how many seconds ago the clock last
        completed a job (null if it never has: a stopped clock leaves the web process
        healthy); 503 when the database takes no write."""
        engine = bounded(app.extensions["loyalty"].engine, HEALTH_LOCK_WAIT)
        try:
            with Session(engine) as session, session.begin():
                can_write(session.connection())
                clock = seconds_since_clock_ran(session, utcnow())
        except Exception as exc:  # unreachable, read-only, full: "not healthy"
            logging.getLogger("bot").error("health check: the database cannot be written: "
                                           "%s", db_error(exc))
            return jsonify(status="database unavailable"), 503
        return jsonify(status="ok", clock_last_ran_seconds_ago=clock)
