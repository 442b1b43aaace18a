"""`make bench`, subscriber part: commit-to-delivery latency for 1, 100 and 1,000 subscribers.

FANOUT LEVEL, IN ONE PROCESS: until WebSocket subscriptions land, the subscribers are fanout
listeners inside this process (each with its own consumer task, as a socket would have), not
WebSocket clients. Each measured event is committed through a real unit of work on a SQLite file;
the commit hook wakes the relay, which reads the event back from the store, hands it to the broker
(in process, or Redis Streams when `BENCH_REDIS_URL` is set, with a unique key prefix) and the
broker publishes it into the fanout. Latency = the moment a subscriber's task receives the event
minus the moment the commit returned. Each group is measured on its own: its subscribers are
listening, held for all of its events, then closed before the next group.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from app.config import Settings
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.domain.events import Event, EventType, StreamType, new_event
from app.messaging.broker import Broker, InProcessBroker, RedisStreamsBroker
from app.messaging.fanout import Fanout, Listener
from app.messaging.relay import Relay
from app.unit_of_work import UnitOfWork

GROUPS = (1, 100, 1000)
EVENTS = int(os.environ.get("BENCH_SUBSCRIBER_EVENTS", "200"))


@dataclass
class Row:
    subscribers: int
    p50_ms: float
    p99_ms: float
    samples: int


async def _consume(
    listener: Listener[int],
    arrivals: dict[uuid.UUID, list[float]],
    size: int,
    all_in: asyncio.Event,
) -> None:
    async for delivery in listener:
        received = arrivals[delivery.event.id]
        received.append(time.perf_counter())
        if len(received) == size:
            all_in.set()


async def measure(redis_url: str | None) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        url = DatabaseUrl.parse(f"sqlite:///{Path(tmp) / 'subscribers.sqlite3'}")
        migrate(url)
        db = Database(url, Settings(database_url=str(url)))
        fanout: Fanout[int] = Fanout(lambda event: 0)
        broker: Broker
        prefix = f"og-bench-{uuid.uuid4().hex[:8]}:"
        if redis_url:
            redis_broker = RedisStreamsBroker(redis_url, prefix, fanout.publish)
            await redis_broker.start()
            broker = redis_broker
        else:
            broker = InProcessBroker(fanout.publish)
        relay = Relay(db, broker, poll_interval=60.0)
        await relay.start()
        rows: list[Row] = []
        try:
            for group in GROUPS:
                rows.append(await _group(db, fanout, relay, group))
        finally:
            await relay.stop()
            await broker.close()
            await db.dispose()
            if redis_url:
                client = Redis.from_url(redis_url)
                await client.delete(f"{prefix}events")
                await client.aclose()
        return rows


async def _group(db: Database, fanout: Fanout[int], relay: Relay, size: int) -> Row:
    arrivals: dict[uuid.UUID, list[float]] = {}
    listeners = [fanout.listen([EventType.PRODUCT_STOCK_CHANGED.value]) for _ in range(size)]
    all_in = asyncio.Event()
    tasks = [
        asyncio.create_task(_consume(listener, arrivals, size, all_in)) for listener in listeners
    ]
    latencies: list[float] = []
    stream = uuid.uuid4()
    try:
        for version in range(1, EVENTS + 1):
            event = new_event(
                EventType.PRODUCT_STOCK_CHANGED,
                StreamType.PRODUCT,
                stream,
                version,
                {"stock": version},
                datetime.now(UTC),
            )
            arrivals[event.id] = []
            all_in.clear()
            committed_at = 0.0

            def after_commit(events: list[Event]) -> None:
                nonlocal committed_at
                committed_at = time.perf_counter()
                relay.wake(events)

            async with UnitOfWork(db, after_commit=after_commit) as uow:
                await uow.record(event)
            await all_in.wait()
            latencies.extend(t - committed_at for t in arrivals.pop(event.id))
    finally:
        for listener in listeners:
            listener.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Row(size, statistics.median(ordered) * 1000, p99 * 1000, len(ordered))


def main() -> int:
    redis_url = os.environ.get("BENCH_REDIS_URL") or None
    broker_name = "redis-streams" if redis_url else "in-process"
    print()
    print(f"Subscribers: commit-to-delivery latency, FANOUT LEVEL in one process ({broker_name})")
    print("(fanout listeners, not WebSocket clients; one event at a time; SQLite store)")
    rows = asyncio.run(measure(redis_url))
    print(f"{'subscribers':>12} {'p50 ms':>9} {'p99 ms':>9} {'deliveries':>11}")
    for row in rows:
        print(f"{row.subscribers:>12} {row.p50_ms:>9.2f} {row.p99_ms:>9.2f} {row.samples:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
