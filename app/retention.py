"""Retention: what the database no longer needs goes, in bounded batches.

Run by every process's background job (RETENTION_INTERVAL_SECONDS) and by `python -m app purge`.
Each batch is its own short transaction, so a large backlog never holds locks for long and a run
stopped half-way has still made progress; a run does at most `max_batches` batches per kind and
leaves the rest to the next. Processes running it at once only share the work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import RetentionSettings
from app.db.engine import Database
from app.errors import ServiceUnavailable
from app.messaging.loop import WakeableLoop
from app.repositories import retention as repo
from app.usecases.runner import utcnow

log = logging.getLogger("app.retention")

Delete = Callable[[AsyncConnection, datetime, int], Awaitable[int]]


async def purge(
    db: Database, settings: RetentionSettings, now: datetime | None = None
) -> dict[str, int]:
    """Delete what has outlived its use; the number of rows deleted, by kind."""
    now = now or utcnow()
    expired = now - timedelta(seconds=settings.expired_grace_seconds)
    kinds: list[tuple[str, Delete, datetime]] = [
        ("access_tokens", repo.delete_expired_access_tokens, expired),
        ("authorization_codes", repo.delete_expired_authorization_codes, expired),
        ("refresh_tokens", repo.delete_expired_refresh_tokens, expired),
        (
            "idempotency_keys",
            repo.delete_old_idempotency_keys,
            now - timedelta(seconds=settings.idempotency_key_seconds),
        ),
    ]
    if settings.event_seconds:
        kinds.append(
            (
                "events",
                repo.delete_old_handled_events,
                now - timedelta(seconds=settings.event_seconds),
            )
        )
    deleted: dict[str, int] = {}
    for kind, delete, cutoff in kinds:
        total = 0
        for _ in range(settings.max_batches):
            async with db.write() as conn:
                count = await delete(conn, cutoff, settings.batch)
            total += count
            if count < settings.batch:
                break
        deleted[kind] = total
    return deleted


class RetentionJob(WakeableLoop):
    """`purge` every RETENTION_INTERVAL_SECONDS, starting one interval after start-up."""

    def __init__(self, db: Database, settings: RetentionSettings) -> None:
        super().__init__(name="retention", poll_interval=settings.interval_seconds)
        self._db = db
        self._settings = settings
        self._started = False

    async def round(self) -> None:
        if not self._started:  # the wake-up every loop gets at start
            self._started = True
            return
        if self._stopping:  # the wake-up that asks it to stop
            return
        try:
            deleted = await purge(self._db, self._settings)
        except ServiceUnavailable:
            log.warning("retention: the database is unavailable; retrying next period")
            return
        except Exception:
            log.exception("retention: purging failed; retrying in %.0f s", self._poll_interval)
            return
        if any(deleted.values()):
            log.info("retention: deleted %s", _summary(deleted))


def _summary(deleted: dict[str, int]) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in deleted.items() if count) or "nothing"
