"""The event store as outbox: side effects after commit, once, retried, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import tables
from app.db.engine import Database, track_statements
from app.domain.events import Event, EventType, user_registered
from app.email import Email, InMemoryEmailSender
from app.errors import ServiceUnavailable
from app.main import graphql_context
from app.messaging import dispatcher as dispatcher_module
from app.messaging import handlers
from app.messaging.bus import EventBus, Handler, logging_middleware
from app.messaging.dispatcher import Dispatcher
from app.repositories import events as store
from app.repositories.unit_of_work import SqlUnitOfWork
from resolvers.global_id import from_global_id, to_global_id
from resolvers.schema import schema
from tests.conftest import MakeDb
from tests.integration.helpers import Shop, add_product, new_shop

# A bound on waiting for a condition; reaching it means something hangs.
WAIT = 30.0

CREATE = """mutation($input: CreateOrderInput!) {
  createOrder(input: $input) { order { id } errors { code } } }"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def place_orders(
    shop: Shop, count: int, after_commit: Any = None, quantity: int = 1
) -> list[str]:
    product = await add_product(shop.db, stock=1000)
    ids = []
    for n in range(count):
        principal = shop.customers[n % len(shop.customers)]
        context = graphql_context(shop.db, principal=principal, after_commit=after_commit)
        items = [{"productId": to_global_id("Product", product.id), "quantity": quantity}]
        result = await schema.execute(
            CREATE, variable_values={"input": {"items": items}}, context_value=context
        )
        assert result.errors is None, result.errors
        assert result.data is not None
        ids.append(result.data["createOrder"]["order"]["id"])
    return ids


async def unhandled(db: Database) -> int:
    async with db.read() as conn:
        stmt = select(tables.events.c.id).where(tables.events.c.handled_at.is_(None))
        return len((await conn.execute(stmt)).all())


async def test_an_order_confirmation_is_sent_once_after_commit(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "confirm")
    sender = InMemoryEmailSender()
    bus = EventBus([logging_middleware])
    handlers.register(bus, shop.db, sender)
    dispatcher = Dispatcher(shop.db, bus)
    await place_orders(shop, 2)
    assert sender.sent == [], "nothing is sent inside the transaction"
    assert await dispatcher.drain() == 2 + 1 + 2  # orders, the product's creation, stock moves
    assert len(sender.sent) == 2
    assert all(mail.subject.startswith("Your order") for mail in sender.sent)
    assert len({mail.message_id for mail in sender.sent}) == 2
    assert await dispatcher.drain() == 0
    assert len(sender.sent) == 2
    assert await unhandled(shop.db) == 0


async def test_a_failing_email_is_retried_without_failing_the_order(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "retry")
    clock = Clock()
    sender = InMemoryEmailSender(fail_next=2)
    audit: Counter[uuid.UUID] = Counter()

    async def audit_log(event: Event) -> None:
        audit[event.id] += 1

    bus = EventBus()
    handlers.register(bus, shop.db, sender)
    bus.subscribe(EventType.ORDER_CREATED, audit_log, name="audit")
    dispatcher = Dispatcher(shop.db, bus, clock=clock)

    [order_id] = await place_orders(shop, 1)  # the order is placed although mail is down
    await dispatcher.drain()
    assert sender.sent == []
    assert list(audit.values()) == [1], "the other handler ran, and only once"
    async with shop.db.read() as conn:
        run = (await conn.execute(select(tables.handler_runs))).all()
    mail_runs = [r for r in run if r.handler == handlers.ORDER_CONFIRMATION]
    assert [(r.status, r.attempts) for r in mail_runs] == [("retrying", 1)]
    assert mail_runs[0].next_attempt_at == clock.now + timedelta(seconds=1)

    assert await dispatcher.drain() == 0, "not due before the backoff has passed"
    clock.advance(1)
    assert await dispatcher.drain() == 1
    assert sender.sent == []  # second failure; next try in 2 s
    clock.advance(1)
    assert await dispatcher.drain() == 0
    clock.advance(1)
    assert await dispatcher.drain() == 1
    assert len(sender.sent) == 1
    assert sender.sent[0].subject == f"Your order {from_global_id(order_id)[1]}"
    assert list(audit.values()) == [1]
    assert await unhandled(shop.db) == 0


