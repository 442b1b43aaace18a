"""Per-request DataLoaders: every relation is a batch function over parent keys.

A fresh set is made for every request (and, later, every subscription event), so a cache never
outlives the operation that filled it.
"""

from __future__ import annotations

from functools import cached_property

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


class Loaders:
    """The loaders an operation may use, each made the first time a resolver asks for it: a
    request touches two or three of them, and making all fifteen cost more than its SQL."""

    def __init__(self, db: Database, query_cache: QueryCache | None = None) -> None:
        self._db = db
        self._query_cache = query_cache

    @classmethod
    def create(cls, db: Database, query_cache: QueryCache | None = None) -> Loaders:
        """`query_cache`, when given, serves the catalogue's reads (the rest is per user)."""
        return cls(db, query_cache)

    @cached_property
    def _catalogue(self) -> CatalogueReads:
        return CatalogueReads(self._db, self._query_cache)

    @cached_property
    def user_by_id(self) -> UserByIdLoader:
        return UserByIdLoader(self._db)

    @cached_property
    def profile_by_user_id(self) -> ProfileByUserIdLoader:
        return ProfileByUserIdLoader(self._db)

    @cached_property
    def users_page(self) -> UsersPageLoader:
        return UsersPageLoader(self._db)

    @cached_property
    def users_count(self) -> UsersCountLoader:
        return UsersCountLoader(self._db)

    @cached_property
    def product_by_id(self) -> ProductByIdLoader:
        return ProductByIdLoader(self._catalogue)

    @cached_property
    def products_page(self) -> ProductsPageLoader:
        return ProductsPageLoader(self._catalogue)

    @cached_property
    def products_count(self) -> ProductsCountLoader:
        return ProductsCountLoader(self._catalogue)

    @cached_property
    def order_by_id(self) -> OrderByIdLoader:
        return OrderByIdLoader(self._db)

    @cached_property
    def order_items_by_order_id(self) -> OrderItemsByOrderIdLoader:
        return OrderItemsByOrderIdLoader(self._db)

    @cached_property
    def orders_by_user_id(self) -> OrdersByUserIdLoader:
        return OrdersByUserIdLoader(self._db)

    @cached_property
    def orders_page(self) -> OrdersPageLoader:
        return OrdersPageLoader(self._db)

    @cached_property
    def orders_count(self) -> OrdersCountLoader:
        return OrdersCountLoader(self._db)

    @cached_property
    def stream_events(self) -> StreamEventsLoader:
        return StreamEventsLoader(self._db)

    @cached_property
    def api_key_by_id(self) -> ApiKeyByIdLoader:
        return ApiKeyByIdLoader(self._db)

    @cached_property
    def api_keys_by_user_id(self) -> ApiKeysByUserIdLoader:
        return ApiKeysByUserIdLoader(self._db)
