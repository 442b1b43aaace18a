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
import time
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
    process: subprocess.Popen[bytes] | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(
    env: Mapping[str, str], log: Path, *, command: str | None = None
) -> Iterator[LiveServer]:
    """Serve the app with these extra environment variables until the block ends.

    Without `command`, uvicorn serves `app.main:create_app` on a socket bound here; with one,
    the operators' entry point runs it (`python -m app serve`, `python -m app dev`), which binds
    HOST:PORT itself, so a free port is chosen for it.
    """
    pass_fds: tuple[int, ...] = ()
    listener: socket.socket | None = None
    if command is None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        argv = [
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
        pass_fds = (listener.fileno(),)
        extra: dict[str, str] = {}
    else:
        port = _free_port()
        argv = [sys.executable, "-m", "app", command]
        extra = {"HOST": "127.0.0.1", "PORT": str(port)}
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env, **extra},
            pass_fds=pass_fds,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    if listener is not None:
        # The child holds the socket now; if it dies, connecting fails instead of hanging.
        listener.close()
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        _wait_until_healthy(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(server: LiveServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}\n{server.log_text()}")
        try:
            response = httpx.get(f"{server.base_url}/healthz", timeout=5)
        except httpx.HTTPError:
            response = None
        if response is not None:
            if response.status_code != 200:
                raise RuntimeError(f"/healthz answered {response.status_code}\n{server.log_text()}")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start in time\n{server.log_text()}")
        time.sleep(0.1)
