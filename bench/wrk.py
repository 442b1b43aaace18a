"""Running wrk with bench/graphql.lua and reading the line its done() hook prints."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("graphql.lua")
RESULT_PREFIX = "BENCH_RESULT "
INSTALL_HINT = "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), then rerun"


class WrkError(RuntimeError):
    """wrk failed or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non200: int
    graphql_errors: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


def parse_result(output: str) -> WrkResult:
    """The figures from wrk's output; fails if the Lua done() hook printed none."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            raw: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return WrkResult(
                requests=int(raw["requests"]),
                duration_s=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
                mean_ms=raw["mean_us"] / 1000,
                non200=int(raw["non200"]),
                graphql_errors=int(raw["graphql_errors"]),
                socket_errors=sum(
                    int(raw[key])
                    for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
                ),
            )
    raise WrkError(f"wrk printed no {RESULT_PREFIX.strip()} line:\n{output}")


def header_options(headers: dict[str, str]) -> list[str]:
    options: list[str] = []
    for name, value in headers.items():
        options += ["-H", f"{name}: {value}"]
    return options


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(INSTALL_HINT)
    return path


def run_wrk(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    seconds: float,
    connections: int,
    threads: int,
) -> WrkResult:
    """One wrk run; subprocess.run kills wrk if this process is interrupted meanwhile."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="og-bench-") as file:
        json.dump(body, file)
        file.flush()
        command = [
            wrk_path(),
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            *header_options(headers),
            f"--script={LUA_SCRIPT}",
            url,
            "--",
            file.name,
        ]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}:\n{completed.stderr}")
    return parse_result(completed.stdout)
