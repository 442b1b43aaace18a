"""createOrder, cancelOrder, fulfillOrder: their inputs and payloads."""

from __future__ import annotations

import strawberry

from app.domain.errors import Code, Problem
from app.domain.models import Order as OrderModel
from app.domain.orders import OrderLine
from app.errors import BadUserInput
from app.usecases import orders as usecases
from app.usecases.runner import Outcome
from resolvers.context import Info
from resolvers.global_id import pk_of
from resolvers.order import Order
from resolvers.user_error import UserError, user_errors


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class CreateOrderInput:
    items: list[OrderLineInput]
    idempotency_key: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Repeat a request with the same key to get its order instead of a second.",
    )


@strawberry.type
class CreateOrderPayload:
    order: Order | None
    errors: list[UserError]


@strawberry.type
class CancelOrderPayload:
    order: Order | None
    errors: list[UserError]


@strawberry.type
class FulfillOrderPayload:
    order: Order | None
    errors: list[UserError]


def _order_payload(outcome: Outcome[OrderModel]) -> tuple[Order | None, list[UserError]]:
    order = None if outcome.value is None else Order.of(outcome.value)
    return order, user_errors(outcome.problems)


async def create_order(info: Info, input: CreateOrderInput) -> CreateOrderPayload:
    lines: list[OrderLine] = []
    problems: list[Problem] = []
    for index, item in enumerate(input.items):
        try:
            lines.append(OrderLine(pk_of(item.product_id, "Product"), item.quantity))
        except BadUserInput as error:
            problems.append(
                Problem(Code.BAD_USER_INPUT, error.message, ("items", str(index), "productId"))
            )
    if problems:
        return CreateOrderPayload(order=None, errors=user_errors(problems))
    outcome = await usecases.create_order(
        info.context.unit_of_work,
        info.context.principal,
        usecases.CreateOrder(lines, input.idempotency_key or None),
    )
    order, errors = _order_payload(outcome)
    return CreateOrderPayload(order=order, errors=errors)


async def cancel_order(info: Info, id: strawberry.ID) -> CancelOrderPayload:
    outcome = await usecases.cancel_order(
        info.context.unit_of_work, info.context.principal, pk_of(id, "Order")
    )
    order, errors = _order_payload(outcome)
    return CancelOrderPayload(order=order, errors=errors)


async def fulfill_order(info: Info, id: strawberry.ID) -> FulfillOrderPayload:
    outcome = await usecases.fulfill_order(
        info.context.unit_of_work, info.context.principal, pk_of(id, "Order")
    )
    order, errors = _order_payload(outcome)
    return FulfillOrderPayload(order=order, errors=errors)
