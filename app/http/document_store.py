"""Where automatic persisted queries are kept: query text by its SHA-256, bounded.

In process, a bounded LRU; with Redis configured, Redis behind it (entries expire, so the set
stays bounded there too), so a query registered through one process is found by every other.
The store is this small interface so it can move onto a shared two-level cache unchanged.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("app.http.document_store")


class DocumentStore(Protocol):
    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, query: str) -> None: ...

    async def close(self) -> None: ...


class MemoryDocumentStore:
    """At most `max_entries` query texts, the least recently used dropped first."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._texts: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        text = self._texts.get(sha256)
        if text is not None:
            self._texts.move_to_end(sha256)
        return text

    async def put(self, sha256: str, query: str) -> None:
        self._texts[sha256] = query
        self._texts.move_to_end(sha256)
        while len(self._texts) > self._max:
            self._texts.popitem(last=False)

    async def close(self) -> None:
        self._texts.clear()


class RedisDocumentStore:
    """An in-process LRU in front of Redis (`<prefix>apq:<sha256>`, expiring after `ttl` s).

    Redis trouble only costs the shared level: a miss makes the client send the text again
    (Apollo's protocol), which is slower but correct.
    """

    def __init__(self, redis: Redis, prefix: str, max_entries: int, ttl: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl
        self._local = MemoryDocumentStore(max_entries)

    async def get(self, sha256: str) -> str | None:
        text = await self._local.get(sha256)
        if text is not None:
            return text
        try:
            raw = await self._redis.get(f"{self._prefix}apq:{sha256}")
        except (RedisError, OSError) as error:
            log.warning("persisted query lookup skipped, Redis unavailable: %s", error)
            return None
        if raw is None:
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        await self._local.put(sha256, text)
        return text

    async def put(self, sha256: str, query: str) -> None:
        await self._local.put(sha256, query)
        try:
            await self._redis.set(f"{self._prefix}apq:{sha256}", query, ex=self._ttl)
        except (RedisError, OSError) as error:
            log.warning("persisted query kept in this process only, Redis unavailable: %s", error)

    async def close(self) -> None:
        await self._local.close()
        await self._redis.aclose()


def create_document_store(
    redis_url: str | None, prefix: str, max_entries: int, ttl: int
) -> DocumentStore:
    if redis_url:
        return RedisDocumentStore(Redis.from_url(redis_url), prefix, max_entries, ttl)
    return MemoryDocumentStore(max_entries)
