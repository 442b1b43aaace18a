"""Serving subscriptions: replay after a cursor, then live, with one execution per event shared.

A subscription's resolver (resolvers/subscription.py) authorizes and returns a `Feed`. The `Hub`
serves it:

- **Shared execution.** Subscribers that sent the same document, operation and variables (the
  `after` cursor aside) with the same visibility (app.auth.policy.visibility) join one `Group`.
  The group listens to this process's fanout, executes each event once, encodes the `next`
  payload once and offers the same text to every member. One task per group handles its events
  one after another, so they reach members in the order the broker delivered them, which is the
  store's position order.
- **Cursors.** Every payload carries `extensions.cursor` (the event's store position, opaque) and
  `extensions.event` (id, type, stream version). `after` replays, in batches, the events after
  the cursor that the subscriber may see, then continues live: a member joins its group *before*
  reading the store, and drops every live event at or before the last position it has passed, so
  nothing falls between replay and live and nothing comes twice. The same rule drops what a relay
  retry appends again.
- **Catch-up at a pace.** A member's queue is bounded (WS_MAX_QUEUED_EVENTS). One that overflows
  (a slow reader, or a group flooded after an outage) is not closed: it forgets its queue and
  reads the store after its last position, a batch at a time, as fast as its socket takes them,
  then rejoins the live events. Only a subscriber whose oldest undelivered event is older than
  WS_MAX_LAG_SECONDS is truly too slow: its socket is closed with 1013 and it can resume with its
  last cursor.
- **Transient database trouble** while resolving an event is retried with fresh loaders, with
  backoff, for up to WS_MAX_LAG_SECONDS; the subscription does not end because of a blip.
- **Admission control.** Event executions, live and replayed, take turns from their own
  semaphore (WS_MAX_CONCURRENT_EVENT_EXECUTIONS), apart from queries' and mutations'
  MAX_CONCURRENT_OPERATIONS, so an event storm cannot take every turn from queries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    execute_subscription_event,
    visit,
)
from graphql.execution import Executor

from app.auth import policy
from app.auth.principal import Principal
from app.config import EventSettings, WebSocketSettings
from app.db.engine import Database
from app.domain.events import Event
from app.engine import Engine, Executed
from app.errors import ServiceUnavailable
from app.http import encoding
from app.http.errors import format_error
from app.messaging import cursor
from app.messaging.fanout import Delivery, Fanout, Listener, SubscriberOverflow
from app.observability import metrics
from app.repositories import events as store
from loaders import Loaders
from resolvers.context import Context
from resolvers.subscription import Feed

log = logging.getLogger("app.http.subscriptions")

# Events a group's own fanout queue holds before the group counts as flooded; its members then
# catch up from the store (nothing is lost, the store has every event).
GROUP_QUEUE = 10_000


TOO_SLOW = "Subscriber too slow; resume with the last cursor"


class TooSlow(Exception):
    """The subscriber fell further behind than WS_MAX_LAG_SECONDS allows: close with 1013."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """One `next` payload, encoded once for every member of a group."""

    position: int
    payload: str


@dataclass(frozen=True, slots=True)
class Query:
    """What a subscriber asked: the document as prepared, its operation and variables."""

    text: str
    document: DocumentNode
    operation: OperationDefinitionNode
    operation_name: str | None
    variables: dict[str, Any] | None

    def group_key(self, principal: Principal) -> tuple[object, ...]:
        variables = dict(self.variables or {})
        shared = _after_variable(self.document, self.operation)
        if shared is not None:
            variables.pop(shared, None)  # where to resume is each member's own
        encoded = json.dumps(variables, sort_keys=True, separators=(",", ":"), default=str)
        return (self.text, self.operation_name, encoded, policy.visibility(principal))


def _after_variable(document: DocumentNode, operation: OperationDefinitionNode) -> str | None:
    """The variable bound to the root field's `after`, when it is used nowhere else (so two
    subscribers differing only in it are shown the same for every event)."""
    name: str | None = None
    for selection in operation.selection_set.selections:
        for argument in getattr(selection, "arguments", None) or ():
            if argument.name.value == "after" and isinstance(argument.value, VariableNode):
                name = argument.value.name.value
    if name is None:
        return None
    uses = 0

    class Count(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            nonlocal uses
            if node.name.value == name:
                uses += 1

    for definition in document.definitions:  # selections only: not the variables' definitions
        selections = getattr(definition, "selection_set", None)
        if selections is not None:
            visit(selections, Count())
    return name if uses == 1 else None


def _transient(error: BaseException | None) -> bool:
    return isinstance(error, ServiceUnavailable)


class _Renderer:
    """Executes one feed's document for events, as one principal, and encodes the payloads.

    Each event runs on the engine (app.engine: the level executor, as queries do, or graphql-core's
    per-event execution where the level executor steps aside), with the batch's loaders."""

    def __init__(
        self, hub: Hub, feed: Feed[Any], query: Query, principal: Principal, context: Context
    ) -> None:
        self._hub = hub
        self._feed = feed
        self._principal = principal
        self._context = context
        self._request_id = context.request_id
        self._document = query.document
        built = Executor.build(
            hub.engine.schema._schema,
            query.document,
            None,
            context,
            query.variables,
            query.operation_name,
        )
        if isinstance(built, list):  # coerced once already by the session; cannot fail here
            raise GraphQLError(built[0].message)
        self._executor = built
        # Held for the renderer's life: a process holds more subscriptions than the engine
        # caches plans for, and rebuilding one per event was most of an event's cost.
        self._plan = hub.engine.events_plan(query.document, built.operation)

    async def render(
        self, events: Sequence[Event], loaders: Loaders | None = None
    ) -> list[Encoded | None]:
        """Each event's payload (None: not for this subscriber), resolving the events together
        with one set of loaders, so a batch costs one statement per relation; transient
        database trouble is retried with fresh loaders."""
        hub = self._hub
        deadline = time.monotonic() + hub.ws.max_lag
        delay = 0.05
        while True:
            batch_loaders = loaders or Loaders.create(hub.db)
            loaders = None
            try:
                async with hub.executions:
                    self._context.loaders = batch_loaders
                    results = await self._execute(events, batch_loaders)
            except ServiceUnavailable:
                results = None
            if results is not None and not any(
                _transient(e.original_error) for r in results if r for e in r.errors or ()
            ):
                return [
                    None if result is None else self._encode(event, result)
                    for event, result in zip(events, results, strict=True)
                ]
            if time.monotonic() + delay > deadline:
                raise TooSlow("events could not be resolved: the database is unavailable")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _execute(self, events: Sequence[Event], loaders: Loaders) -> list[Executed | None]:
        feed, principal = self._feed, self._principal
        if len(events) == 1:  # a live event: no task to gather one value
            roots = [await feed.source(events[0], loaders, principal)]
        else:
            roots = await asyncio.gather(
                *(feed.source(event, loaders, principal) for event in events)
            )
        shown = [root for root in roots if root is not None]
        executor = self._executor

        async def standard(root: Any) -> ExecutionResult:
            result = execute_subscription_event(executor.build_per_event_executor(root))
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            assert isinstance(result, ExecutionResult)
            return result

        executed = iter(
            await self._hub.engine.execute_events(
                document=self._document,
                operation=executor.operation,
                variables=executor.variable_values,
                context=self._context,
                payloads=shown,
                standard=standard,
                plan=self._plan,
            )
            if shown
            else ()
        )
        return [None if root is None else next(executed) for root in roots]

    def _encode(self, event: Event, result: Executed) -> Encoded:
        position = event.position or 0
        data = encoding.dumps_text(result.data)
        extensions = _extensions(position, event.id, event.type, event.version)
        if result.errors:
            debug = self._hub.debug
            errors = [format_error(e, self._request_id, debug) for e in result.errors]
            text = f'{{"data":{data},"errors":{encoding.dumps_text(errors)},{extensions}}}'
        else:
            text = f'{{"data":{data},{extensions}}}'
        return Encoded(position, text)


