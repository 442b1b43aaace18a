"""The Redis Streams broker: relay -> stream -> every reader -> its fanout, in sequence order; a
reader resumes after its last entry; prefixes keep deployments sharing one Redis apart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from app.domain.events import Event, EventType
from app.messaging.broker import BrokerUnavailable, RedisStreamsBroker
from app.messaging.fanout import Fanout
from app.messaging.relay import Relay
from app.repositories import events as store
from tests.conftest import MakeDb
from tests.events_support import (
    drop_keys,
    new_stock_event,
    private_redis,
    record_stock_changes,
    shared_redis,
    take,
    unique_prefix,
    wait_for,
)

STOCK = [EventType.PRODUCT_STOCK_CHANGED.value]
Brokers = Callable[[str, str], "tuple[RedisStreamsBroker, Fanout[int]]"]


@pytest.fixture
async def brokers() -> AsyncIterator[Callable[..., object]]:
    """Started brokers (one per simulated process), each with its own fanout; closed after."""
    async with AsyncExitStack() as stack:

        async def make(url: str, prefix: str) -> tuple[RedisStreamsBroker, Fanout[int]]:
            fanout: Fanout[int] = Fanout(lambda event: event.sequence or 0)
            broker = RedisStreamsBroker(url, prefix, fanout.publish, block_ms=500)
            await broker.start()
            stack.push_async_callback(broker.close)
            return broker, fanout

        yield make


async def test_every_reader_gets_the_relayed_events_in_sequence_order(
    backend: str, make_db: MakeDb, brokers: Callable[..., object]
) -> None:
    url = await shared_redis()
    prefix = unique_prefix("order")
    db = await make_db(backend, "redis_order")
    (writer, here), (_, there) = [await brokers(url, prefix), await brokers(url, prefix)]  # type: ignore[misc]
    listeners = [here.listen(STOCK), there.listen(STOCK)]
    try:
        committed = await record_stock_changes(db, streams=3, per_stream=5)
        assert await Relay(db, writer, batch=4).drain() == 15
        expected = [event.id for event in committed]
        for listener in listeners:
            received = await take(listener, 15)
            assert [event.id for event in received] == expected
            assert [event.sequence for event in received] == [e.sequence for e in committed]
        async with db.read() as conn:
            assert await store.unpublished_count(conn) == 0
    finally:
        await drop_keys(url, prefix)


async def test_a_reader_resumes_after_its_last_entry(
    make_db: MakeDb, brokers: Callable[..., object]
) -> None:
    db = await make_db("sqlite", "redis_resume")
    with private_redis() as redis:
        writer, _ = await brokers(redis.url, "resume:")  # type: ignore[misc]
        reader, fanout = await brokers(redis.url, "resume:")  # type: ignore[misc]
        listener = fanout.listen(STOCK)
        relay = Relay(db, writer)
        first = await record_stock_changes(db, streams=1, per_stream=3)
        assert await relay.drain() == 3
        assert [e.id for e in await take(listener, 3)] == [e.id for e in first]
        stopped_at = reader.last_id

        # Redis drops every client connection; whatever is appended meanwhile must still arrive.
        admin = Redis.from_url(redis.url)
        await admin.client_kill_filter(_type="normal", skipme=True)
        await admin.aclose()
        second = await record_stock_changes(db, streams=1, per_stream=3)

        async def relayed() -> bool:
            try:
                return await relay.drain() == 3
            except BrokerUnavailable:
                return False  # the writer's killed connection; the next try reconnects

        await wait_for(relayed, "the relay to append after the disconnection")
        assert [e.id for e in await take(listener, 3)] == [e.id for e in second]

        # A reader started from an entry ID reads exactly what came after it.
        late, late_fanout = await brokers(redis.url, "resume:")  # type: ignore[misc]
        await late.close()
        late_listener = late_fanout.listen(STOCK)
        resumed = RedisStreamsBroker(redis.url, "resume:", late_fanout.publish, block_ms=500)
        await resumed.start(from_id=stopped_at)
        try:
            assert [e.id for e in await take(late_listener, 3)] == [e.id for e in second]
        finally:
            await resumed.close()


async def test_prefixes_keep_deployments_apart(brokers: Callable[..., object]) -> None:
    url = await shared_redis()
    ours, theirs = unique_prefix("ours"), unique_prefix("theirs")
    (our_broker, our_fanout), (their_broker, their_fanout) = [
        await brokers(url, ours),  # type: ignore[misc]
        await brokers(url, theirs),  # type: ignore[misc]
    ]
    our_listener, their_listener = our_fanout.listen(STOCK), their_fanout.listen(STOCK)
    try:
        mine: list[Event] = [new_stock_event() for _ in range(3)]
        other = new_stock_event()
        await our_broker.append(mine)
        await their_broker.append([other])
        assert [e.id for e in await take(our_listener, 3)] == [e.id for e in mine]
        assert [e.id for e in await take(their_listener, 1)] == [other.id]
        client = Redis.from_url(url, decode_responses=True)
        try:
            assert our_broker.key == f"{ours}events"
            assert await client.xlen(f"{ours}events") == 3
            assert await client.xlen(f"{theirs}events") == 1
        finally:
            await client.aclose()
    finally:
        await drop_keys(url, ours)
        await drop_keys(url, theirs)
