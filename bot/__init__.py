"""LINE loyalty bot. `flask --app bot ...` and gunicorn's `bot:create_app()` start here.

Flask is imported only when an app is created, so `import bot.loyalty` stays web-free.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Any = None) -> Flask:
    """Build the app; a broken program file or setting ends the process with one clear message."""
    # imported here, not at the top: `import bot.loyalty` must not load Flask or LINE's SDK
    from bot.app import create_app as build
    from bot.config import ConfigError
    from bot.program import ProgramError

    try:
        return build(config)
    except (ProgramError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
