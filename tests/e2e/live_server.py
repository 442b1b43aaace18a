"""The real application in a uvicorn process, on a free loopback port, for tests with real clients.

The test binds the listening socket itself (port 0) and hands it to uvicorn with `--fd`: the port
is known before the server starts, no other process can take it in between, and a client that
connects early simply waits in the socket's backlog until uvicorn accepts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import PROJECT_ROOT

STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def live_server(env: Mapping[str, str], log: Path) -> Iterator[LiveServer]:
    """Serve `app.main:create_app` with these extra environment variables until the block ends."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--fd",
        str(listener.fileno()),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            pass_fds=(listener.fileno(),),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    # The child holds the socket now; if it dies, connecting fails instead of hanging.
    listener.close()
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        try:
            response = httpx.get(f"{server.base_url}/healthz", timeout=STARTUP_TIMEOUT)
        except httpx.HTTPError as error:
            raise RuntimeError(f"the server did not start: {error}\n{server.log_text()}") from None
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}\n{server.log_text()}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
