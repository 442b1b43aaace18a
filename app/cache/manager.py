"""The two-level cache: L1 in this process (bounded TTL + LRU), L2 in Redis (shared), by tags.

`get_or_load` looks in L1, then L2 (filling L1 on a hit), then runs the load once however many
callers missed the same key at the same moment (stampede protection), and stores the result in
both levels with its tags. `invalidate(tags)` removes every entry that recorded one of the tags,
from L2 first and then from L1, so a reader in this process that re-fills L1 from L2 after the
call returns can only find fresh data.

Two races are closed by epochs rather than by luck:

- A load that read the database before a write committed may try to store its (old) result after
  the write's invalidation ran. Each level keeps an epoch, bumped by every invalidation; a load
  notes both epochs before it starts and its result is stored in a level only if that level's
  epoch has not moved (in Redis, checked and stored in one script).
- An L1 fill from an L2 hit is refused the same way, so a value read from Redis just before an
  invalidation cannot land in L1 just after it.

Other processes learn of changes through the event broker (`invalidate_local`, called for every
delivered event). While that channel is down (`coherent()` is false) L1 serves only entries
younger than `DEGRADED_MAX_AGE`, the same bound as the propagation promise, and is emptied once
the channel is back. Redis trouble never fails a request: L2 is skipped for `L2_RETRY_SECONDS`
after an error, invalidations that could not reach it are kept and replayed before L2 is used
again, and L1 and the database serve meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.config import CacheSettings

log = logging.getLogger("app.cache")

T = TypeVar("T")

# Invalidations reach every process within this bound; while they cannot, L1 entries older than it
# are not served.
DEGRADED_MAX_AGE = 1.0
L2_RETRY_SECONDS = 1.0
L2_TIMEOUT_SECONDS = 0.5


class Codec(Protocol[T]):
    """How a cached value travels to Redis and back (JSON text: never pickle from a server)."""

    def encode(self, value: T) -> str: ...

    def decode(self, text: str) -> T: ...


@dataclass(frozen=True)
class FunctionCodec(Generic[T]):
    encode_fn: Callable[[T], str]
    decode_fn: Callable[[str], T]

    def encode(self, value: T) -> str:
        return self.encode_fn(value)

    def decode(self, text: str) -> T:
        return self.decode_fn(text)


@dataclass
class CacheStats:
    """Counters for the metrics endpoint and the tests."""

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    loads: int = 0
    invalidations: int = 0
    l2_errors: int = 0


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    tags: frozenset[str]
    stored_at: float


# Store only if the epoch is unchanged: KEYS = epoch, entry, tag sets; ARGV = epoch, value, ttl ms.
_SET_SCRIPT = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[2])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

# Remove every entry of the tags, the tag sets, and move the epoch: KEYS = epoch, tag sets.
_INVALIDATE_SCRIPT = """
for i = 2, #KEYS do
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do redis.call('DEL', key) end
  redis.call('DEL', KEYS[i])
