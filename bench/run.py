"""`make bench`: seed the benchmark database, serve it, and measure three queries with wrk.

Everything this starts (the servers, wrk) is stopped before it returns, however it returns.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from app.config import PROJECT_ROOT
from app.db.urls import DatabaseUrl
from bench.credentials import (
    CLIENT_NAME,
    ClientCredentials,
    CredentialsError,
    bench_client,
    fetch_token,
)
from bench.dataset import Dataset, NotOurDatabase, prepare
from bench.queries import FIRST_PRODUCT, BenchQuery, ShapeError, bench_queries, cache_queries
from bench.servers import QUIET, exit_on_sigterm, subprocess_server
from bench.wrk import WrkError, WrkResult, run_wrk, wrk_path

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ordergraph_bench"
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The bench cannot produce trustworthy figures; the message says why."""


@dataclass(frozen=True)
class Options:
    database_url: str
    duration: float
    warmup: float
    connections: int
    threads: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Options:
        return cls(
            database_url=env.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
            duration=_number(env, "BENCH_DURATION", 10.0, minimum=1.0),
            warmup=_number(env, "BENCH_WARMUP", 3.0, minimum=0.0),
            connections=int(_number(env, "BENCH_CONNECTIONS", 32, minimum=1)),
            threads=int(_number(env, "BENCH_THREADS", 2, minimum=1)),
        )


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BenchError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise BenchError(f"{name} must be at least {minimum:g}, not {raw}")
    return value


def request_headers(token: str) -> dict[str, str]:
    """Every GraphQL request the bench sends (httpx and wrk alike) carries these headers: the
    API serves users and orders only to a principal with scopes, so each carries the bench
    client's access token."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
    }


# The per-client token bucket (default 600 a minute, burst 60) would otherwise be what wrk
# measures: the bench's one client sends thousands of requests a second. The anonymous bucket
# is per address, and every bench client (the subscribers' thousand sockets) is on loopback.
# Query-cost budgets are off for the same reason (costs are still computed and reported).
RATE_LIMIT_ENV = {
    "RATE_LIMIT_PER_MINUTE": "100000000",
    "RATE_LIMIT_BURST": "1000000",
    "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000000",
    "ANONYMOUS_RATE_LIMIT_BURST": "1000000",
    "QUERY_BUDGET": "0",
}
# The per-process socket and subscription caps (WS_MAX_*), above what the subscriber bench and the
# soak open from one address with one credential.
SOCKET_LIMITS_ENV = {
    "WS_MAX_SOCKETS_PER_ADDRESS": "30000",
    "WS_MAX_SOCKETS_PER_PRINCIPAL": "30000",
    "WS_MAX_SUBSCRIPTIONS_PER_ADDRESS": "30000",
    "WS_MAX_SUBSCRIPTIONS_PER_PRINCIPAL": "30000",
}


def cpu_ticks(stat: str) -> int:
    """utime + stime from a /proc/<pid>/stat line, in clock ticks.

    The command name (field 2) may hold spaces and parentheses, so fields are counted after the
    last ')': state is field 3 there, utime field 14 and stime field 15.
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[14 - 3]) + int(fields[15 - 3])


def process_cpu_seconds(pid: int) -> float:
    return cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / CLOCK_TICKS


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    token: str = ""  # the bench client's access token, from this server

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def server(
    database_url: str,
    credentials: ClientCredentials,
    http: httpx.Client,
    *,
    debug: bool,
    log_path: Path,
    cache: bool = False,
) -> Iterator[Server]:
    """The app in one uvicorn process, in its own process group, killed on exit; `token` is
    set once it answers.

    It is `python -m app serve` less the migration (done by `prepare`) and the access log: one
    log line per request is not what the bench measures. Settings come from the environment,
    as in production. The cache is off unless `cache` (the cache's own comparison): the other
    figures measure the work of answering, not of remembering an answer.
    """
    env = {
        "DATABASE_URL": database_url,
        "DEBUG": "true" if debug else "false",
        **RATE_LIMIT_ENV,
        "CACHE_ENABLED": "true" if cache else "false",
    }
    with subprocess_server(
        env, log_path, uvicorn_args=QUIET, startup_timeout=30.0, tcp=True
    ) as process:
        running = Server(process.process, process.base_url, log_path)
        running.token = fetch_token(http, running.url, credentials)
        yield running


