"""Admission control: at most MAX_CONCURRENT_OPERATIONS operations execute at once per process.

Ordering is shown with events (an operation held open by a gate, a semaphore that reports a
waiter), never with timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal

import pytest

from tests.e2e.conftest import Api, ApiFactory

PRODUCTS = "{ products(first: 2) { edges { node { id sku } } } }"


class ObservedSemaphore(asyncio.Semaphore):
    """A semaphore that says when a caller has to wait for it."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.waiting = asyncio.Event()

    async def acquire(self) -> Literal[True]:
        if self.locked():
            self.waiting.set()
        return await super().acquire()


class GatedExecute:
    """Wraps the engine's execute: records each entry and holds the first until opened."""

    def __init__(self, api: Api) -> None:
        self.inner = api.state.engine.execute
        self.entered = 0
        self.first_entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered += 1
        if self.entered == 1:
            self.first_entered.set()
            await self.gate.wait()
        return await self.inner(*args, **kwargs)


async def test_an_operation_over_the_limit_waits_for_a_turn_then_runs(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_factory(max_concurrent_operations=1) as api:
        semaphore = ObservedSemaphore(1)
        api.state.pipeline.operations = semaphore
        execute = GatedExecute(api)
        monkeypatch.setattr(api.state.engine, "execute", execute)

        first = asyncio.create_task(api.post({"query": PRODUCTS}))
        await execute.first_entered.wait()
        second = asyncio.create_task(api.post({"query": PRODUCTS}))
        # Whichever comes first: the second request waits at the door, or (no admission
        # control) it runs to the end.
        waiting = asyncio.create_task(semaphore.waiting.wait())
        await asyncio.wait({waiting, second}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()

        # The second request is at the door while the first holds the only turn.
        assert execute.entered == 1
        assert not second.done()

        execute.gate.set()
        responses = await asyncio.gather(first, second)

    assert execute.entered == 2
    for response in responses:
        assert response.status_code == 200
        assert "errors" not in response.json()
        assert len(response.json()["data"]["products"]["edges"]) == 2


async def test_waiting_past_the_execution_timeout_is_service_unavailable(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_factory(max_concurrent_operations=1, execution_timeout=0.05) as api:
        execute = GatedExecute(api)
        monkeypatch.setattr(api.state.engine, "execute", execute)
        await api.state.pipeline.operations.acquire()  # every turn is taken
        try:
            strict = await api.post({"query": PRODUCTS})
            legacy = await api.post({"query": PRODUCTS}, accept="application/json")
        finally:
            api.state.pipeline.operations.release()

        execute.gate.set()
        # The query that follows must run however loaded the machine is: 50 ms was the deadline
        # for waiting, not for a cold first execution (its connection, its statements).
        pipeline = api.state.pipeline
        monkeypatch.setattr(
            pipeline, "_limits", dataclasses.replace(pipeline._limits, execution_timeout=30.0)
        )
        after = await api.post({"query": PRODUCTS})

    assert strict.status_code == 503
    assert legacy.status_code == 200
    for response in (strict, legacy):
        body = response.json()
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
        message = body["errors"][0]["message"]
        assert "too busy" in message
        assert "MAX_CONCURRENT_OPERATIONS" in message
    # Neither refused operation started; once a turn is free, operations run again.
    assert execute.entered == 1
    assert after.status_code == 200
    assert after.json()["data"]["products"]["edges"]
