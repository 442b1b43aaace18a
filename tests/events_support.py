"""Shared pieces of the event-broker tests: Redis (shared and private), events, waiting, orders."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from app.db import tables
from app.db.engine import Database
from app.domain.events import Event, EventType, StreamType, new_event
from app.messaging.fanout import Listener
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases import operators as admin
from resolvers.global_id import to_global_id
from tests.services import RUN_ID, unavailable

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
# Reaching it means something hangs; tests wait for outcomes, never for durations.
DEADLINE = 30.0

T = TypeVar("T")

CREATE_ORDER = """mutation($input: CreateOrderInput!) {
  createOrder(input: $input) { order { id } errors { code message } } }"""


def unique_prefix(label: str) -> str:
    """Stream keys of one test: no other run, test or developer shares them."""
    return f"og-test-{RUN_ID}-{label}-{uuid.uuid4().hex[:6]}:"


async def shared_redis() -> str:
    """The machine's Redis, or a skip (a failure in CI) when it is not there."""
    client = Redis.from_url(SHARED_REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        unavailable("Redis", error)
    finally:
        await client.aclose()
    return SHARED_REDIS_URL


async def drop_keys(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A throw-away redis-server on a free port, without persistence, that tests may stop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except FileNotFoundError as error:
            unavailable("redis-server", error)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=15)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """The first truthy answer of `check`; fails (never sleeps longer) past DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def take(listener: Listener[Any], count: int) -> list[Event]:
    """The next `count` events a fanout listener receives."""
    received: list[Event] = []

    async def collect() -> None:
        async for delivery in listener:
            received.append(delivery.event)
            if len(received) == count:
                return

    try:
        await asyncio.wait_for(collect(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"received {len(received)} of {count} events") from None
    return received


def new_stock_event(version: int = 1) -> Event:
    """A stock change on a new stream (no product row needed: the store keeps facts)."""
    return new_event(
        EventType.PRODUCT_STOCK_CHANGED,
        StreamType.PRODUCT,
        uuid.uuid4(),
        version,
        {"stock": version},
        datetime.now(UTC),
    )


async def record_stock_changes(db: Database, streams: int, per_stream: int) -> list[Event]:
    """Commit `streams * per_stream` events, interleaving the streams, one unit of work each;
    the events as stored (with their sequence numbers), in commit order."""
    stream_ids = [uuid.uuid4() for _ in range(streams)]
    stored: list[Event] = []
    for version in range(1, per_stream + 1):
        for stream_id in stream_ids:
            event = new_event(
                EventType.PRODUCT_STOCK_CHANGED,
                StreamType.PRODUCT,
                stream_id,
                version,
                {"stock": version},
                datetime.now(UTC),
            )
            async with SqlUnitOfWork(db) as uow:
                sequence = await uow.events.append(event)
            stored.append(_with_sequence(event, sequence))
    return stored


def _with_sequence(event: Event, sequence: int) -> Event:
    return Event(
        id=event.id,
        stream_id=event.stream_id,
        stream_type=event.stream_type,
        version=event.version,
        type=event.type,
        occurred_at=event.occurred_at,
        payload=event.payload,
        sequence=sequence,
    )


def assert_in_order_per_stream(delivered: list[dict[str, Any]] | list[Event]) -> None:
    """After dropping duplicates by event ID, each stream's versions come in increasing order."""
    seen: set[str] = set()
    last: dict[str, int] = {}
    for item in delivered:
        if isinstance(item, Event):
            event_id, stream, version = str(item.id), str(item.stream_id), item.version
        else:
            event_id, stream, version = item["id"], item["streamId"], int(item["version"])
        if event_id in seen:
            continue
        seen.add(event_id)
        assert version > last.get(stream, 0), f"stream {stream}: {version} after {last[stream]}"
        last[stream] = version


async def stored_events(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(tables.events).order_by(tables.events.c.sequence))
        return [
            {
                "id": str(row.id),
                "type": row.type,
                "streamId": str(row.stream_id),
                "version": row.version,
                "sequence": row.sequence,
                "publishedAt": row.published_at,
            }
            for row in rows
        ]


async def customer_key(db: Database) -> tuple[str, str]:
    """An API key with orders:write for a seeded customer, and the best-stocked product's id."""
    async with db.read() as conn:
        email = (
            (await conn.execute(select(tables.users.c.email).order_by(tables.users.c.email)))
            .scalars()
            .first()
        )
        product = (
            await conn.execute(
                select(tables.products.c.id).order_by(tables.products.c.stock.desc()).limit(1)
            )
        ).scalar_one()
    assert email is not None
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(db),
        email=email,
        name="events",
        scopes="orders:write,orders:read,products:read",
    )
    return key, to_global_id("Product", product)


async def create_order(
    client: httpx.AsyncClient, base_url: str, key: str, product: str
) -> httpx.Response:
    return await client.post(
        f"{base_url}/graphql",
        json={
            "query": CREATE_ORDER,
            "variables": {"input": {"items": [{"productId": product, "quantity": 1}]}},
        },
        headers={"Authorization": f"Bearer {key}"},
    )


def order_id_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["createOrder"]
    assert payload["errors"] == [], payload
    return str(payload["order"]["id"])
