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
from dataclasses import replace
from datetime import UTC, datetime
from inspect import isawaitable
from typing import Any
from uuid import UUID, uuid4

import pytest
from graphql import OperationDefinitionNode, create_source_event_stream, parse
from graphql.execution import Executor
from sqlalchemy import text

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.config import PROJECT_ROOT, EventSettings, WebSocketSettings
from app.db.engine import Database, track_statements
from app.domain import models
from app.domain.events import Event, EventType, StreamType, new_event
from app.engine import LEVELS, STANDARD, Engine, Executed
from app.main import graphql_context
from app.repositories import orders as order_repository
from bench.queries import NESTED, PRODUCT, USERS
from resolvers.global_id import from_global_id, to_global_id
from resolvers.schema import schema
from resolvers.subscription import Feed
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
    "root errors settling at different times": (
        # Root fields the level executor runs as batch calls (user, users, order, product, me)
        # beside resolvers it calls through graphql-core (node): errors raised before any load
        # (an argument, an authorization) and after one (NOT_FOUND), in graphql-core's order.
        """query($missing: ID!) { a: node(id: $missing) { id } b: user(id: $missing) { id }
          c: users(first: -1) { totalCount } d: order(id: $missing) { id }
          e: node(id: "bad") { id } f: user(id: "bad") { id } g: users(first: 1) { totalCount }
          h: product(id: $missing) { id } i: me { id } j: orders(first: 1) { totalCount } }""",
        {"missing": "$missing_user"},
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


# Subscription documents, as the hub executes them per event (app.http.subscriptions): each
# runs over a batch of events with both engines, and the encoded `next` payloads must be the same.
SUBSCRIPTIONS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "orderCreated: fragments, aliases, typename, nested relations": (
        ORDER_FIELDS
        + """subscription { created: orderCreated { __typename ...OrderFields
          owner: user { id email profile { displayName firstName lastName }
            orders(first: 2) { totalCount edges { cursor node { id status } } } }
          history { type version occurredAt } } }""",
        None,
    ),
    "orderStatusChanged: directives with variables": (
        """subscription($full: Boolean!, $after: String) {
          orderStatusChanged(after: $after) { id status
            items @include(if: $full) { quantity product { sku stock } }
            user @skip(if: $full) { email } total { amount } } }""",
        {"full": True, "after": None},
    ),
    "orderStatusChanged: the other way": (
        """subscription($full: Boolean!) { orderStatusChanged { id status
            items @include(if: $full) { quantity product { sku stock } }
            user @skip(if: $full) { email } } }""",
        {"full": False},
    ),
    "orderCreated: errors inside, bad arguments in nested lists": (
        """subscription { orderCreated { id user { email orders(first: 101) { totalCount } }
          items { id product { id name } } } }""",
        None,
    ),
    "productStockChanged": (
        """subscription($id: ID!) { productStockChanged(id: $id) { __typename id sku name
          stock price { amount currency } } }""",
        {"id": "$product"},
    ),
}


class _Recording(Engine):
    """An engine that notes which executor ran each event."""

    def __init__(self, executor: str) -> None:
        super().__init__(schema, executor)
        self.ran: list[str] = []

    async def execute_events(self, **arguments: Any) -> list[Executed]:
        done = await super().execute_events(**arguments)
        self.ran.extend(d.executor for d in done)
        return done


_ORDER_EVENTS = [EventType.ORDER_CREATED, EventType.ORDER_FULFILLED, EventType.ORDER_CANCELLED]


async def _events(db: Database, product: str) -> list[Event]:
    """Events of every subscribable type: orders of the customer `_customer` picks and of
    others (so loaders batch, and some are hidden from the customer), and one product."""
    customer = await _customer(db)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, user_id FROM orders ORDER BY created_at, id LIMIT 200")
            )
        ).all()
    own = [row[0] for row in rows if UUID(str(row[1])) == customer.user_id]
    others = [row[0] for row in rows if UUID(str(row[1])) != customer.user_id]
    now = datetime.now(UTC)
    events = []
    for n, order_id in enumerate(own[:6] + others[:9]):
        kind = _ORDER_EVENTS[n % 3]
        events.append(new_event(kind, StreamType.ORDER, UUID(str(order_id)), 1 + n % 3, {}, now))
    _, product_pk = from_global_id(product)
    events.append(
        new_event(EventType.PRODUCT_STOCK_CHANGED, StreamType.PRODUCT, product_pk, 7, {}, now)
    )
    return [replace(event, position=n + 1) for n, event in enumerate(events)]


