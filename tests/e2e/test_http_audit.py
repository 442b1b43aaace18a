"""The graphql-http package's GraphQL-over-HTTP audits, every one (SHOULDs and MAYs included),
against the real app served by uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import PROJECT_ROOT
from tests.conftest import MakeDb
from tests.services import unavailable

AUDIT_SCRIPT = PROJECT_ROOT / "tests" / "e2e" / "audit.mjs"


@pytest.fixture
async def live_url(make_db: MakeDb) -> AsyncIterator[str]:
    """The app under uvicorn on a socket bound here to a free loopback port."""
    db = await make_db("sqlite", "audit")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": str(db.url), "INTROSPECTION": "true", "DEBUG": "false"}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.main:create_app",
        "--fd",
        str(listener.fileno()),
        "--log-level",
        "warning",
        env=env,
        cwd=PROJECT_ROOT,
        pass_fds=(listener.fileno(),),
    )
    listener.close()  # the server holds its own copy
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                if server.returncode is not None:
                    pytest.fail(f"uvicorn exited with {server.returncode}")
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("uvicorn did not answer /healthz")
        yield f"{url}/graphql"
    finally:
        if server.returncode is None:
            server.terminate()
            await server.wait()


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
