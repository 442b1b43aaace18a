"""How an admitted query or mutation is executed: the operation pipeline's one plug point.

The pipeline (app.http.pipeline) prepares the document, picks the operation, coerces the
variables, builds the context and takes the admission slot; then it hands an `Execution` to the
configured `Executor` (with the operation's `Plan` and `Context`) and gets the engine's
`Executed` back. Anything that can run an operation over
the schema Strawberry builds (the standard executor below, or a faster one) plugs in here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import DocumentNode, OperationDefinitionNode, OperationType
from graphql.execution.values import VariableValues
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app.engine import Engine, Executed, Outcome
from app.http.cost import Cost
from resolvers.context import Context


@dataclass(frozen=True, slots=True)
class Plan:
    """An operation ready to run: its document validated, its variables coerced."""

    query: str
    document: DocumentNode
    operation: OperationDefinitionNode
    # As the client sent them (Strawberry coerces them itself) and as graphql-core coerced them
    # (`.coerced` holds the values).
    raw_variables: dict[str, Any] | None
    variables: VariableValues
    operation_name: str | None
    extensions: dict[str, Any] | None
    # What the operation may cost (app.http.cost), and whether it came as a persisted query.
    cost: Cost
    persisted: bool = False

    @property
    def kind(self) -> OperationType:
        return self.operation.operation


class Executor(Protocol):
    """Runs one admitted query or mutation; the pipeline formats the errors it returns.
    `Executed.executor` names what ran it (DEBUG reports it)."""

    async def __call__(self, plan: Plan, context: Context) -> Executed: ...


# --- handing the prepared document to Strawberry -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Handover:
    query: str
    document: DocumentNode
    rules: frozenset[type[ASTValidationRule]]


_handover: ContextVar[_Handover | None] = ContextVar("prepared_document", default=None)


class PreparedDocument(SchemaExtension):
    """Gives Strawberry the document the pipeline already parsed and validated.

    Validation is skipped only when every rule Strawberry would run was among those the pipeline
    ran, so an extension that adds rules still has them applied.
    """

    def on_parse(self) -> Iterator[None]:
        handover = _handover.get()
        if handover is not None and handover.query == self.execution_context.query:
            self.execution_context.graphql_document = handover.document
        yield

    def on_validate(self) -> Iterator[None]:
        handover = _handover.get()
        context = self.execution_context
        if (
            handover is not None
            and context.graphql_document is handover.document
            and handover.rules.issuperset(context.validation_rules)
        ):
            context.pre_execution_errors = []
        yield


@contextmanager
def prepared_document_for(
    query: str, document: DocumentNode, rules: frozenset[type[ASTValidationRule]]
) -> Iterator[None]:
    """While the block runs, Strawberry executes `query` with this already-validated document."""
    token = _handover.set(_Handover(query, document, rules))
    try:
        yield
    finally:
        _handover.reset(token)


_QUERY_AND_MUTATION = (StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION)


class EngineExecutor:
    """The engine (app.engine: the level executor for queries it can reproduce exactly), with
    Strawberry's standard execution, given the prepared document, as its fallback."""

    def __init__(self, engine: Engine, rules: frozenset[type[ASTValidationRule]]) -> None:
        self._engine = engine
        self._rules = rules

    async def __call__(self, plan: Plan, context: Context) -> Executed:
        schema = self._engine.schema

        async def standard() -> Outcome:
            with prepared_document_for(plan.query, plan.document, self._rules):
                return await schema.execute(
                    plan.query,
                    variable_values=plan.raw_variables,
                    context_value=context,
                    operation_name=plan.operation_name,
                    allowed_operation_types=_QUERY_AND_MUTATION,
                    operation_extensions=plan.extensions,
                )

        return await self._engine.execute(
            document=plan.document,
            operation=plan.operation,
            variables=plan.variables,
            context=context,
            standard=standard,
        )
