"""The read entry points."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import strawberry
from strawberry import UNSET

from app.auth import policy
from app.domain.orders import OrderFilter
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
from resolvers.context import Info
from resolvers.global_id import from_global_id, pk_of
from resolvers.node import Node
from resolvers.order import Order, OrderStatus, load_visible_order, order_cursor
from resolvers.product import Product, load_product, product_cursor
from resolvers.user import User, load_user, load_visible_user, user_cursor

MAX_NODES = 100

_NODE_LOADERS: dict[str, Callable[[Info, UUID], Awaitable[Node | None]]] = {
    "User": load_visible_user,
    "Product": load_product,
    "Order": load_visible_order,
    "ApiKey": load_visible_api_key,
}


NodeT = TypeVar("NodeT", bound=Node)


async def _one(
    info: Info,
    global_id: str,
    type_name: str,
    load: Callable[[Info, UUID], Awaitable[NodeT | None]],
) -> NodeT:
    found = await load(info, pk_of(global_id, type_name))
    if found is None:
        raise NotFound(f"no {type_name} has the ID {global_id!r}")
    return found


async def _node(info: Info, global_id: str) -> Node:
    type_name, _ = from_global_id(global_id)
    load = _NODE_LOADERS.get(type_name)
    if load is None:
        raise BadUserInput(f"{global_id[:80]!r} is the ID of a {type_name}, which is not a Node")
    return await _one(info, global_id, type_name, load)


async def _node_or_error(info: Info, global_id: str) -> Node | ApiError:
    try:
        return await _node(info, global_id)
    except ApiError as error:
        return error


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global ID.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _node(info, id)

    @strawberry.field(description=f"Objects by global ID, in order; at most {MAX_NODES}.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise BadUserInput(f"`ids` may hold at most {MAX_NODES} IDs, not {len(ids)}")
        # An error in place of an item makes that entry null with its own located error.
        return await asyncio.gather(*(_node_or_error(info, id_) for id_ in ids))  # type: ignore[return-value]

    @strawberry.field(description="The signed-in user, or null.")
    async def me(self, info: Info) -> User | None:
        user_id = policy.own_account(info.context.principal)
        return None if user_id is None else await load_user(info, user_id)

    @strawberry.field(description="The signed-in user's API keys, oldest first (revoked included).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return await own_api_keys(info)

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        return await _one(info, id, "User", load_visible_user)

    @strawberry.field
    async def users(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[User]:
        policy.require_user_list(info.context.principal)
        loaders = info.context.loaders
        cursor = None if not after else decode_time_cursor(user_types.CURSOR_KIND, after)
        page = await loaders.users_page.load(UsersPageKey(check_first(first), cursor))
        return connection(page, User.of, user_cursor, lambda: loaders.users_count.load(None))

    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        return await _one(info, id, "Product", load_product)

    @strawberry.field
    async def products(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[Product]:
        loaders = info.context.loaders
        cursor = None if not after else decode_text_cursor(product_types.CURSOR_KIND, after)
        page = await loaders.products_page.load(ProductsPageKey(check_first(first), cursor))
        return connection(
            page, Product.of, product_cursor, lambda: loaders.products_count.load(None)
        )

    @strawberry.field
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return await _one(info, id, "Order", load_visible_order)

    @strawberry.field(description="Orders, newest first.")
    async def orders(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = UNSET,
        status: OrderStatus | None = UNSET,
        created_after: datetime | None = UNSET,
    ) -> Connection[Order]:
        owner = policy.order_list_owner(info.context.principal)
        loaders = info.context.loaders
        cursor = None if not after else decode_time_cursor(order_types.CURSOR_KIND, after)
        where = OrderFilter(
            status=None if not status else status.to_domain(),
            created_after=created_after or None,
            user_id=owner,
        )
        page = await loaders.orders_page.load(OrdersPageKey(check_first(first), cursor, where))
        return connection(page, Order.of, order_cursor, lambda: loaders.orders_count.load(where))