async def test_a_handler_never_runs_twice_for_one_event_with_two_dispatchers(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "two_dispatchers")
    await place_orders(shop, 20)
    seen: Counter[uuid.UUID] = Counter()
    took: Counter[str] = Counter()
    second_took_one = asyncio.Event()

    def handler_of(dispatcher: str) -> Handler:
        async def handle(event: Event) -> None:
            seen[event.id] += 1
            took[dispatcher] += 1
            if dispatcher == "second":
                second_took_one.set()
            else:  # the first holds its event until the second has taken one of its own
                async with asyncio.timeout(WAIT):
                    await second_took_one.wait()

        return handle

    # A second engine, as a second process would have, over the same database.
    other_db = Database(shop.db.url, Settings(database_url=str(shop.db.url)))
    try:
        dispatchers = []
        for name, db in (("first", shop.db), ("second", other_db)):
            bus = EventBus()
            bus.subscribe(EventType.ORDER_CREATED, handler_of(name), name="count")
            dispatchers.append(Dispatcher(db, bus, batch=3))
        await asyncio.gather(*(d.drain() for d in dispatchers))
    finally:
        await other_db.dispose()
    assert took["first"] >= 1
    assert took["second"] >= 1, "both dispatchers took events"
    assert len(seen) == 20
    assert set(seen.values()) == {1}
    assert await unhandled(shop.db) == 0


async def test_the_dispatcher_catches_up_on_start_and_wakes_on_commit(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "wake")
    await place_orders(shop, 3)  # stored while no dispatcher ran
    sender = NotifyingSender()
    bus = EventBus()
    handlers.register(bus, shop.db, sender)
    # Polling so rarely that only a wake-up can explain prompt delivery.
    dispatcher = Dispatcher(shop.db, bus, poll_interval=3600)
    await dispatcher.start()
    try:
        await sender.wait_for(3)
        await place_orders(shop, 2, after_commit=dispatcher.wake)
        await sender.wait_for(5)
    finally:
        await dispatcher.stop()
    assert await unhandled(shop.db) == 0


async def test_a_welcome_email_follows_a_registration(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "welcome")
    sender = InMemoryEmailSender()
    bus = EventBus()
    handlers.register(bus, shop.db, sender)
    user_id = uuid.uuid4()
    async with SqlUnitOfWork(shop.db) as uow:
        await uow.record(user_registered(user_id, "new@example.com", "Newcomer", datetime.now(UTC)))
    await Dispatcher(shop.db, bus).drain()
    assert [(m.to, m.subject) for m in sender.sent] == [
        ("new@example.com", "Welcome to ordergraph")
    ]
    assert "Newcomer" in sender.sent[0].body


class NotifyingSender(InMemoryEmailSender):
    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Condition()

    async def send(self, email: Email) -> None:
        await super().send(email)
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, count: int) -> None:
        """Wait for the background dispatcher; the bound only stops a broken test hanging."""
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
        assert len(self.sent) == count


async def test_a_lease_covers_one_event_so_a_long_queue_is_not_handled_twice(
    backend: str, make_db: MakeDb
) -> None:
    """Each handler stays inside its time limit, yet the queue as a whole takes longer than a
    lease: a second dispatcher arriving then must not take an event the first is handling."""
    shop = await new_shop(make_db, backend, "lease_per_event")
    clock = Clock()
    bus = EventBus()
    first = Dispatcher(  # one at a time: three handlers in a row outlast one lease
        shop.db,
        bus,
        worker="A",
        concurrency=1,
        handler_timeout=10,
        lease=timedelta(seconds=15),
        clock=clock,
    )
    second = Dispatcher(
        shop.db, bus, worker="B", handler_timeout=10, lease=timedelta(seconds=15), clock=clock
    )
    second_poll = Dispatcher(  # another process: one event per poll
        shop.db,
        bus,
        worker="B",
        batch=1,
        handler_timeout=10,
        lease=timedelta(seconds=15),
        clock=clock,
    )
    await second.drain()  # the seeded users' events, out of the way
    ids = []
    async with SqlUnitOfWork(shop.db) as uow:
        for n in range(3):
            event = user_registered(uuid.uuid4(), f"lease{n}@example.com", "Lee", clock())
            await uow.record(event)
            ids.append(event.id)
    runs: Counter[uuid.UUID] = Counter()
    arrived = False

    async def slow_but_in_time(event: Event) -> None:
        nonlocal arrived
        runs[event.id] += 1
        clock.advance(9)  # within the 10 s limit; three of them outlast a 15 s lease
        if event.id == ids[1] and not arrived:
            arrived = True
            await second_poll.run_once()  # another process polls now

    bus.subscribe(EventType.USER_REGISTERED, slow_but_in_time, name="welcome_email")
    await first.drain()
    assert arrived
    assert [runs[i] for i in ids] == [1, 1, 1]


