"""Operators give one plain URL; each driver needs its own spelling of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url

from app.config import PROJECT_ROOT, ConfigError

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class DatabaseUrl:
    """A database location with the driver URLs derived from it."""

    dialect: Dialect
    url: URL

    @classmethod
    def parse(cls, raw: str) -> DatabaseUrl:
        try:
            url = make_url(raw)
        except Exception:
            raise ConfigError(f"DATABASE_URL is not a URL: {raw!r}") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:"):
                raise ConfigError("DATABASE_URL must name a SQLite file, e.g. sqlite:///var/db")
            path = Path(database)
            if not path.is_absolute():
                path = PROJECT_ROOT / path
            return cls("sqlite", url.set(drivername="sqlite", database=str(path)))
        if backend in ("postgresql", "postgres"):
            if not url.database:
                raise ConfigError("DATABASE_URL must name a PostgreSQL database")
            return cls("postgresql", url.set(drivername="postgresql"))
        raise ConfigError(f"DATABASE_URL must be sqlite:///… or postgresql://…, not {backend}://")

    @property
    def sqlite_path(self) -> Path:
        assert self.dialect == "sqlite"
        return Path(self.url.database or "")

    @property
    def async_url(self) -> URL:
        driver = "sqlite+aiosqlite" if self.dialect == "sqlite" else "postgresql+asyncpg"
        return self.url.set(drivername=driver)

    @property
    def yoyo_url(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        url = self.url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    def with_database(self, name: str) -> DatabaseUrl:
        """The same server with another database; used to create and drop test databases."""
        assert self.dialect == "postgresql"
        return DatabaseUrl(self.dialect, self.url.set(database=name))

    def __str__(self) -> str:
        return self.url.render_as_string(hide_password=True)