def post(client: httpx.Client, running: Server, body: dict[str, Any]) -> dict[str, Any]:
    """One GraphQL request that must succeed: HTTP 200 and no `errors`."""
    response = client.post(
        f"{running.url}/graphql", json=body, headers=request_headers(running.token)
    )
    if response.status_code != 200:
        raise BenchError(f"HTTP {response.status_code}: {response.text[:500]}")
    answer: dict[str, Any] = response.json()
    if answer.get("errors"):
        raise BenchError(f"GraphQL errors: {json.dumps(answer['errors'])[:500]}")
    return answer


def first_product_id(client: httpx.Client, running: Server) -> str:
    data = post(client, running, {"query": FIRST_PRODUCT})["data"]
    edges = data["products"]["edges"]
    if not edges:
        raise BenchError("the benchmark database has no products")
    return str(edges[0]["node"]["id"])


@dataclass(frozen=True)
class SqlCost:
    statements: int
    round_trips: int  # waits for the server: statements, and preparing, BEGIN, COMMIT…


def count_statements(client: httpx.Client, running: Server, query: BenchQuery) -> SqlCost:
    """Statements and round trips of one request to a DEBUG server, after a first request has
    warmed the pool (and prepared the statements on its connection)."""
    post(client, running, query.body())
    debug = post(client, running, query.body())["extensions"]["debug"]
    return SqlCost(int(debug["sqlStatements"]), int(debug["sqlRoundTrips"]))


