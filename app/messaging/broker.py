"""Brokers: how committed events reach every process's fanout.

The relay (app.messaging.relay) is the only caller of `append`; every process's broker delivers
what was appended, in order, to its own fanout through `deliver`. Two adapters:

- `InProcessBroker` (no `REDIS_URL`): one process, so appending is delivering.
- `RedisStreamsBroker`: the relay appends to one Redis stream, `<REDIS_PREFIX>events`, with
  `XADD … MAXLEN ~ EVENTS_STREAM_MAXLEN`; each process reads it with `XREAD BLOCK` from the last
  entry ID it has seen, so a reader that lost its connection resumes exactly where it stopped.
  Plain pub/sub would drop what is sent while a reader reconnects.

Redis trouble never reaches a request: `append` raises `BrokerUnavailable` to the relay, which
leaves the events unpublished in the store and tries again, and the reader retries on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.domain.events import Event

log = logging.getLogger("app.broker")

Health = Literal["ok", "degraded"]
Deliver = Callable[[Event], object]


class BrokerUnavailable(Exception):
    """The broker cannot take events now; they stay in the store until it can."""


class Broker(Protocol):
    name: str

    async def start(self) -> None:
        """Begin delivering appended events to this process's fanout."""

    async def append(self, events: Sequence[Event]) -> None:
        """Hand committed events over, in the order given, all or none; may raise
        BrokerUnavailable."""

    async def health(self) -> Health: ...

    @property
    def delivering(self) -> bool:
        """Whether other processes' events reach this process now (the cache relies on it)."""
        ...

    async def close(self) -> None: ...


def encode(event: Event) -> str:
    return json.dumps(
        {
            "id": str(event.id),
            "streamId": str(event.stream_id),
            "streamType": event.stream_type,
            "version": event.version,
            "type": event.type,
            "occurredAt": event.occurred_at.isoformat(),
            "payload": event.payload,
            "sequence": event.sequence,
        },
        separators=(",", ":"),
    )


def decode(raw: str | bytes) -> Event:
    data: dict[str, Any] = json.loads(raw)
    return Event(
        id=UUID(data["id"]),
        stream_id=UUID(data["streamId"]),
        stream_type=str(data["streamType"]),
        version=int(data["version"]),
        type=str(data["type"]),
        occurred_at=datetime.fromisoformat(data["occurredAt"]),
        payload=dict(data["payload"]),
        sequence=None if data["sequence"] is None else int(data["sequence"]),
    )


def _deliver_safely(deliver: Deliver, event: Event) -> None:
    # One event that cannot be delivered (say its loaders fail to build) must not stop the others.
    try:
        deliver(event)
    except Exception:
        log.exception("delivering event %s (%s) to subscribers failed", event.id, event.type)


