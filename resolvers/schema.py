"""The schema object, built once per process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from resolvers.api_key import ApiKey
from resolvers.mutation import Mutation
from resolvers.order import Order
from resolvers.product import Product
from resolvers.query import Query
from resolvers.scalars import SCALAR_MAP
from resolvers.subscription import Subscription
from resolvers.user import User


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    """The schema; the app adds the extensions its HTTP edge needs (see app.main)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[User, Product, Order, ApiKey],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=list(extensions),
    )


schema = build_schema()
