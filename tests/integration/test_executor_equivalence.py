"""The level executor answers exactly as graphql-core's: a corpus of queries and principals.

`tests.graphql.execute` runs every query under both executors and fails unless the two JSON
answers are identical (data, errors with message, locations, path and code, key order) and cost
the same SQL statements; every other test's queries get the same check. This corpus adds the
shapes the others do not reach: fragments, aliases, directives with variables, errors inside
lists, non-null propagation, NOT_FOUND and FORBIDDEN fields, pagination arguments and cursors,
for principals that see all, some and nothing. It runs on SQLite and PostgreSQL (`demo_db`).
"""

from __future__ import annotations

import json
import re
from inspect import isawaitable
from typing import Any
from uuid import UUID, uuid4

import pytest
from graphql import OperationDefinitionNode, parse
from graphql import execute as graphql_execute
from graphql.execution.values import get_variable_values
from sqlalchemy import text

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.config import PROJECT_ROOT
from app.db.engine import Database
from app.domain import models
from app.engine import LEVELS, STANDARD, Engine
from app.main import graphql_context
from app.repositories import orders as order_repository
from bench.queries import NESTED, PRODUCT, USERS
from resolvers.context import Context
from resolvers.global_id import from_global_id, to_global_id
from resolvers.order import Order
from resolvers.schema import schema
from tests.graphql import TEST_ADMIN, Result, assert_same, execute, run

ORDER_FIELDS = """
fragment OrderFields on Order {
  id status createdAt updatedAt
  total { amount currency }
  items { id quantity unitPrice { amount } lineTotal { amount currency } product { ...P } }
}
fragment P on Product { id sku name price { amount } stock }
"""

CORPUS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "fragments and aliases": (
        ORDER_FIELDS
        + """query { first: orders(first: 3) { edges { node { ...OrderFields } } }
          again: orders(first: 2) { totalCount edges { cursor node { id
            buyer: user { id email profile { displayName firstName lastName } } } } } }""",
        None,
    ),
    "inline fragments on Node": (
        """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
          ... on User { email createdAt }
          ... on Order { status total { amount } }
          ... on Product { sku } ... on ApiKey { name } } }""",
        {"ids": "$mixed"},
    ),
    "directives with variables": (
        """query($withOrders: Boolean!, $noEmail: Boolean!, $first: Int) {
          users(first: $first) { edges { node { id email @skip(if: $noEmail)
            orders(first: 2) @include(if: $withOrders) { totalCount edges { node { id } } }
            ... on User @include(if: $withOrders) { createdAt } } } } }""",
        {"withOrders": True, "noEmail": False, "first": 3},
    ),
    "directives with variables, the other way": (
        """query($withOrders: Boolean!, $noEmail: Boolean!, $first: Int) {
          users(first: $first) { edges { node { id email @skip(if: $noEmail)
            orders(first: 2) @include(if: $withOrders) { totalCount edges { node { id } } }
            ... on User @include(if: $withOrders) { createdAt } } } } }""",
        {"withOrders": False, "noEmail": True, "first": 4},
    ),
    "pagination arguments and cursors": (
        """query($after: String) { users(first: 2, after: $after) {
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { id orders(first: 1) { pageInfo { endCursor hasNextPage }
            edges { cursor node { id } } } } } }
          products(first: 2, after: $after) { edges { cursor node { sku } } } }""",
        {"after": None},
    ),
    "a cursor of another list": (
        "query($after: String) { users(first: 2, after: $after) { edges { node { id } } } }",
        {"after": "$product_cursor"},
    ),
    "an invalid cursor in nested lists": (
        """{ users(first: 3) { edges { node { id
          orders(first: 2, after: "bm90IGEgY3Vyc29y") { totalCount } } } } }""",
        None,
    ),
    "first out of range inside a list": (
        "{ orders(first: 2) { edges { node { id user { orders(first: 101) { totalCount } } } } } }",
        None,
    ),
    "first zero": (
        "{ users(first: 0) { totalCount pageInfo { hasNextPage startCursor } edges { cursor } } }",
        None,
    ),
    "order filters: enum and DateTime": (
        """query($status: OrderStatus, $after: DateTime) {
          orders(first: 5, status: $status, createdAfter: $after) { totalCount
            edges { node { id status createdAt history { type version occurredAt } } } } }""",
        {"status": "PLACED", "after": "2020-01-01T00:00:00.000Z"},
    ),
    "NOT_FOUND and BAD_USER_INPUT at the root": (
        """query($missing: ID!, $product: ID!) { user(id: $missing) { id }
          order(id: $missing) { id } product(id: $product) { sku }
          broken: product(id: "not-an-id") { id } node(id: $missing) { id } }""",
        {"missing": "$missing_user", "product": "$product"},
    ),
    "errors inside a list of nodes": (
        """query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { email
          orders(first: 1) { totalCount } } } }""",
        {"ids": "$with_bad"},
    ),
    "typename everywhere": (
        """{ __typename users(first: 2) { __typename edges { __typename node { __typename
          profile { __typename } } } pageInfo { __typename } } }""",
        None,
    ),
    "the same field twice, merged": (
        """{ users(first: 2) { edges { node { id } } edges { node { email id
          profile { displayName } } } } }""",
        None,
    ),
    "me and api keys": (
        "{ me { id email orders(first: 2) { totalCount } } apiKeys { id name scopes last4 } }",
        None,
    ),
}

