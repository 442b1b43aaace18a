"""One operation pipeline for HTTP and WebSocket.

Every GraphQL operation, whatever carried it, goes through the same steps here: find the document
(its text, or a persisted query's hash: app.http.persisted), prepare it (parse, limits,
validation; cached by text), pick the operation, check the transport may run it, coerce the
variables, price it (app.http.cost: refused over MAX_QUERY_COST), charge the caller's budget
(app.http.budgets: refused when it does not hold the cost), build the context, take an admission
slot within the deadline, execute through the one configured `Executor` (app.http.executors), and
refund what the answer did not cost. Every answer reports its cost in `extensions.cost`. The
transports keep only their own concerns: the HTTP view reads requests and maps outcomes to
statuses, the socket handlers speak their protocols.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLError, OperationDefinitionNode, OperationType, get_variable_values
from graphql.execution.values import VariableValues

from app.auth import policy
from app.auth.principal import Principal
from app.cache.responses import ResponseCache, public_operation
from app.config import GraphQLLimits
from app.db.engine import track_statements
from app.http.budgets import Budgets, budget_key
from app.http.cost import Cost, CostAnalysis, cost_variables
from app.http.documents import DocumentPreparer, Prepared
from app.http.errors import ErrorCode, error_entry, format_error
from app.http.executors import Executor, Plan
from app.http.persisted import PersistedQueries, Unresolved
from app.http.text_input import variables_error
from app.observability import metrics
from resolvers.context import Context

# Variable coercion stops after this many errors: enough to fix a request, bounded work.
MAX_VARIABLE_ERRORS = 20


_COST_VARIABLES = "cost variables"
_COST = "cost"
_Frozen = str | int | float | bool | None | tuple["_Frozen", ...]


def _frozen(values: dict[str, Any], names: frozenset[str]) -> tuple[_Frozen, ...] | None:
    """The named values, sorted by name, as a hashable key; None if one is not a scalar or a
    list of scalars (an input object: not worth keeping a cost for)."""
    key: list[_Frozen] = []
    for name in sorted(names):
        value = values.get(name)
        if isinstance(value, list):
            if not all(item is None or isinstance(item, str | int | float) for item in value):
                return None
            value = tuple(value)
        elif not (value is None or isinstance(value, str | int | float)):
            return None
        key.append((name, value))
    return tuple(key)


class Transport(enum.Enum):
    """What carried the operation; it decides which operation types may run."""

    HTTP_GET = "GET"
    HTTP_POST = "POST"
    WEBSOCKET = "WebSocket"


class Refusal(enum.Enum):
    """Why an operation did not run, for the transport to map (e.g. to an HTTP status)."""

    INVALID = "invalid"  # the request cannot run as sent (document, operation, variables, cost)
    METHOD_NOT_ALLOWED = "method not allowed"  # a mutation sent with GET
    NOT_FOUND = "not found"  # a persisted query's hash names no stored document
    RATE_LIMITED = "rate limited"  # the caller's query-cost budget does not hold the cost


@dataclass(frozen=True, slots=True)
class Refused:
    """The operation was refused before execution: no `data`."""

    errors: list[dict[str, Any]]
    reason: Refusal = Refusal.INVALID
    extensions: dict[str, Any] | None = None

    @property
    def body(self) -> dict[str, Any]:
        if self.extensions is None:
            return {"errors": self.errors}
        return {"errors": self.errors, "extensions": self.extensions}


@dataclass(frozen=True, slots=True)
class Answer:
    """An executed operation's response (`data` present, possibly null)."""

    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent the operation and how to reach them; becomes the operation's Context."""

    principal: Principal
    request_id: str
    client_address: str
    # The transport's label in /metrics.
    transport: str = "http"


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """A GraphQL request as any transport reads it (no `query` when a persisted query's hash
    names it)."""

    query: str | None
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None


ContextFactory = Callable[..., Context]


def lift_deadline_for_mutation(deadline: asyncio.Timeout, operation: OperationType) -> None:
    """Once admitted, a mutation runs to its end; only queries are stopped at the deadline.

    Cancelling a mutation cannot take back a commit that has happened (or is happening), so a
    timeout would tell the client a write failed when it may have succeeded, and a retry without
    an idempotency key would repeat it. A mutation's database work is bounded anyway, by the
    statement timeout and the lock (busy) timeouts, and its unit of work is short.
    """
    if operation is OperationType.MUTATION:
        deadline.reschedule(None)


def _cost_report(requested: int, actual: int, status: Any) -> dict[str, Any]:
    return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}


