"""The OpenAPI 3.1 document of each REST version, generated from the operation table and the
pydantic shapes the handlers answer with (JSON Schema 2020-12, which OpenAPI 3.1 uses as is)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.http.rest import shapes
from app.http.rest.api import JSON, OPERATIONS, Operation
from app.http.rest.problems import PROBLEM_JSON
from app.pagination import MAX_PAGE_SIZE

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "Bad input: a malformed ID, cursor, parameter or body (code BAD_USER_INPUT)",
    "401": "Credentials are needed, or the token or key is invalid (UNAUTHENTICATED)",
    "403": "The credential lacks the scope (FORBIDDEN)",
    "404": "Nothing here, or nothing this principal may read (NOT_FOUND)",
    "405": "The method is not allowed on this resource",
    "406": "Not acceptable",
    "413": "The body is too large",
    "415": "The body is not application/json",
    "429": "The credential's rate limit is exhausted (RATE_LIMITED); see Retry-After",
    "503": "A dependency is unavailable (SERVICE_UNAVAILABLE); retry later",
}
_QUERY = {
    "first": {
        "description": "Page size",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_SIZE, "default": 20},
    },
    "after": {
        "description": "The cursor after which the page starts (from the previous page)",
        "schema": {"type": "string", "maxLength": 500},
    },
    "status": {
        "description": "Only orders in this status",
        "schema": {"type": "string", "enum": ["PLACED", "FULFILLED", "CANCELLED"]},
    },
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _ref(shapes.Problem)}}}


def _operation_id(op: Operation) -> str:
    return op.method.lower() + "_" + "_".join(part.strip("{}") for part in op.segments)


def _operation(op: Operation, version: str) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": segment[1:-1],
            "in": "path",
            "required": True,
            "description": "The object's global ID (as in GraphQL)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
        for segment in op.segments
        if segment.startswith("{")
    ]
    parameters += [{"name": name, "in": "query", **_QUERY[name]} for name in op.query]
    parameters += [
        {
            "name": name,
            "in": "header",
            "description": "Repeat a request with the same key to get its order, not a second one",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
        for name in op.headers
    ]
    success: dict[str, Any] = {
        "description": "OK" if op.success == 200 else "Created",
        "content": {JSON: {"schema": _ref(op.responses[version])}},
    }
    responses: dict[str, Any] = {str(op.success): success}
    if op.method == "GET":
        success["headers"] = {
            "ETag": {"schema": {"type": "string"}},
            "Cache-Control": {"schema": {"type": "string"}},
        }
        responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)"}
    else:
        responses["200"] = {
            "description": "The order (an idempotent repeat, or a state change)",
            "content": {JSON: {"schema": _ref(op.responses[version])}},
        }
        responses["422"] = _problem("The use case refused: `errors` lists each problem")
    responses.update({status: _problem(text) for status, text in _ERRORS.items()})
    document: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
    }
    if op.request is not None:
        document["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": _ref(op.request)}},
        }
    return document


@cache
def document(version: str) -> dict[str, Any]:
    serialised = {op.responses[version] for op in OPERATIONS} | {shapes.Problem}
    accepted = {op.request for op in OPERATIONS if op.request is not None}
    _, schemas = models_json_schema(
        [(model, "serialization") for model in sorted(serialised, key=lambda m: m.__name__)]
        + [(model, "validation") for model in sorted(accepted, key=lambda m: m.__name__)],
        ref_template=_REF,
        by_alias=True,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(f"/api/{version}/{op.path}", {})[op.method.lower()] = _operation(
            op, version
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ordergraph REST API",
            "version": version,
            "description": "The same data, rules and errors as the GraphQL API at /graphql.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An OAuth2 access token or an API key",
                }
            },
        },
        "security": [{}, {"bearer": []}],
    }
