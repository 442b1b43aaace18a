"""Apply the yoyo migrations, once, however many processes start together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from yoyo import get_backend, read_migrations

from app.config import PROJECT_ROOT
from app.db.urls import DatabaseUrl

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


@cache
def known_ids() -> tuple[str, ...]:
    """The ids of the migrations this code expects, read from disk once per process."""
    return tuple(m.id for m in read_migrations(str(MIGRATIONS_DIR)))


def _backend(url: DatabaseUrl):  # type: ignore[no-untyped-def]
    if url.dialect == "sqlite":
        url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return get_backend(url.yoyo_url)


def migrate(url: DatabaseUrl, *, lock_timeout: int = 60) -> list[str]:
    """Apply pending migrations under yoyo's lock and return the ids applied by this call."""
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock(timeout=lock_timeout):
            pending = backend.to_apply(migrations)
            ids = [m.id for m in pending]
            if ids:
                log.info("applying migrations: %s", ", ".join(ids))
                backend.apply_migrations(pending)
            return ids
    finally:
        backend.connection.close()


def rollback_last(url: DatabaseUrl) -> str | None:
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            applied = backend.to_rollback(migrations)
            if not applied:
                return None
            last = applied[:1]
            backend.rollback_migrations(last)
            return str(last[0].id)
    finally:
        backend.connection.close()


def status(url: DatabaseUrl) -> MigrationStatus:
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        pending = [m.id for m in backend.to_apply(migrations)]
        applied = [m.id for m in migrations if m.id not in pending]
        return MigrationStatus(applied=applied, pending=pending)
    finally:
        backend.connection.close()
