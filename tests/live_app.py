"""The app served over real HTTP on 127.0.0.1, for the simulator (it calls its own endpoints)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from bot.app import create_app
from bot.config import DEFAULT_PROGRAM, Config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def simulator_config(db_url: str, port: int, **overrides: Any) -> Config:
    """No LINE channel, as on a fresh clone, and SIMULATOR=1 as `bot.dev serve` sets it."""
    return Config(database_url=db_url, program_path=str(DEFAULT_PROGRAM),
                  secret_key="simulator-test-key", port=port,
                  public_base_url=f"http://127.0.0.1:{port}",
                  **{"simulator": True, **overrides})


@contextmanager
def served(config: Config) -> Iterator[tuple[Flask, str]]:
    """create_app(config) on a threaded server at config.port; yields (app, base URL)."""
    app = create_app(config)
    server = make_server("127.0.0.1", config.port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{config.port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["loyalty"].engine.dispose()
