"""A LINE simulator in the browser: try the whole bot without a LINE channel or a phone.

While it is on, the app's LINE client talks to the simulator's own Messaging API endpoints
(bot.simulator.line_api) instead of LINE, and the simulator page sends real signed webhook
events to the app's /callback: the same code paths as production.

It is on only when SIMULATOR=1 (`python3 -m bot.dev serve` sets it when no LINE channel is
configured): an app deployed without its channel settings keeps answering 503 at /callback
and keeps its pushes queued, rather than opening a playground to the internet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from bot.config import Config

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("bot.simulator")


def _derived(config: Config, purpose: str) -> str:
    """Channel credentials for the simulated channel, the same in every worker process."""
    return hmac.new(config.secret_key.encode(), f"simulator {purpose}".encode(),
                    hashlib.sha256).hexdigest()


def local_base_url(config: Config) -> str:
    return f"http://127.0.0.1:{config.port}"


def configure(config: Config) -> Config:
    """The configuration the app runs with: with the simulator on, its channel replaces LINE."""
    if not config.simulator:
        return config
    if config.line_configured:
        log.warning("SIMULATOR=1: LINE messages go to the simulator, not to the configured "
                    "channel; never set it in production")
    return dataclasses.replace(
        config, line_channel_secret=_derived(config, "channel secret"),
        line_channel_access_token=_derived(config, "access token"),
        line_api_base_url=f"{local_base_url(config)}/simulator/line")


def init_app(app: Flask) -> None:
    """Register the simulator page and its Messaging API, when the simulator is on."""
    config = app.extensions["loyalty"].config
    if not config.simulator:
        return
    from flask import redirect

    # imported here: the pages load only when the simulator is on, and they use this
    # package's helpers above (a top-level import would be a loop)
    from bot.simulator import line_api, views
    from bot.simulator.store import Store

    app.extensions["simulator"] = Store()
    app.register_blueprint(line_api.bp)
    app.register_blueprint(views.bp)
    app.add_url_rule("/", "home", lambda: redirect("/simulator"))  # a fresh clone's first page
    log.info("LINE simulator on: open %s/simulator", config.public_base_url)
