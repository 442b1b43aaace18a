"""The operation pipeline on its own: a fake executor at the one execution point, no I/O."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

import pytest
from graphql import GraphQLError, OperationType

from app.auth.principal import ANONYMOUS
from app.auth.ratelimit import MemoryRateLimiter
from app.config import BudgetSettings, CostSettings, GraphQLLimits, PersistedQuerySettings
from app.engine import Executed
from app.http.budgets import Budgets
from app.http.cost import CostAnalysis
from app.http.document_store import MemoryDocumentStore
from app.http.documents import DocumentPreparer
from app.http.executors import Plan
from app.http.persisted import PersistedQueries, TrustedDocuments
from app.http.pipeline import (
    Answer,
    Caller,
    OperationPipeline,
    OperationRequest,
    Refusal,
    Refused,
    Transport,
)
from resolvers.schema import schema

CALLER = Caller(principal=ANONYMOUS, request_id="req-1", client_address="10.0.0.1")
PRODUCTS = "query P($n: Int) { products(first: $n) { edges { node { name } } } }"


class FakeExecutor:
    """Records what reaches the execution point; answers what it is told to."""

    def __init__(self, result: Executed | None = None) -> None:
        self.calls: list[tuple[Plan, Any]] = []
        self.result = result or Executed({"ok": True}, None, "fake")
        self.gate: asyncio.Event | None = None

    async def __call__(self, plan: Plan, context: Any) -> Executed:
        self.calls.append((plan, context))
        if self.gate is not None:
            await self.gate.wait()
        return self.result


def context(**fields: Any) -> Any:
    """Stands in for AppState.context: the fields the Context would be built from."""
    return fields


class NoTrustedDocuments:
    async def find(self, key: str) -> str | None:
        return None


def make(
    executor: FakeExecutor | None = None,
    *,
    debug: bool = False,
    budgets: Budgets | None = None,
    max_cost: int = 10_000,
    **limits: Any,
) -> OperationPipeline:
    settings = dataclasses.replace(GraphQLLimits(), **limits)
    return OperationPipeline(
        schema=schema,
        documents=DocumentPreparer(schema._schema, settings),
        limits=settings,
        context=context,
        executor=executor or FakeExecutor(),
        cost=CostAnalysis(schema._schema, CostSettings(max_cost=max_cost)),
        persisted=PersistedQueries(
            PersistedQuerySettings(),
            MemoryDocumentStore(10),
            cast(TrustedDocuments, NoTrustedDocuments()),
        ),
        budgets=budgets,
        debug=debug,
    )


async def plan(pipeline: OperationPipeline, query: str, transport: Transport, **kw: Any) -> Plan:
    planned = await pipeline.plan(OperationRequest(query, **kw), transport, CALLER)
    assert isinstance(planned, Plan), planned
    return planned


async def refusal(
    pipeline: OperationPipeline, query: str, transport: Transport, **kw: Any
) -> Refused:
    planned = await pipeline.plan(OperationRequest(query, **kw), transport, CALLER)
    assert isinstance(planned, Refused), planned
    return planned


async def answer_of(pipeline: OperationPipeline, planned: Plan) -> Answer:
    answer = await pipeline.execute(planned, CALLER)
    assert isinstance(answer, Answer), answer
    return answer


def codes(refused: Refused) -> list[str]:
    return [e["extensions"]["code"] for e in refused.errors]


@pytest.mark.parametrize("transport", list(Transport))
async def test_bad_documents_are_refused_the_same_on_every_transport(transport: Transport) -> None:
    pipeline = make()

    assert codes(await refusal(pipeline, "{ products {", transport)) == ["GRAPHQL_PARSE_FAILED"]
    assert codes(await refusal(pipeline, "{ nope }", transport)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert codes(
        await refusal(pipeline, "query A { me { id } } query B { me { id } }", transport)
    ) == ["BAD_USER_INPUT"]
    assert codes(await refusal(pipeline, "{ me { id } }", transport, operation_name="Z")) == [
        "BAD_USER_INPUT"
    ]


async def test_the_transport_decides_which_operation_types_may_run() -> None:
    pipeline = make()
    mutation = 'mutation { cancelOrder(id: "x") { order { id } } }'
    subscription = 'subscription { productStockChanged(id: "x") { id } }'

    over_get = await refusal(pipeline, mutation, Transport.HTTP_GET)
    assert over_get.reason is Refusal.METHOD_NOT_ALLOWED
    assert over_get.errors[0]["message"] == "Mutations must be sent with POST"
    assert (await plan(pipeline, mutation, Transport.HTTP_POST)).kind is OperationType.MUTATION
    assert (await plan(pipeline, mutation, Transport.WEBSOCKET)).kind is OperationType.MUTATION

    for transport in (Transport.HTTP_GET, Transport.HTTP_POST):
        refused = await refusal(pipeline, subscription, transport)
        assert refused.reason is Refusal.INVALID
        assert "WebSocket" in refused.errors[0]["message"]
    planned = await plan(pipeline, subscription, Transport.WEBSOCKET)
    assert planned.kind is OperationType.SUBSCRIPTION


async def test_variables_are_coerced_once_with_coded_located_errors() -> None:
    pipeline = make()

    refused = await refusal(pipeline, PRODUCTS, Transport.HTTP_POST, variables={"n": "ten"})
    [error] = refused.errors
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert error["locations"] == [{"line": 1, "column": 9}]

    planned = await plan(pipeline, PRODUCTS, Transport.HTTP_POST, variables={"n": 3})
    assert planned.variables.coerced == {"n": 3}
    assert planned.raw_variables == {"n": 3}


async def test_an_admitted_operation_reaches_the_executor_once_with_everything_prepared() -> None:
    executor = FakeExecutor()
    pipeline = make(executor)
    planned = await plan(
        pipeline, PRODUCTS, Transport.HTTP_POST, variables={"n": 2}, extensions={"x": 1}
    )

    answer = await answer_of(pipeline, planned)

    assert answer.body["data"] == {"ok": True}
    assert "errors" not in answer.body
    [(executed, context)] = executor.calls
    assert executed is planned
    assert executed.variables.coerced == {"n": 2}
    assert executed.extensions == {"x": 1}
    assert context == cast(
        Any,
        {
            "principal": ANONYMOUS,
            "request_id": "req-1",
            "client_address": "10.0.0.1",
        },
    )


async def test_executor_errors_are_formatted_with_the_catalogue() -> None:
    error = GraphQLError("nope", path=["me"], original_error=RuntimeError("boom"))
    pipeline = make(FakeExecutor(Executed(None, [error], "fake")))

    answer = await answer_of(pipeline, await plan(pipeline, "{ me { id } }", Transport.HTTP_POST))

    assert answer.body["data"] is None
    [formatted] = answer.body["errors"]
    assert formatted["message"] == "Internal server error"
    assert formatted["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-1"}


async def test_waiting_for_a_turn_past_the_deadline_is_one_too_busy_message() -> None:
    executor = FakeExecutor()
    pipeline = make(executor, max_concurrent_operations=1, execution_timeout=0.05)
    await pipeline.operations.acquire()
    try:
        answer = await answer_of(
            pipeline, await plan(pipeline, "{ me { id } }", Transport.WEBSOCKET)
        )
    finally:
        pipeline.operations.release()

    assert executor.calls == []
    assert answer.body["data"] is None
    [error] = answer.body["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
    assert error["message"].startswith("The server is too busy: the operation waited 0.05 s")
    assert "1 execution slots (MAX_CONCURRENT_OPERATIONS)" in error["message"]


async def test_a_query_is_stopped_at_the_deadline_a_mutation_is_not() -> None:
    executor = FakeExecutor()
    executor.gate = asyncio.Event()
    pipeline = make(executor, execution_timeout=0.05)

    query = await answer_of(pipeline, await plan(pipeline, "{ me { id } }", Transport.HTTP_POST))
    assert query.body["errors"][0]["message"] == (
        "The operation did not finish within 0.05 s (EXECUTION_TIMEOUT)"
    )

    mutation = await plan(
        pipeline, 'mutation { cancelOrder(id: "x") { order { id } } }', Transport.HTTP_POST
    )
    running = asyncio.create_task(answer_of(pipeline, mutation))
    for _ in range(1000):
        if len(executor.calls) == 2:
            break
        await asyncio.sleep(0.01)
    # Well past the deadline, the mutation is still running; then it finishes normally.
    await asyncio.wait({running}, timeout=0.2)
    assert not running.done()
    executor.gate.set()
    assert (await running).body["data"] == {"ok": True}


async def test_debug_adds_statement_figures_to_every_answer() -> None:
    pipeline = make(debug=True)

    answer = await answer_of(pipeline, await plan(pipeline, "{ me { id } }", Transport.WEBSOCKET))

    debug = answer.body["extensions"]["debug"]
    assert debug["sqlStatements"] == 0
    assert debug["sqlRoundTrips"] == 0
    assert set(debug) == {"sqlStatements", "sqlRoundTrips", "sqlMs", "elapsedMs", "executor"}
    assert debug["executor"] == "fake"


# --- cost and budgets ----------------------------------------------------------------------------

EXPENSIVE = """{ users(first: 100) { edges { node {
    orders(first: 100) { edges { node { id } } } } } } }"""
FIVE_PRODUCTS = {"products": {"edges": [{"node": {"name": str(n)}} for n in range(5)]}}


async def test_an_operation_over_max_query_cost_is_refused_before_it_runs() -> None:
    executor = FakeExecutor()
    pipeline = make(executor, max_cost=1000)

    refused = await refusal(pipeline, EXPENSIVE, Transport.HTTP_POST)

    [error] = refused.errors
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "cost": {"requestedQueryCost": 100 * (1 + 100), "maximumQueryCost": 1000},
    }
    assert error["message"] == (
        "The operation costs 10100 points; the limit (MAX_QUERY_COST) is 1000"
    )
    assert refused.body["extensions"]["cost"]["requestedQueryCost"] == 10100
    assert executor.calls == []


async def test_every_answer_reports_its_cost_and_the_unused_part_is_refunded() -> None:
    budgets = Budgets(MemoryRateLimiter(), BudgetSettings(maximum=100, restore_rate=0.001))
    pipeline = make(FakeExecutor(Executed(FIVE_PRODUCTS, None, "fake")), budgets=budgets)

    answer = await answer_of(pipeline, await plan(pipeline, PRODUCTS, Transport.HTTP_POST))

    # products(first: $n) with no $n: the default 20 asked for, 5 returned, 15 refunded.
    assert answer.body["extensions"]["cost"] == {
        "requestedQueryCost": 20,
        "actualQueryCost": 5,
        "throttleStatus": {
            "maximumAvailable": 100,
            "currentlyAvailable": 95,
            "restoreRate": 0.001,
        },
    }


async def test_an_operation_the_budget_cannot_pay_is_rate_limited_before_it_runs() -> None:
    executor = FakeExecutor(Executed(FIVE_PRODUCTS, None, "fake"))
    budgets = Budgets(MemoryRateLimiter(), BudgetSettings(maximum=100, restore_rate=1))
    pipeline = make(executor, budgets=budgets)
    costly = await plan(pipeline, PRODUCTS, Transport.HTTP_POST, variables={"n": 100})
    await answer_of(pipeline, costly)  # 100 asked, 5 used: 95 left

    refused = await pipeline.execute(costly, CALLER)

    assert isinstance(refused, Refused)
    assert refused.reason is Refusal.RATE_LIMITED
    [error] = refused.errors
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 5 <= error["extensions"]["retryAfter"] <= 6
    status = refused.body["extensions"]["cost"]["throttleStatus"]
    assert 95 <= status["currentlyAvailable"] < 100
    assert len(executor.calls) == 1
    # Someone else's budget is untouched.
    other = Caller(principal=ANONYMOUS, request_id="req-2", client_address="10.0.0.2")
    assert isinstance(await pipeline.execute(costly, other), Answer)


async def test_without_budgets_costs_are_still_reported() -> None:
    pipeline = make(FakeExecutor(Executed(FIVE_PRODUCTS, None, "fake")))

    answer = await answer_of(pipeline, await plan(pipeline, PRODUCTS, Transport.WEBSOCKET))

    assert answer.body["extensions"]["cost"] == {
        "requestedQueryCost": 20,
        "actualQueryCost": 5,
        "throttleStatus": None,
    }


async def test_a_repeated_operation_is_priced_once_per_value_its_cost_depends_on() -> None:
    pipeline = make()
    products = "query P($n: Int, $after: String) { products(first: $n, after: $after) { edges { node { name } } } }"  # noqa: E501

    first = await plan(pipeline, products, Transport.HTTP_POST, variables={"n": 5})
    again = await plan(pipeline, products, Transport.HTTP_POST, variables={"n": 5, "after": "x"})
    larger = await plan(pipeline, products, Transport.HTTP_POST, variables={"n": 50})

    # `after` does not change what the page may cost, `first` does.
    assert again.cost is first.cost
    assert larger.cost is not first.cost
    assert (first.cost.requested, larger.cost.requested) == (5, 50)


async def test_skip_and_include_variables_are_part_of_a_kept_cost() -> None:
    pipeline = make()
    query = "query Q($all: Boolean!) { products { edges { node { name } } } me @include(if: $all) { id } }"  # noqa: E501

    without = await plan(pipeline, query, Transport.HTTP_POST, variables={"all": False})
    with_me = await plan(pipeline, query, Transport.HTTP_POST, variables={"all": True})

    assert with_me.cost.requested == without.cost.requested + 1
