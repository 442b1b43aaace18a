"""Problems a client can fix, returned in a mutation's payload rather than as GraphQL errors."""

from __future__ import annotations

from collections.abc import Iterable

import strawberry

from app.domain.errors import Problem


@strawberry.type(description="Why a mutation did not happen, and which input was at fault.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='The input path, e.g. ["items", "1", "quantity"]; null for the whole input.'
    )
    message: str
    code: str

    @classmethod
    def of(cls, problem: Problem) -> UserError:
        field = None if problem.field is None else list(problem.field)
        return cls(field=field, message=problem.message, code=problem.code.value)


def user_errors(problems: Iterable[Problem]) -> list[UserError]:
    return [UserError.of(problem) for problem in problems]
