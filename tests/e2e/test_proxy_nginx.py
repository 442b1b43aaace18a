"""deploy/nginx.conf in a real nginx (Debian's package, as an unprivileged-port process with its own
prefix) in front of two `serve` processes on PostgreSQL and Redis: queries, mutations and a
subscription go through it, the forwarded client address and Host reach the app, and one process
SIGTERMed mid-load costs no request (no reset, no 5xx)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from app.config import PROJECT_ROOT
from app.seed import SeedSize
from bench.servers import ServerProcess, free_port
from bench.servers import subprocess_server as live_server
from tests.auth_support import signing_pem
from tests.conftest import MakeDb
from tests.e2e.ws_support import TRANSPORT_WS
from tests.events_support import (
    create_order,
    customer_key,
    drop_keys,
    order_id_of,
    shared_redis,
    unique_prefix,
    wait_for,
)
from tests.services import unavailable

SAMPLE = PROJECT_ROOT / "deploy" / "nginx.conf"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SIZE = SeedSize(products=5, users=3, orders=0)
QUERY = {"query": "query Shelf { products(first: 3) { edges { node { sku } } } }"}


def _site(upstreams: list[str], port: int) -> str:
    """The sample, pointed at this test's processes and port; nothing else changes."""
    text = SAMPLE.read_text()
    servers = "".join(f"    server {address};\n" for address in upstreams)
    text, replaced = re.subn(r"(    server 127\.0\.0\.1:800\d;\n)+", servers, text)
    assert replaced == 1, "the sample's upstream block changed shape"
    text, replaced = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", text)
    assert replaced == 1
    return text


@contextmanager
def _nginx(prefix: Path, upstreams: list[str]) -> Iterator[str]:
    if not os.access(NGINX, os.X_OK):
        unavailable("nginx", f"{NGINX} is missing (apt-get install nginx-light)")
    port = free_port()
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "ordergraph.conf").write_text(_site(upstreams, port))
    user = "user root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    include {prefix}/ordergraph.conf;
}}
"""
    )
    with (prefix / "logs" / "stderr.log").open("wb") as errors:
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (prefix / "logs" / "stderr.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _load(
    client: httpx.AsyncClient, base: str, stop: asyncio.Event, results: Counter[str], key: str,
    product: str,
) -> None:  # fmt: skip
    """Queries and order placements through the proxy until told to stop."""
    turn = 0
    while not stop.is_set():
        turn += 1
        try:
            if turn % 4 == 0:
                response = await create_order(client, base, key, product)
                ok = response.status_code == 200 and "errors" not in response.json()
            else:
                response = await client.post(f"{base}/graphql", json=QUERY)
                ok = response.status_code == 200
        except httpx.HTTPError as error:
            results[f"broken: {type(error).__name__}: {error}"] += 1
            continue
        results["ok" if ok else f"status {response.status_code}: {response.text[:200]}"] += 1


async def _next_order_created(
    ws_url: str, key: str, place: asyncio.Event
) -> tuple[str, int | None]:
    """Subscribe through the proxy; once subscribed, ask for an order and return the first one
    delivered (or the close code if the socket is closed first)."""
    async with connect(ws_url, subprotocols=[Subprotocol(TRANSPORT_WS)]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        subscribe = {"query": "subscription { orderCreated { id } }"}
        await ws.send(json.dumps({"type": "subscribe", "id": "o", "payload": subscribe}))
        place.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                return str(message["payload"]["data"]["orderCreated"]["id"]), None
        return "", ws.close_code


async def test_two_processes_behind_nginx(make_db: MakeDb, tmp_path: Path) -> None:
    redis_url = await shared_redis()
    prefix = unique_prefix("nginx")
    db = await make_db("postgresql", "nginx", SIZE)
    key, product = await customer_key(db)
    env = {
        "DATABASE_URL": db.url.url.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "OAUTH_SIGNING_KEY": signing_pem(),
        "SESSION_SECRET": "s" * 40,
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE_SECONDS": "20",
        "EVENTS_RELAY_POLL_SECONDS": "0.2",
        # The load below is one key's; the rate limit is not what this test is about.
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_BURST": "10000",
        "ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000",
        "ANONYMOUS_RATE_LIMIT_BURST": "10000",
        # The shared PostgreSQL serves many test runs: a few connections per process suffice.
        "DB_POOL_SIZE": "4",
        "DB_POOL_MAX_OVERFLOW": "2",
    }
    try:
        with ExitStack() as stack:
            a = stack.enter_context(live_server(env, tmp_path / "a.log", command="serve"))
            b = stack.enter_context(live_server(env, tmp_path / "b.log", command="serve"))
            upstreams = [s.base_url.removeprefix("http://") for s in (a, b)]
            proxy = stack.enter_context(_nginx(tmp_path / "nginx", upstreams))
            await _through_the_proxy(proxy, a, b, key, product)
    finally:
        await drop_keys(redis_url, prefix)


async def _through_the_proxy(
    proxy: str, a: ServerProcess, b: ServerProcess, key: str, product: str
) -> None:
    ws_url = proxy.replace("http://", "ws://") + "/graphql"
    limits = httpx.Limits(max_keepalive_connections=4)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        # A query, a mutation and a subscription delivery, all through nginx.
        assert (await client.post(f"{proxy}/graphql", json=QUERY)).status_code == 200
        place = asyncio.Event()
        subscriber = asyncio.create_task(_next_order_created(ws_url, key, place))
        await asyncio.wait_for(place.wait(), 30)

        async def delivered() -> str | None:
            placed = order_id_of(await create_order(client, proxy, key, product))
            done, _ = await asyncio.wait({subscriber}, timeout=2)
            return placed if done else None

        await wait_for(delivered, "an order event through the proxy")
        received, _ = subscriber.result()
        assert received, "the subscription delivered an order"

        # The app sees the client's forwarded address and the Host with its port.
        forwarded = await client.post(
            f"{proxy}/graphql",
            json=QUERY,
            headers={"X-Forwarded-For": "198.51.100.7", "X-Request-ID": "through-nginx-0001"},
        )
        assert forwarded.headers["x-request-id"] == "through-nginx-0001"
        page = await client.get(f"{proxy}/graphql", headers={"Accept": "text/html"})
        config = re.search(
            r'<script id="graphiql-config" type="application/json">(.*?)</script>', page.text
        )
        assert config, page.text[:500]
        assert json.loads(config.group(1))["url"] == f"{proxy}/graphql", "Host kept its port"

        # Load through the proxy, and SIGTERM one process in the middle of it.
        stop = asyncio.Event()
        results: Counter[str] = Counter()
        clients = [
            asyncio.create_task(_load(client, proxy, stop, results, key, product)) for _ in range(6)
        ]

        async def answered(count: int) -> bool:
            return results["ok"] >= count

        await wait_for(lambda: answered(60), "60 answers before the SIGTERM")
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(a.process.wait, 60)
        before = results["ok"]
        await wait_for(lambda: answered(before + 60), "60 answers after the SIGTERM")
        stop.set()
        await asyncio.gather(*clients)

    assert exit_code in (0, -signal.SIGTERM), a.log_text()
    assert set(results) == {"ok"}, results
    lines = [
        json.loads(line)
        for server in (a, b)
        for line in server.log_text().splitlines()
        if line.startswith("{")
    ]
    access = [line for line in lines if line.get("request_id") == "through-nginx-0001"]
    assert access, "the forwarded request's access line"
    assert access[0]["client"] == "198.51.100.7"
    assert any("stopping: no new connections" in line["message"] for line in lines)
