"""The operation pipeline on its own: a fake executor at the one execution point, no I/O."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

import pytest
from graphql import GraphQLError, OperationType

from app.auth.principal import ANONYMOUS
from app.config import GraphQLLimits
from app.engine import Executed
from app.http.documents import DocumentPreparer
from app.http.executors import Plan
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


def make(
    executor: FakeExecutor | None = None, *, debug: bool = False, **limits: Any
) -> OperationPipeline:
    settings = dataclasses.replace(GraphQLLimits(), **limits)
    return OperationPipeline(
        schema=schema,
        documents=DocumentPreparer(schema._schema, settings),
        limits=settings,
        context=context,
        executor=executor or FakeExecutor(),
        debug=debug,
    )


async def plan(pipeline: OperationPipeline, query: str, transport: Transport, **kw: Any) -> Plan:
    planned = await pipeline.plan(OperationRequest(query, **kw), transport, "req-1")
    assert isinstance(planned, Plan), planned
    return planned


async def refusal(
    pipeline: OperationPipeline, query: str, transport: Transport, **kw: Any
) -> Refused:
    planned = await pipeline.plan(OperationRequest(query, **kw), transport, "req-1")
    assert isinstance(planned, Refused), planned
    return planned


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

    answer = await pipeline.execute(planned, CALLER)

    assert answer == Answer({"data": {"ok": True}})
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
            "listen": None,
        },
    )


async def test_executor_errors_are_formatted_with_the_catalogue() -> None:
    error = GraphQLError("nope", path=["me"], original_error=RuntimeError("boom"))
    pipeline = make(FakeExecutor(Executed(None, [error], "fake")))

    answer = await pipeline.execute(
        await plan(pipeline, "{ me { id } }", Transport.HTTP_POST), CALLER
    )

    assert answer.body["data"] is None
    [formatted] = answer.body["errors"]
    assert formatted["message"] == "Internal server error"
    assert formatted["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-1"}


async def test_waiting_for_a_turn_past_the_deadline_is_one_too_busy_message() -> None:
    executor = FakeExecutor()
    pipeline = make(executor, max_concurrent_operations=1, execution_timeout=0.05)
    await pipeline.operations.acquire()
    try:
        answer = await pipeline.execute(
            await plan(pipeline, "{ me { id } }", Transport.WEBSOCKET), CALLER
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

    query = await pipeline.execute(
        await plan(pipeline, "{ me { id } }", Transport.HTTP_POST), CALLER
    )
    assert query.body["errors"][0]["message"] == (
        "The operation did not finish within 0.05 s (EXECUTION_TIMEOUT)"
    )

    mutation = await plan(
        pipeline, 'mutation { cancelOrder(id: "x") { order { id } } }', Transport.HTTP_POST
    )
    running = asyncio.create_task(pipeline.execute(mutation, CALLER))
    for _ in range(1000):
        if len(executor.calls) == 2:
            break
        await asyncio.sleep(0.01)
    # Well past the deadline, the mutation is still running; then it finishes normally.
    await asyncio.wait({running}, timeout=0.2)
    assert not running.done()
    executor.gate.set()
    assert (await running).body == {"data": {"ok": True}}


async def test_debug_adds_statement_figures_to_every_answer() -> None:
    pipeline = make(debug=True)

    answer = await pipeline.execute(
        await plan(pipeline, "{ me { id } }", Transport.WEBSOCKET), CALLER
    )

    debug = answer.body["extensions"]["debug"]
    assert debug["sqlStatements"] == 0
    assert set(debug) == {"sqlStatements", "sqlMs", "elapsedMs", "executor"}
    assert debug["executor"] == "fake"