_CLIENT_USERS_ONLY = Principal(
    PrincipalKind.CLIENT, client_id="og_users", scopes=frozenset({"users:read"})
)
_CLIENT_ORDERS_ONLY = Principal(
    PrincipalKind.CLIENT, client_id="og_orders", scopes=frozenset({"orders:read"})
)


async def _customer(db: Database) -> Principal:
    async with db.read() as conn:
        user_id = (
            await conn.execute(
                text(
                    "SELECT user_id FROM orders GROUP BY user_id ORDER BY count(*) DESC, user_id"
                    " LIMIT 1"
                )
            )
        ).scalar_one()
    scopes = frozenset({"orders:read", "orders:write", "products:read"})
    return Principal(PrincipalKind.CUSTOMER, user_id=UUID(str(user_id)), scopes=scopes)


PRINCIPALS = ["admin", "customer", "users-only client", "orders-only client", "anonymous"]


async def _principal(db: Database, name: str) -> Principal:
    if name == "customer":
        return await _customer(db)
    return {
        "admin": TEST_ADMIN,
        "users-only client": _CLIENT_USERS_ONLY,
        "orders-only client": _CLIENT_ORDERS_ONLY,
        "anonymous": ANONYMOUS,
    }[name]


async def _values(db: Database) -> dict[str, Any]:
    """IDs and cursors from the demo data, for the corpus's `$name` placeholders."""
    data = (
        await execute(
            db,
            """{ users(first: 2) { edges { node { id } } }
              orders(first: 2) { edges { node { id } } }
              products(first: 2) { edges { cursor node { id } } } }""",
        )
    ).ok()
    user = data["users"]["edges"][0]["node"]["id"]
    order = data["orders"]["edges"][0]["node"]["id"]
    product = data["products"]["edges"][0]["node"]["id"]
    missing = to_global_id("User", uuid4())
    return {
        "$mixed": [user, order, product, data["users"]["edges"][1]["node"]["id"]],
        "$with_bad": [user, missing, "bad!", to_global_id("OrderItem", uuid4()), order, user],
        "$missing_user": missing,
        "$product": product,
        "$product_cursor": data["products"]["edges"][0]["cursor"],
    }


def _fill(variables: dict[str, Any] | None, values: dict[str, Any]) -> dict[str, Any] | None:
    if variables is None:
        return None
    return {k: values.get(v, v) if isinstance(v, str) else v for k, v in variables.items()}


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("name", list(CORPUS))
async def test_corpus_answers_the_same(demo_db: Database, name: str, principal: str) -> None:
    query, variables = CORPUS[name]
    result = await execute(
        demo_db,
        query,
        _fill(variables, await _values(demo_db)),
        principal=await _principal(demo_db, principal),
    )
    assert result.executor == LEVELS


