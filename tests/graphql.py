"""Running GraphQL operations in tests without HTTP.

Every test goes through `execute`, whose default principal is the one place to change when
authorization narrows what a principal may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.auth.principal import Principal, PrincipalKind
from app.db.engine import Database, StatementStats, track_statements
from app.unit_of_work import RepositoryFactory, SqlUnitOfWork, sql_repositories
from resolvers.context import Context
from resolvers.schema import schema

ALL_SCOPES = frozenset(
    {"products:read", "orders:read", "orders:write", "orders:fulfill", "users:read", "admin"}
)
TEST_ADMIN = Principal(PrincipalKind.ADMIN, scopes=ALL_SCOPES)


@dataclass
class Result:
    data: dict[str, Any] | None
    errors: list[dict[str, Any]]
    stats: StatementStats

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code", "") for e in self.errors]

    def ok(self) -> dict[str, Any]:
        assert not self.errors, self.errors
        assert self.data is not None
        return self.data


async def execute(
    db: Database,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    principal: Principal = TEST_ADMIN,
    repositories: RepositoryFactory = sql_repositories,
) -> Result:
    """`repositories` binds the mutations' repositories: a test may wrap one to inject a fault."""
    from app.http.errors import format_error

    context = Context.create(db, principal=principal, request_id="test")
    context.unit_of_work = SqlUnitOfWork.factory(db, repositories=repositories)
    with track_statements() as stats:
        result = await schema.execute(query, variable_values=variables, context_value=context)
    errors = [format_error(e, "test", debug=True) for e in result.errors or []]
    return Result(data=result.data, errors=errors, stats=stats)
