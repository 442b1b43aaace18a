"""The graphql-http package's GraphQL-over-HTTP audits, every one (SHOULDs and MAYs included),
against the real app served by uvicorn."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from bench.servers import subprocess_server as live_server
from tests.conftest import MakeDb
from tests.services import unavailable

AUDIT_SCRIPT = PROJECT_ROOT / "tests" / "e2e" / "audit.mjs"


@pytest.fixture
async def live_url(make_db: MakeDb, tmp_path: Path) -> AsyncIterator[str]:
    """The app under uvicorn on a free loopback port, as clients meet it."""
    db = await make_db("sqlite", "audit")
    env = {"DATABASE_URL": str(db.url), "INTROSPECTION": "true", "DEBUG": "false"}
    with live_server(env, tmp_path / "server.log") as server:
        yield f"{server.base_url}/graphql"


async def test_every_graphql_over_http_audit_passes(live_url: str) -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node", "not on PATH")
    if not (PROJECT_ROOT / "node_modules" / "graphql-http").is_dir():
        unavailable("graphql-http", "node_modules is missing: run `make node` (npm ci)")
    assert node is not None

    audit = await asyncio.create_subprocess_exec(
        node,
        str(AUDIT_SCRIPT),
        live_url,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(audit.communicate(), timeout=120)

    assert audit.returncode == 0, stderr.decode()
    results = json.loads(stdout)
    failing = [r for r in results if r["status"] != "ok"]
    for result in failing:
        print(f"{result['id']} {result['status']}: {result['name']} — {result['reason']}")
    assert len(results) >= 60  # the suite itself ran, not an empty list
    assert failing == []
