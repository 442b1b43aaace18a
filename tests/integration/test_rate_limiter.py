"""Token buckets in memory and in the real Redis (atomic Lua script, shared across clients)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.auth.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.services import RUN_ID, unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except (RedisError, OSError) as error:
        await redis.aclose()
        unavailable("Redis", error)
    prefix = f"og-test-{RUN_ID}-{uuid.uuid4().hex[:6]}:"
    limiter = RedisRateLimiter(redis, prefix)
    yield limiter
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await limiter.close()


async def test_a_burst_is_allowed_then_the_caller_waits(limiter: RateLimiter) -> None:
    allowed = [await limiter.acquire("k", per_minute=60, burst=3) for _ in range(3)]
    limited = await limiter.acquire("k", per_minute=60, burst=3)

    assert allowed == [0, 0, 0]
    assert limited == 1, "one token a second: the next comes within a second"
    assert await limiter.acquire("other", per_minute=60, burst=3) == 0, "buckets are per key"


async def test_a_slow_rate_reports_a_long_wait(limiter: RateLimiter) -> None:
    assert await limiter.acquire("slow", per_minute=2, burst=1) == 0
    assert 25 <= await limiter.acquire("slow", per_minute=2, burst=1) <= 30


async def test_peeking_takes_nothing(limiter: RateLimiter) -> None:
    for _ in range(5):
        assert await limiter.acquire("peek", per_minute=60, burst=1, cost=0) == 0
    assert await limiter.acquire("peek", per_minute=60, burst=1) == 0
    assert await limiter.acquire("peek", per_minute=60, burst=1, cost=0) >= 1


async def test_two_redis_clients_share_one_bucket() -> None:
    first, second = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    try:
        await first.ping()
    except (RedisError, OSError) as error:
        await first.aclose()
        await second.aclose()
        unavailable("Redis", error)
    prefix = f"og-test-{RUN_ID}-shared-{uuid.uuid4().hex[:6]}:"
    a, b = RedisRateLimiter(first, prefix), RedisRateLimiter(second, prefix)
    try:
        assert await a.acquire("k", per_minute=60, burst=2) == 0
        assert await b.acquire("k", per_minute=60, burst=2) == 0
        assert await a.acquire("k", per_minute=60, burst=2) >= 1
        assert await b.acquire("k", per_minute=60, burst=2) >= 1
    finally:
        await first.delete(f"{prefix}rl:k")
        await a.close()
        await b.close()


async def test_a_refund_gives_a_token_back_up_to_the_burst(limiter: RateLimiter) -> None:
    assert await limiter.acquire("refund", per_minute=1, burst=2) == 0
    assert await limiter.acquire("refund", per_minute=1, burst=2) == 0
    assert await limiter.acquire("refund", per_minute=1, burst=2) >= 1

    await limiter.refund("refund", per_minute=1, burst=2)
    await limiter.refund("refund", per_minute=1, burst=2, amount=5)

    assert [await limiter.acquire("refund", per_minute=1, burst=2) for _ in range(2)] == [0, 0]
    assert await limiter.acquire("refund", per_minute=1, burst=2) >= 1, "never above the burst"