async def test_events_without_handlers_are_settled_while_claiming(
    backend: str, make_db: MakeDb
) -> None:
    shop = await new_shop(make_db, backend, "settle_unhandled")
    dispatcher = Dispatcher(shop.db, EventBus())  # nobody subscribes to anything
    for _ in range(3):
        await add_product(shop.db, stock=1)  # ProductCreated
    waiting = await unhandled(shop.db)
    assert waiting >= 3
    with track_statements() as stats:
        assert await dispatcher.run_once() == waiting
    assert await unhandled(shop.db) == 0
    # One short transaction for all of them (BEGIN, SELECT, UPDATE), not a claim and a
    # release write per event.
    assert stats.statements <= 3
    async with shop.db.read() as conn:
        runs = (await conn.execute(select(tables.handler_runs.c.event_id))).all()
    assert runs == []


async def test_handlers_run_side_by_side_across_events_each_once(
    backend: str, make_db: MakeDb
) -> None:
    """A slow handler does not hold up the events behind it: three events' handlers are in
    flight at once (each waits for the other two), and each runs exactly once."""
    shop = await new_shop(make_db, backend, "concurrent_handlers")
    bus = EventBus()
    await Dispatcher(shop.db, bus).drain()  # the seeded users' events, out of the way
    ids = []
    async with SqlUnitOfWork(shop.db) as uow:
        for n in range(3):
            event = user_registered(uuid.uuid4(), f"side{n}@example.com", "Sid", datetime.now(UTC))
            await uow.record(event)
            ids.append(event.id)
    together = asyncio.Barrier(3)
    runs: Counter[uuid.UUID] = Counter()

    async def waits_for_the_others(event: Event) -> None:
        runs[event.id] += 1
        async with asyncio.timeout(20):  # one at a time would never get past the barrier
            await together.wait()

    bus.subscribe(EventType.USER_REGISTERED, waits_for_the_others, name="welcome_email")
    dispatcher = Dispatcher(shop.db, bus, concurrency=3)
    second = Dispatcher(shop.db, bus, concurrency=3)
    await asyncio.gather(dispatcher.drain(), second.drain())
    assert [runs[i] for i in ids] == [1, 1, 1]
    async with shop.db.read() as conn:
        statuses = (
            (
                await conn.execute(
                    select(tables.handler_runs.c.status).where(
                        tables.handler_runs.c.event_id.in_(ids)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert sorted(statuses) == ["done", "done", "done"]


async def _record_registrations(shop: Shop, count: int) -> list[uuid.UUID]:
    ids = []
    async with SqlUnitOfWork(shop.db) as uow:
        for _ in range(count):
            address = f"bus-{uuid.uuid4().hex[:8]}@example.com"
            event = user_registered(uuid.uuid4(), address, "Bus", datetime.now(UTC))
            await uow.record(event)
            ids.append(event.id)
    return ids


async def test_the_dispatcher_reaches_handlers_through_the_bus(
    backend: str, make_db: MakeDb
) -> None:
    """Every handler the dispatcher runs goes through the bus's middlewares; a failing one is
    recorded and retried on its own; once unsubscribed, a handler gets no further events."""
    shop = await new_shop(make_db, backend, "bus_path")
    trail: list[tuple[str, str]] = []

    async def around(event: Event, name: str, call_next: Handler) -> None:
        trail.append((name, event.type))
        await call_next(event)

    bus = EventBus([around])
    dispatcher = Dispatcher(shop.db, bus)
    await dispatcher.drain()  # the seeded users' events, out of the way
    seen: list[uuid.UUID] = []

    async def welcome(event: Event) -> None:
        seen.append(event.id)

    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    stop_welcome = bus.subscribe(EventType.USER_REGISTERED, welcome, name="welcome")
    bus.subscribe(EventType.USER_REGISTERED, broken, name="broken")
    first = await _record_registrations(shop, 2)
    await dispatcher.drain()
    assert sorted(seen) == sorted(first)  # events are handled side by side
    assert sorted(trail) == sorted(
        [(name, "UserRegistered") for name in ("welcome", "broken") for _ in first]
    )
    async with shop.db.read() as conn:
        runs = (
            await conn.execute(
                select(tables.handler_runs.c.handler, tables.handler_runs.c.status).where(
                    tables.handler_runs.c.event_id.in_(first)
                )
            )
        ).all()
    assert sorted(runs) == sorted(
        [("broken", "retrying"), ("broken", "retrying"), ("welcome", "done"), ("welcome", "done")]
    )

    stop_welcome()
    later = await _record_registrations(shop, 1)
    trail.clear()
    await dispatcher.drain()
    assert sorted(seen) == sorted(first), "an unsubscribed handler gets no further events"
    assert trail == [("broken", "UserRegistered")]
    async with shop.db.read() as conn:
        later_runs = (
            await conn.execute(
                select(tables.handler_runs.c.handler).where(
                    tables.handler_runs.c.event_id.in_(later)
                )
            )
        ).all()
    assert [r.handler for r in later_runs] == ["broken"]


async def _counting_bus(shop: Shop) -> tuple[EventBus, Counter[uuid.UUID]]:
    """A bus whose one handler counts runs per registration; the seeded ones already handled."""
    ran: Counter[uuid.UUID] = Counter()

    async def count(event: Event) -> None:
        ran[event.id] += 1

    bus = EventBus()
    bus.subscribe(EventType.USER_REGISTERED, count, name="welcome_email")
    await Dispatcher(shop.db, bus).drain()
    return bus, ran


async def test_a_claim_of_events_is_handled_in_statements_that_do_not_grow_with_it(
    backend: str, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's bookkeeping is per claim, not per event: leasing, starting, recording
    and releasing twelve events' handlers takes as many statements as three events' do (at
    100 events a second, per-event transactions were most of a process's CPU), and a claim
    that saw every due event is not followed by one that finds none."""
    shop = await new_shop(make_db, backend, "batched_bookkeeping")
    bus, ran = await _counting_bus(shop)
    claims = 0
    claim_due = store.claim_due

    async def counted(*args: Any) -> store.Claim:
        nonlocal claims
        claims += 1
        return await claim_due(*args)

    monkeypatch.setattr(store, "claim_due", counted)
    statements = []
    for size in (3, 12):
        ids = await _record_registrations(shop, size)
        claims = 0
        with track_statements() as stats:
            assert await Dispatcher(shop.db, bus, concurrency=16).drain() == size
        statements.append(stats.statements)
        assert claims == 1
        assert [ran[i] for i in ids] == [1] * size
    assert statements[0] == statements[1], statements
    assert await unhandled(shop.db) == 0


async def test_handler_runs_are_recorded_after_a_brief_database_outage(
    backend: str, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handlers ran, then recording how they went fails (the database briefly away): the
    dispatcher tries again rather than leaving the events leased, so nothing runs twice and
    nothing waits out a lease."""
    shop = await new_shop(make_db, backend, "bookkeeping_retry")
    bus, ran = await _counting_bus(shop)
    ids = await _record_registrations(shop, 3)
    failures = 2
    finish = store.finish_attempts

    async def away_at_first(*args: Any, **kwargs: Any) -> list[Event]:
        nonlocal failures
        if failures:
            failures -= 1
            raise ServiceUnavailable("the database is unavailable")
        return await finish(*args, **kwargs)

    monkeypatch.setattr(store, "finish_attempts", away_at_first)
    monkeypatch.setattr(dispatcher_module, "BOOKKEEPING_RETRIES", (0.01, 0.01, 0.01))
    assert await Dispatcher(shop.db, bus).drain() == 3
    assert failures == 0, "recording failed twice before it succeeded"
    assert [ran[i] for i in ids] == [1, 1, 1]
    assert await unhandled(shop.db) == 0
    async with shop.db.read() as conn:
        stmt = select(tables.handler_runs.c.status).where(tables.handler_runs.c.event_id.in_(ids))
        assert sorted((await conn.execute(stmt)).scalars().all()) == ["done"] * 3
