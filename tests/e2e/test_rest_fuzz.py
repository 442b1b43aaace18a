"""Schemathesis against a live server, per REST version: inputs generated from each OpenAPI
document (valid and invalid), every answer checked against it and never a 5xx.

Examples are bounded per operation so `make test` stays reasonable; requests carry a customer's
API key, so the authorized paths (and the writes) are exercised, not only the refusals.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from app.db.engine import Database
from app.http.rest.openapi import document
from app.seed import SeedSize
from bench.servers import subprocess_server as live_server
from tests.auth_support import signing_pem
from tests.conftest import MakeDb
from tests.events_support import customer_key

EXAMPLES = 25
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
async def fuzz_db(make_db: MakeDb) -> tuple[Database, str]:
    db = await make_db("sqlite", "rest_fuzz", SeedSize(products=5, users=4, orders=8))
    key, _ = await customer_key(db)
    return db, key


@pytest.fixture(scope="module")
def fuzz_server(
    fuzz_db: tuple[Database, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    db, key = fuzz_db
    env = {
        "DATABASE_URL": str(db.url),
        "OAUTH_SIGNING_KEY": signing_pem(),
        # The fuzzer is one client sending many requests: measure the API, not its rate limit.
        "RATE_LIMIT_PER_MINUTE": "10000000",
        "RATE_LIMIT_BURST": "1000000",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "10000000",
        "ANONYMOUS_RATE_LIMIT_BURST": "1000000",
    }
    log = Path(tmp_path_factory.mktemp("fuzz")) / "server.log"
    with live_server(env, log) as server:
        yield server.base_url, key


# The documents the server serves are generated from this code (checked below), so the cases are
# generated from them here, at collection, and sent to the live server.
V1 = schemathesis.openapi.from_dict(document("v1"))
V2 = schemathesis.openapi.from_dict(document("v2"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def _check(case: Any, fuzz_server: tuple[str, str]) -> None:
    base_url, key = fuzz_server
    case.call_and_validate(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
    )


@V1.parametrize()
@FUZZ
def test_v1_matches_its_document(case: Any, fuzz_server: tuple[str, str]) -> None:
    _check(case, fuzz_server)


@V2.parametrize()
@FUZZ
def test_v2_matches_its_document(case: Any, fuzz_server: tuple[str, str]) -> None:
    _check(case, fuzz_server)


def test_the_server_serves_the_documents_the_cases_come_from(fuzz_server: tuple[str, str]) -> None:
    base_url, _ = fuzz_server
    for version in ("v1", "v2"):
        served = httpx.get(f"{base_url}/api/{version}/openapi.json", timeout=30)
        assert served.json() == document(version)
