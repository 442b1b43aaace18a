"""Settings come from the environment only, so one image serves every deployment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "ordergraph.sqlite3"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_SQLITE_PATH}"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting has a value the server cannot run with."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


@dataclass(frozen=True)
class PoolSettings:
    size: int = 10
    max_overflow: int = 5
    timeout: float = 5.0
    recycle: int = 1800
    pre_ping: bool = True


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False
    redis_url: str | None = None
    pool: PoolSettings = field(default_factory=PoolSettings)
    slow_statement_seconds: float = 1.0
    statement_timeout_ms: int = 5000
    smtp_url: str | None = None
    email_from: str = "ordergraph <no-reply@localhost>"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, minimum=0),
            debug=_bool(env, "DEBUG", False),
            redis_url=env.get("REDIS_URL") or None,
            pool=PoolSettings(
                size=_int(env, "DB_POOL_SIZE", 10, minimum=1),
                max_overflow=_int(env, "DB_POOL_MAX_OVERFLOW", 5),
                timeout=_float(env, "DB_POOL_TIMEOUT", 5.0),
                recycle=_int(env, "DB_POOL_RECYCLE", 1800),
                pre_ping=_bool(env, "DB_POOL_PRE_PING", True),
            ),
            slow_statement_seconds=_float(env, "DB_SLOW_STATEMENT_SECONDS", 1.0),
            statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 5000),
            smtp_url=env.get("SMTP_URL") or None,
            email_from=env.get("EMAIL_FROM") or "ordergraph <no-reply@localhost>",
        )
