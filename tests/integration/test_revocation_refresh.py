"""The revoked-token set: kept through the verification leeway, and never losing a fresh entry."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import cast

from app.auth.revocation import RevokedTokens
from app.db.engine import Connection, Database
from app.repositories import clients as client_repo
from tests.auth_support import AuthApp

ME = "{ orders(first: 1) { totalCount } }"


async def test_a_revoked_token_stays_refused_through_the_expiry_leeway(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    tokens = auth_app.services.tokens
    expired_a_moment_ago = int(time.time()) - tokens.lifetime - 10
    token, record = tokens.mint(
        client_id=client.client.client_id,
        user_id=None,
        scope="orders:read",
        now=expired_a_moment_ago,
    )
    async with auth_app.db.write() as conn:
        await client_repo.insert_tokens(conn, [record])
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await auth_app.graphql(ME, bearer)).status_code == 200, "still within the leeway"

    async with auth_app.db.write() as conn:
        revoked = await client_repo.revoke_tokens_where(conn, datetime.now(UTC), jti=record.jti)
    await auth_app.services.revoked.refresh(auth_app.db)

    assert revoked == 1
    assert record.jti in auth_app.services.revoked
    assert (await auth_app.graphql(ME, bearer)).status_code == 401


class _RevokesDuringTheRead:
    """A database whose read lets this process revoke a token while the SELECT is under way."""

    def __init__(self, db: Database, revoked: RevokedTokens, jti: str) -> None:
        self._db, self._revoked, self._jti = db, revoked, jti

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        async with self._db.read() as conn:
            self._revoked.add(self._jti)
            yield conn


async def test_a_token_revoked_during_a_reload_is_not_forgotten(auth_app: AuthApp) -> None:
    revoked = RevokedTokens()
    revoked.add("revoked-before-the-reload")

    await revoked.refresh(
        cast(Database, _RevokesDuringTheRead(auth_app.db, revoked, "revoked-during-the-reload"))
    )

    assert "revoked-during-the-reload" in revoked, "its commit may postdate the SELECT"
    assert "revoked-before-the-reload" not in revoked, "the database answer covers older ones"
