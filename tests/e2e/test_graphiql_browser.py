"""GraphiQL in a real, offline Chromium: the page renders, runs a query and reaches no other host.

The browser is the system's Chromium (CI installs Debian's package); nothing is downloaded at test
time. tests/e2e/graphiql_browser.mjs drives it with playwright-core and reports what it saw; this
test starts the real server against a seeded SQLite database and judges that report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.config import PROJECT_ROOT
from app.db.urls import DatabaseUrl
from app.http.graphiql import NODE_MODULES, Assets
from app.seed import SeedSize
from bench.servers import subprocess_server as live_server
from tests.conftest import MakeDb
from tests.graphql import execute
from tests.services import unavailable

SCRIPT = Path(__file__).with_name("graphiql_browser.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
QUERY = "{ products(first: 3) { edges { node { sku name price { amount currency } } } } }"
REQUEST_ID = "e2e-graphiql-headers-editor"
SIZE = SeedSize(products=12, users=5, orders=10, max_items_per_order=2)


def _require_browser_tools() -> str:
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js", "`node` is not on PATH")
    if not (NODE_MODULES / "playwright-core").is_dir():
        unavailable("playwright-core", f"not installed in {NODE_MODULES} (run `npm ci`)")
    missing = Assets.load().missing
    if missing:
        unavailable("GraphiQL's assets", f"missing {', '.join(missing)} (run `npm ci`)")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    assert node is not None
    return node


@pytest.fixture(scope="module")
async def seeded(make_db: MakeDb) -> tuple[DatabaseUrl, dict[str, Any]]:
    """A migrated, seeded SQLite file, and the answer QUERY gets from it without HTTP."""
    db = await make_db("sqlite", "graphiql_e2e", SIZE)
    expected = (await execute(db, QUERY)).ok()
    return db.url, expected


def test_graphiql_runs_a_query_offline(
    seeded: tuple[DatabaseUrl, dict[str, Any]], tmp_path: Path
) -> None:
    node = _require_browser_tools()
    url, expected = seeded
    screenshot = tmp_path / "graphiql.png"
    env = {"DATABASE_URL": str(url), "GRAPHIQL": "true", "DEBUG": "false"}

    with live_server(env, tmp_path / "server.log") as server:
        run = subprocess.run(
            [node, str(SCRIPT), server.base_url, QUERY, REQUEST_ID, str(screenshot)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        server_log = server.log_text()

    context = f"stderr:\n{run.stderr}\nserver log:\n{server_log}"
    assert run.stdout.strip(), f"the browser script printed no report\n{context}"
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, f"{report.get('error')}\n{context}"

    # Offline: nothing but this server was asked for anything; the guard itself works.
    assert report["blocked"] == []
    assert report["canaryBlocked"], "the non-loopback guard let a request through"
    assert report["requests"]
    assert all(u.startswith(server.base_url + "/") for u in report["requests"]), report["requests"]
    assets = [u for u in report["requests"] if "/graphiql/assets/" in u]
    assert any("graphiql.min.js" in u for u in assets)
    assert any("react-dom.production.min.js" in u for u in assets)

    # The page ran cleanly under its own Content-Security-Policy.
    assert report["title"] == "ordergraph · GraphiQL"
    assert report["cspViolations"] == []
    assert report["pageErrors"] == []
    assert report["consoleErrors"] == []

    # The headers editor is open and what is typed there reaches the server.
    assert report["headersEditorVisible"]
    assert REQUEST_ID in report["graphqlPosts"]

    # The result pane shows the seeded database's answer.
    assert json.loads(report["response"])["data"] == expected
    assert expected["products"]["edges"], "the seeded database has products"
    assert screenshot.read_bytes().startswith(b"\x89PNG")
