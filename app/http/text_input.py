"""Text a client sends must be storable text: no NUL characters, no unpaired surrogates.

JSON can carry both (`"\\u0000"`, `"\\ud800"`), and so can a GraphQL string literal's escapes,
but neither PostgreSQL (text cannot hold NUL) nor UTF-8 (no surrogates) can store them: left
alone they fail deep in a driver as an internal error. So every string a request carries, in
its variables and in the document's literals, is checked once here, before anything runs, and
such a request is BAD_USER_INPUT whatever argument the text was meant for.
"""

from __future__ import annotations

from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, Visitor, visit

from app.domain.text import is_storable
from app.http.errors import ErrorCode

_MESSAGE = "Text may not hold NUL characters or unpaired surrogates"


def _strings(value: Any) -> bool:
    """Whether every string in a JSON value (keys included) is storable."""
    if isinstance(value, str):
        return is_storable(value)
    if isinstance(value, dict):
        return all(is_storable(k) and _strings(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_strings(item) for item in value)
    return True


def variables_error(variables: dict[str, Any] | None) -> GraphQLError | None:
    """BAD_USER_INPUT naming the first variable holding unstorable text, or None."""
    for name, value in (variables or {}).items():
        if not is_storable(name) or not _strings(value):
            shown = name if is_storable(name) else "?"
            return GraphQLError(
                f"Variable ${shown[:64]}: {_MESSAGE}",
                extensions={"code": ErrorCode.BAD_USER_INPUT},
            )
    return None


class _Literals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: StringValueNode | None = None

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if not is_storable(node.value):
            self.found = node
            return self.BREAK
        return None


def literals_error(document: DocumentNode) -> GraphQLError | None:
    """BAD_USER_INPUT at the first string literal holding unstorable text, or None."""
    literals = _Literals()
    visit(document, literals)
    if literals.found is None:
        return None
    return GraphQLError(
        _MESSAGE, nodes=[literals.found], extensions={"code": ErrorCode.BAD_USER_INPUT}
    )
