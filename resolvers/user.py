"""Users, and the user list as a connection ordered by sign-up time."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.domain import models
from app.pagination import check_first, decode_time_cursor, encode_time_cursor
from loaders.orders import OrdersByUserKey
from resolvers.connection import Connection, connection, known_count
from resolvers.context import Info
from resolvers.global_id import to_global_id
from resolvers.node import Node
from resolvers.profile import Profile

if TYPE_CHECKING:
    from resolvers.order import Order

CURSOR_KIND = "user"


@strawberry.type
class User(Node):
    id: strawberry.ID
    email: str | None
    created_at: datetime
    pk: strawberry.Private[UUID]

    @classmethod
    def of(cls, user: models.User) -> User:
        return cls(
            id=strawberry.ID(to_global_id("User", user.id)),
            email=user.email,
            created_at=user.created_at,
            pk=user.id,
        )

    @strawberry.field
    async def profile(self, info: Info) -> Profile | None:
        profile = await info.context.loaders.profile_by_user_id.load(self.pk)
        return None if profile is None else Profile.of(profile)

    @strawberry.field
    async def orders(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[Annotated[Order, strawberry.lazy("resolvers.order")]]:
        from resolvers.order import CURSOR_KIND as ORDER_CURSOR
        from resolvers.order import Order, order_cursor

        cursor = None if not after else decode_time_cursor(ORDER_CURSOR, after)
        key = OrdersByUserKey(self.pk, check_first(first), cursor)
        page = await info.context.loaders.orders_by_user_id.load(key)
        return connection(page, Order.of, order_cursor, known_count(page.total or 0))


async def load_user(info: Info, pk: UUID) -> User | None:
    user = await info.context.loaders.user_by_id.load(pk)
    return None if user is None else User.of(user)


def user_cursor(user: models.User) -> str:
    return encode_time_cursor(CURSOR_KIND, (user.created_at, user.id))
