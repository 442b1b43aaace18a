"""CPU per request in process: the bench's queries through the whole ASGI app, no network.

    .venv/bin/python -m bench.profile                   # both executors, every query
    .venv/bin/python -m bench.profile --executor levels --cprofile nested

`make bench` measures a served process under load (wrk); this measures one request at a time in
this process with `time.process_time`, so a change to execution shows up in seconds and without
noise from other processes, and `--cprofile QUERY` prints where that query's CPU goes. It uses
the bench's database (BENCH_DATABASE_URL, seeded as `make bench` seeds it) and its OAuth client.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from base64 import b64encode
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson

from app.auth.scopes import scope_string
from app.config import Settings
from app.db.urls import DatabaseUrl
from app.main import create_app
from bench.credentials import GRANT_TYPE, SCOPES, ClientCredentials, bench_client
from bench.dataset import prepare
from bench.queries import FIRST_PRODUCT, BenchQuery, bench_queries
from bench.run import DEFAULT_DATABASE_URL, RATE_LIMIT_ENV

Asgi = Callable[..., Awaitable[None]]
SHORT_NAMES = {"product by id": "point", "50 users": "list", "nested users/orders": "nested"}


async def call(app: Asgi, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One HTTP request through the ASGI app, as a server would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def token(app: Asgi, credentials: ClientCredentials) -> str:
    basic = b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode()).decode()
    status, body = await call(
        app,
        "/oauth/token",
        urlencode({"grant_type": GRANT_TYPE, "scope": scope_string(SCOPES)}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
    )
    if status != 200:
        raise SystemExit(f"no token from /oauth/token ({status}): {body[:200]!r}")
    return str(json.loads(body)["access_token"])


async def graphql(app: Asgi, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    status, raw = await call(app, "/graphql", json.dumps(body).encode(), headers)
    # orjson: a nested answer is 120 KB, and decoding it is the client's work, not the server's.
    answer: dict[str, Any] = orjson.loads(raw)
    if status != 200 or answer.get("errors"):
        raise SystemExit(f"the bench query failed ({status}): {raw[:300]!r}")
    return answer


async def measure(
    executor: str, database_url: str, credentials: ClientCredentials, args: argparse.Namespace
) -> dict[str, float]:
    env = {**os.environ, **RATE_LIMIT_ENV, "DATABASE_URL": database_url}
    env["GRAPHQL_EXECUTOR"] = executor
    env["DEBUG"] = "false"
    # As `make bench` measures (bench.run): answering, not remembering. With the response cache
    # on, the point query is a cache hit, a quarter of its cost.
    env["CACHE_ENABLED"] = "true" if args.cache else "false"
    app = create_app(Settings.from_env(env))
    figures: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {await token(app, credentials)}",
        }
        first = await graphql(app, headers, {"query": FIRST_PRODUCT})
        product_id = first["data"]["products"]["edges"][0]["node"]["id"]
        for query in bench_queries(product_id):
            name = SHORT_NAMES.get(query.name, query.name)
            if args.query and name not in args.query:
                continue
            figures[name] = await _per_request(app, headers, query, args, executor, name)
    return figures


async def _per_request(
    app: Asgi,
    headers: dict[str, str],
    query: BenchQuery,
    args: argparse.Namespace,
    executor: str,
    name: str,
) -> float:
    body = query.body()
    answer = await graphql(app, headers, body)
    query.check(answer["data"])
    for _ in range(args.warmup):
        await graphql(app, headers, body)
    profiler = cProfile.Profile() if name in (args.cprofile or ()) else None
    samples = []
    for _ in range(args.requests):
        if profiler is not None:
            profiler.enable()
        started = time.process_time()
        await graphql(app, headers, body)
        samples.append(time.process_time() - started)
        if profiler is not None:
            profiler.disable()
    if profiler is not None:
        print(f"\n== cProfile: {name}, {executor}, {args.requests} requests ==")
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.lines)
    # The median: a garbage collection or a slow statement in one sample does not move it.
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=["levels", "standard", "both"], default="both")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--query", action="append", choices=sorted(SHORT_NAMES.values()))
    parser.add_argument("--cprofile", action="append", choices=sorted(SHORT_NAMES.values()))
    parser.add_argument(
        "--cache", action="store_true", help="with the cache on (off by default, as make bench)"
    )
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--lines", type=int, default=30, help="cProfile lines shown")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    prepare(DatabaseUrl.parse(database_url))
    credentials = bench_client(database_url)
    executors = ["standard", "levels"] if args.executor == "both" else [args.executor]
    rows = {e: asyncio.run(measure(e, database_url, credentials, args)) for e in executors}
    names = list(next(iter(rows.values())))
    print(f"\nCPU ms per request in process (median of {args.requests}), {database_url}")
    print(f"{'query':<8}" + "".join(f"{e:>11}" for e in executors))
    for name in names:
        print(f"{name:<8}" + "".join(f"{rows[e][name]:>11.2f}" for e in executors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