async def test_the_corpus_reaches_the_cases_it_names(demo_db: Database) -> None:
    """The corpus is only worth its name if its answers hold the errors it is about."""
    values = await _values(demo_db)

    async def codes(name: str, principal: Principal) -> tuple[Result, set[str]]:
        query, variables = CORPUS[name]
        result = await execute(demo_db, query, _fill(variables, values), principal=principal)
        return result, set(result.codes)

    nested, found = await codes("errors inside a list of nodes", _CLIENT_USERS_ONLY)
    assert {"NOT_FOUND", "BAD_USER_INPUT", "FORBIDDEN"} <= found
    assert nested.data is not None
    assert None in nested.data["nodes"]
    bubbled, found = await codes("pagination arguments and cursors", _CLIENT_USERS_ONLY)
    assert found == {"FORBIDDEN"}
    assert bubbled.data is None
    emails, found = await codes("fragments and aliases", _CLIENT_ORDERS_ONLY)
    # Order.user hides a user the principal may not read as missing (as `user(id)` does).
    assert "NOT_FOUND" in found
    assert len(emails.errors) > 1
    _, found = await codes("first out of range inside a list", TEST_ADMIN)
    assert found == {"BAD_USER_INPUT"}
    _, found = await codes("NOT_FOUND and BAD_USER_INPUT at the root", TEST_ADMIN)
    assert found == {"NOT_FOUND", "BAD_USER_INPUT"}


def _readme_queries() -> list[str]:
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", readme, flags=re.DOTALL)
    return [b for b in blocks if b.lstrip().startswith(("{", "query"))]


def test_the_readme_has_queries_to_compare() -> None:
    assert _readme_queries()


@pytest.mark.parametrize("index", range(len(_readme_queries())))
async def test_readme_queries_answer_the_same(demo_db: Database, index: int) -> None:
    result = await execute(demo_db, _readme_queries()[index])
    assert result.executor == LEVELS
    result.ok()


@pytest.mark.parametrize("query", [PRODUCT, USERS, NESTED], ids=["point", "list", "nested"])
async def test_bench_queries_answer_the_same(demo_db: Database, query: str) -> None:
    values = await _values(demo_db)
    variables = {"id": values["$product"]} if "$id" in query else None
    result = await execute(demo_db, query, variables)
    assert result.executor == LEVELS
    result.ok()


async def test_the_standard_executor_is_a_setting(demo_db: Database) -> None:
    levels = await run(demo_db, USERS, executor=LEVELS)
    standard = await run(demo_db, USERS, executor=STANDARD)
    assert (levels.executor, standard.executor) == (LEVELS, STANDARD)
    assert_same(standard, levels)


async def test_introspection_falls_back_to_the_standard_executor(demo_db: Database) -> None:
    result = await run(demo_db, "{ __schema { queryType { name } } }", executor=LEVELS)
    assert result.executor == STANDARD
    assert result.ok() == {"__schema": {"queryType": {"name": "Query"}}}


async def test_a_subscription_event_answers_the_same(demo_db: Database) -> None:
    """`Engine.execute_event` completes a subscription's selection for one event payload as
    graphql-core executes each event (the root field resolves to the payload)."""
    query = """subscription { orderCreated { id status total { amount currency }
      user { email profile { displayName } } items { quantity product { sku } } } }"""
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    variables = get_variable_values(schema._schema, [], {})
    assert not isinstance(variables, list)
    order_id = (await execute(demo_db, "{ orders(first: 1) { edges { node { id } } } }")).ok()[
        "orders"
    ]["edges"][0]["node"]["id"]
    found = await _order(demo_db, order_id)

    def context() -> Context:
        return graphql_context(demo_db, principal=TEST_ADMIN, request_id="test")

    executed = graphql_execute(
        schema._schema, document, root_value=Order.of(found), context_value=context()
    )
    standard = await executed if isawaitable(executed) else executed

    async def refuse() -> Any:
        raise AssertionError("the level executor fell back")

    levels = await Engine(schema, LEVELS).execute_event(
        document=document,
        operation=operation,
        variables=variables,
        context=context(),
        payload=Order.of(found),
        standard=refuse,
    )
    assert levels.executor == LEVELS
    assert standard.errors is None
    assert levels.errors is None
    assert json.dumps(levels.data) == json.dumps(standard.data)
    assert levels.data is not None
    assert levels.data["orderCreated"]["items"]


async def _order(db: Database, global_id: str) -> models.Order:
    _, pk = from_global_id(global_id)
    async with db.read() as conn:
        found = await order_repository.get_by_ids(conn, [pk])
    return found[pk]
