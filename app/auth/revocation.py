"""What every process learns from the database every few seconds, and what it writes back.

Besides revocations, the loop reloads the signing keys `rotate-signing-key` stores, so a new key
is published by every process before it starts signing (app.auth.keys).

Access tokens are verified without the database, so revoking one (by the revocation endpoint,
revoke-client or disable-user, in any process) is a row update that each process picks up by
reloading the set of revoked, unexpired token IDs at least every 5 seconds. The same loop writes
API-key usage (counts, last use) in batches, so requests never wait for that bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from uuid import UUID

from app.auth.keys import KeyRing
from app.db.engine import Database
from app.repositories import api_keys as key_repo
from app.repositories import clients as client_repo
from app.repositories import signing_keys as signing_key_repo

log = logging.getLogger("app.auth.revocation")


class RevokedTokens:
    def __init__(self) -> None:
        self._jtis: frozenset[str] = frozenset()
        self._local: dict[str, float] = {}  # jti -> when it was added (monotonic clock)

    def __contains__(self, jti: object) -> bool:
        return jti in self._jtis or jti in self._local

    def add(self, jti: str) -> None:
        """Revoked by this process: refused here at once, everywhere else at the next refresh.

        Called after the revocation is committed, so any reload that starts later sees it.
        """
        self._local[jti] = time.monotonic()

    async def refresh(self, db: Database) -> None:
        started = time.monotonic()
        async with db.read() as conn:
            found = await client_repo.revoked_unexpired_jtis(conn, datetime.now(UTC))
        self._jtis = frozenset(found)
        # Entries added before the read began were committed before it, so the database answer
        # covers them (or they have expired); later ones may be missing from it and must stay.
        self._local = {jti: at for jti, at in self._local.items() if at >= started}


class KeyUsage:
    """API-key uses counted in memory and written in one batch per refresh."""

    def __init__(self) -> None:
        self._pending: dict[UUID, tuple[int, datetime]] = {}

    def note(self, key_id: UUID) -> None:
        uses, _ = self._pending.get(key_id, (0, datetime.now(UTC)))
        self._pending[key_id] = (uses + 1, datetime.now(UTC))

    async def flush(self, db: Database) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with db.write() as conn:
                await key_repo.record_usage(conn, pending)
        except Exception:
            # Put the counts back so an outage delays the bookkeeping instead of losing it.
            for key_id, (uses, used_at) in pending.items():
                now_uses, now_at = self._pending.get(key_id, (0, used_at))
                self._pending[key_id] = (uses + now_uses, max(used_at, now_at))
            raise


async def refresh_keys(db: Database, keys: KeyRing) -> None:
    async with db.read() as conn:
        keys.load(await signing_key_repo.list_keys(conn))


async def refresh_forever(
    db: Database,
    revoked: RevokedTokens,
    usage: KeyUsage,
    interval: float,
    stop: asyncio.Event,
    keys: KeyRing | None = None,
) -> None:
    """Refresh every `interval` seconds until `stop` is set.

    Stopping by event rather than by cancelling the task means shutdown never interrupts a
    statement halfway, which would strand its pooled connection.
    """
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            await revoked.refresh(db)
            if keys is not None:
                await refresh_keys(db, keys)
            await usage.flush(db)
        except Exception as error:
            log.warning("could not refresh revocations or write key usage: %s", error)
