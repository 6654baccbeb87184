"""The only module that reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the program module is not needed to read settings
    from bot.program import Program

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROGRAM = ROOT / "program.example.toml"
DEFAULT_SQLITE = ROOT / "instance" / "loyalty.db"


class ConfigError(Exception):
    """An environment variable holds a value the app cannot use."""


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"Configuration error: {name} must be a positive whole number, "
                          f"not {raw!r}")
    return int(raw)


def _count(env: dict[str, str], name: str) -> int:
    raw = (env.get(name) or "0").strip()
    if not raw.isdigit() or int(raw) > 10:
        raise ConfigError(f"Configuration error: {name} must be a whole number from 0 to 10, "
                          f"not {raw!r}")
    return int(raw)


def _switch(env: dict[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip()
    if raw in ("", "0", "1"):
        return raw == "1"
    raise ConfigError(f"Configuration error: {name} must be 1 (on), 0 or unset (off), "
                      f"not {raw!r}")


def normalize_database_url(url: str) -> str:
    """Accept the `postgres://` scheme PaaS providers hand out and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


DEV_SECRET = "dev-only-insecure-secret"


@dataclass(frozen=True)
class Config:
    database_url: str
    program_path: str
    secret_key: str
    port: int = 5000
    web_concurrency: int = 2
    line_channel_secret: str = ""
    line_channel_access_token: str = ""
    line_oa_basic_id: str = ""  # e.g. @123abcde; QR codes then open the chat with text typed
    public_base_url: str = "http://127.0.0.1:5000"  # where LINE fetches QR images from
    line_api_base_url: str = ""  # tests only: send every LINE API call to this host
    simulator: bool = False  # SIMULATOR=1: the browser LINE simulator takes the channel's place
    console_setup_token: str = ""  # lets /admin/setup make the first owner, until one exists
    trusted_proxy_hops: int = 0  # proxies in front of the app whose X-Forwarded-For is trusted
    import_max_bytes: int = 50 * 1024 * 1024  # CONSOLE_IMPORT_MAX_MB: a console upload's limit

    @property
    def https(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def line_configured(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        return cls(
            database_url=normalize_database_url(
                env.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE}"),
            program_path=env.get("LOYALTY_PROGRAM") or str(DEFAULT_PROGRAM),
            secret_key=env.get("SECRET_KEY") or DEV_SECRET,
            port=_positive_int(env, "PORT", 5000),
            web_concurrency=_positive_int(env, "WEB_CONCURRENCY", 2),
            line_channel_secret=env.get("LINE_CHANNEL_SECRET", ""),
            line_channel_access_token=env.get("LINE_CHANNEL_ACCESS_TOKEN", ""),
            line_oa_basic_id=env.get("LINE_OA_BASIC_ID", ""),
            public_base_url=(env.get("PUBLIC_BASE_URL")
                             or f"http://127.0.0.1:{_positive_int(env, 'PORT', 5000)}").rstrip("/"),
            line_api_base_url=env.get("LINE_API_BASE_URL", "").rstrip("/"),
            simulator=_switch(env, "SIMULATOR"),
            console_setup_token=(env.get("CONSOLE_SETUP_TOKEN") or "").strip(),
            trusted_proxy_hops=_count(env, "TRUSTED_PROXY_HOPS"),
            import_max_bytes=_positive_int(env, "CONSOLE_IMPORT_MAX_MB", 50) * 1024 * 1024,
        )._checked()

    def check_program(self, program: Program) -> None:
        """Settings the program file needs (ConfigError, one line): with claim codes on and
        a real LINE channel, the account's basic id."""
        if program.claims.enabled and self.line_configured and not self.simulator \
                and not self.line_oa_basic_id:
            raise ConfigError("Configuration error: LINE_OA_BASIC_ID (the account's basic id, "
                              "such as @123abcde) must be set when [claims] is enabled in "
                              "the program: a claim code's QR opens the chat with the shop, "
                              "and LINE's QR reader cannot type text without it")

    def _checked(self) -> Config:
        """With a real LINE channel, settings that are harmless on a laptop break the shop."""
        if not self.line_configured or self.simulator:
            return self
        if self.secret_key == DEV_SECRET:
            raise ConfigError("Configuration error: SECRET_KEY must be set to a long random "
                              "value when the LINE channel is configured (QR image links "
                              "are made with it); for example the output of: python3 -c "
                              "'import secrets; print(secrets.token_urlsafe(32))'")
        if not self.public_base_url.startswith("https://"):
            raise ConfigError("Configuration error: PUBLIC_BASE_URL must be the app's https "
                              "address when the LINE channel is configured (LINE loads QR "
                              f"images over https only), not {self.public_base_url!r}")
        if not self.line_oa_basic_id:
            raise ConfigError("Configuration error: LINE_OA_BASIC_ID (the account's basic id, "
                              "such as @123abcde, from LINE Official Account Manager) must be "
                              "set when the LINE channel is configured: staff scan customers' "
                              "QR codes with LINE's QR reader, which opens the chat with the "
                              "command typed only through the basic id")
        return self