@lru_cache(maxsize=1024)
def _extensions(position: int, event_id: UUID, event_type: str, version: int) -> str:
    """A payload's `"extensions":{...}` member: the same for every group an event reaches, so
    encoded once per event (the last ones kept; a live event is rendered for every group in
    turn, a replayed batch for one subscriber)."""
    extensions = {
        "cursor": cursor.encode(position),
        "event": {"id": str(event_id), "type": event_type, "version": version},
    }
    return f'"extensions":{encoding.dumps_text(extensions)}'


_FAILED = "failed"


class Member:
    """One subscriber in a group: its bounded queue of encoded payloads."""

    def __init__(self, max_queued: int) -> None:
        self._queue: deque[Encoded] = deque()
        self._max_queued = max_queued
        self._ready = asyncio.Event()
        self.overflowed = False
        self.failure: str | None = None

    def offer(self, item: Encoded) -> None:
        if self.overflowed or self.failure:
            return
        if len(self._queue) >= self._max_queued:
            self.overflow()
            return
        self._queue.append(item)
        self._ready.set()

    def overflow(self) -> None:
        self.overflowed = True
        self._queue.clear()
        self._ready.set()

    def fail(self, reason: str) -> None:
        self.failure = reason
        self._ready.set()

    def rearm(self) -> None:
        """Start over collecting live events (before reading the store, so none falls between)."""
        self.overflowed = False
        self._queue.clear()

    async def next(self) -> Encoded | None:
        """The next live payload; None once overflowed (catch up from the store)."""
        while True:
            if self.failure:
                raise TooSlow(self.failure)
            if self.overflowed:
                return None
            if self._queue:
                return self._queue.popleft()
            self._ready.clear()
            await self._ready.wait()


