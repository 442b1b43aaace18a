from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from app.domain.events import Event
from app.messaging.fanout import Fanout, SubscriberOverflow


def _event(type_: str = "OrderCreated", version: int = 1) -> Event:
    return Event(
        id=uuid4(),
        stream_id=uuid4(),
        stream_type="Order",
        version=version,
        type=type_,
        occurred_at=datetime.now(UTC),
        payload={},
    )


async def test_listeners_get_their_types_in_order_with_one_shared_value_per_event() -> None:
    built: list[Event] = []

    def per_event(event: Event) -> object:
        built.append(event)
        return object()

    fanout: Fanout[object] = Fanout(per_event)
    orders_a = fanout.listen({"OrderCreated"})
    orders_b = fanout.listen({"OrderCreated", "OrderCancelled"})
    stock = fanout.listen({"ProductStockChanged"})
    first, second = _event(version=1), _event("OrderCancelled", version=2)

    assert fanout.publish(first) == 2
    assert fanout.publish(second) == 1
    assert fanout.publish(_event("UserRegistered")) == 0

    a1, b1, b2 = await orders_a.__anext__(), await orders_b.__anext__(), await orders_b.__anext__()
    assert (a1.event, b1.event, b2.event) == (first, first, second)
    assert a1.shared is b1.shared, "one value per event, shared by its listeners"
    assert built == [first, second], "nothing is built for an event nobody listens to"
    stock.close()
    assert fanout.listener_count == 2


async def test_a_slow_listener_overflows_alone() -> None:
    fanout: Fanout[None] = Fanout(lambda event: None)
    slow = fanout.listen({"OrderCreated"}, max_queued=2)
    fast = fanout.listen({"OrderCreated"}, max_queued=10)
    for version in range(1, 4):
        fanout.publish(_event(version=version))

    with pytest.raises(SubscriberOverflow):
        await slow.__anext__()
    assert [(await fast.__anext__()).event.version for _ in range(3)] == [1, 2, 3]
    assert fanout.listener_count == 1


async def test_closing_wakes_a_waiting_reader() -> None:
    fanout: Fanout[None] = Fanout(lambda event: None)
    listener = fanout.listen({"OrderCreated"})

    async def read_all() -> list[Event]:
        return [delivery.event async for delivery in listener]

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0)
    listener.close()
    assert await asyncio.wait_for(reader, timeout=5) == []


def test_an_event_at_or_before_the_last_position_is_dropped_as_already_delivered() -> None:
    fanout: Fanout[object] = Fanout(lambda event: object())
    listener = fanout.listen({"OrderCreated"})
    first, second = (replace(_event(), position=position) for position in (7, 8))
    assert fanout.publish(first) == 1
    assert fanout.publish(second) == 1
    # A relay retry appends both again: nobody sees them twice.
    assert fanout.publish(first) == 0
    assert fanout.publish(second) == 0
    assert fanout.last_position == 8
    listener.close()


async def test_a_listener_of_one_stream_is_offered_only_its_events() -> None:
    fanout: Fanout[None] = Fanout(lambda event: None)
    mine, theirs = _event(version=1), _event(version=1)
    one = fanout.listen({"OrderCreated"}, stream_id=mine.stream_id)
    every = fanout.listen({"OrderCreated"})

    assert fanout.publish(theirs) == 1
    assert fanout.publish(mine) == 2
    assert (await one.__anext__()).event == mine
    assert [(await every.__anext__()).event for _ in range(2)] == [theirs, mine]
    one.close()
    one.close()
    assert fanout.listener_count == 1
    assert fanout.publish(replace(mine, id=uuid4(), version=2)) == 1