def rss_mib(pid: int) -> float:
    """The process's resident memory (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


def check_answers(client: httpx.Client, running: Server, queries: list[BenchQuery]) -> None:
    for query in queries:
        answer = post(client, running, query.body())
        try:
            query.check(answer["data"])
        except ShapeError as error:
            raise BenchError(f"{query.name}: unexpected answer: {error}") from None


@dataclass(frozen=True)
class Measurement:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_ms_per_request: float
    sql_per_request: int
    round_trips_per_request: int
    non200: int
    graphql_errors: int
    socket_errors: int


def wait_until_idle(pid: int, *, interval: float = 0.3, limit: float = 120.0) -> None:
    """Return once the server stops burning CPU.

    When wrk stops it drops its connections, but the server still finishes the requests they
    had in flight; measuring before that backlog drains would charge it to the next run.
    """
    deadline = time.monotonic() + limit
    last = process_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = process_cpu_seconds(pid)
        if now - last <= 0.02:
            return
        last = now
    raise BenchError(f"the server was still busy {limit:g} s after wrk stopped")


def cpu_ms_per_request(cpu_seconds: float, completed: int, in_flight: int) -> float:
    """Server CPU per request, counting the requests wrk abandoned at the end of its run.

    wrk keeps one request outstanding per connection, so when it stops, `connections` requests
    are in flight; the server completes them (its CPU is read after it goes idle), so they are
    counted too. Without that the slowest queries, with few requests per run, look far costlier.
    """
    handled = completed + in_flight
    return cpu_seconds * 1000 / handled if completed else 0.0


def measure(running: Server, query: BenchQuery, options: Options, sql: SqlCost) -> Measurement:
    url = f"{running.url}/graphql"
    headers = request_headers(running.token)
    common = {"connections": options.connections, "threads": options.threads}
    if options.warmup > 0:
        run_wrk(url, query.body(), headers, seconds=options.warmup, **common)
    wait_until_idle(running.pid)
    before = process_cpu_seconds(running.pid)
    result: WrkResult = run_wrk(url, query.body(), headers, seconds=options.duration, **common)
    wait_until_idle(running.pid)
    cpu = process_cpu_seconds(running.pid) - before
    return Measurement(
        name=query.name,
        requests=result.requests,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p90_ms=result.p90_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        cpu_ms_per_request=cpu_ms_per_request(cpu, result.requests, options.connections),
        sql_per_request=sql.statements,
        round_trips_per_request=sql.round_trips,
        non200=result.non200,
        graphql_errors=result.graphql_errors,
        socket_errors=result.socket_errors,
    )


def table(rows: list[Measurement]) -> str:
    head = (
        f"{'query':<22}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}"
        f"{'SQL/req':>9}{'trips/req':>10}{'non-200':>9}{'gql err':>9}{'sock err':>9}"
    )
    lines = [head, "-" * len(head)]
    for m in rows:
        lines.append(
            f"{m.name:<22}{m.requests:>9d}{m.rps:>9.1f}{m.p50_ms:>9.2f}{m.p99_ms:>9.2f}"
            f"{m.cpu_ms_per_request:>12.3f}{m.sql_per_request:>9d}"
            f"{m.round_trips_per_request:>10d}{m.non200:>9d}"
            f"{m.graphql_errors:>9d}{m.socket_errors:>9d}"
        )
    return "\n".join(lines)


def _git_commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip() or None


def bench(options: Options, out: TextIO) -> dict[str, Any]:
    wrk_path()  # fail before the slow seeding if wrk is missing
    url = DatabaseUrl.parse(options.database_url)
    print(f"preparing {url} …", file=out, flush=True)
    dataset: Dataset = prepare(url)
    print(
        f"data set {dataset.version} ({'seeded now' if dataset.reseeded else 'already seeded'}): "
        + ", ".join(f"{n} {t}" for t, n in dataset.counts.items()),
        file=out,
        flush=True,
    )
    database_url = url.url.render_as_string(hide_password=False)

    credentials = bench_client(database_url)
    print(f"OAuth client {credentials.client_id} ({CLIENT_NAME})", file=out, flush=True)

    with httpx.Client(timeout=30.0) as client:
        print("counting SQL statements on a DEBUG server …", file=out, flush=True)
        with server(
            database_url,
            credentials,
            client,
            debug=True,
            log_path=RESULTS_DIR / "server-debug.log",
        ) as dbg:
            queries = bench_queries(first_product_id(client, dbg))
            check_answers(client, dbg, queries)
            statements = {q.name: count_statements(client, dbg, q) for q in queries}

        rows: list[Measurement] = []
        with server(
            database_url, credentials, client, debug=False, log_path=RESULTS_DIR / "server.log"
        ) as prod:
            check_answers(client, prod, queries)
            rss_before = rss_mib(prod.pid)
            for query in queries:
                print(
                    f"measuring {query.name}: {options.warmup:g} s warm-up, "
                    f"{options.duration:g} s at {options.connections} connections …",
                    file=out,
                    flush=True,
                )
                rows.append(measure(prod, query, options, statements[query.name]))
            rss_after = rss_mib(prod.pid)

        cached = cache_comparison(database_url, credentials, client, queries[0], options, out)

    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "connections": options.connections,
            "wrk_threads": options.threads,
            "server": "python -m uvicorn app.main:create_app --factory "
            + " ".join(QUIET)
            + " (one process, DEBUG=false)",
            "server_env": dict(RATE_LIMIT_ENV),
        },
        "dataset": asdict(dataset),
        "results": [asdict(row) for row in rows],
        "cache": [asdict(row) for row in cached],
        # The measured server's resident memory once it answered, and after every query's run.
        "rss_mib": {"before": round(rss_before, 1), "after": round(rss_after, 1)},
    }
    print("\n" + table(rows), file=out)
    print(
        f"server RSS: {rss_before:.1f} MiB before the runs, {rss_after:.1f} MiB after "
        f"({rss_after / rss_before:.2f}x)",
        file=out,
    )
    print("\n" + cache_table(cached), file=out)
    print(notes(options), file=out)
    return report


def cache_comparison(
    database_url: str,
    credentials: ClientCredentials,
    client: httpx.Client,
    product_query: BenchQuery,
    options: Options,
    out: TextIO,
) -> list[Measurement]:
    """The point query and a product page with the cache off, then on (warm-up fills it, so
    every measured request is a hit). Rows are named `<query> [cache off|on]`."""
    product_id = (product_query.variables or {})["id"]
    rows: list[Measurement] = []
    for cache in (False, True):
        label = "on" if cache else "off"
        with server(
            database_url,
            credentials,
            client,
            debug=False,
            cache=cache,
            log_path=RESULTS_DIR / f"server-cache-{label}.log",
        ) as running:
            queries = cache_queries(product_id)
            check_answers(client, running, queries)
            for query in queries:
                print(f"measuring {query.name} with the cache {label} …", file=out, flush=True)
                measured = measure(running, query, options, SqlCost(0, 0))
                rows.append(replace(measured, name=f"{query.name} [cache {label}]"))
    return rows


def cache_table(rows: list[Measurement]) -> str:
    """Cache off and on side by side, per query."""
    head = f"{'query':<22}{'off req/s':>11}{'on req/s':>11}{'off CPU ms':>12}{'on CPU ms':>11}"
    lines = [head, "-" * len(head)]
    by_name = {row.name: row for row in rows}
    for name in dict.fromkeys(row.name.rsplit(" [", 1)[0] for row in rows):
        off, on = by_name.get(f"{name} [cache off]"), by_name.get(f"{name} [cache on]")
        if off is None or on is None:
            continue
        lines.append(
            f"{name:<22}{off.rps:>11.1f}{on.rps:>11.1f}"
            f"{off.cpu_ms_per_request:>12.3f}{on.cpu_ms_per_request:>11.3f}"
        )
    return "\n".join(lines)


def notes(options: Options) -> str:
    limits = ", ".join(f"{name}={value}" for name, value in RATE_LIMIT_ENV.items())
    return (
        f"notes: one uvicorn process, DEBUG=false, {options.connections} connections; every "
        f"request carries a client-credentials bearer token ({CLIENT_NAME});\n"
        f"       the server runs with {limits} so no rate limit or budget is hit;\n"
        "       failed = non-200 + GraphQL errors + socket errors/timeouts (wrk)."
    )


def main() -> int:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        options = Options.from_env(os.environ)
        report = bench(options, sys.stdout)
    except (BenchError, WrkError, NotOurDatabase, CredentialsError) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "latest.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(PROJECT_ROOT)}")
    problems = problems_of(report["results"] + report["cache"])
    for problem in problems:
        print(f"{'error' if problem.fatal else 'warning'}: {problem.message}", file=sys.stderr)
    # Failed requests are figures too (printed above and in latest.json); only a query with no
    # completed request at all leaves nothing measured.
    return 1 if any(problem.fatal for problem in problems) else 0


@dataclass(frozen=True)
class Problem:
    message: str
    fatal: bool  # nothing was measured for this query


def problems_of(results: list[dict[str, Any]]) -> list[Problem]:
    """Why figures should not be trusted as they stand: failed or missing requests."""
    problems: list[Problem] = []
    for r in results:
        failed = r["non200"] + r["graphql_errors"] + r["socket_errors"]
        if r["requests"] == 0:
            problems.append(
                Problem(f"{r['name']}: no request completed; lengthen BENCH_DURATION", True)
            )
        elif failed:
            problems.append(
                Problem(
                    f"{r['name']}: {failed} of {r['requests']} requests failed "
                    f"({r['non200']} non-200, {r['graphql_errors']} with GraphQL errors, "
                    f"{r['socket_errors']} socket errors or timeouts); "
                    "see bench/results/server.log",
                    False,
                )
            )
    return problems


if __name__ == "__main__":
    sys.exit(main())
