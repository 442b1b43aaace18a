"""Users, and the user list as a connection ordered by sign-up time."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.auth import policy
from app.domain import models
from app.errors import Forbidden
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


def _email(root: User, info: Info) -> str | None:
    if not policy.may_see_email(info.context.principal, root.pk):
        raise Forbidden("the email is visible only to its user and with users:read")
    return root.address


@strawberry.type
class User(Node):
    id: strawberry.ID
    email: str | None = strawberry.field(
        resolver=_email,
        description="Visible to the user, `users:read` and `admin`; else FORBIDDEN.",
    )
    created_at: datetime
    pk: strawberry.Private[UUID]
    address: strawberry.Private[str]

    @classmethod
    def of(cls, user: models.User) -> User:
        return cls(
            id=strawberry.ID(to_global_id("User", user.id)),
            created_at=user.created_at,
            pk=user.id,
            address=user.email,
        )

    @strawberry.field
    async def profile(self, info: Info) -> Profile | None:
        profile = await info.context.loaders.profile_by_user_id.load(self.pk)
        return None if profile is None else Profile.of(profile)

    @strawberry.field(
        description="Needs `orders:read` (a customer: their own). Otherwise FORBIDDEN, which "
        "nulls the nearest nullable parent, so ask for orders only where you may read them."
    )
    async def orders(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[Annotated[Order, strawberry.lazy("resolvers.order")]]:
        from resolvers.order import CURSOR_KIND as ORDER_CURSOR
        from resolvers.order import Order, order_cursor

        if not policy.may_read_orders_of(info.context.principal, self.pk):
            raise Forbidden("reading these orders needs the orders:read scope")

        cursor = None if not after else decode_time_cursor(ORDER_CURSOR, after)
        key = OrdersByUserKey(self.pk, check_first(first), cursor)
        page = await info.context.loaders.orders_by_user_id.load(key)
        return connection(page, Order.of, order_cursor, known_count(page.total or 0))


async def load_user(info: Info, pk: UUID) -> User | None:
    """Any user: for paths already authorized, such as an order's owner."""
    user = await info.context.loaders.user_by_id.load(pk)
    return None if user is None else User.of(user)


async def load_visible_user(info: Info, pk: UUID) -> User | None:
    """The user if the principal may read them; None (NOT_FOUND) if not, as if missing."""
    principal = info.context.principal
    policy.require_authenticated(principal)
    if not policy.may_read_user(principal, pk):
        return None
    return await load_user(info, pk)


def user_cursor(user: models.User) -> str:
    return encode_time_cursor(CURSOR_KIND, (user.created_at, user.id))
