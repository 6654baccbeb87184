"""What every handler gets (Env) and gives back (Outcome)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bot.config import Config
from bot.line.messages import RenderContext
from bot.line.qr import qr_url
from bot.program import Program


def render_context(config: Config, program: Program, language: str) -> RenderContext:
    """Messages in English for an English LINE profile, else in zh-TW."""
    lang = "en" if (language or "").lower().startswith("en") else "zh-TW"
    return RenderContext(program=program, lang=lang, oa_basic_id=config.line_oa_basic_id,
                         qr_url=partial(qr_url, config.secret_key, config.public_base_url))


@dataclass
class Env:
    program: Program
    config: Config
    now: dt.datetime
    user_id: str
    event_id: str
    prefetched: Any = None

    def render(self, language: str) -> RenderContext:
        return render_context(self.config, self.program, language)


@dataclass
class Outcome:
    """The replies (or, for a screen that only shows data, a function making them: it runs
    after the commit, so no lock is held while a card is rendered). Pushes the handler
    queued (bot.outbox.tell) are found in the session by the webhook."""
    replies: list[dict] | Callable[[], list[dict]] = field(default_factory=list)

    def messages(self) -> list[dict]:
        return self.replies() if callable(self.replies) else self.replies

    def expected(self) -> int:
        """How many messages the reply will hold (a card screen renders one)."""
        return 1 if callable(self.replies) else len(self.replies)
