"""The read entry points."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.auth import policy
from app.domain.orders import OrderFilter
from app.engine import batch
from app.errors import ApiError, BadUserInput, NotFound
from app.pagination import check_first, decode_text_cursor, decode_time_cursor
from loaders.orders import OrdersPageKey
from loaders.products import ProductsPageKey
from loaders.users import UsersPageKey
from resolvers import order as order_types
from resolvers import product as product_types
from resolvers import user as user_types
from resolvers.api_key import ApiKey, load_visible_api_key, own_api_keys
from resolvers.connection import Connection, connection
from resolvers.context import Context, Info
from resolvers.global_id import from_global_id, pk_of
from resolvers.node import Node
from resolvers.order import Order, OrderStatus, load_visible_order, order_cursor
from resolvers.product import Product, load_product, product_cursor
from resolvers.user import User, load_user, load_visible_user, user_cursor

MAX_NODES = 100

_NODE_LOADERS: dict[str, Callable[[Context, UUID], Awaitable[Node | None]]] = {
    "User": load_visible_user,
    "Product": load_product,
    "Order": load_visible_order,
    "ApiKey": load_visible_api_key,
}


NodeT = TypeVar("NodeT", bound=Node)
T = TypeVar("T")


def root(fn: Callable[..., Awaitable[T]]) -> dict[str, Any]:
    """Field metadata for a root field whose resolver only calls `fn(context, **arguments)`:
    the level executor calls it directly (no ResolveInfo, no resolver wrapper)."""

    async def resolve(context: Context, roots: Sequence[object], **arguments: Any) -> list[T]:
        value = await fn(context, **arguments)
        return [value for _ in roots]

    return batch(resolve)


async def _one(
    context: Context,
    global_id: str,
    type_name: str,
    load: Callable[[Context, UUID], Awaitable[NodeT | None]],
) -> NodeT:
    found = await load(context, pk_of(global_id, type_name))
    if found is None:
        raise NotFound(f"no {type_name} has the ID {global_id!r}")
    return found


async def _node(context: Context, global_id: str) -> Node:
    type_name, _ = from_global_id(global_id)
    load = _NODE_LOADERS.get(type_name)
    if load is None:
        raise BadUserInput(f"{global_id[:80]!r} is the ID of a {type_name}, which is not a Node")
    return await _one(context, global_id, type_name, load)


async def _node_or_error(context: Context, global_id: str) -> Node | ApiError:
    try:
        return await _node(context, global_id)
    except ApiError as error:
        return error


async def _me(context: Context) -> User | None:
    user_id = policy.own_account(context.principal)
    return None if user_id is None else await load_user(context, user_id)


async def _user(context: Context, id: strawberry.ID) -> User:
    return await _one(context, id, "User", load_visible_user)


async def _users(
    context: Context, first: int | None = 20, after: str | None = UNSET
) -> Connection[User]:
    policy.require_user_list(context.principal)
    loaders = context.loaders
    cursor = None if not after else decode_time_cursor(user_types.CURSOR_KIND, after)
    page = await loaders.users_page.load(UsersPageKey(check_first(first), cursor))
    return connection(page, User.of, user_cursor, lambda: loaders.users_count.load(None))


async def _product(context: Context, id: strawberry.ID) -> Product:
    return await _one(context, id, "Product", load_product)


async def _products(
    context: Context, first: int | None = 20, after: str | None = UNSET
) -> Connection[Product]:
    loaders = context.loaders
    cursor = None if not after else decode_text_cursor(product_types.CURSOR_KIND, after)
    page = await loaders.products_page.load(ProductsPageKey(check_first(first), cursor))
    return connection(page, Product.of, product_cursor, lambda: loaders.products_count.load(None))


async def _order(context: Context, id: strawberry.ID) -> Order:
    return await _one(context, id, "Order", load_visible_order)


async def _orders(
    context: Context,
    first: int | None = 20,
    after: str | None = UNSET,
    status: OrderStatus | None = UNSET,
    created_after: datetime | None = UNSET,
) -> Connection[Order]:
    owner = policy.order_list_owner(context.principal)
    loaders = context.loaders
    cursor = None if not after else decode_time_cursor(order_types.CURSOR_KIND, after)
    where = OrderFilter(
        status=None if not status else status.to_domain(),
        created_after=created_after or None,
        user_id=owner,
    )
    page = await loaders.orders_page.load(OrdersPageKey(check_first(first), cursor, where))
    return connection(page, Order.of, order_cursor, lambda: loaders.orders_count.load(where))


# The resolvers serve the standard executor; the level executor calls the same functions
# through each field's `root` metadata.
@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global ID.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _node(info.context, id)

    @strawberry.field(description=f"Objects by global ID, in order; at most {MAX_NODES}.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise BadUserInput(f"`ids` may hold at most {MAX_NODES} IDs, not {len(ids)}")
        # An error in place of an item makes that entry null with its own located error.
        return await asyncio.gather(*(_node_or_error(info.context, id_) for id_ in ids))  # type: ignore[return-value]

    @strawberry.field(description="The signed-in user, or null.", metadata=root(_me))
    async def me(self, info: Info) -> User | None:
        return await _me(info.context)

    @strawberry.field(description="The signed-in user's API keys, oldest first (revoked included).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return await own_api_keys(info)

    @strawberry.field(metadata=root(_user))
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        return await _user(info.context, id)

    @strawberry.field(metadata=root(_users))
    async def users(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[User]:
        return await _users(info.context, first, after)

    @strawberry.field(metadata=root(_product))
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        return await _product(info.context, id)

    @strawberry.field(metadata=root(_products))
    async def products(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[Product]:
        return await _products(info.context, first, after)

    @strawberry.field(metadata=root(_order))
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return await _order(info.context, id)

    @strawberry.field(description="Orders, newest first.", metadata=root(_orders))
    async def orders(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = UNSET,
        status: OrderStatus | None = UNSET,
        created_after: datetime | None = UNSET,
    ) -> Connection[Order]:
        return await _orders(info.context, first, after, status, created_after)
