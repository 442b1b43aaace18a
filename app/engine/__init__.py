"""The execution engine: the one place an operation is executed, by one of two executors.

Query operations (and, through `execute_events`, the events of a subscription) run on the
level-by-level executor (`levels`) unless GRAPHQL_EXECUTOR=standard; mutations, and anything
`levels` reports it cannot reproduce exactly, run on Strawberry's standard path (graphql-core's
executor). Both give the same answers; `Executed.executor` says which one ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import strawberry
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql.execution.values import VariableValues
from strawberry.extensions import SchemaExtension

from app.engine.declare import batch, each
from app.engine.levels import LevelExecutor, OperationPlan, Unsupported

__all__ = ["Engine", "Executed", "Outcome", "batch", "each"]

LEVELS = "levels"
STANDARD = "standard"

# Schema extension hooks that run during execution: an extension implementing one of them must
# see every operation, so the level executor steps aside while one is installed.
_EXECUTION_HOOKS = ("on_operation", "on_execute", "resolve", "get_results")


class Outcome(Protocol):
    @property
    def data(self) -> dict[str, Any] | None: ...

    @property
    def errors(self) -> list[GraphQLError] | None: ...


@dataclass(frozen=True, slots=True)
class Executed:
    data: dict[str, Any] | None
    errors: list[GraphQLError] | None
    executor: str


def _hooks_execution(extension: object) -> bool:
    if not isinstance(extension, type) or not issubclass(extension, SchemaExtension):
        return True  # a factory or an instance: cannot tell, so assume it does
    return any(
        getattr(extension, hook) is not getattr(SchemaExtension, hook, None)
        for hook in _EXECUTION_HOOKS
    )


class Engine:
    def __init__(self, schema: strawberry.Schema, executor: str = LEVELS) -> None:
        self.schema = schema
        # Custom directives run as an execution extension (Strawberry's DirectivesExtension).
        usable = (
            executor == LEVELS
            and not schema.directives
            and not any(map(_hooks_execution, schema.extensions))
        )
        self.levels = LevelExecutor(schema) if usable else None

    async def execute(
        self,
        *,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        context: Any,
        standard: Callable[[], Awaitable[Outcome]],
    ) -> Executed:
        """Execute a prepared operation (parsed, validated, variables coerced). `standard` runs
        the same operation on Strawberry's standard path."""
        levels = self.levels
        if levels is not None and operation.operation is OperationType.QUERY:
            try:
                done = await levels.execute(document, operation, variables, context)
            except Unsupported:
                pass
            else:
                return Executed(done.data, done.errors, LEVELS)
        result = await standard()
        return Executed(result.data, result.errors, STANDARD)

    def events_plan(
        self, document: DocumentNode, operation: OperationDefinitionNode
    ) -> OperationPlan | None:
        """A subscription's plan, to pass to every `execute_events` of it (None: the level
        executor steps aside for it)."""
        if self.levels is None:
            return None
        try:
            return self.levels.plan(document, operation)
        except Unsupported:
            return None

    async def execute_events(
        self,
        *,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        context: Any,
        payloads: Sequence[Any],
        standard: Callable[[Any], Awaitable[Outcome]],
        plan: OperationPlan | None = None,
    ) -> list[Executed]:
        """A subscription's selection for each event of a batch, as graphql-core executes each
        event: the operation's root fields resolve to the event's payload, everything below as
        in a query (with the loaders `context` holds for the batch). The level executor runs
        the batch together, one call per relation for all of it; `standard(payload)` runs one
        event on graphql-core's executor (all of them, side by side, where the level executor
        steps aside)."""
        levels = self.levels
        if levels is not None:
            try:
                done = await levels.execute_many(
                    document, operation, variables, context, payloads, plan
                )
            except Unsupported:
                pass
            else:
                return [Executed(d.data, d.errors, LEVELS) for d in done]
        results = await asyncio.gather(*(standard(payload) for payload in payloads))
        return [Executed(r.data, r.errors, STANDARD) for r in results]
