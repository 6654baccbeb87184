"""Gunicorn settings for the `web` process.

Settings and the live program (or the program file, before the database has one) are
validated in the master before any worker forks:
gunicorn would otherwise respawn workers that fail to boot, forever, hiding the one
clear message.
"""

import sys

from bot.config import Config, ConfigError
from bot.program import ProgramError

try:
    _config = Config.from_env()
except ConfigError as exc:
    print(exc, file=sys.stderr, flush=True)
    sys.exit(1)

bind = f"0.0.0.0:{_config.port}"
workers = _config.web_concurrency
if _config.simulator:
    # the simulator keeps its chats in memory and calls the app back while a request
    # waits: one process, with threads to answer those calls
    workers, worker_class, threads = 1, "gthread", 16
accesslog = "-"
errorlog = "-"


def on_starting(server) -> None:
    try:
        from bot.bootstrap import build  # the master opens no pool until here

        build(_config).close()
    except (ProgramError, ConfigError) as exc:
        print(exc, file=sys.stderr, flush=True)
        sys.exit(1)
