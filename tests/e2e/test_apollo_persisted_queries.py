"""Apollo Client's persisted-queries link (Node) against the real server, over POST and GET."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.config import PROJECT_ROOT
from bench.servers import subprocess_server as live_server
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL
from tests.services import unavailable

SCRIPT = PROJECT_ROOT / "tests" / "e2e" / "apollo_persisted_queries.mjs"


@pytest.fixture
async def live_url(make_db: MakeDb, tmp_path: Path) -> AsyncIterator[str]:
    db = await make_db("sqlite", "apollo_apq", SMALL)
    with live_server({"DATABASE_URL": str(db.url)}, tmp_path / "server.log") as server:
        yield f"{server.base_url}/graphql"


async def _run(url: str, mode: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        unavailable("node", "not on PATH")
    if not (PROJECT_ROOT / "node_modules" / "@apollo" / "client").is_dir():
        unavailable("@apollo/client", "node_modules is missing: run `make node` (npm ci)")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        url,
        mode,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    report: dict[str, Any] = json.loads(stdout)
    return report


@pytest.mark.parametrize("mode", ["post", "get"])
async def test_apollo_clients_persisted_query_link(live_url: str, mode: str) -> None:
    report = await _run(live_url, mode)

    hashed = "GET" if mode == "get" else "POST"
    requests = [(r["method"], r["hasQuery"], r["status"]) for r in report["requests"]]
    assert requests == [
        (hashed, False, 404),  # the hash alone: PERSISTED_QUERY_NOT_FOUND
        ("POST", True, 200),  # hash and text: registered and run
        (hashed, False, 200),  # the hash alone again, now known
        (hashed, False, 200),  # a new client: the hash alone is enough
    ]
    hashes = {r["hash"] for r in report["requests"]}
    assert len(hashes) == 1
    assert None not in hashes
    assert [len(r["skus"]) for r in report["results"]] == [2, 3, 1]
    assert all(r["error"] is None for r in report["results"])
