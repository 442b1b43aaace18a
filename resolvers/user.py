"""Users, and the user list as a connection ordered by sign-up time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.auth import policy
from app.domain import models
from app.engine import batch, each
from app.errors import Forbidden
from app.pagination import Page, check_first, decode_time_cursor, encode_time_cursor
from loaders.orders import OrdersByUserKey
from resolvers.connection import Connection, connection, known_count
from resolvers.context import Context, Info
from resolvers.global_id import to_global_id
from resolvers.lazy import Lazy, assemble
from resolvers.node import Node
from resolvers.profile import Profile

if TYPE_CHECKING:
    from resolvers.order import Order

CURSOR_KIND = "user"


def _email_of(context: Context, user: User) -> str | None:
    if not policy.may_see_email(context.principal, user.pk):
        raise Forbidden("the email is visible only to its user and with users:read")
    return user.address


def _email(root: User, info: Info) -> str | None:
    return _email_of(info.context, root)


async def _profiles(context: Context, users: Sequence[User]) -> list[Profile | None]:
    found = await context.loaders.profile_by_user_id.load_level([user.pk for user in users])
    return [None if profile is None else Profile.of(profile) for profile in found]


def _orders_key(
    context: Context, user: User, first: int | None, after: str | None
) -> OrdersByUserKey:
    """Authorizes reading one user's orders and reads the page arguments (field errors)."""
    from resolvers.order import CURSOR_KIND as ORDER_CURSOR

    if not policy.may_read_orders_of(context.principal, user.pk):
        raise Forbidden("reading these orders needs the orders:read scope")
    cursor = None if not after else decode_time_cursor(ORDER_CURSOR, after)
    return OrdersByUserKey(user.pk, check_first(first), cursor)


def _orders_connection(page: Page[models.Order]) -> Connection[Order]:
    from resolvers.order import Order, order_cursor

    return connection(page, Order.of, order_cursor, known_count(page.total or 0))


async def _orders(
    context: Context, users: Sequence[User], first: int | None = 20, after: str | None = UNSET
) -> list[Connection[Order] | Exception]:
    """Each user's page of orders: authorized per user, then one statement for the level."""
    results: list[Connection[Order] | Exception] = []
    keys: list[OrdersByUserKey] = []
    waiting: list[int] = []
    for index, user in enumerate(users):
        try:
            keys.append(_orders_key(context, user, first, after))
        except Exception as error:
            results.append(error)  # this user's field error
        else:
            waiting.append(index)
            results.append(_NOT_YET)
    pages = await context.loaders.orders_by_user_id.load_level(keys)
    for index, page in zip(waiting, pages, strict=True):
        results[index] = _orders_connection(page)
    return results


_NOT_YET = LookupError("not loaded yet")


@strawberry.type
class User(Node, Lazy):
    id: strawberry.ID
    email: str | None = strawberry.field(
        resolver=_email,
        metadata=each(_email_of),
        description="Visible to the user, `users:read` and `admin`; else FORBIDDEN.",
    )
    created_at: datetime
    pk: strawberry.Private[UUID]
    address: strawberry.Private[str]

    LAZY = {"id": lambda user: to_global_id("User", user.pk)}

    @classmethod
    def of(cls, user: models.User) -> User:
        return assemble(cls, created_at=user.created_at, pk=user.id, address=user.email)

    @strawberry.field(metadata=batch(_profiles))
    async def profile(self, info: Info) -> Profile | None:
        profile = await info.context.loaders.profile_by_user_id.load(self.pk)
        return None if profile is None else Profile.of(profile)

    @strawberry.field(
        description="Needs `orders:read` (a customer: their own). Otherwise FORBIDDEN, which "
        "nulls the nearest nullable parent, so ask for orders only where you may read them.",
        metadata=batch(_orders),
    )
    async def orders(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[Annotated[Order, strawberry.lazy("resolvers.order")]]:
        key = _orders_key(info.context, self, first, after)
        return _orders_connection(await info.context.loaders.orders_by_user_id.load(key))


async def load_user(context: Context, pk: UUID) -> User | None:
    """Any user: for paths already authorized, such as an order's owner."""
    user = await context.loaders.user_by_id.load(pk)
    return None if user is None else User.of(user)


async def load_visible_user(context: Context, pk: UUID) -> User | None:
    """The user if the principal may read them; None (NOT_FOUND) if not, as if missing."""
    principal = context.principal
    policy.require_authenticated(principal)
    if not policy.may_read_user(principal, pk):
        return None
    return await load_user(context, pk)


def user_cursor(user: models.User) -> str:
    return encode_time_cursor(CURSOR_KIND, (user.created_at, user.id))
