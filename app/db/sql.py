"""SQL constructs the repositories share, rendered per database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, Boolean, ColumnElement, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal


class _OneOf(ColumnElement[bool]):
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(
        self, column: ColumnElement[Any], values: Iterable[Any] | BindParameter[Any]
    ) -> None:
        self.column = column
        if isinstance(values, BindParameter):
            self.values = bindparam(values.key, type_=column.type, expanding=True)
        else:
            self.values = bindparam(None, list(values), type_=column.type, expanding=True)


def one_of(
    column: ColumnElement[Any], values: Iterable[Any] | BindParameter[Any]
) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY($1)`, one array parameter.

    The statement's text is then the same for any number of values, so the server prepares
    and plans it once per connection instead of once per list length, and no SQL is rewritten
    per execution to spell out one parameter per value. `values` may be a named `bindparam`
    (its value given when the statement runs), so a statement can be built once.
    """
    return _OneOf(column, values)


@compiles(_OneOf)
def _in_list(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.values), **kw)


@compiles(_OneOf, "postgresql")
def _any_array(element: _OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    array = element.values._clone()
    array.expanding = False
    array.type = ARRAY(element.column.type)
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(array, **kw)})"
