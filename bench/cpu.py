"""In-process CPU per request: the app's ASGI callable driven directly, no socket, no wrk.

    .venv/bin/python -m bench.cpu                        # point, list, nested: CPU ms/req
    .venv/bin/python -m bench.cpu --query nested -n 40 --cprofile 25

It serves the bench database (`BENCH_DATABASE_URL`, prepared as `make bench` does) with the
settings the environment gives (e.g. `GRAPHQL_EXECUTOR`), authenticates every request with a
bearer token for the bench's OAuth client, as wrk's requests do, and reports process CPU time per
request, one request at a time and `-c` at once. Unlike `make bench` it measures only the app, so
its figures are stable enough to compare a change with the one before it on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette

from app.config import Settings
from app.db.urls import DatabaseUrl
from app.main import create_app
from app.state import AppState
from bench.credentials import SCOPES, bench_client
from bench.dataset import prepare
from bench.queries import FIRST_PRODUCT, BenchQuery, bench_queries
from bench.run import DEFAULT_DATABASE_URL, RATE_LIMIT_ENV

QUERY_NAMES = {"point": "product by id", "list": "50 users", "nested": "nested users/orders"}


async def call(
    app: Starlette, body: bytes, headers: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    """One POST /graphql through the whole ASGI stack; the status and the decoded answer."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "app": app,
    }
    received = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, json.loads(b"".join(chunks))


async def measure(args: argparse.Namespace, database_url: str, client_id: str) -> None:
    env = {
        "DB_SLOW_STATEMENT_SECONDS": "30",  # the machine may be busy: no log line per statement
        **os.environ,
        **RATE_LIMIT_ENV,
        "DATABASE_URL": database_url,
        "GRAPHIQL": "false",
    }
    app = create_app(Settings.from_env(env))
    async with app.router.lifespan_context(app):
        state: AppState = app.state.og
        token, _ = state.auth.tokens.mint(
            client_id=client_id, user_id=None, scope=" ".join(sorted(SCOPES))
        )
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "authorization": f"Bearer {token}",
        }
        _, first = await call(app, json.dumps({"query": FIRST_PRODUCT}).encode(), headers)
        product_id = first["data"]["products"]["edges"][0]["node"]["id"]
        queries = {q.name: q for q in bench_queries(product_id)}
        for name in args.query:
            await _measure_one(app, queries[QUERY_NAMES[name]], name, headers, args)


async def _measure_one(
    app: Starlette,
    query: BenchQuery,
    name: str,
    headers: Mapping[str, str],
    args: argparse.Namespace,
) -> None:
    body = json.dumps(query.body()).encode()
    status, answer = await call(app, body, headers)
    if status != 200 or answer.get("errors"):
        raise SystemExit(f"{name}: HTTP {status}: {json.dumps(answer)[:500]}")
    query.check(answer["data"])
    for _ in range(args.warmup):
        await call(app, body, headers)
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.n):
            await call(app, body, headers)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.cprofile)
        stats.sort_stats("tottime").print_stats(args.cprofile)
        return
    started = time.process_time()
    for _ in range(args.n):
        await call(app, body, headers)
    sequential = (time.process_time() - started) * 1000 / args.n
    rounds = max(1, args.n // args.c)
    started = time.process_time()
    for _ in range(rounds):
        await asyncio.gather(*(call(app, body, headers) for _ in range(args.c)))
    concurrent = (time.process_time() - started) * 1000 / (rounds * args.c)
    print(
        f"{name:<8} CPU ms/req: {sequential:7.3f} one at a time, {concurrent:7.3f} with "
        f"{args.c} at once ({args.n} requests each)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--query", action="append", choices=sorted(QUERY_NAMES), help="repeatable; default all"
    )
    parser.add_argument("-n", type=int, default=400, help="requests per measurement")
    parser.add_argument("-c", type=int, default=32, help="requests at once (concurrent figure)")
    parser.add_argument("--warmup", type=int, default=50, help="requests before measuring")
    parser.add_argument("--cprofile", type=int, metavar="TOP", help="profile; print TOP lines")
    args = parser.parse_args(argv)
    args.query = args.query or ["point", "list", "nested"]
    url = DatabaseUrl.parse(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)
    prepare(url)  # the bench's data set, seeded once
    database_url = url.url.render_as_string(hide_password=False)
    client_id = bench_client(database_url).client_id
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; without it the default loop serves
        asyncio.run(measure(args, database_url, client_id))
    else:
        uvloop.run(measure(args, database_url, client_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
