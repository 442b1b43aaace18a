"""The relay and the in-process broker: committed events reach fanout listeners, in order, once
marked; rolled-back work publishes nothing; a relay started later catches up."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.engine import Database
from app.domain.events import EventType
from app.messaging.broker import BrokerUnavailable, InProcessBroker
from app.messaging.fanout import Fanout
from app.messaging.relay import Relay
from app.repositories import events as store
from app.repositories.events import EventRepository
from app.repositories.unit_of_work import SqlUnitOfWork
from tests.conftest import MakeDb
from tests.events_support import new_stock_event, record_stock_changes, stored_events, take

STOCK = [EventType.PRODUCT_STOCK_CHANGED.value]
SUBSCRIBERS = 100


def _fanout() -> Fanout[int]:
    return Fanout(lambda event: event.sequence or 0)


async def test_committed_events_reach_a_hundred_listeners_in_sequence_order(
    backend: str, make_db: MakeDb
) -> None:
    db = await make_db(backend, "relay_in_process")
    fanout = _fanout()
    listeners = [fanout.listen(STOCK, max_queued=1000) for _ in range(SUBSCRIBERS)]
    relay = Relay(db, InProcessBroker(fanout.publish), batch=7)  # several batches

    committed = await record_stock_changes(db, streams=3, per_stream=10)
    assert await relay.drain() == 30

    expected = [event.id for event in sorted(committed, key=lambda e: e.sequence or 0)]
    for listener in listeners:
        assert [event.id for event in await take(listener, 30)] == expected
    async with db.read() as conn:
        assert await store.unpublished_count(conn) == 0
    assert await relay.drain() == 0, "published events are not published again"


async def test_rolled_back_work_publishes_nothing(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "relay_rollback")
    await record_stock_changes(db, streams=1, per_stream=1)
    [kept] = await stored_events(db)

    class Abort(Exception):
        pass

    async def doomed() -> None:
        async with SqlUnitOfWork(db) as uow:
            await uow.record(new_stock_event(), new_stock_event())
            raise Abort

    with pytest.raises(Abort):
        await doomed()
    fanout = _fanout()
    listener = fanout.listen(STOCK)
    assert await Relay(db, InProcessBroker(fanout.publish)).drain() == 1
    [event] = await take(listener, 1)
    assert str(event.id) == kept["id"]


async def test_the_commit_hook_wakes_a_running_relay(backend: str, make_db: MakeDb) -> None:
    db = await make_db(backend, "relay_wake")
    fanout = _fanout()
    listener = fanout.listen(STOCK)
    # A poll far beyond the test's deadline: only the commit's wake-up can deliver in time.
    relay = Relay(db, InProcessBroker(fanout.publish), poll_interval=3600)
    await relay.start()
    try:
        woken: list[Any] = []

        def after_commit(events: Any) -> None:
            woken.append(events)
            relay.wake(events)

        async with SqlUnitOfWork(db, after_commit=after_commit) as uow:
            await uow.record(new_stock_event())
        [event] = await take(listener, 1)
        assert [[e.id for e in events] for events in woken] == [[event.id]]
    finally:
        await relay.stop()


async def test_a_relay_started_later_catches_up(backend: str, make_db: MakeDb) -> None:
    db: Database = await make_db(backend, "relay_catch_up")
    committed = await record_stock_changes(db, streams=2, per_stream=3)
    fanout = _fanout()
    listener = fanout.listen(STOCK)
    relay = Relay(db, InProcessBroker(fanout.publish), poll_interval=3600)
    await relay.start()  # the start itself catches up; no commit wakes it
    try:
        received = await take(listener, 6)
    finally:
        await relay.stop()
    assert [e.id for e in received] == [e.id for e in committed]


async def test_a_late_commit_is_numbered_after_what_was_numbered_before_it(
    make_db: MakeDb,
) -> None:
    """PostgreSQL hands out sequence numbers before commit; positions follow what the relay saw
    committed, so nothing ever appears behind a position a subscriber already has."""
    db = await make_db("postgresql", "relay_late_commit")
    fanout = _fanout()
    listener = fanout.listen(STOCK, max_queued=100)
    relay = Relay(db, InProcessBroker(fanout.publish))
    late = new_stock_event()
    async with db.write() as conn:
        late_sequence = await EventRepository(conn).append(late)  # drawn first, committed last
        [early] = await record_stock_changes(db, streams=1, per_stream=1)
        assert await relay.drain() == 1
    assert early.sequence is not None
    assert late_sequence < early.sequence
    assert await relay.drain() == 1
    received = await take(listener, 2)
    assert [e.id for e in received] == [early.id, late.id]
    assert received[0].position is not None
    assert received[1].position == received[0].position + 1


async def test_a_batch_appended_twice_reaches_listeners_once(backend: str, make_db: MakeDb) -> None:
    """The relay's transaction dies after the broker took the batch: the same events, at the same
    positions, are appended again, and readers drop them."""
    db = await make_db(backend, "relay_twice")
    fanout = _fanout()
    listener = fanout.listen(STOCK, max_queued=100)
    inner = InProcessBroker(fanout.publish)

    class LosesTheFirstAcknowledgement:
        name = "flaky"
        calls = 0
        delivering = True

        async def append(self, events: Any) -> None:
            await inner.append(events)
            self.calls += 1
            if self.calls == 1:
                raise BrokerUnavailable("connection lost after the append")

        async def start(self) -> None: ...
        async def health(self) -> Any: ...
        async def close(self) -> None: ...

    relay = Relay(db, LosesTheFirstAcknowledgement())
    committed = await record_stock_changes(db, streams=2, per_stream=2)
    with pytest.raises(BrokerUnavailable):
        await relay.drain()
    assert await relay.drain() == 4
    assert [e.id for e in await take(listener, 4)] == [e.id for e in committed]
    more = await record_stock_changes(db, streams=1, per_stream=1)
    assert await relay.drain() == 1
    assert [e.id for e in await take(listener, 1)] == [more[0].id], "nothing twice before it"


async def test_the_relay_reports_outbox_lag_and_delays(backend: str, make_db: MakeDb) -> None:
    from app.observability import metrics

    db = await make_db(backend, "relay_metrics")
    relay = Relay(db, InProcessBroker(_fanout().publish), batch=4)
    delays_before = metrics.RELAY_DELAY._sum.get(), _count(metrics.RELAY_DELAY)
    await record_stock_changes(db, streams=2, per_stream=5)

    assert await relay.relay_once() == 4
    assert metrics.OUTBOX_LAG_EVENTS._value.get() == 4, "a full batch was waiting"
    assert metrics.OUTBOX_LAG_SECONDS._value.get() >= 0
    assert await relay.drain() == 6
    assert metrics.OUTBOX_LAG_EVENTS._value.get() == 0, "caught up"
    assert metrics.OUTBOX_LAG_SECONDS._value.get() == 0
    assert _count(metrics.RELAY_DELAY) - delays_before[1] == 10
    assert metrics.RELAY_DELAY._sum.get() >= delays_before[0]


def _count(histogram: Any) -> float:
    return float(sum(bucket.get() for bucket in histogram._buckets))
