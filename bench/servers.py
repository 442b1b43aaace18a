"""The two ways tests and the bench run the app on a loopback port: inside the caller's event
loop (`in_process`), or as its own uvicorn process (`subprocess_server`). Nothing else starts one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
import uvicorn
from starlette.applications import Starlette

from app.config import PROJECT_ROOT

STARTUP_TIMEOUT = 60.0
# `python -m app serve`'s uvicorn, as the bench runs it: no access log (one line per request is
# not what it measures) and no forwarding headers.
QUIET = ("--no-proxy-headers", "--log-level", "info", "--no-access-log")


@asynccontextmanager
async def in_process(app: Starlette, *, websockets: bool = False) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) in this event loop and yield its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        ws="websockets-sansio" if websockets else "none",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error
            raise RuntimeError("uvicorn exited before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class ServerProcess:
    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def subprocess_server(
    env: Mapping[str, str],
    log: Path,
    *,
    command: str | None = None,
    factory: str = "app.main:create_app",
    uvicorn_args: Sequence[str] = ("--log-level", "warning"),
    startup_timeout: float = STARTUP_TIMEOUT,
    tcp: bool = False,
) -> Iterator[ServerProcess]:
    """The app in its own process (and process group) with these extra environment variables,
    answering /healthz, until the block ends; then stopped (SIGTERM, then SIGKILL).

    Without `command`, uvicorn serves `factory` on a socket bound here and handed over (`--fd`):
    the port is known before the server starts and nobody can take it in between. With one, the
    operators' entry point runs it (`python -m app serve`, `dev`), binding HOST:PORT itself.

    `tcp` makes uvicorn bind a free port itself, as production does. Measurements need it: uvicorn
    wraps an `--fd` socket as AF_UNIX, so its connections never get TCP_NODELAY, and a response
    written in two parts (head, then body) waits out the client's delayed ACK (~40 ms).
    """
    pass_fds: tuple[int, ...] = ()
    listener: socket.socket | None = None
    extra: dict[str, str] = {}
    if command is None and tcp:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", factory, "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port), *uvicorn_args]
    elif command is None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--fd",
            str(listener.fileno()),
            *uvicorn_args,
        ]
        pass_fds = (listener.fileno(),)
    else:
        port = free_port()
        argv = [sys.executable, "-m", "app", command]
        extra = {"HOST": "127.0.0.1", "PORT": str(port)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env, **extra},
            pass_fds=pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if listener is not None:
        # The child holds the socket now; if it dies, connecting fails instead of hanging.
        listener.close()
    server = ServerProcess(f"http://127.0.0.1:{port}", log, process)
    try:
        _wait_until_healthy(server, startup_timeout)
        yield server
    finally:
        _stop(process)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler for bench entry points: exit through every `finally`, which stops the
    servers started here (Python's default SIGTERM ends at once and orphans them)."""
    raise SystemExit(128 + signum)


def _wait_until_healthy(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {server.process.returncode}\n{server.log_text()}"
            )
        try:
            response = httpx.get(f"{server.base_url}/healthz", timeout=5)
        except httpx.HTTPError:
            response = None
        if response is not None:
            if response.status_code != 200:
                raise RuntimeError(f"/healthz answered {response.status_code}\n{server.log_text()}")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start in {timeout:g} s\n{server.log_text()}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
