"""L2 in Redis: shared between processes' managers, invalidated by tags, and never required."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.cache.manager import L2_RETRY_SECONDS, CacheManager, FunctionCodec, RedisLevel
from app.config import CacheSettings
from tests.events_support import drop_keys, private_redis, shared_redis, unique_prefix
from tests.unit.test_cache_manager import Clock, Loads

TEXT = FunctionCodec[str](str, str)


@pytest.fixture
async def level_pair() -> AsyncIterator[tuple[CacheManager, CacheManager, str, str]]:
    """Two managers (two processes) sharing one Redis prefix."""
    url, prefix = await shared_redis(), unique_prefix("cache")
    settings = CacheSettings()
    a = CacheManager(settings, RedisLevel(url, prefix, 60))
    b = CacheManager(settings, RedisLevel(url, prefix, 60))
    yield a, b, url, prefix
    await a.close()
    await b.close()
    await drop_keys(url, prefix)


async def test_an_l2_hit_fills_l1_without_loading(
    level_pair: tuple[CacheManager, CacheManager, str, str],
) -> None:
    a, b, _, _ = level_pair
    load = Loads()
    assert await a.get_or_load("k", load, tags=["product:1"], codec=TEXT) == "v1"
    assert await b.get_or_load("k", load, tags=["product:1"], codec=TEXT) == "v1"
    assert await b.get_or_load("k", load, tags=["product:1"], codec=TEXT) == "v1"
    assert load.calls == 1
    assert (b.stats.l2_hits, b.stats.l1_hits) == (1, 1)


async def test_invalidation_removes_the_tag_from_l2_and_the_epoch_refuses_late_stores(
    level_pair: tuple[CacheManager, CacheManager, str, str],
) -> None:
    a, b, url, prefix = level_pair
    load = Loads()
    await a.get_or_load("k", load, tags=["product:1", "products"], codec=TEXT)
    await a.invalidate(["products"])
    assert await _get(url, f"{prefix}cache:e:k") is None
    # b starts a load (it read the database before the write), a invalidates meanwhile:
    # b's result must not reach L2, where every process would find it.
    gate = asyncio.Event()
    slow = Loads(gate)
    reading = asyncio.create_task(b.get_or_load("k", slow, tags=["product:1"], codec=TEXT))
    await slow.started.wait()
    await a.invalidate(["product:1"])
    gate.set()
    await reading
    assert await _get(url, f"{prefix}cache:e:k") is None


async def _get(url: str, key: str) -> str | None:
    client = Redis.from_url(url, decode_responses=True)
    try:
        value = await client.get(key)
        return None if value is None else str(value)
    finally:
        await client.aclose()


async def test_without_redis_it_serves_from_l1_and_the_database_and_replays_invalidations() -> None:
    with private_redis() as redis_server:
        prefix, clock = unique_prefix("outage"), Clock()
        level = RedisLevel(redis_server.url, prefix, 60)
        cache = CacheManager(CacheSettings(), level, clock=clock)
        try:
            load = Loads()
            assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v1"
            redis_server.stop()
            assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v1"  # L1
            await cache.invalidate(["t"])  # cannot reach L2: kept for later
            assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v2"
            assert cache.stats.l2_errors == 1
            redis_server.start()
            # As if an entry had survived in L2 while this process could not reach it.
            client = Redis.from_url(redis_server.url)
            await client.set(f"{prefix}cache:e:k", "stale")
            await client.sadd(f"{prefix}cache:t:t", f"{prefix}cache:e:k")
            await client.aclose()
            cache.clear_local()
            clock.now += L2_RETRY_SECONDS
            # L2 is tried again; the kept invalidation runs before anything is read from it.
            assert await cache.get_or_load("k", load, tags=["t"], codec=TEXT) == "v3"
            assert await _get(redis_server.url, f"{prefix}cache:e:k") == "v3"
        finally:
            await cache.close()
