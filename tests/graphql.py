"""Running GraphQL operations in tests without HTTP.

Every test goes through `execute`, whose default principal is the one place to change when
authorization narrows what a principal may see.

A query runs under both executors, each with a fresh context, and the two answers must be the
same JSON to the byte (data, errors with message, locations, path and extensions.code, key
order) and cost the same number of SQL statements: so every query of the test suite is also an
equivalence test of the level executor against graphql-core's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse, validate
from graphql.execution.values import get_variable_values

from app.auth.principal import Principal, PrincipalKind
from app.db.engine import Database, StatementStats, track_statements
from app.engine import LEVELS, STANDARD, Engine
from app.main import graphql_context
from app.repositories.unit_of_work import RepositoryFactory, sql_repositories
from resolvers.schema import schema

ALL_SCOPES = frozenset(
    {"products:read", "orders:read", "orders:write", "orders:fulfill", "users:read", "admin"}
)
TEST_ADMIN = Principal(PrincipalKind.ADMIN, scopes=ALL_SCOPES)

_engines = {name: Engine(schema, name) for name in (LEVELS, STANDARD)}


@dataclass
class Result:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]]
    stats: StatementStats
    executor: str = STANDARD

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code", "") for e in self.errors]

    def ok(self) -> dict[str, Any]:
        assert not self.errors, self.errors
        assert self.data is not None
        return self.data

    def json(self) -> str:
        body: dict[str, Any] = {"data": self.data}
        if self.errors:
            body["errors"] = self.errors
        return json.dumps(body)


def _query(query: str, operation_name: str | None) -> OperationDefinitionNode | None:
    """The query operation to run, if the text is a valid query document."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    if validate(schema._schema, document):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        o
        for o in operations
        if (operation_name is None and len(operations) == 1)
        or (o.name is not None and o.name.value == operation_name)
    ]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
        return None
    return chosen[0]


async def run(
    db: Database,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    principal: Principal = TEST_ADMIN,
    executor: str = STANDARD,
    operation_name: str | None = None,
    repositories: RepositoryFactory = sql_repositories,
) -> Result:
    """One execution with the named executor (a query the level executor cannot run exactly
    falls back to the standard one, as in the server; `Result.executor` says which ran).
    `repositories` binds the mutations' repositories: a test may wrap one to inject a fault."""
    from app.http.errors import format_error

    context = graphql_context(db, principal=principal, request_id="test", repositories=repositories)

    def standard() -> Any:
        return schema.execute(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )

    operation = _query(query, operation_name)
    with track_statements() as stats:
        if operation is None:
            result: Any = await standard()
            ran = STANDARD
        else:
            coerced = get_variable_values(
                schema._schema, operation.variable_definitions or [], variables or {}
            )
            if isinstance(coerced, list):
                result, ran = await standard(), STANDARD
            else:
                result = await _engines[executor].execute(
                    document=parse(query),
                    operation=operation,
                    variables=coerced,
                    context=context,
                    standard=standard,
                )
                ran = result.executor
    errors = [format_error(e, "test", debug=True) for e in result.errors or []]
    return Result(data=result.data, errors=errors, stats=stats, executor=ran)


async def execute(
    db: Database,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    principal: Principal = TEST_ADMIN,
    operation_name: str | None = None,
    repositories: RepositoryFactory = sql_repositories,
) -> Result:
    """Run an operation; a query runs under both executors, which must agree."""
    standard = await run(
        db,
        query,
        variables,
        principal=principal,
        operation_name=operation_name,
        repositories=repositories,
    )
    if _query(query, operation_name) is None:
        return standard
    levels = await run(
        db,
        query,
        variables,
        principal=principal,
        executor=LEVELS,
        operation_name=operation_name,
        repositories=repositories,
    )
    assert_same(standard, levels)
    assert levels.executor == LEVELS or "__schema" in query or "__type" in query, (
        "the level executor fell back to the standard one"
    )
    return levels


def assert_same(standard: Result, levels: Result) -> None:
    assert levels.json() == standard.json(), (
        f"the executors disagree\nstandard: {standard.json()[:3000]}\n"
        f"levels:   {levels.json()[:3000]}"
    )
    if not standard.errors:
        assert levels.stats.statements == standard.stats.statements, (
            f"statements: standard {standard.stats.statements}, levels {levels.stats.statements}"
        )
