"""Rate limits hold while Redis is down: per-process buckets, said in /readyz (issue 11).

The review saw requests go unlimited ("rate limiting skipped, Redis unavailable"). Here Redis is
a port nothing listens on, which is what an outage looks like to the client.
"""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.auth.ratelimit import RedisRateLimiter
from app.config import Settings
from tests.auth_support import auth_settings
from tests.conftest import MakeDb
from tests.services import unavailable


def _dead_redis_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def test_buckets_are_kept_in_process_while_redis_is_down() -> None:
    limiter = RedisRateLimiter(Redis.from_url(_dead_redis_url()), "og-test-dead:")
    try:
        allowed = [await limiter.acquire("k", per_minute=60, burst=3) for _ in range(3)]
        refused = await limiter.acquire("k", per_minute=60, burst=3)
        assert limiter.status == "degraded"
    finally:
        await limiter.close()

    assert allowed == [0, 0, 0]
    assert refused >= 1, "enforced, not skipped"


async def test_redis_coming_back_takes_over_again(monkeypatch: pytest.MonkeyPatch) -> None:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await redis.ping()
    except (RedisError, OSError) as error:
        await redis.aclose()
        unavailable("Redis", error)
    limiter = RedisRateLimiter(redis, "og-test-back:", retry_seconds=0.0)
    real = limiter._take

    async def down(*args: object, **kwargs: object) -> object:
        raise ConnectionError("Redis is down")

    try:
        limiter._take = down  # type: ignore[assignment]
        assert await limiter.acquire("back", per_minute=60, burst=5) == 0
        assert limiter.status == "degraded"
        limiter._take = real
        assert await limiter.acquire("back", per_minute=60, burst=5) == 0
        assert limiter.status == "ok"
    finally:
        await redis.delete("og-test-back:rl:back")
        await limiter.close()


async def test_readyz_reports_the_rate_limits(make_db: MakeDb) -> None:
    from tests.auth_support import running_app

    db = await make_db("sqlite", "readyz_rate_limits")
    async with running_app(db.url) as app:
        local = (await app.http.get("/readyz")).json()
    assert local["rateLimits"] == "local"

    settings = Settings(database_url=str(db.url), redis_url=_dead_redis_url(), auth=auth_settings())
    import httpx

    from app.main import create_app

    down = create_app(replace(settings))
    async with down.router.lifespan_context(down):
        transport = httpx.ASGITransport(app=down)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.post("/graphql", json={"query": "{ products(first: 1) { totalCount } }"})
            ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["rateLimits"] == "degraded"
