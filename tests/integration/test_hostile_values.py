"""Hostile values in every argument of every root field, on both databases (issue 11).

The fields and their arguments come from the schema, so a field added later is covered without
touching this test. Each argument (and each field of an input object, at any depth) in turn gets
each hostile value of its type while every other argument holds a plausible one; the caller is an
admin, so requests get past authorization into the resolvers, use cases and the database. Every
answer must carry only documented error codes for a client's mistake (never
INTERNAL_SERVER_ERROR, never SERVICE_UNAVAILABLE for what is bad input), no HTTP 500, and the
server must log no error (no traceback).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    is_composite_type,
)

from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import SeedSize
from app.usecases import operators as admin
from resolvers.global_id import to_global_id
from resolvers.schema import schema
from tests.auth_support import AuthApp, running_app
from tests.conftest import MakeDb

# A client's mistakes, and what a request may also legitimately meet (the payload `errors`
# codes are separate: they are typed data, not top-level errors).
ALLOWED_CODES = {
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "GRAPHQL_VALIDATION_FAILED",
    "QUERY_TOO_COMPLEX",
}
HUGE = 300_000  # characters: far beyond any field's rule, well within the 1 MiB body


def _cursor(kind: str, payload: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}|{payload}".encode()).decode().rstrip("=")


def _global_id(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


OUT_OF_RANGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
HOSTILE_TEXT = [
    "a\x00b",
    "\x00",
    "\ud800",
    "ok\udfffok",
    "x" * HUGE,
    "line one\r\nBcc: someone@example.com",
    *OUT_OF_RANGE_TIMES,
    *(
        _cursor(kind, f"{stamp}|{uuid.uuid4().hex}")
        for kind in ("user", "order", "product")
        for stamp in OUT_OF_RANGE_TIMES
    ),
    *(_cursor(kind, "a\x00b") for kind in ("user", "order", "product")),
    "1e999999999",
    "-1e-999999999",
    "NaN",
    "Infinity",
    "9" * 5000,
]
HOSTILE: dict[str, list[Any]] = {
    "String": HOSTILE_TEXT,
    "ID": [
        *HOSTILE_TEXT,
        _global_id("Product:\x00"),
        _global_id("Order:\ud800"),
        _global_id("User:" + "0" * HUGE),
    ],
    "Int": [2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 10**30],
    "Float": [1.7e308, -1.7e308, 1e-320],
    "Boolean": ["\x00"],
    "DateTime": [*OUT_OF_RANGE_TIMES, "\x00", "\ud800", "2026-01-01T00:00:00\x00Z", "9" * HUGE],
}


def _plausible(input_type: GraphQLInputType) -> Any:
    """A value of the type that gets a request past coercion (not necessarily a valid one)."""
    if isinstance(input_type, GraphQLNonNull):
        return _plausible(input_type.of_type)
    if isinstance(input_type, GraphQLList):
        return [_plausible(input_type.of_type)]
    if isinstance(input_type, GraphQLInputObjectType):
        return {
            name: _plausible(field.type)
            for name, field in input_type.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    if isinstance(input_type, GraphQLEnumType):
        return next(iter(input_type.values))
    assert isinstance(input_type, GraphQLScalarType)
    return {
        "ID": to_global_id("Product", uuid.uuid4()),
        "String": "plausible",
        "Int": 1,
        "Float": 1.0,
        "Boolean": True,
        "DateTime": "2026-01-01T00:00:00.000Z",
    }[input_type.name]


def _hostile(input_type: GraphQLInputType) -> Iterator[Any]:
    """Hostile values for one place of this type (inner places are walked separately)."""
    nullable = input_type.of_type if isinstance(input_type, GraphQLNonNull) else input_type
    if isinstance(nullable, GraphQLList):
        yield [_plausible(nullable.of_type)] * 10_000  # a huge list
        for value in _hostile(nullable.of_type):
            yield [value]
    elif isinstance(nullable, GraphQLEnumType):
        yield "NOT_A_VALUE\x00"
    elif isinstance(nullable, GraphQLScalarType):
        yield from HOSTILE[nullable.name]


def _places(input_type: GraphQLInputType) -> Iterator[tuple[tuple[str, ...], GraphQLInputType]]:
    """Every place a value goes in a value of this type: itself, and input fields at any depth."""
    yield (), input_type
    nullable = input_type
    while isinstance(nullable, GraphQLNonNull | GraphQLList):
        nullable = nullable.of_type
    if isinstance(nullable, GraphQLInputObjectType):
        for name, field in nullable.fields.items():
            for path, inner in _places(field.type):
                yield (name, *path), inner


def _with(value: Any, input_type: GraphQLInputType, path: tuple[str, ...], leaf: Any) -> Any:
    """`value` (plausible) with `leaf` at `path` (through lists: into their first element)."""
    if not path:
        return leaf
    nullable = input_type.of_type if isinstance(input_type, GraphQLNonNull) else input_type
    if isinstance(nullable, GraphQLList):
        return [_with(value[0], nullable.of_type, path, leaf)]
    assert isinstance(nullable, GraphQLInputObjectType)
    field = nullable.fields[path[0]]
    inner = value.get(path[0], _plausible(field.type))
    return {**value, path[0]: _with(inner, field.type, path[1:], leaf)}


@dataclass(frozen=True)
class Case:
    operation: str
    field: str
    argument: str
    path: tuple[str, ...]
    query: str
    variables: dict[str, Any]

    def __str__(self) -> str:
        return (
            f"{self.operation} {self.field}({self.argument}{''.join('.' + p for p in self.path)})"
        )


def _selection(field: GraphQLField) -> str:
    named = field.type
    while isinstance(named, GraphQLNonNull | GraphQLList):
        named = named.of_type
    return " { __typename }" if is_composite_type(named) else ""


def cases() -> Iterator[Case]:
    graphql_schema = schema._schema
    roots = [("query", graphql_schema.query_type), ("mutation", graphql_schema.mutation_type)]
    for operation, root in roots:
        assert root is not None
        for field_name, field in root.fields.items():
            arguments: dict[str, GraphQLArgument] = field.args
            for argument_name, argument in arguments.items():
                for path, place_type in _places(argument.type):
                    for leaf in _hostile(place_type):
                        variables = {
                            name: _plausible(arg.type)
                            for name, arg in arguments.items()
                            if isinstance(arg.type, GraphQLNonNull) or name == argument_name
                        }
                        variables[argument_name] = _with(
                            variables[argument_name], argument.type, path, leaf
                        )
                        declared = ", ".join(f"${n}: {arguments[n].type}" for n in variables)
                        passed = ", ".join(f"{n}: ${n}" for n in variables)
                        query = (
                            f"{operation} Hostile({declared}) "
                            f"{{ {field_name}({passed}){_selection(field)} }}"
                        )
                        yield Case(operation, field_name, argument_name, path, query, variables)


@dataclass
class Callers:
    app: AuthApp
    headers: dict[str, str]


@pytest.fixture(scope="module")
async def callers(backend: str, make_db: MakeDb) -> AsyncIterator[Callers]:
    db = await make_db(backend, "hostile", SeedSize(products=3, users=3, orders=3))
    lifted = 10**9  # this test is about values, not about rate limits
    async with running_app(
        db.url,
        rate_per_minute=lifted,
        rate_burst=lifted,
        anonymous_rate_per_minute=lifted,
        anonymous_rate_burst=lifted,
        sign_ups_per_address=lifted,
    ) as app:
        email = "hostile-admin@example.com"
        await admin.create_user(
            SqlUnitOfWork.factory(db),
            app.services.passwords,
            email=email,
            password="Sturdy-pass-1",
            admin=True,
        )
        _, key = await admin.create_api_key(
            SqlUnitOfWork.factory(db),
            email=email,
            name="hostile",
            scopes="admin",
            rate_per_minute=lifted,
        )
        yield Callers(app, {"X-API-Key": key})


def test_every_root_field_and_argument_is_covered() -> None:
    covered = {(c.operation, c.field, c.argument) for c in cases()}
    graphql_schema = schema._schema
    assert graphql_schema.query_type is not None
    assert graphql_schema.mutation_type is not None
    expected = {
        (operation, name, argument)
        for operation, root in (
            ("query", graphql_schema.query_type),
            ("mutation", graphql_schema.mutation_type),
        )
        for name, field in root.fields.items()
        for argument in field.args
    }
    assert covered == expected
    assert len(expected) > 15


async def test_hostile_values_get_documented_errors_only(
    callers: Callers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    failures: list[str] = []
    count = 0
    for case in cases():
        count += 1
        # Escaped JSON, as a client would send lone surrogates (raw, they are not UTF-8).
        body = json.dumps({"query": case.query, "variables": case.variables})
        response = await callers.app.http.post(
            "/graphql",
            content=body.encode("ascii"),
            headers={**callers.headers, "Content-Type": "application/json"},
        )
        if response.status_code >= 500:
            failures.append(f"{case}: HTTP {response.status_code} {response.text[:200]}")
            continue
        codes = {(e.get("extensions") or {}).get("code") for e in response.json().get("errors", ())}
        if not codes <= ALLOWED_CODES:
            failures.append(f"{case}: {sorted(map(str, codes))} {response.text[:300]}")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, f"{len(failures)} of {count}:\n" + "\n".join(failures[:40])
    assert not errors, "\n".join(r.getMessage()[:300] for r in errors[:20])


async def test_nul_in_a_literal_argument_is_bad_user_input(callers: Callers) -> None:
    response = await callers.app.http.post(
        "/graphql",
        json={"query": '{ products(after: "a\\u0000b") { totalCount } }'},
        headers=callers.headers,
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
