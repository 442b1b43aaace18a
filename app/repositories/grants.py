"""Authorization codes and refresh tokens: stored as SHA-256 hashes, consumed with one UPDATE.

Consuming is a conditional update (`used_at IS NULL`), so two concurrent exchanges of one code or
one refresh token cannot both win: the loser sees zero rows and is treated as a replay.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.tables import authorization_codes, refresh_tokens
from app.domain.auth import AuthorizationCode, RefreshToken


def _code(row: Row[tuple[object, ...]]) -> AuthorizationCode:
    m = row._mapping
    return AuthorizationCode(
        code_hash=m["code_hash"],
        client_id=m["client_id"],
        user_id=m["user_id"],
        redirect_uri=m["redirect_uri"],
        scope=m["scope"],
        code_challenge=m["code_challenge"],
        code_challenge_method=m["code_challenge_method"],
        issued_at=m["issued_at"],
        expires_at=m["expires_at"],
        used_at=m["used_at"],
        family_id=m["family_id"],
    )


def _refresh(row: Row[tuple[object, ...]]) -> RefreshToken:
    m = row._mapping
    return RefreshToken(
        token_hash=m["token_hash"],
        family_id=m["family_id"],
        client_id=m["client_id"],
        user_id=m["user_id"],
        scope=m["scope"],
        issued_at=m["issued_at"],
        expires_at=m["expires_at"],
        used_at=m["used_at"],
        revoked_at=m["revoked_at"],
    )


async def insert_code(conn: AsyncConnection, code: AuthorizationCode) -> None:
    await conn.execute(
        insert(authorization_codes).values(
            code_hash=code.code_hash,
            client_id=code.client_id,
            user_id=code.user_id,
            redirect_uri=code.redirect_uri,
            scope=code.scope,
            code_challenge=code.code_challenge,
            code_challenge_method=code.code_challenge_method,
            issued_at=code.issued_at,
            expires_at=code.expires_at,
            used_at=code.used_at,
            family_id=code.family_id,
        )
    )


async def get_code(conn: Connection, code_hash: str) -> AuthorizationCode | None:
    row = (
        await conn.execute(
            select(authorization_codes).where(authorization_codes.c.code_hash == code_hash)
        )
    ).first()
    return None if row is None else _code(row)


async def consume_code(
    conn: AsyncConnection, code_hash: str, family_id: UUID, now: datetime
) -> bool:
    """Mark the code used by this family; False when another exchange already used it."""
    result = await conn.execute(
        update(authorization_codes)
        .where(
            authorization_codes.c.code_hash == code_hash, authorization_codes.c.used_at.is_(None)
        )
        .values(used_at=now, family_id=family_id)
    )
    return result.rowcount > 0


async def insert_refresh_token(conn: AsyncConnection, token: RefreshToken) -> None:
    await conn.execute(
        insert(refresh_tokens).values(
            token_hash=token.token_hash,
            family_id=token.family_id,
            client_id=token.client_id,
            user_id=token.user_id,
            scope=token.scope,
            issued_at=token.issued_at,
            expires_at=token.expires_at,
            used_at=token.used_at,
            revoked_at=token.revoked_at,
        )
    )


async def get_refresh_token(conn: Connection, token_hash: str) -> RefreshToken | None:
    row = (
        await conn.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))
    ).first()
    return None if row is None else _refresh(row)


async def rotate_refresh_token(conn: AsyncConnection, token_hash: str, now: datetime) -> bool:
    """Mark the token used; False when it was used or revoked meanwhile (a replay race)."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(
            refresh_tokens.c.token_hash == token_hash,
            refresh_tokens.c.used_at.is_(None),
            refresh_tokens.c.revoked_at.is_(None),
        )
        .values(used_at=now)
    )
    return result.rowcount > 0


async def revoke_refresh_tokens_where(
    conn: AsyncConnection,
    now: datetime,
    *,
    family_id: UUID | None = None,
    user_id: UUID | None = None,
    client_id: str | None = None,
) -> int:
    chosen = [
        c
        for c in (
            None if family_id is None else refresh_tokens.c.family_id == family_id,
            None if user_id is None else refresh_tokens.c.user_id == user_id,
            None if client_id is None else refresh_tokens.c.client_id == client_id,
        )
        if c is not None
    ]
    if len(chosen) != 1:
        raise ValueError("say which refresh tokens to revoke, one way")
    result = await conn.execute(
        update(refresh_tokens)
        .where(chosen[0], refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)


class GrantRepository:
    """Authorization codes and refresh tokens inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_code(self, code: AuthorizationCode) -> None:
        await insert_code(self._conn, code)

    async def consume_code(self, code_hash: str, family_id: UUID, now: datetime) -> bool:
        return await consume_code(self._conn, code_hash, family_id, now)

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await insert_refresh_token(self._conn, token)

    async def rotate_refresh_token(self, token_hash: str, now: datetime) -> bool:
        return await rotate_refresh_token(self._conn, token_hash, now)

    async def revoke_refresh_tokens(
        self,
        now: datetime,
        *,
        family_id: UUID | None = None,
        user_id: UUID | None = None,
        client_id: str | None = None,
    ) -> int:
        return await revoke_refresh_tokens_where(
            self._conn, now, family_id=family_id, user_id=user_id, client_id=client_id
        )