async def _render(
    db: Database,
    engine: Engine,
    query: str,
    variables: dict[str, Any] | None,
    principal: Principal,
    events: list[Event],
) -> tuple[list[str | None], int]:
    """The payloads the hub sends for `events` (None: not for this principal), and the SQL
    statements they cost, executed as the hub does: the resolver's feed, one batch of loaders."""
    from app.http.subscriptions import Hub, Query, _Renderer
    from app.messaging.fanout import Fanout
    from loaders import Loaders

    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    context = graphql_context(db, principal=principal, request_id="test")
    built = Executor.build(schema._schema, document, None, context, variables)
    assert not isinstance(built, list)
    feed = create_source_event_stream(built)
    if isawaitable(feed):
        feed = await feed
    assert isinstance(feed, Feed), feed
    hub = Hub(
        db, Fanout(lambda _: Loaders.create(db)), engine, WebSocketSettings(), EventSettings()
    )
    renderer = _Renderer(
        hub, feed, Query(query, document, operation, None, variables), principal, context
    )
    types = feed.event_types
    wanted = [e for e in events if e.type in types]
    with track_statements() as stats:
        encoded = await renderer.render(wanted)
    return [None if e is None else e.payload for e in encoded], stats.statements


@pytest.mark.parametrize("principal", ["admin", "customer", "orders-only client"])
@pytest.mark.parametrize("name", list(SUBSCRIPTIONS))
async def test_subscription_payloads_answer_the_same(
    demo_db: Database, name: str, principal: str
) -> None:
    """The hub's payloads for a batch of events are the same text under either engine, cost the
    same statements, and come from the level executor (never its fallback)."""
    query, variables = SUBSCRIPTIONS[name]
    values = await _values(demo_db)
    variables = _fill(variables, values)
    who = await _principal(demo_db, principal)
    events = await _events(demo_db, values["$product"])
    levels_engine, standard_engine = _Recording(LEVELS), _Recording(STANDARD)
    levels, levels_statements = await _render(demo_db, levels_engine, query, variables, who, events)
    standard, standard_statements = await _render(
        demo_db, standard_engine, query, variables, who, events
    )
    assert levels == standard
    assert levels_statements == standard_statements
    assert any(payload is not None for payload in levels)
    assert set(levels_engine.ran) == {LEVELS}
    assert set(standard_engine.ran) == {STANDARD}


async def test_the_subscription_corpus_reaches_the_cases_it_names(demo_db: Database) -> None:
    values = await _values(demo_db)
    events = await _events(demo_db, values["$product"])
    query, _ = SUBSCRIPTIONS["orderCreated: errors inside, bad arguments in nested lists"]
    payloads, _ = await _render(demo_db, Engine(schema, LEVELS), query, None, TEST_ADMIN, events)
    sent = [json.loads(p) for p in payloads if p is not None]
    assert sent
    codes = {e["extensions"]["code"] for p in sent for e in p["errors"]}
    assert codes == {"BAD_USER_INPUT"}
    assert all(p["data"]["orderCreated"]["user"] is None for p in sent)
    customer = await _customer(demo_db)
    mine, _ = await _render(demo_db, Engine(schema, LEVELS), query, None, customer, events)
    # A customer sees the events of its own orders only.
    assert None in mine
    assert len([p for p in mine if p is not None]) < len(sent)
    hidden, _ = await _render(
        demo_db,
        Engine(schema, LEVELS),
        SUBSCRIPTIONS["orderCreated: fragments, aliases, typename, nested relations"][0],
        None,
        _CLIENT_ORDERS_ONLY,
        events,
    )
    owner_codes = {
        e["extensions"]["code"] for p in hidden if p is not None for e in json.loads(p)["errors"]
    }
    assert owner_codes == {"NOT_FOUND"}


async def _order(db: Database, global_id: str) -> models.Order:
    _, pk = from_global_id(global_id)
    async with db.read() as conn:
        found = await order_repository.get_by_ids(conn, [pk])
    return found[pk]
