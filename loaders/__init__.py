"""Per-request DataLoaders: every relation is a batch function over parent keys.

A fresh set is made for every request (and, later, every subscription event), so a cache never
outlives the operation that filled it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.cache.query import QueryCache
from app.db.engine import Database
from app.repositories.products import CatalogueReads
from loaders.api_keys import ApiKeyByIdLoader, ApiKeysByUserIdLoader
from loaders.events import StreamEventsLoader
from loaders.orders import (
    OrderByIdLoader,
    OrderItemsByOrderIdLoader,
    OrdersByUserIdLoader,
    OrdersCountLoader,
    OrdersPageLoader,
)
from loaders.products import ProductByIdLoader, ProductsCountLoader, ProductsPageLoader
from loaders.users import ProfileByUserIdLoader, UserByIdLoader, UsersCountLoader, UsersPageLoader


@dataclass(slots=True)
class Loaders:
    user_by_id: UserByIdLoader
    profile_by_user_id: ProfileByUserIdLoader
    users_page: UsersPageLoader
    users_count: UsersCountLoader
    product_by_id: ProductByIdLoader
    products_page: ProductsPageLoader
    products_count: ProductsCountLoader
    order_by_id: OrderByIdLoader
    order_items_by_order_id: OrderItemsByOrderIdLoader
    orders_by_user_id: OrdersByUserIdLoader
    orders_page: OrdersPageLoader
    orders_count: OrdersCountLoader
    stream_events: StreamEventsLoader
    api_key_by_id: ApiKeyByIdLoader
    api_keys_by_user_id: ApiKeysByUserIdLoader

    @classmethod
    def create(cls, db: Database, query_cache: QueryCache | None = None) -> Loaders:
        """`query_cache`, when given, serves the catalogue's reads (the rest is per user)."""
        catalogue = CatalogueReads(db, query_cache)
        return cls(
            user_by_id=UserByIdLoader(db),
            profile_by_user_id=ProfileByUserIdLoader(db),
            users_page=UsersPageLoader(db),
            users_count=UsersCountLoader(db),
            product_by_id=ProductByIdLoader(catalogue),
            products_page=ProductsPageLoader(catalogue),
            products_count=ProductsCountLoader(catalogue),
            order_by_id=OrderByIdLoader(db),
            order_items_by_order_id=OrderItemsByOrderIdLoader(db),
            orders_by_user_id=OrdersByUserIdLoader(db),
            orders_page=OrdersPageLoader(db),
            orders_count=OrdersCountLoader(db),
            stream_events=StreamEventsLoader(db),
            api_key_by_id=ApiKeyByIdLoader(db),
            api_keys_by_user_id=ApiKeysByUserIdLoader(db),
        )
