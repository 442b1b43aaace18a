"""The OAuth adapter's writes: authorization codes, issued tokens, consumed grants and revoked
families, each in one unit of work (the same interface use cases write through).

Authlib decides (app.auth.oauth_server); these store what it decided. A code or refresh token is
consumed with a conditional update, so of two concurrent uses only one commits; the other is told
it lost (`False`) and its whole work is rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from app.domain.auth import AccessTokenRecord, AuthorizationCode, RefreshToken
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory


async def issue_code(uow_factory: UnitOfWorkFactory, code: AuthorizationCode) -> None:
    async with uow_factory() as uow:
        await uow.grants.add_code(code)


@dataclass(frozen=True, slots=True)
class TokenWrites:
    """What one token or revocation request decided to store."""

    issued: Sequence[AccessTokenRecord] = ()
    new_refresh: Sequence[RefreshToken] = ()
    revoked_jtis: Sequence[str] = ()
    # A code exchange consumes the code for the family its tokens start.
    consume_code: str | None = None
    family_id: UUID | None = None
    # A refresh consumes the refresh token it was given (rotation).
    rotate_refresh: str | None = None


class _Lost(Exception):
    """The code or refresh token was consumed by a concurrent request first."""


async def store_tokens(uow_factory: UnitOfWorkFactory, writes: TokenWrites) -> bool:
    """Store it all, or nothing and False when the code or refresh token was already used."""

    async def work(uow: UnitOfWork) -> None:
        now = datetime.now(UTC)
        if writes.consume_code is not None:
            assert writes.family_id is not None
            if not await uow.grants.consume_code(writes.consume_code, writes.family_id, now):
                raise _Lost
        rotate = writes.rotate_refresh
        if rotate is not None and not await uow.grants.rotate_refresh_token(rotate, now):
            raise _Lost
        await uow.clients.add_tokens(writes.issued)
        for refresh in writes.new_refresh:
            await uow.grants.add_refresh_token(refresh)
        for jti in writes.revoked_jtis:
            await uow.clients.revoke_tokens(now, jti=jti)

    try:
        async with uow_factory() as uow:
            await work(uow)
    except _Lost:
        return False
    return True


async def revoke_family(uow_factory: UnitOfWorkFactory, family_id: UUID) -> None:
    """Revoke every access and refresh token descending from one code exchange."""

    async with uow_factory() as uow:
        now = datetime.now(UTC)
        await uow.clients.revoke_tokens(now, family_id=family_id)
        await uow.grants.revoke_refresh_tokens(now, family_id=family_id)
