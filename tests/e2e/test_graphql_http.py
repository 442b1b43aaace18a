"""The GraphQL endpoint over HTTP: media types, status codes, bad input and error codes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import pytest
from graphql import get_introspection_query
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import ServiceUnavailable
from tests.e2e.conftest import Api, ApiFactory

GRJ = "application/graphql-response+json"
JSON = "application/json"
CT_JSON = {"content-type": "application/json"}
# A well-formed Product ID that names nothing.
MISSING_PRODUCT = "UHJvZHVjdDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA="
PRODUCTS = "{ products(first: 2) { edges { cursor node { id sku } } } }"


def codes(response: Any) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


def media_type(response: Any) -> str:
    return str(response.headers["content-type"]).split(";")[0]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GRJ, GRJ),
        (f"{GRJ}, {JSON}", GRJ),
        (f"{JSON}, {GRJ}", GRJ),
        (f"{GRJ};q=0.5, {JSON}", JSON),
        (f"{GRJ}; charset=utf-8", GRJ),
        ("text/html, */*;q=0.1", JSON),
    ],
)
async def test_accept_header_chooses_the_response_media_type(
    api: Api, accept: str | None, expected: str
) -> None:
    response = await api.post({"query": "{ __typename }"}, accept=accept)

    assert response.status_code == 200
    assert media_type(response) == expected
    assert response.headers["content-type"].endswith("charset=utf-8")
    assert response.json()["data"] == {"__typename": "Query"}
    assert "errors" not in response.json()


@pytest.mark.parametrize("accept", ["text/html", "application/xml", f"{GRJ};q=0, {JSON};q=0"])
async def test_nothing_acceptable_is_406(api: Api, accept: str) -> None:
    response = await api.post({"query": "{ __typename }"}, accept=accept)

    assert response.status_code == 406
    assert "Accept" in response.json()["errors"][0]["message"]


async def test_data_is_read_over_post_and_get(api: Api) -> None:
    posted = await api.post({"query": PRODUCTS})
    got = await api.client.get("/graphql", params={"query": PRODUCTS}, headers={"accept": GRJ})

    assert posted.status_code == got.status_code == 200
    edges = posted.json()["data"]["products"]["edges"]
    assert len(edges) == 2
    assert got.json() == posted.json()


async def test_get_takes_variables_and_operation_name_from_the_url(api: Api) -> None:
    response = await api.client.get(
        "/graphql",
        params={
            "query": "query A { __typename } query B($n: Int!) { products(first: $n) { "
            "edges { node { sku } } } }",
            "operationName": "B",
            "variables": '{"n": 1}',
        },
    )

    assert response.status_code == 200
    assert len(response.json()["data"]["products"]["edges"]) == 1


@pytest.mark.parametrize("accept", [GRJ, JSON])
async def test_a_mutation_over_get_is_405_with_allow(api: Api, accept: str) -> None:
    response = await api.client.get(
        "/graphql", params={"query": "mutation { __typename }"}, headers={"accept": accept}
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"query": "{ products(first: 1) { edges "}, "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        ({"query": "{ productz { id } }"}, "GRAPHQL_VALIDATION_FAILED", "productz"),
        (
            {"query": "{ products(frist: 1) { edges { cursor } } }"},
            "GRAPHQL_VALIDATION_FAILED",
            "frist",
        ),
        (
            {"query": '{ products(first: "2") { edges { cursor } } }'},
            "GRAPHQL_VALIDATION_FAILED",
            "Int",
        ),
        (
            {
                "query": "query($n: Int) { products(first: $n) { edges { cursor } } }",
                "variables": {"n": "two"},
            },
            "BAD_USER_INPUT",
            "$n",
        ),
        (
            {
                "query": "query($n: Int) { products(first: $n) { edges { cursor } } }",
                "variables": {"n": 2**40},
            },
            "BAD_USER_INPUT",
            "$n",
        ),
        (
            {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {}},
            "BAD_USER_INPUT",
            "$id",
        ),
        (
            {"query": "query A { __typename } query B { __typename }"},
            "BAD_USER_INPUT",
            "operationName",
        ),
        ({"query": "{ __typename }", "operationName": "Nope"}, "BAD_USER_INPUT", "Nope"),
    ],
)
async def test_operations_refused_before_execution(
    api: Api, body: dict[str, Any], code: str, fragment: str
) -> None:
    """400 with graphql-response+json, 200 with application/json; never any `data`."""
    strict = await api.post(body, accept=GRJ)
    legacy = await api.post(body, accept=JSON)

    assert strict.status_code == 400
    assert legacy.status_code == 200
    for response in (strict, legacy):
        assert "data" not in response.json()
        assert codes(response) == [code] * len(codes(response))
        assert fragment in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ("{ products(first: -1) { edges { cursor } } }", "BAD_USER_INPUT", "`first`"),
        ("{ products(first: 1000000) { edges { cursor } } }", "BAD_USER_INPUT", "`first`"),
        (
            '{ products(after: "bm90IGEgY3Vyc29y") { edges { cursor } } }',
            "BAD_USER_INPUT",
            "cursor",
        ),
        ('{ products(after: "%%%") { edges { cursor } } }', "BAD_USER_INPUT", "cursor"),
        ('{ product(id: "not-an-id") { id } }', "BAD_USER_INPUT", "not a valid ID"),
        (
            '{ product(id: "VXNlcjowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=") { id } }',
            "BAD_USER_INPUT",
            "not of a Product",
        ),
        (
            '{ node(id: "UHJvZHVjdDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=") { id } }',
            "NOT_FOUND",
            "no Product",
        ),
    ],
)
async def test_bad_arguments_fail_during_execution_with_200(
    api: Api, query: str, code: str, fragment: str
) -> None:
    for accept in (GRJ, JSON):
        response = await api.post({"query": query}, accept=accept)

        assert response.status_code == 200
        body = response.json()
        assert "data" in body
        assert codes(response) == [code]
        assert fragment in body["errors"][0]["message"]


async def test_a_cursor_from_another_list_is_refused(api: Api) -> None:
    products = (await api.post({"query": PRODUCTS})).json()["data"]["products"]["edges"]
    query = "query($c: String) { users(after: $c) { edges { cursor } } }"

    response = await api.post(
        {"query": query, "variables": {"c": products[0]["cursor"]}}, headers=await api.admin()
    )

    assert response.status_code == 200
    assert codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("headers", "content", "status", "fragment"),
    [
        ({}, b'{"query": "{ __typename }"}', 415, "Content-Type header is missing"),
        ({"content-type": "text/plain"}, b'{"query": "{ __typename }"}', 415, "text/plain"),
        (
            {"content-type": "application/x-www-form-urlencoded"},
            b"query=%7B__typename%7D",
            415,
            "application/json",
        ),
        (
            {"content-type": "application/json; charset=latin-1"},
            b'{"query": "{ __typename }"}',
            415,
            "UTF-8",
        ),
        (CT_JSON, b"", 400, "empty"),
        (CT_JSON, b'{ "not a JSON', 400, "not valid JSON"),
        (CT_JSON, b'{"query": "{ \xff }"}', 400, "UTF-8"),
        (CT_JSON, '{"query": "{ x }"}'.encode("utf-16"), 400, "UTF-8"),
        (CT_JSON, b'{"query": NaN}', 400, "not valid JSON"),
        (CT_JSON, b"[" * 50_000 + b"]" * 50_000, 400, "nested too deeply"),
        (CT_JSON, b'"{ __typename }"', 400, "JSON object"),
        (CT_JSON, b'{"qeury": "{ __typename }"}', 400, "`query`"),
        (CT_JSON, b'{"query": 1}', 400, "`query`"),
        (
            {"content-type": "application/json"},
            b'{"query": "{ __typename }", "variables": []}',
            400,
            "`variables`",
        ),
        (
            {"content-type": "application/json"},
            b'{"query": "{ __typename }", "operationName": 0}',
            400,
            "`operationName`",
        ),
        (
            {"content-type": "application/json"},
            b'{"query": "{ __typename }", "extensions": "x"}',
            400,
            "`extensions`",
        ),
        (
            {"content-type": "application/json"},
            b'[{"query": "{ __typename }"}]',
            400,
            "MAX_BATCH_OPERATIONS",
        ),
    ],
)
async def test_unusable_requests_are_refused_with_a_clear_error(
    api: Api, headers: dict[str, str], content: bytes, status: int, fragment: str
) -> None:
    for accept in (GRJ, JSON):
        response = await api.client.post(
            "/graphql", content=content, headers={**headers, "accept": accept}
        )

        assert response.status_code == status
        assert media_type(response) == accept
        body = response.json()
        assert "data" not in body
        assert codes(response) == ["BAD_USER_INPUT"]
        assert fragment in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "`query`"),
        ({"query": "{ __typename }", "variables": "{nope"}, "`variables`"),
        ({"query": "{ __typename }", "variables": "[1]"}, "`variables`"),
        ({"query": "{ __typename }", "extensions": "1"}, "`extensions`"),
    ],
)
async def test_bad_get_parameters_are_400(api: Api, params: dict[str, str], fragment: str) -> None:
    response = await api.client.get("/graphql", params=params, headers={"accept": JSON})

    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    assert fragment in response.json()["errors"][0]["message"]


def _nested(depth: int) -> str:
    """`users.edges.node.orders.edges.node.user.orders…`: `depth` fields deep, a page of one
    at each level (so that depth, not query cost, is what is tested)."""
    path = ["users(first: 1)", "edges", "node"]
    while len(path) < depth - 1:
        path += ["orders(first: 1)", "edges", "node", "user"][: depth - 1 - len(path)]
    return "{ " + " { ".join(path) + " { __typename" + " }" * len(path) + " }"


@pytest.mark.parametrize(
    ("limits", "query", "fragment"),
    [
        ({"max_depth": 12}, _nested(13), "MAX_QUERY_DEPTH"),
        (
            {"max_aliases": 3},
            "{ a: __typename b: __typename c: __typename d: __typename }",
            "MAX_QUERY_ALIASES",
        ),
        (
            {"max_root_fields": 2},
            "{ __typename __typename ...F } fragment F on Query { __typename }",
            "MAX_ROOT_FIELDS",
        ),
        ({"max_tokens": 50}, "{ " + "__typename " * 60 + "}", "MAX_QUERY_TOKENS"),
        ({"max_query_length": 100}, "{ __typename }" + " " * 100, "MAX_QUERY_LENGTH"),
    ],
)
async def test_limits_refuse_before_execution(
    api_factory: ApiFactory, limits: dict[str, int], query: str, fragment: str
) -> None:
    async with api_factory(**limits) as api:
        strict = await api.post({"query": query}, accept=GRJ)
        legacy = await api.post({"query": query}, accept=JSON)

    assert strict.status_code == 400
    assert legacy.status_code == 200
    for response in (strict, legacy):
        assert "data" not in response.json()
        assert codes(response) == ["QUERY_TOO_COMPLEX"]
        assert fragment in response.json()["errors"][0]["message"]


async def test_queries_at_the_limits_run(api: Api) -> None:
    response = await api.post({"query": _nested(12)}, headers=await api.admin())

    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_the_standard_introspection_query_passes_the_default_limits(api: Api) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )

    response = await api.post({"query": query})

    assert response.status_code == 200
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_introspection_can_be_switched_off(api_factory: ApiFactory) -> None:
    async with api_factory(introspection=False) as api:
        schema = await api.post({"query": "{ __schema { types { name } } }"})
        typename = await api.post({"query": "{ __typename }"})
        typo = await api.post({"query": "{ product { id } }"})

    assert schema.status_code == 400
    assert codes(schema)[0] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in schema.json()["errors"][0]["message"]
    assert typename.json()["data"] == {"__typename": "Query"}
    # Suggestions would name fields that the disabled introspection hides.
    assert "Did you mean" not in str(typo.json())


async def test_a_body_over_the_limit_is_413(api_factory: ApiFactory) -> None:
    big = {"query": "{ __typename }", "variables": {"pad": "x" * 2048}}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 1000
        yield b'{"query": "{ __typename }"}'

    async with api_factory(max_body_bytes=2048) as api:
        declared = await api.post(big)
        streamed = await api.client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await api.post({"query": "{ __typename }"})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert codes(response) == ["BAD_USER_INPUT"]
        assert "MAX_BODY_BYTES" in response.json()["errors"][0]["message"]
        assert "x-request-id" in response.headers
    assert small.status_code == 200


async def test_batches_when_allowed(api_factory: ApiFactory) -> None:
    async with api_factory(max_batch=2) as api:
        two = await api.post([{"query": "{ __typename }"}, {"query": "{ nope }"}])
        three = await api.post([{"query": "{ __typename }"}] * 3)
        empty = await api.post([])

    assert two.status_code == 200
    first, second = two.json()
    assert first["data"] == {"__typename": "Query"}
    assert "errors" not in first
    assert second["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert three.status_code == 400
    assert "MAX_BATCH_OPERATIONS" in three.json()["errors"][0]["message"]
    assert empty.status_code == 400


async def test_request_ids_are_echoed_when_well_formed_and_made_otherwise(api: Api) -> None:
    echoed = await api.post({"query": "{ __typename }"}, headers={"x-request-id": "client-1234"})
    replaced = await api.post({"query": "{ __typename }"}, headers={"x-request-id": "bad id\t!"})
    missing = await api.client.get("/nowhere")
    wrong_method = await api.client.delete("/graphql")
    health = await api.client.get("/healthz")

    assert echoed.headers["x-request-id"] == "client-1234"
    assert replaced.headers["x-request-id"] not in ("", "bad id\t!")
    assert len(replaced.headers["x-request-id"]) == 32
    assert missing.status_code == 404
    assert wrong_method.status_code == 405
    for response in (missing, wrong_method, health):
        assert len(response.headers["x-request-id"]) == 32
    assert missing.headers["x-request-id"] != health.headers["x-request-id"]


def _break_database(api: Api, monkeypatch: pytest.MonkeyPatch, error: BaseException | None) -> None:
    """Make every database read raise `error`, or hang forever when it is None."""

    @asynccontextmanager
    async def read() -> AsyncIterator[AsyncConnection]:
        if error is None:
            await asyncio.Event().wait()
        raise error  # type: ignore[misc]
        yield  # pragma: no cover

    monkeypatch.setattr(api.state.db, "read", read)


async def test_internal_errors_are_masked_logged_and_traceable(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _break_database(api, monkeypatch, RuntimeError("secret connection string"))

    with caplog.at_level(logging.ERROR, logger="app.graphql"):
        response = await api.post({"query": PRODUCTS})

    assert response.status_code == 200  # execution started: data is null, the error says why
    body = response.json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["message"] == "Internal server error"
    assert "secret" not in response.text
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    logged = [r for r in caplog.records if response.headers["x-request-id"] in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


async def test_debug_shows_internal_messages_and_statement_stats(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_factory(debug=True) as api:
        ok = await api.post({"query": PRODUCTS})
        _break_database(api, monkeypatch, RuntimeError("secret connection string"))
        broken = await api.post({"query": PRODUCTS})

    assert ok.json()["extensions"]["debug"]["sqlStatements"] == 1
    assert "secret connection string" in broken.json()["errors"][0]["message"]


@pytest.mark.parametrize("executor", ["levels", "standard"])
async def test_debug_says_which_executor_ran(api_factory: ApiFactory, executor: str) -> None:
    async with api_factory(debug=True, executor=executor) as api:
        query = await api.post({"query": PRODUCTS})
        introspection = await api.post({"query": "{ __schema { queryType { name } } }"})
        mutation = await api.post(
            {"query": 'mutation { revokeApiKey(id: "x") { errors { code } } }'}
        )

    assert query.json()["extensions"]["debug"]["executor"] == executor
    assert introspection.json()["extensions"]["debug"]["executor"] == "standard"
    assert mutation.json()["extensions"]["debug"]["executor"] == "standard"


async def test_an_unavailable_database_is_503_with_graphql_response_json(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_database(api, monkeypatch, ServiceUnavailable("The database is unavailable"))

    strict = await api.post({"query": PRODUCTS}, accept=GRJ)
    legacy = await api.post({"query": PRODUCTS}, accept=JSON)

    assert strict.status_code == 503
    assert legacy.status_code == 200
    for response in (strict, legacy):
        assert response.json()["data"] is None
        assert codes(response) == ["SERVICE_UNAVAILABLE"]


async def test_a_partial_result_stays_200_even_when_a_dependency_failed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_database(api, monkeypatch, ServiceUnavailable("The database is unavailable"))
    query = "{ __typename node(id: $id) { id } }".replace("$id", f'"{MISSING_PRODUCT}"')

    response = await api.post({"query": query}, accept=GRJ)

    assert response.status_code == 200  # data is not null: the spec requires a 2xx
    assert response.json()["data"] == {"__typename": "Query", "node": None}
    assert codes(response) == ["SERVICE_UNAVAILABLE"]


async def test_an_operation_over_its_time_is_stopped_with_service_unavailable(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_factory(execution_timeout=0.05) as api:
        _break_database(api, monkeypatch, None)
        response = await api.post({"query": PRODUCTS})

    assert response.status_code == 503
    assert response.json()["data"] is None
    assert codes(response) == ["SERVICE_UNAVAILABLE"]
    assert "EXECUTION_TIMEOUT" in response.json()["errors"][0]["message"]


async def test_documents_are_parsed_once_by_the_view(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import strawberry.schema.schema as strawberry_schema

    def no_parse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("Strawberry parsed a document the view had already parsed")

    monkeypatch.setattr(strawberry_schema, "parse", no_parse)

    response = await api.post({"query": PRODUCTS})

    assert response.status_code == 200
    assert "errors" not in response.json()
