"""The simulator's memory: personas, their conversations, reply tokens and retry keys.

It lives in the web process (the simulator runs on one process: `python3 -m bot.dev serve`).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


def line_user_id(name: str) -> str:
    """A stable, LINE-shaped user id (U + 32 hex digits) for a persona."""
    return "U" + hashlib.sha256(f"simulator:{name}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Persona:
    key: str
    display_name: str
    language: str
    staff: bool = False

    @property
    def user_id(self) -> str:
        return line_user_id(self.key)

    @property
    def menu(self) -> str:
        return "staff" if self.staff else "customer"


PERSONAS = (
    Persona("mei", "小美", "zh-TW"),
    Persona("jie", "阿傑", "zh-Hant"),
    Persona("emma", "Emma", "en"),
    Persona("kai", "店員 Kai", "zh-TW", staff=True),
)


@dataclass
class Entry:
    """One line in a conversation: from the persona ("user") or from the bot ("bot")."""

    seq: int
    user_id: str
    sender: str
    via: str  # what carried it: text, postback, reply, push, multicast, follow, ...
    message: dict[str, Any]
    at: float = field(default_factory=time.time)


TOKENS_KEPT = 1000  # unused reply tokens remembered; LINE's expire within a minute anyway


class ReplyTokenError(Exception):
    """A reply token the simulator never issued, or one already used."""


class Store:
    def __init__(self, personas: tuple[Persona, ...] = PERSONAS) -> None:
        self.personas = {p.key: p for p in personas}
        self._by_user = {p.user_id: p for p in personas}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._entries: list[Entry] = []
        self._tokens: OrderedDict[str, str] = OrderedDict()  # reply token -> user, until used
        self._retry_keys: set[str] = set()
        self._friendship: dict[str, str] = {}  # user id -> "friend" | "blocked" | "none"
        self.staff_ready = False  # the staff personas were made staff (once per process)

    def persona_of(self, user_id: str) -> Persona | None:
        return self._by_user.get(user_id)

    def add(self, user_id: str, sender: str, via: str, message: dict[str, Any]) -> Entry:
        with self._lock:
            entry = Entry(next(self._seq), user_id, sender, via, message)
            self._entries.append(entry)
            return entry

    def since(self, after: int) -> list[Entry]:
        with self._lock:
            return [e for e in self._entries if e.seq > after]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._entries[-1].seq if self._entries else 0

    def new_reply_token(self, user_id: str) -> str:
        token = hashlib.sha256(f"{user_id}:{time.time_ns()}:{id(self)}".encode()).hexdigest()
        with self._lock:
            self._tokens[token] = user_id
            while len(self._tokens) > TOKENS_KEPT:
                self._tokens.popitem(last=False)
        return token

    def use_reply_token(self, token: str) -> str:
        """The user a reply token was issued for; each token works once, as on LINE."""
        with self._lock:
            user_id = self._tokens.pop(token, None)
        if user_id is None:
            raise ReplyTokenError("Invalid reply token")
        return user_id

    def first_use_of(self, retry_key: str) -> bool:
        """False when this X-Line-Retry-Key was accepted before (LINE answers 409)."""
        with self._lock:
            if retry_key in self._retry_keys:
                return False
            self._retry_keys.add(retry_key)
            return True

    def friendship(self, user_id: str, first_seen: str = "none") -> str:
        """friend, blocked or none; the first time asked, what the database says
        (`first_seen`), then what the persona does here."""
        with self._lock:
            return self._friendship.setdefault(user_id, first_seen)

    def blocked(self, user_id: str) -> bool:
        with self._lock:
            return self._friendship.get(user_id) == "blocked"

    def set_friendship(self, user_id: str, state: str) -> None:
        with self._lock:
            self._friendship[user_id] = state
