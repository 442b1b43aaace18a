"""What the REST API sends and accepts, per version, as pydantic models.

The models are the contract: responses are serialised from them and the OpenAPI documents are
generated from them, so the two cannot drift apart. Why v2 differs from v1 (README, "REST API"):
money is one object (amount and currency never travel apart, as in GraphQL), a user's name is
structured (`profile`) and their preferences are exposed, timestamps come with every resource,
and lists carry `pageInfo` like GraphQL's connections instead of a bare `nextCursor`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

from app.domain import models
from app.domain.money import Money as MoneyValue
from resolvers.global_id import to_global_id
from resolvers.scalars import serialize_datetime

Timestamp = Annotated[
    datetime,
    PlainSerializer(serialize_datetime, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Status = Literal["PLACED", "FULFILLED", "CANCELLED"]


class Shape(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


# --- v1 ------------------------------------------------------------------------------------------


class UserV1(Shape):
    id: str
    email: str
    name: str = Field(description="First and last name joined (the display name if neither).")


class ProductV1(Shape):
    id: str
    sku: str
    name: str
    description: str
    price: str = Field(description='Exact decimal in `currency`, e.g. "19.99".')
    currency: str
    stock: int


class OrderItemV1(Shape):
    product_id: str
    quantity: int
    unit_price: str


class OrderV1(Shape):
    id: str
    user_id: str
    status: Status
    total: str
    currency: str
    created_at: Timestamp
    items: list[OrderItemV1]


class ProductListV1(Shape):
    items: list[ProductV1]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


class OrderListV1(Shape):
    items: list[OrderV1]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null at the end."
    )


# --- v2 ------------------------------------------------------------------------------------------


class Money(Shape):
    amount: str = Field(description='Exact decimal with the currency\'s decimals, e.g. "19.99".')
    currency: str


class ProfileV2(Shape):
    first_name: str | None
    last_name: str | None
    display_name: str


class UserV2(Shape):
    id: str
    email: str
    profile: ProfileV2
    preferences: dict[str, Any]


class ProductV2(Shape):
    id: str
    sku: str
    name: str
    description: str
    price: Money
    stock: int
    created_at: Timestamp
    updated_at: Timestamp


class OrderItemV2(Shape):
    product_id: str
    quantity: int
    unit_price: Money
    line_total: Money


class OrderV2(Shape):
    id: str
    user_id: str
    status: Status
    total: Money
    created_at: Timestamp
    updated_at: Timestamp
    items: list[OrderItemV2]


class PageInfo(Shape):
    has_next_page: bool
    end_cursor: str | None


class ProductListV2(Shape):
    items: list[ProductV2]
    page_info: PageInfo


class OrderListV2(Shape):
    items: list[OrderV2]
    page_info: PageInfo


# --- requests and errors (both versions) ---------------------------------------------------------


class OrderLineInput(Shape):
    product_id: str = Field(max_length=200)
    quantity: int = Field(ge=-(2**31), le=2**31 - 1)


class CreateOrderInput(Shape):
    items: list[OrderLineInput] = Field(max_length=100)


class FieldError(Shape):
    field: list[str] | None
    message: str
    code: str


class Problem(Shape):
    """RFC 9457 problem details, with the API's error code (the GraphQL catalogue's)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="allow"
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None
    supported_versions: list[str] | None = None
    retry_after: int | None = None


# --- from the domain -----------------------------------------------------------------------------


def _money(value: MoneyValue) -> Money:
    return Money(amount=value.decimal_string(), currency=value.currency)


def _name(profile: models.Profile | None, user: models.User) -> str:
    if profile is None:
        return models.display_name_for(None, None, user.email)
    joined = " ".join(part for part in (profile.first_name, profile.last_name) if part)
    return joined or profile.display_name


def user_v1(user: models.User, profile: models.Profile | None) -> UserV1:
    return UserV1(id=to_global_id("User", user.id), email=user.email, name=_name(profile, user))


def user_v2(user: models.User, profile: models.Profile | None) -> UserV2:
    shown = ProfileV2(
        first_name=profile.first_name if profile else None,
        last_name=profile.last_name if profile else None,
        display_name=profile.display_name if profile else _name(None, user),
    )
    return UserV2(
        id=to_global_id("User", user.id),
        email=user.email,
        profile=shown,
        preferences=dict(profile.preferences) if profile else {},
    )


def product_v1(product: models.Product) -> ProductV1:
    return ProductV1(
        id=to_global_id("Product", product.id),
        sku=product.sku,
        name=product.name,
        description=product.description,
        price=product.price.decimal_string(),
        currency=product.price.currency,
        stock=product.stock,
    )


def product_v2(product: models.Product) -> ProductV2:
    return ProductV2(
        id=to_global_id("Product", product.id),
        sku=product.sku,
        name=product.name,
        description=product.description,
        price=_money(product.price),
        stock=product.stock,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def order_v1(order: models.Order, items: list[models.OrderItem]) -> OrderV1:
    return OrderV1(
        id=to_global_id("Order", order.id),
        user_id=to_global_id("User", order.user_id),
        status=order.status.value,
        total=order.total.decimal_string(),
        currency=order.total.currency,
        created_at=order.created_at,
        items=[
            OrderItemV1(
                product_id=to_global_id("Product", item.product_id),
                quantity=item.quantity,
                unit_price=item.unit_price.decimal_string(),
            )
            for item in items
        ],
    )


def order_v2(order: models.Order, items: list[models.OrderItem]) -> OrderV2:
    return OrderV2(
        id=to_global_id("Order", order.id),
        user_id=to_global_id("User", order.user_id),
        status=order.status.value,
        total=_money(order.total),
        created_at=order.created_at,
        updated_at=order.updated_at,
        items=[
            OrderItemV2(
                product_id=to_global_id("Product", item.product_id),
                quantity=item.quantity,
                unit_price=_money(item.unit_price),
                line_total=_money(item.line_total),
            )
            for item in items
        ],
    )
