"""Gunicorn settings for the `web` process.

The program file is validated in the master before any worker forks: gunicorn would
otherwise respawn workers that fail to boot, forever, hiding the one clear message.
"""

import os
import sys

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
accesslog = "-"
errorlog = "-"


def on_starting(server) -> None:
    from bot.config import Config
    from bot.program import ProgramError, load_program

    try:
        load_program(Config.from_env().program_path)
    except ProgramError as exc:
        print(exc, file=sys.stderr, flush=True)
        sys.exit(1)