class InProcessBroker:
    """A single process: the relay's append is the delivery."""

    name = "in-process"

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def start(self) -> None:
        return None

    async def append(self, events: Sequence[Event]) -> None:
        for event in events:
            _deliver_safely(self._deliver, event)

    async def health(self) -> Health:
        return "ok"

    @property
    def delivering(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class RedisStreamsBroker:
    """One Redis stream shared by every process of a deployment (see the module docstring)."""

    name = "redis-streams"

    def __init__(
        self,
        url: str,
        prefix: str,
        deliver: Deliver,
        *,
        maxlen: int = 100_000,
        block_ms: int = 5_000,
        read_count: int = 500,
        timeout: float = 2.0,
    ) -> None:
        self.key = f"{prefix}events"
        self._deliver = deliver
        self._maxlen = maxlen
        self._block_ms = block_ms
        self._read_count = read_count
        # Failures surface at once (no client-side retries): the relay and the reader have their
        # own, and a request never waits on either.
        no_retry = Retry(NoBackoff(), 0)
        self._writer: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=no_retry,
        )
        # The reader's socket must outwait its own XREAD BLOCK.
        self._reader: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout + block_ms / 1000,
            socket_connect_timeout=timeout,
            retry=no_retry,
        )
        # The last entry this process has read; None until the reader has found the stream's end.
        self.last_id: str | None = None
        self._positioned = asyncio.Event()
        self._reading = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, from_id: str | None = None) -> None:
        """Start reading after `from_id`, or after the stream's current last entry."""
        if self._task is None:
            self.last_id = from_id
            if from_id is None:
                # Found now if Redis answers, so the relay's catch-up at start-up can go ahead;
                # otherwise the reader keeps trying and the relay waits for it.
                with contextlib.suppress(RedisError, OSError):
                    self.last_id = await self._tail_id()
            if self.last_id is not None:
                self._positioned.set()
                self._reading = True
            self._task = asyncio.create_task(self._read_loop(), name=f"stream reader {self.key}")

    async def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        if not self._positioned.is_set():
            # Appending before this process's reader knows where the stream ends could leave its
            # own subscribers without these events.
            raise BrokerUnavailable("the stream reader has not reached Redis yet")
        pipe = self._writer.pipeline(transaction=True)  # MULTI/EXEC: the batch lands whole
        for event in events:
            pipe.xadd(self.key, {"event": encode(event)}, maxlen=self._maxlen, approximate=True)
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            raise BrokerUnavailable(f"Redis refused the events: {error}") from error

    async def health(self) -> Health:
        try:
            await self._writer.ping()
        except (RedisError, OSError):
            return "degraded"
        return "ok" if self._reading else "degraded"

    @property
    def delivering(self) -> bool:
        return self._reading

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # Cancelling a task blocked in redis-py's XREAD can leave it waiting on the socket, so
            # the reader is asked to stop and its connection closed under it instead.
            self._closing = True
            await self._reader.connection_pool.disconnect(inuse_connections=True)
            try:
                await asyncio.wait_for(task, timeout=self._block_ms / 1000 + 5)
            except TimeoutError:
                log.warning("the reader of %s did not stop in time", self.key)
        await self._reader.aclose()
        await self._writer.aclose()

    async def _tail_id(self) -> str:
        newest = await self._reader.xrevrange(self.key, "+", "-", count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                if self.last_id is None:
                    self.last_id = await self._tail_id()
                    self._positioned.set()
                elif not self._reading:
                    await self._reader.ping()  # recovering: know at once, not after BLOCK
                self._connected()
                response = await self._reader.xread(
                    {self.key: self.last_id}, count=self._read_count, block=self._block_ms
                )
            except (RedisError, OSError) as error:
                if self._closing:
                    return
                if self._reading:
                    log.warning(
                        "reading %s failed (%s); will resume after %s",
                        self.key,
                        error,
                        self.last_id,
                    )
                self._reading = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            for entry_id, fields in _entries(response):
                self.last_id = entry_id
                try:
                    event = decode(fields["event"])
                except (KeyError, ValueError, TypeError):
                    log.error("skipping malformed entry %s in %s", entry_id, self.key)
                    continue
                _deliver_safely(self._deliver, event)

    def _connected(self) -> None:
        if not self._reading:
            log.info("reading %s after %s", self.key, self.last_id)
        self._reading = True


def _entries(response: Any) -> list[tuple[str, dict[str, str]]]:
    """XREAD's entries for the one stream read: a list of [key, entries] pairs (RESP2) or a
    mapping of key to entries (RESP3)."""
    if not response:
        return []
    pairs = response.items() if isinstance(response, dict) else response
    return [
        (str(entry_id), dict(fields)) for _key, entries in pairs for entry_id, fields in entries
    ]


def create_broker(
    redis_url: str | None, prefix: str, deliver: Deliver, *, maxlen: int = 100_000
) -> Broker:
    if redis_url:
        return RedisStreamsBroker(redis_url, prefix, deliver, maxlen=maxlen)
    return InProcessBroker(deliver)
