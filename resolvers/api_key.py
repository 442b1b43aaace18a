"""A user's API key as the API shows it: never the secret, nor its hash."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from app.auth import policy
from app.domain.auth import ApiKey as ApiKeyModel
from resolvers.context import Context, Info
from resolvers.global_id import to_global_id
from resolvers.lazy import Lazy, assemble
from resolvers.node import Node


@strawberry.type(description="An API key of the signed-in user. Only its owner can see it.")
class ApiKey(Node, Lazy):
    id: strawberry.ID
    name: str
    scopes: list[str]
    last4: str = strawberry.field(description="The key's last four characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="Usage is written every REVOCATION_REFRESH_SECONDS, so it lags by that much."
    )
    usage_count: int
    revoked_at: datetime | None
    pk: strawberry.Private[UUID]

    LAZY = {"id": lambda key: to_global_id("ApiKey", key.pk)}

    @classmethod
    def of(cls, key: ApiKeyModel) -> ApiKey:
        return assemble(
            cls,
            pk=key.id,
            name=key.name,
            scopes=sorted(key.scopes),
            last4=key.last_four,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            usage_count=key.use_count,
            revoked_at=key.revoked_at,
        )


async def load_visible_api_key(context: Context, pk: UUID) -> ApiKey | None:
    """The key if it is the signed-in user's own; None (NOT_FOUND) otherwise, as if missing."""
    principal = context.principal
    policy.require_authenticated(principal)
    key = await context.loaders.api_key_by_id.load(pk)
    if key is None or not policy.may_read_key(principal, key):
        return None
    return ApiKey.of(key)


async def own_api_keys(info: Info) -> list[ApiKey]:
    user_id = policy.require_signed_in(info.context.principal)
    keys = await info.context.loaders.api_keys_by_user_id.load(user_id)
    return [ApiKey.of(key) for key in keys]
