"""OAuth clients and the access tokens issued to them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Connection
from app.db.tables import access_tokens, oauth_clients
from app.domain.auth import VERIFICATION_LEEWAY, AccessTokenRecord, ClientType, OAuthClient


def _client(row: Row[tuple[object, ...]]) -> OAuthClient:
    m = row._mapping
    return OAuthClient(
        id=m["id"],
        client_id=m["client_id"],
        client_secret_hash=m["client_secret_hash"],
        name=m["name"],
        client_type=ClientType(m["client_type"]),
        grant_types=frozenset(m["grant_types"].split()),
        scopes=frozenset(m["scopes"].split()),
        redirect_uris=tuple(m["redirect_uris"] or ()),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def _token(row: Row[tuple[object, ...]]) -> AccessTokenRecord:
    m = row._mapping
    return AccessTokenRecord(
        jti=m["jti"],
        client_id=m["client_id"],
        user_id=m["user_id"],
        scope=m["scope"],
        issued_at=m["issued_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        family_id=m["family_id"],
    )


async def insert_client(conn: AsyncConnection, client: OAuthClient) -> None:
    await conn.execute(
        insert(oauth_clients).values(
            id=client.id,
            client_id=client.client_id,
            client_secret_hash=client.client_secret_hash,
            name=client.name,
            client_type=client.client_type.value,
            grant_types=" ".join(sorted(client.grant_types)),
            scopes=" ".join(sorted(client.scopes)),
            redirect_uris=list(client.redirect_uris),
            created_at=client.created_at,
            updated_at=client.created_at,
            revoked_at=client.revoked_at,
        )
    )


async def get_by_client_id(conn: Connection, client_id: str) -> OAuthClient | None:
    row = (
        await conn.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id))
    ).first()
    return None if row is None else _client(row)


async def get_by_name(conn: Connection, name: str) -> OAuthClient | None:
    row = (
        await conn.execute(
            select(oauth_clients)
            .where(oauth_clients.c.name == name, oauth_clients.c.revoked_at.is_(None))
            .order_by(oauth_clients.c.created_at)
        )
    ).first()
    return None if row is None else _client(row)


async def list_clients(conn: Connection) -> list[OAuthClient]:
    rows = await conn.execute(select(oauth_clients).order_by(oauth_clients.c.created_at))
    return [_client(row) for row in rows]


async def revoke_client(conn: AsyncConnection, client_id: str, now: datetime) -> bool:
    """Revoke the client and every access token it holds."""
    result = await conn.execute(
        update(oauth_clients)
        .where(oauth_clients.c.client_id == client_id, oauth_clients.c.revoked_at.is_(None))
        .values(revoked_at=now, updated_at=now)
    )
    if result.rowcount == 0:
        return False
    await revoke_tokens_where(conn, now, client_id=client_id)
    return True


async def set_secret_hash(
    conn: AsyncConnection, client_id: str, secret_hash: str, now: datetime
) -> bool:
    result = await conn.execute(
        update(oauth_clients)
        .where(
            oauth_clients.c.client_id == client_id,
            oauth_clients.c.revoked_at.is_(None),
            oauth_clients.c.client_type == ClientType.CONFIDENTIAL.value,
        )
        .values(client_secret_hash=secret_hash, updated_at=now)
    )
    return result.rowcount > 0


async def insert_tokens(conn: AsyncConnection, records: Sequence[AccessTokenRecord]) -> None:
    if records:
        await conn.execute(
            insert(access_tokens),
            [
                {
                    "jti": r.jti,
                    "client_id": r.client_id,
                    "user_id": r.user_id,
                    "scope": r.scope,
                    "issued_at": r.issued_at,
                    "expires_at": r.expires_at,
                    "revoked_at": r.revoked_at,
                    "family_id": r.family_id,
                }
                for r in records
            ],
        )


async def get_token(conn: Connection, jti: str) -> AccessTokenRecord | None:
    row = (await conn.execute(select(access_tokens).where(access_tokens.c.jti == jti))).first()
    return None if row is None else _token(row)


async def revoke_tokens_where(
    conn: AsyncConnection,
    now: datetime,
    *,
    jti: str | None = None,
    client_id: str | None = None,
    user_id: UUID | None = None,
    family_id: UUID | None = None,
) -> int:
    # Tokens still accepted within the verification leeway after expiry can still be revoked.
    conditions = [
        access_tokens.c.revoked_at.is_(None),
        access_tokens.c.expires_at > now - VERIFICATION_LEEWAY,
    ]
    chosen = [
        c
        for c in (
            None if jti is None else access_tokens.c.jti == jti,
            None if client_id is None else access_tokens.c.client_id == client_id,
            None if user_id is None else access_tokens.c.user_id == user_id,
            None if family_id is None else access_tokens.c.family_id == family_id,
        )
        if c is not None
    ]
    if not chosen:
        raise ValueError("say which tokens to revoke")
    result = await conn.execute(
        update(access_tokens).where(*conditions, or_(*chosen)).values(revoked_at=now)
    )
    return int(result.rowcount)


async def revoked_unexpired_jtis(conn: Connection, now: datetime) -> set[str]:
    """Revoked tokens that would otherwise still verify: what every process must refuse.

    Verification accepts a token for VERIFICATION_LEEWAY after its `exp`, so a revoked token is
    kept in the set that much longer too.
    """
    rows = await conn.execute(
        select(access_tokens.c.jti).where(
            access_tokens.c.revoked_at.is_not(None),
            access_tokens.c.expires_at > now - VERIFICATION_LEEWAY,
        )
    )
    return {row[0] for row in rows}


class ClientRepository:
    """OAuth clients and their access tokens inside a unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, client: OAuthClient) -> None:
        await insert_client(self._conn, client)

    async def get_by_name(self, name: str) -> OAuthClient | None:
        return await get_by_name(self._conn, name)

    async def all(self) -> list[OAuthClient]:
        return await list_clients(self._conn)

    async def revoke(self, client_id: str, now: datetime) -> bool:
        return await revoke_client(self._conn, client_id, now)

    async def set_secret_hash(self, client_id: str, secret_hash: str, now: datetime) -> bool:
        return await set_secret_hash(self._conn, client_id, secret_hash, now)

    async def add_tokens(self, records: Sequence[AccessTokenRecord]) -> None:
        await insert_tokens(self._conn, records)

    async def revoke_tokens(
        self,
        now: datetime,
        *,
        jti: str | None = None,
        client_id: str | None = None,
        user_id: UUID | None = None,
        family_id: UUID | None = None,
    ) -> int:
        return await revoke_tokens_where(
            self._conn, now, jti=jti, client_id=client_id, user_id=user_id, family_id=family_id
        )
