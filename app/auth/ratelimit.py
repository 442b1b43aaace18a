"""Token buckets: in process memory by default, in Redis (shared by every process) when configured.

A bucket holds up to `burst` tokens and refills at `per_minute / 60` tokens a second; a request
takes one (and may give it back: `refund`). When it is empty the caller learns how long until the
next token, for `Retry-After`.
The Redis bucket is one Lua script, so the read-refill-take-write is atomic across processes, and
it uses Redis's clock so processes with skewed clocks still share one bucket correctly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.observability import metrics

log = logging.getLogger("app.auth.ratelimit")


@dataclass(frozen=True, slots=True)
class Taken:
    """A bucket after `take`: whole seconds until enough tokens are back (0: taken), and what it
    holds now."""

    wait: int
    available: float


class RateLimiter(Protocol):
    async def take(self, key: str, per_minute: float, burst: int, cost: int = 1) -> Taken:
        """Take `cost` tokens when the bucket holds them (a negative cost gives tokens back)."""
        ...

    async def acquire(self, key: str, per_minute: int, burst: int, cost: int = 1) -> int:
        """Take `cost` tokens; 0 when allowed, else whole seconds until enough are back.

        `cost=0` only looks: it answers whether one token is available without taking it.
        """
        ...

    async def refund(self, key: str, per_minute: int, burst: int, amount: int = 1) -> None:
        """Give back `amount` tokens taken by `acquire` (never above `burst`).

        Charging first and refunding afterwards lets a caller reserve a token before slow work
        (a password check) so concurrent callers cannot all pass the same check at once.
        """
        ...

    async def close(self) -> None: ...

    @property
    def status(self) -> str:
        """For /readyz: `ok` (shared in Redis), `degraded` (Redis down: this process's own
        buckets meanwhile) or `local` (no Redis configured: per process by design)."""
        ...


def _retry_seconds(missing: float, per_second: float) -> int:
    return max(1, math.ceil(missing / per_second))


class MemoryRateLimiter:
    MAX_BUCKETS = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._clock = clock

    @property
    def status(self) -> str:
        return "local"

    async def take(self, key: str, per_minute: float, burst: int, cost: int = 1) -> Taken:
        now = self._clock()
        per_second = per_minute / 60.0
        tokens, updated = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - updated) * per_second)
        need = max(cost, 1)
        if cost < 0:
            tokens = min(float(burst), tokens - cost)
            self._buckets[key] = (tokens, now)
            return Taken(0, tokens)
        if tokens >= need:
            self._buckets[key] = (tokens - cost, now)
            self._prune(now)
            return Taken(0, tokens - cost)
        self._buckets[key] = (tokens, now)
        return Taken(_retry_seconds(need - tokens, per_second), tokens)

    async def acquire(self, key: str, per_minute: int, burst: int, cost: int = 1) -> int:
        return (await self.take(key, per_minute, burst, cost)).wait

    async def refund(self, key: str, per_minute: int, burst: int, amount: int = 1) -> None:
        await self.acquire(key, per_minute, burst, cost=-amount)

    def _prune(self, now: float) -> None:
        # Memory stays bounded: when too many keys are tracked, forget the least recently used.
        if len(self._buckets) > self.MAX_BUCKETS:
            oldest = sorted(self._buckets.items(), key=lambda item: item[1][1])
            for key, _ in oldest[: len(oldest) // 10]:
                del self._buckets[key]

    async def close(self) -> None:
        self._buckets.clear()


_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local need = math.max(cost, 1)
local wait = 0
if cost < 0 then
  tokens = math.min(burst, tokens - cost)
elseif tokens >= need then
  tokens = tokens - cost
else
  wait = math.ceil((need - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {wait, tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets under `<prefix>rl:<key>`, shared by every process.

    While Redis does not answer, each process enforces buckets of its own (in memory): a limit
    then holds per process, so N processes allow up to N times the rate, rather than not at all.
    Redis is tried again every `retry_seconds`; its outage and its return are logged once each.
    """

    def __init__(self, redis: Redis, prefix: str, retry_seconds: float = 1.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(_TAKE)
        self._fallback = MemoryRateLimiter()
        self._retry_seconds = retry_seconds
        self._retry_at = 0.0
        self._down = False

    @property
    def status(self) -> str:
        return "degraded" if self._down else "ok"

    async def take(self, key: str, per_minute: float, burst: int, cost: int = 1) -> Taken:
        if self._down and time.monotonic() < self._retry_at:
            return await self._fallback.take(key, per_minute, burst, cost)
        per_ms = per_minute / 60_000.0
        try:
            wait_ms, tokens = await self._take(
                keys=[f"{self._prefix}rl:{key}"], args=[per_ms, burst, cost]
            )
        except (RedisError, OSError) as error:
            if not self._down:
                log.warning(
                    "Redis unavailable for rate limits (%s): each process enforces its own "
                    "buckets until it is back",
                    error,
                )
            self._down = True
            self._retry_at = time.monotonic() + self._retry_seconds
            return await self._fallback.take(key, per_minute, burst, cost)
        if self._down:
            log.info("Redis is back: rate limits are shared between processes again")
            self._down = False
        wait_ms = int(wait_ms)
        return Taken(0 if wait_ms <= 0 else max(1, math.ceil(wait_ms / 1000)), float(tokens))

    async def acquire(self, key: str, per_minute: int, burst: int, cost: int = 1) -> int:
        return (await self.take(key, per_minute, burst, cost)).wait

    async def refund(self, key: str, per_minute: int, burst: int, amount: int = 1) -> None:
        await self.acquire(key, per_minute, burst, cost=-amount)

    async def close(self) -> None:
        await self._redis.aclose()


class CountedRateLimiter:
    """Counts refusals for /metrics (og_rate_limit_refusals_total), by the bucket's kind: the
    key's first segment (`key`, `client`, `login`, `sign-ups`, `client-auth-failures`, `cost` for
    query-cost budgets...)."""

    def __init__(self, inner: RateLimiter) -> None:
        self._inner = inner

    async def take(self, key: str, per_minute: float, burst: int, cost: int = 1) -> Taken:
        taken = await self._inner.take(key, per_minute, burst, cost)
        if taken.wait and cost > 0:
            metrics.RATE_LIMITED.labels(key.partition(":")[0]).inc()
        return taken

    async def acquire(self, key: str, per_minute: int, burst: int, cost: int = 1) -> int:
        return (await self.take(key, per_minute, burst, cost)).wait

    async def refund(self, key: str, per_minute: int, burst: int, amount: int = 1) -> None:
        await self._inner.refund(key, per_minute, burst, amount)

    @property
    def status(self) -> str:
        return self._inner.status

    async def close(self) -> None:
        await self._inner.close()


def create_rate_limiter(redis_url: str | None, prefix: str) -> RateLimiter:
    if redis_url:
        # Bounded waits: a Redis that stops answering must not hold requests, it must make
        # the limiter fall back to this process's buckets.
        client = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return CountedRateLimiter(RedisRateLimiter(client, prefix))
    return CountedRateLimiter(MemoryRateLimiter())