end
return redis.call('INCR', KEYS[1])
"""


class RedisLevel:
    """L2: entries, tag sets and the epoch under `<prefix>cache:`; every call may raise."""

    def __init__(self, url: str, prefix: str, ttl: float) -> None:
        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=L2_TIMEOUT_SECONDS,
            socket_connect_timeout=L2_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._base = f"{prefix}cache:"
        self._epoch = f"{self._base}epoch"
        self.ttl_ms = max(1, int(ttl * 1000))
        self._set = self._redis.register_script(_SET_SCRIPT)
        self._invalidate = self._redis.register_script(_INVALIDATE_SCRIPT)

    def _key(self, key: str) -> str:
        return f"{self._base}e:{key}"

    def _tag(self, tag: str) -> str:
        return f"{self._base}t:{tag}"

    async def get(self, key: str) -> tuple[str | None, str]:
        """The entry (or None) and the current epoch, in one round trip."""
        value, epoch = await self._redis.mget([self._key(key), self._epoch])
        return (None if value is None else str(value)), str(epoch or "0")

    async def set(self, key: str, text: str, tags: Iterable[str], epoch: str) -> bool:
        keys = [self._epoch, self._key(key), *(self._tag(tag) for tag in tags)]
        return bool(await self._set(keys=keys, args=[epoch, text, self.ttl_ms]))

    async def invalidate(self, tags: Iterable[str]) -> None:
        await self._invalidate(keys=[self._epoch, *(self._tag(tag) for tag in tags)])

    async def close(self) -> None:
        await self._redis.aclose()


class CacheManager:
    def __init__(
        self,
        settings: CacheSettings,
        l2: RedisLevel | None = None,
        *,
        coherent: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.stats = CacheStats()
        self._l1: TTLCache[str, _Entry] = TTLCache(
            maxsize=settings.l1_max_entries, ttl=settings.l1_ttl_seconds, timer=clock
        )
        self._by_tag: defaultdict[str, set[str]] = defaultdict(set)
        self._indexed = 0
        self._l1_epoch = 0
        self._l2 = l2
        self._l2_down_until = 0.0
        self._pending: set[str] = set()
        self._coherent = coherent
        self._was_coherent = True
        self._clock = clock
        # Loads running now, by key and the L1 epoch they started in: a caller arriving after an
        # invalidation starts a new load instead of joining one that may have read old data.
        self._inflight: dict[tuple[str, int], asyncio.Future[Any]] = {}

    @classmethod
    def create(
        cls,
        settings: CacheSettings,
        redis_url: str | None,
        prefix: str,
        *,
        coherent: Callable[[], bool] = lambda: True,
    ) -> CacheManager:
        l2 = None
        if settings.enabled and redis_url and settings.l2:
            l2 = RedisLevel(redis_url, prefix, settings.l2_ttl_seconds)
        return cls(settings, l2, coherent=coherent)

    @property
    def has_l2(self) -> bool:
        return self._l2 is not None

    # --- reading ----------------------------------------------------------------------------

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[T]],
        *,
        tags: Iterable[str],
        codec: Codec[T],
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """The cached value of `key`, else `load()`'s result, stored under `tags` unless `keep`
        says no (a response with errors, say)."""
        if not self.enabled:
            return await load()
        found = self._l1_get(key)
        if found is not None:
            self.stats.l1_hits += 1
            return cast(T, found.value)
        flight = (key, self._l1_epoch)
        running = self._inflight.get(flight)
        if running is None:
            running = asyncio.ensure_future(
                self._fill(key, load, frozenset(tags), codec, flight[1], keep)
            )
            self._inflight[flight] = running
            running.add_done_callback(lambda _: self._inflight.pop(flight, None))
        # Shielded: one waiter giving up (a cancelled request) does not cancel the others' load.
        return cast(T, await asyncio.shield(running))

    async def _fill(
        self,
        key: str,
        load: Callable[[], Awaitable[T]],
        tags: frozenset[str],
        codec: Codec[T],
        l1_epoch: int,
        keep: Callable[[T], bool] | None,
    ) -> T:
        l2_epoch: str | None = None
        l2 = await self._usable_l2()
        if l2 is not None:
            try:
                text, l2_epoch = await l2.get(key)
            except (RedisError, OSError) as error:
                self._l2_failed(error)
                l2 = None
            else:
                if text is not None:
                    try:
                        value = codec.decode(text)
                    except (ValueError, KeyError, TypeError):
                        log.warning("dropping an undecodable L2 entry for %s", key[:80])
                    else:
                        self.stats.l2_hits += 1
                        self._l1_put(key, value, tags, l1_epoch)
                        return value
        self.stats.misses += 1
        self.stats.loads += 1
        value = await load()
        if keep is not None and not keep(value):
            return value
        self._l1_put(key, value, tags, l1_epoch)
        if l2 is not None and l2_epoch is not None:
            try:
                await l2.set(key, codec.encode(value), tags, l2_epoch)
            except (RedisError, OSError) as error:
                self._l2_failed(error)
        return value

    # --- invalidation -----------------------------------------------------------------------

    async def invalidate(self, tags: Iterable[str]) -> None:
        """Remove every entry of these tags from L2, then from L1 (see the module docstring).

        Never raises for Redis trouble: the tags are kept and replayed before L2 is read again.
        L1 is cleared even if this call is cancelled half-way.
        """
        wanted = frozenset(tags)
        if not wanted or not self.enabled:
            return
        try:
            if self._l2 is not None:
                self._pending |= wanted
                if self._clock() >= self._l2_down_until:
                    await self._flush_pending()
        finally:
            self.invalidate_local(wanted)

    def invalidate_local(self, tags: Iterable[str]) -> None:
        """Remove this process's L1 entries of these tags (and refuse loads already running)."""
        wanted = set(tags)
        if not wanted:
            return
        self._l1_epoch += 1
        self.stats.invalidations += 1
        for tag in wanted:
            for key in self._by_tag.pop(tag, ()):
                self._l1.pop(key, None)

    def clear_local(self) -> None:
        self._l1_epoch += 1
        self._l1.clear()
        self._by_tag.clear()
        self._indexed = 0

    async def close(self) -> None:
        for future in list(self._inflight.values()):
            future.cancel()
        if self._l2 is not None:
            await self._l2.close()

    # --- L1 ---------------------------------------------------------------------------------

    def _l1_get(self, key: str) -> _Entry | None:
        coherent = self._coherent()
        if coherent != self._was_coherent:
            self._was_coherent = coherent
            if coherent:
                # Invalidations missed while the channel was down cannot be known: start afresh.
                self.clear_local()
        entry = self._l1.get(key)
        if entry is None:
            return None
        if not coherent and self._clock() - entry.stored_at > DEGRADED_MAX_AGE:
            return None
        return entry

    def _l1_put(self, key: str, value: Any, tags: frozenset[str], epoch: int) -> None:
        if epoch != self._l1_epoch:
            return  # an invalidation ran while this value was being fetched
        self._l1[key] = _Entry(value, tags, self._clock())
        for tag in tags:
            self._by_tag[tag].add(key)
        self._indexed += len(tags)
        if self._indexed > 4 * self.settings.l1_max_entries + 1000:
            self._reindex()

    def _reindex(self) -> None:
        """Drop index entries of keys TTLCache has expired or evicted."""
        self._by_tag.clear()
        self._indexed = 0
        for key, entry in list(self._l1.items()):
            for tag in entry.tags:
                self._by_tag[tag].add(key)
            self._indexed += len(entry.tags)

    # --- L2 health --------------------------------------------------------------------------

    async def _usable_l2(self) -> RedisLevel | None:
        if self._l2 is None or self._clock() < self._l2_down_until:
            return None
        if self._pending:
            await self._flush_pending()
            if self._pending:
                return None
        return self._l2

    async def _flush_pending(self) -> None:
        assert self._l2 is not None
        tags = frozenset(self._pending)
        try:
            await self._l2.invalidate(tags)
        except (RedisError, OSError) as error:
            self._l2_failed(error)
            return
        self._pending -= tags

    def _l2_failed(self, error: BaseException) -> None:
        self.stats.l2_errors += 1
        if self._clock() >= self._l2_down_until:
            log.warning(
                "cache L2 (Redis) unavailable, skipped for %.0f s: %s", L2_RETRY_SECONDS, error
            )
        self._l2_down_until = self._clock() + L2_RETRY_SECONDS
