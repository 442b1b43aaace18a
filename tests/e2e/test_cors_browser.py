"""A single-page app on another origin, in a real Chromium, calls the API over fetch and WebSocket.

The page is served by a small HTTP server on its own port; the API (a real uvicorn process) allows
that page's origin in CORS_ALLOWED_ORIGINS. The same page opened as `localhost` is another origin,
not on the list: the browser then refuses to hand it any answer, and the WebSocket is refused.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import SeedSize
from app.usecases import operators
from bench.servers import subprocess_server as live_server
from tests.auth_support import signing_pem
from tests.conftest import MakeDb
from tests.e2e.test_graphiql_browser import _require_browser_tools
from tests.events_support import customer_key

SCRIPT = Path(__file__).with_name("cors_browser.mjs")
SIZE = SeedSize(products=3, users=3, orders=0)
PAGE = b"<!doctype html><meta charset=utf-8><title>another origin</title><p>single-page app</p>"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _page_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _browse(node: str, page_url: str, api: str, key: str, client: tuple[str, str]) -> Any:
    run = subprocess.run(
        [node, str(SCRIPT), page_url, api, key, *client],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.stdout.strip(), f"the browser script printed no report\n{run.stderr}"
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, f"{report.get('error')}\n{run.stderr}"
    return report


async def test_an_app_on_an_allowed_origin_uses_fetch_and_websocket(
    make_db: MakeDb, tmp_path: Path
) -> None:
    node = _require_browser_tools()
    db = await make_db("sqlite", "cors_e2e", SIZE)
    key, _ = await customer_key(db)
    made = await operators.create_client(
        SqlUnitOfWork.factory(db),
        name="spa-backend",
        grant_types="client_credentials",
        scopes="products:read",
    )
    client = (made.client.client_id, made.secret or "")
    with _page_server() as page_port:
        allowed = f"http://127.0.0.1:{page_port}"
        env = {
            "DATABASE_URL": str(db.url),
            "OAUTH_SIGNING_KEY": signing_pem(),
            "CORS_ALLOWED_ORIGINS": f"{allowed}, https://app.example.com",
        }
        with live_server(env, tmp_path / "server.log") as server:
            ok = _browse(node, f"{allowed}/", server.base_url, key, client)
            other = _browse(node, f"http://localhost:{page_port}/", server.base_url, key, client)

    # The allowed origin gets every answer: a query, a token, its introspection and revocation.
    assert ok["origin"] == allowed
    assert ok["graphql"]["status"] == 200
    email = ok["graphql"]["body"]["data"]["me"]["email"]
    assert "@" in email
    assert ok["graphql"]["requestId"], "X-Request-ID is exposed to the page"
    assert ok["token"] == {"status": 200, "tokenType": "Bearer"}
    assert ok["introspect"] == {"status": 200, "active": True}
    assert ok["revoke"] == {"status": 200}
    # ...and its WebSocket is accepted, authenticated in connection_init, and answers.
    assert ok["websocket"]["seen"][:3] == ["connection_ack", "next", "complete"], ok["websocket"]
    assert ok["websocketData"]["data"] == {"me": {"email": email}}

    # Another origin, not on the list: the browser hands the page nothing, the socket is refused.
    assert other["origin"] == f"http://localhost:{page_port}"
    for name in ("graphql", "token", "introspect", "revoke"):
        assert "failed" in other[name], (name, other[name])
    assert "connection_ack" not in other["websocket"]["seen"]
    assert other["websocket"]["closeCode"] == 1006