class Group:
    """Subscribers sharing one execution per event (see the module docstring)."""

    def __init__(
        self, hub: Hub, key: tuple[object, ...], renderer: _Renderer, feed: Feed[Any]
    ) -> None:
        self._hub = hub
        self.key = key
        self._renderer = renderer
        self._feed = feed
        self.members: set[Member] = set()
        self._listener: Listener[Loaders] = self._listen()
        self._task = asyncio.create_task(self._run(), name="subscription group")

    async def _run(self) -> None:
        while True:
            try:
                async for delivery in self._listener:
                    await self._deliver(delivery)
                return
            except SubscriberOverflow:
                # Listen again first, then let every member catch up from the store.
                self._listener = self._listen()
                for member in list(self.members):
                    member.overflow()
            except TooSlow as error:
                self.stop(str(error))
                return
            except Exception:
                log.exception("a subscription group failed")
                self.stop("the subscription failed; resume with the last cursor")
                return

    def _listen(self) -> Listener[Loaders]:
        feed = self._feed
        return self._hub.fanout.listen(feed.event_types, GROUP_QUEUE, feed.stream_id)

    async def _deliver(self, delivery: Delivery[Loaders]) -> None:
        if not self.members:
            return
        [encoded] = await self._renderer.render([delivery.event], delivery.shared)
        if encoded is not None:
            for member in list(self.members):
                member.offer(encoded)

    def stop(self, reason: str) -> None:
        for member in list(self.members):
            member.fail(reason)
        self._hub.forget(self)
        self._listener.close()
        self._task.cancel()

    def leave(self, member: Member) -> None:
        self.members.discard(member)
        if not self.members:
            self._hub.forget(self)
            self._listener.close()
            self._task.cancel()


