"""The schema object, built once per process."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from resolvers.mutation import Mutation
from resolvers.order import Order
from resolvers.product import Product
from resolvers.query import Query
from resolvers.scalars import SCALAR_MAP
from resolvers.user import User


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[User, Product, Order],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


schema = build_schema()
