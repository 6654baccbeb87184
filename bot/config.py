"""The only module that reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROGRAM = ROOT / "program.example.toml"
DEFAULT_SQLITE = ROOT / "instance" / "loyalty.db"


def normalize_database_url(url: str) -> str:
    """Accept the `postgres://` scheme PaaS providers hand out and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Config:
    database_url: str
    program_path: str
    secret_key: str
    port: int = 5000
    web_concurrency: int = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        return cls(
            database_url=normalize_database_url(
                env.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE}"),
            program_path=env.get("LOYALTY_PROGRAM") or str(DEFAULT_PROGRAM),
            secret_key=env.get("SECRET_KEY") or "dev-only-insecure-secret",
            port=int(env.get("PORT") or 5000),
            web_concurrency=int(env.get("WEB_CONCURRENCY") or 2),
        )