class SendWatch:
    """Which sockets have been waiting longer than WS_MAX_LAG_SECONDS to take an event.

    A send waits only when the client has stopped reading (its socket's buffers are full), so
    instead of a timer for every send (asyncio.timeout cost ~10 us, a fifth of a delivery at
    10,000 subscribers) each send notes when it started and one task per process looks, a few
    times per WS_MAX_LAG_SECONDS, for a send that is still waiting: it cancels that send's task,
    and the send reports the subscriber too slow (`expired`)."""

    def __init__(self, max_lag: float) -> None:
        self.max_lag = max_lag
        self._sending: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[Any]:
        """A send begins in the current task; the task, to pass to `done` and `expired`."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        self._sending[task] = loop.time()
        if self._task is None:
            self._task = loop.create_task(self._watch(), name="subscription send watch")
        return task

    def done(self, task: asyncio.Task[Any]) -> None:
        self._sending.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the watch cancelled this task's send (then its cancellation is withdrawn)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.max_lag / 4)
        while True:
            await asyncio.sleep(interval)
            late = loop.time() - self.max_lag
            for task, since in list(self._sending.items()):
                if since <= late and task not in self._expired:
                    del self._sending[task]
                    self._expired.add(task)
                    task.cancel()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


@dataclass
class Hub:
    """This process's subscriptions (see the module docstring)."""

    db: Database
    fanout: Fanout[Loaders]
    engine: Engine
    ws: WebSocketSettings
    events: EventSettings
    debug: bool = False
    groups: dict[tuple[object, ...], Group] = field(default_factory=dict)
    executions: asyncio.Semaphore = field(init=False)
    sends: SendWatch = field(init=False)

    def __post_init__(self) -> None:
        self.executions = asyncio.Semaphore(self.ws.max_concurrent_event_executions)
        self.sends = SendWatch(self.ws.max_lag)

    @property
    def subscriber_count(self) -> int:
        return sum(len(group.members) for group in self.groups.values())

    def forget(self, group: Group) -> None:
        if self.groups.get(group.key) is group:
            del self.groups[group.key]

    async def check_cursor(self, position: int) -> None:
        async with self.db.read() as conn:
            mark = await store.mark_of(conn, position)
        window = timedelta(seconds=self.events.replay_window)
        cursor.check_resumable(position, mark, datetime.now(UTC), window)

    async def serve(
        self, feed: Feed[Any], query: Query, principal: Principal, context: Callable[[], Context]
    ) -> AsyncGenerator[Encoded, None]:
        """The subscriber's payloads: replayed after `feed.after`, then live, each once.

        Raises CURSOR_EXPIRED or BAD_USER_INPUT for an unusable cursor before anything is sent,
        and TooSlow when the subscriber must be closed with 1013.
        """
        after = None if feed.after is None else cursor.decode(feed.after)
        if after is not None:
            await self.check_cursor(after)
        key = query.group_key(principal)
        group = self.groups.get(key)
        if group is None:
            renderer = _Renderer(self, feed, query, principal, context())
            group = self.groups[key] = Group(self, key, renderer, feed)
        member = Member(self.ws.max_queued_events)
        group.members.add(member)
        metrics.SUBSCRIPTIONS.inc()
        try:
            last = after
            if last is None:
                # Live events from here on; a catch-up after an overflow starts here.
                last = self.fanout.last_position
                if last is None:
                    async with self.db.read() as conn:
                        last = await store.last_position(conn)
            replaying = after is not None
            catching_up = False  # the first replay may go back days; a catch-up may not
            own: _Renderer | None = None
            while True:
                if replaying:
                    member.rearm()
                    own = own or _Renderer(self, feed, query, principal, context())
                    async for position, encoded in self._replay(own, feed, last, catching_up):
                        last = position
                        if encoded is not None:
                            yield encoded
                    replaying = catching_up = member.overflowed
                    continue
                item = await member.next()
                if item is None:
                    replaying = catching_up = True
                elif item.position > last:
                    last = item.position
                    yield item
        finally:
            metrics.SUBSCRIPTIONS.dec()
            group.leave(member)

    async def _replay(
        self, renderer: _Renderer, feed: Feed[Any], after: int, catching_up: bool
    ) -> AsyncGenerator[tuple[int, Encoded | None], None]:
        """The store's events after `after` for this feed, in batches, until it has no more."""
        batch = self.ws.replay_batch
        types = sorted(feed.event_types)
        while True:
            events = await self._read(after, types, batch, feed)
            if not events:
                return
            if catching_up and events[0].occurred_at < datetime.now(UTC) - timedelta(
                seconds=self.ws.max_lag
            ):
                raise TooSlow(TOO_SLOW)
            for event, encoded in zip(events, await renderer.render(events), strict=True):
                yield event.position or after, encoded
            after = events[-1].position or after
            if len(events) < batch:
                return

    async def _read(self, after: int, types: list[str], batch: int, feed: Feed[Any]) -> list[Event]:
        deadline = time.monotonic() + self.ws.max_lag
        delay = 0.05
        while True:
            try:
                async with self.db.read() as conn:
                    return await store.after_position(conn, after, types, batch, feed.stream_id)
            except ServiceUnavailable:
                if time.monotonic() + delay > deadline:
                    raise TooSlow("the event store is unavailable; resume later") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        """Shutting down: every subscriber's socket is closed (1013: resume elsewhere)."""
        for group in list(self.groups.values()):
            group.stop("the server is shutting down; resume with the last cursor")
        self.sends.close()
