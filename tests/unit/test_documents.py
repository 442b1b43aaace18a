from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from graphql import GraphQLError, parse

from app.config import GraphQLLimits
from app.http.documents import DocumentPreparer, Shape, measure
from resolvers.schema import schema


def prepare(query: str, **limits: Any) -> tuple[GraphQLError, ...]:
    preparer = DocumentPreparer(schema._schema, dataclasses.replace(GraphQLLimits(), **limits))
    return preparer.prepare(query).errors


def codes(errors: tuple[GraphQLError, ...]) -> list[str]:
    return [str((e.extensions or {})["code"]) for e in errors]


def test_shape_counts_depth_aliases_and_root_fields_through_fragments() -> None:
    document = parse(
        """
        query Q { a: users { ...U } b: users { edges { cursor } } ... on Query { me { id } } }
        fragment U on UserConnection { edges { node { x: id orders { ...O } } } }
        fragment O on OrderConnection { totalCount }
        """
    )

    [shape] = measure(document).values()

    # users > edges > node > orders > totalCount
    assert shape == Shape(depth=5, aliases=3, fields=3, selections=11)


def test_fragments_spread_many_times_are_measured_once_each() -> None:
    """Forty fragments each spreading the next twice: 2**40 paths, measured in linear time."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)] + [
        "fragment F40 on Query { a: __typename }"
    ]
    document = parse("{ ...F0 } " + " ".join(fragments))

    [shape] = measure(document).values()

    assert shape == Shape(depth=1, aliases=2**40, fields=2**40, selections=2**40)


def test_fragment_cycles_and_unknown_fragments_fail_validation_not_the_server() -> None:
    cyclic = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A __typename }"

    assert codes(prepare(cyclic)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert codes(prepare("{ ...Missing }")) == ["GRAPHQL_VALIDATION_FAILED"]


def test_introspection_fields_do_not_count_towards_depth() -> None:
    deep_type = (
        '{ __type(name: "User") { fields { type { ofType { ofType { ofType { name } } } } } } }'
    )

    assert prepare(deep_type, max_depth=2, introspection=True) == ()


@pytest.mark.parametrize(
    ("query", "limits", "code", "fragment"),
    [
        ("{ __typename", {}, "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        (
            "{ " + "__typename " * 20 + "}",
            {"max_tokens": 10},
            "QUERY_TOO_COMPLEX",
            "MAX_QUERY_TOKENS",
        ),
        (
            "{ a" * 2000 + " }" * 2000,
            {"max_tokens": 100_000},
            "QUERY_TOO_COMPLEX",
            "nested too deeply",
        ),
        ("{ __typename }", {"max_query_length": 5}, "QUERY_TOO_COMPLEX", "MAX_QUERY_LENGTH"),
    ],
)
def test_text_level_refusals(query: str, limits: dict[str, int], code: str, fragment: str) -> None:
    [error] = prepare(query, **limits)

    assert codes((error,)) == [code]
    assert fragment in error.message


def test_prepared_documents_are_cached_by_text_and_bounded() -> None:
    preparer = DocumentPreparer(schema._schema, GraphQLLimits(document_cache_size=2))

    first = preparer.prepare("{ __typename }")
    assert preparer.prepare("{ __typename }") is first
    preparer.prepare("{ a: __typename }")
    preparer.prepare("{ b: __typename }")

    assert preparer.prepare("{ __typename }") is not first


def test_operation_selection() -> None:
    preparer = DocumentPreparer(schema._schema, GraphQLLimits())
    prepared = preparer.prepare("query A { __typename } query B { __typename }")

    chosen = prepared.operation("B")
    assert not isinstance(chosen, GraphQLError)
    assert chosen.name is not None
    assert chosen.name.value == "B"
    assert isinstance(prepared.operation(None), GraphQLError)
    assert isinstance(prepared.operation("C"), GraphQLError)
