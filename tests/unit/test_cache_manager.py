"""The cache manager's L1, stampede protection, epochs and degraded mode (no Redis here)."""

from __future__ import annotations

import asyncio

from app.cache.manager import DEGRADED_MAX_AGE, CacheManager, FunctionCodec
from app.config import CacheSettings

TEXT = FunctionCodec[str](str, str)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loads:
    """A load function that counts its calls and returns a new value each time."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls = 0
        self.gate = gate
        self.started = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        value = f"v{self.calls}"
        if self.gate is not None:
            await self.gate.wait()
        return value


def manager(**settings: object) -> CacheManager:
    return CacheManager(CacheSettings(**settings))  # type: ignore[arg-type]


async def test_a_second_read_is_served_from_l1() -> None:
    cache, load = manager(), Loads()
    assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v1"
    assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v1"
    assert load.calls == 1
    assert (cache.stats.l1_hits, cache.stats.misses) == (1, 1)


async def test_concurrent_misses_for_one_key_wait_for_one_load() -> None:
    cache, gate = manager(), asyncio.Event()
    load = Loads(gate)
    readers = [
        asyncio.create_task(cache.get_or_load("k", load, tags=["t"], codec=TEXT)) for _ in range(20)
    ]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*readers) == ["v1"] * 20
    assert load.calls == 1


async def test_a_cancelled_waiter_does_not_cancel_the_others_load() -> None:
    cache, gate = manager(), asyncio.Event()
    load = Loads(gate)
    first = asyncio.create_task(cache.get_or_load("k", load, tags=["t"], codec=TEXT))
    second = asyncio.create_task(cache.get_or_load("k", load, tags=["t"], codec=TEXT))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == "v1"
    assert load.calls == 1


async def test_invalidation_removes_the_entries_of_its_tags_only() -> None:
    cache, load_a, load_b = manager(), Loads(), Loads()
    await cache.get_or_load("a", load_a, tags=["product:1", "products"], codec=TEXT)
    await cache.get_or_load("b", load_b, tags=["product:2"], codec=TEXT)
    await cache.invalidate(["product:1"])
    assert await cache.get_or_load("a", load_a, tags=["product:1"], codec=TEXT) == "v2"
    assert await cache.get_or_load("b", load_b, tags=["product:2"], codec=TEXT) == "v1"
    assert cache.stats.invalidations == 1


async def test_a_load_that_overlaps_an_invalidation_is_not_stored() -> None:
    """It may have read the database before the write committed."""
    cache, gate = manager(), asyncio.Event()
    load = Loads(gate)
    before = asyncio.create_task(cache.get_or_load("k", load, tags=["t"], codec=TEXT))
    await asyncio.sleep(0)
    await cache.invalidate(["t"])
    # A reader arriving after the invalidation does not join the older load: it starts its own.
    after = asyncio.create_task(cache.get_or_load("k", load, tags=["t"], codec=TEXT))
    await asyncio.sleep(0)
    gate.set()
    assert await before == "v1"
    assert await after == "v2"
    assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v2"
    assert load.calls == 2


async def test_l1_is_bounded_least_recently_used_first() -> None:
    cache = manager(l1_max_entries=2)
    loads = {key: Loads() for key in "abc"}
    for key in "abc":
        await cache.get_or_load(key, loads[key], tags=[], codec=TEXT)
    await cache.get_or_load("a", loads["a"], tags=[], codec=TEXT)
    assert loads["a"].calls == 2  # evicted by c
    await cache.get_or_load("c", loads["c"], tags=[], codec=TEXT)
    assert loads["c"].calls == 1


async def test_entries_expire_after_the_l1_ttl() -> None:
    clock = Clock()
    cache = CacheManager(CacheSettings(l1_ttl_seconds=5), clock=clock)
    load = Loads()
    await cache.get_or_load("k", load, tags=[], codec=TEXT)
    clock.now += 5.1
    await cache.get_or_load("k", load, tags=[], codec=TEXT)
    assert load.calls == 2


async def test_disabled_it_always_loads() -> None:
    cache, load = manager(enabled=False), Loads()
    for _ in range(3):
        await cache.get_or_load("k", load, tags=[], codec=TEXT)
    assert load.calls == 3


async def test_while_invalidations_cannot_arrive_l1_serves_only_young_entries() -> None:
    clock, coherent = Clock(), [True]
    cache = CacheManager(CacheSettings(), clock=clock, coherent=lambda: coherent[0])
    load = Loads()
    await cache.get_or_load("k", load, tags=[], codec=TEXT)
    coherent[0] = False
    assert await cache.get_or_load("k", load, tags=[], codec=TEXT) == "v1"  # still young
    clock.now += DEGRADED_MAX_AGE + 0.1
    assert await cache.get_or_load("k", load, tags=[], codec=TEXT) == "v2"  # too old: loaded
    assert await cache.get_or_load("k", load, tags=[], codec=TEXT) == "v2"
    # Back in touch: what was missed meanwhile is unknown, so L1 starts empty.
    coherent[0] = True
    assert await cache.get_or_load("k", load, tags=[], codec=TEXT) == "v3"