class OperationPipeline:
    def __init__(
        self,
        *,
        schema: strawberry.Schema,
        documents: DocumentPreparer,
        limits: GraphQLLimits,
        context: ContextFactory,
        executor: Executor,
        cost: CostAnalysis,
        persisted: PersistedQueries,
        budgets: Budgets | None = None,
        debug: bool = False,
        responses: ResponseCache | None = None,
    ) -> None:
        self._schema = schema
        self._documents = documents
        self._limits = limits
        self._context = context
        self._cost = cost
        self._persisted = persisted
        self._budgets = budgets
        self._debug = debug
        # Whole answers of catalogue-only queries (app.cache.responses); None when off.
        self._responses = responses
        # The one place an operation is executed (app.http.executors).
        self.executor = executor
        # Admission control: a turn to execute one operation (MAX_CONCURRENT_OPERATIONS).
        self.operations = asyncio.Semaphore(limits.max_concurrent_operations)

    def _format(self, errors: Collection[GraphQLError], request_id: str) -> list[dict[str, Any]]:
        return [format_error(e, request_id, self._debug) for e in errors]

    async def plan(
        self, request: OperationRequest, transport: Transport, caller: Caller
    ) -> Plan | Refused:
        """Everything decided before execution: nothing here touches the database's data."""
        request_id = caller.request_id
        resolved = await self._persisted.resolve(
            request.query, request.extensions, caller.principal
        )
        if isinstance(resolved, Unresolved):
            return Refused(
                [error_entry(resolved.message, resolved.code)],
                Refusal.NOT_FOUND
                if resolved.code is ErrorCode.PERSISTED_QUERY_NOT_FOUND
                else Refusal.INVALID,
            )
        query = resolved.query
        prepared = await self._documents.prepare_off_loop(query)
        if prepared.document is None:
            return Refused(self._format(prepared.errors, request_id))
        operation = prepared.operation(request.operation_name)
        if isinstance(operation, GraphQLError):
            return Refused(self._format([operation], request_id))
        kind = operation.operation
        if kind is OperationType.MUTATION and transport is Transport.HTTP_GET:
            return Refused(
                [error_entry("Mutations must be sent with POST", ErrorCode.BAD_USER_INPUT)],
                Refusal.METHOD_NOT_ALLOWED,
            )
        if kind is OperationType.SUBSCRIPTION and transport is not Transport.WEBSOCKET:
            return Refused(
                [
                    error_entry(
                        "Subscriptions are not served over plain HTTP; use the WebSocket transport",
                        ErrorCode.BAD_USER_INPUT,
                    )
                ]
            )
        if prepared.errors:
            return Refused(self._format(prepared.errors, request_id))
        unstorable = variables_error(request.variables)
        if unstorable is not None:
            return Refused(self._format([unstorable], request_id))
        coerced = get_variable_values(
            self._schema._schema,
            operation.variable_definitions or [],
            request.variables or {},
            max_errors=MAX_VARIABLE_ERRORS,
        )
        if isinstance(coerced, list):
            return Refused(
                self._format(
                    [
                        GraphQLError(
                            error.message,
                            nodes=error.nodes,
                            extensions={"code": ErrorCode.BAD_USER_INPUT},
                        )
                        for error in coerced
                    ],
                    request_id,
                )
            )
        cost = self._priced(prepared, request.operation_name, operation, coerced)
        maximum = self._cost.settings.max_cost
        if maximum and cost.requested > maximum:
            return Refused(
                [
                    error_entry(
                        f"The operation costs {cost.requested} points; the limit "
                        f"(MAX_QUERY_COST) is {maximum}",
                        ErrorCode.QUERY_TOO_COMPLEX,
                        cost={"requestedQueryCost": cost.requested, "maximumQueryCost": maximum},
                    )
                ],
                extensions={"cost": await self._report(caller, cost.requested, 0, None)},
            )
        return Plan(
            query,
            prepared.document,
            operation,
            request.variables,
            coerced,
            request.operation_name,
            request.extensions,
            cost,
            resolved.persisted,
        )

    def _priced(
        self,
        prepared: Prepared,
        name: str | None,
        operation: OperationDefinitionNode,
        variables: VariableValues,
    ) -> Cost:
        """The operation's cost tree, kept with the document for the values of the variables it
        depends on (none, for most operations): a repeated operation is priced once."""
        document = prepared.document
        assert document is not None
        depends_on = prepared.derive(_COST_VARIABLES, lambda: cost_variables(document))
        values = _frozen(variables.coerced, depends_on)

        def price() -> Cost:
            return self._cost.cost(operation, prepared.fragments, variables)

        if values is None:
            return price()
        return prepared.derive((_COST, name, values), price)

    def _context_for(self, caller: Caller) -> Context:
        return self._context(
            principal=caller.principal,
            request_id=caller.request_id,
            client_address=caller.client_address,
        )

    async def _charge(self, plan: Plan, caller: Caller) -> Refused | float | None:
        """Take the plan's requested cost from the caller's budget: what is left (None without
        budgets), or the refusal when the budget does not hold it."""
        budgets = self._budgets
        if budgets is None:
            return None
        requested = plan.cost.requested
        charge = await budgets.charge(
            budget_key(caller.principal, caller.client_address), requested
        )
        if not charge.retry_after:
            return charge.available
        settings = budgets.settings
        return Refused(
            [
                error_entry(
                    f"The operation costs {requested} points and {int(charge.available)} of "
                    f"{settings.maximum} are available (QUERY_BUDGET, restored at "
                    f"{settings.restore_rate:g} a second); retry in {charge.retry_after} s",
                    ErrorCode.RATE_LIMITED,
                    retryAfter=charge.retry_after,
                )
            ],
            Refusal.RATE_LIMITED,
            {"cost": await self._report(caller, requested, 0, charge.available)},
        )

    async def _report(
        self, caller: Caller, requested: int, actual: int, available: float | None
    ) -> dict[str, Any]:
        """`extensions.cost`: what the operation asked for, what it used, and the budget."""
        budgets = self._budgets
        status = None
        if budgets is not None:
            if available is None:
                key = budget_key(caller.principal, caller.client_address)
                available = (await budgets.charge(key, 0)).available
            status = budgets.status(available)
        return _cost_report(requested, actual, status)

    async def execute(self, plan: Plan, caller: Caller) -> Answer | Refused:
        """Run a query or mutation within the deadline, once admitted and paid for."""
        # (Without budgets there is nothing to charge: no coroutine for it on every request.)
        available = await self._charge(plan, caller) if self._budgets is not None else None
        if isinstance(available, Refused):
            return available
        limits = self._limits
        context = self._context_for(caller)
        started = time.perf_counter()
        executor: str | None = None
        # Work cut off at the deadline was done all the same; a turn never had is free.
        cut_off = False

        async def run() -> dict[str, Any]:
            nonlocal executor, cut_off
            body: dict[str, Any] = {}
            admitted = False
            try:
                # One deadline covers waiting for a turn and executing. Waiting happens here,
                # before any DataLoader borrows a connection: when the process is saturated,
                # requests queue at the door instead of all slowing down together with
                # connections checked out.
                async with asyncio.timeout(limits.execution_timeout) as deadline, self.operations:
                    admitted = True
                    lift_deadline_for_mutation(deadline, plan.kind)
                    # The one execution point: whichever executor is configured runs it.
                    result = await self.executor(plan, context)
                    executor = result.executor
            except TimeoutError:
                body["errors"] = [self._timed_out(admitted)]
                body["data"] = None
                cut_off = admitted
            else:
                if result.errors:
                    body["errors"] = self._format(result.errors, caller.request_id)
                body["data"] = result.data
            return body

        with track_statements() as stats:
            responses = self._responses
            if responses is not None and public_operation(plan.document, plan.operation):
                # A catalogue read: its whole answer may come from (and go to) the cache.
                body = dict(
                    await responses.graphql(
                        plan.query,
                        plan.raw_variables,
                        plan.operation_name,
                        policy.response_visibility(context.principal),
                        run,
                    )
                )
            else:
                body = await run()
        requested = plan.cost.requested
        actual = requested if cut_off else min(plan.cost.actual(body.get("data")), requested)
        if self._budgets is not None and requested > actual:
            key = budget_key(caller.principal, caller.client_address)
            available = await self._budgets.refund(key, requested - actual)
        extensions: dict[str, Any] = {
            "cost": await self._report(caller, requested, actual, available)
            if self._budgets is not None
            else _cost_report(requested, actual, None)
        }
        if self._debug:
            extensions["debug"] = {
                "sqlStatements": stats.statements,
                "sqlRoundTrips": stats.round_trips,
                "sqlMs": round(stats.seconds * 1000, 3),
                "elapsedMs": round((time.perf_counter() - started) * 1000, 3),
                "executor": executor,
            }
        name = plan.operation.name
        metrics.observe_operation(
            caller.transport,
            name.value if name is not None else None,
            metrics.outcome_of(body),
            time.perf_counter() - started,
            stats.statements,
            stats.round_trips,
        )
        body["extensions"] = extensions
        return Answer(body)

    async def close(self) -> None:
        await self._persisted.close()

    def _timed_out(self, admitted: bool) -> dict[str, Any]:
        limits = self._limits
        if admitted:
            message = (
                f"The operation did not finish within {limits.execution_timeout:g} s "
                "(EXECUTION_TIMEOUT)"
            )
        else:
            message = (
                f"The server is too busy: the operation waited {limits.execution_timeout:g} s "
                f"(EXECUTION_TIMEOUT) for one of its {limits.max_concurrent_operations} execution "
                "slots (MAX_CONCURRENT_OPERATIONS); retry later"
            )
        return error_entry(message, ErrorCode.SERVICE_UNAVAILABLE)

    async def charge_subscription(self, plan: Plan, caller: Caller) -> Refused | None:
        """A subscription pays its requested cost once, when it starts (app.http.subscriptions
        serves it then); the refusal when its budget does not hold it."""
        charged = await self._charge(plan, caller)
        return charged if isinstance(charged, Refused) else None
