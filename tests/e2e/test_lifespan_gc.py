"""The app freezes its startup heap for the cyclic GC while it runs, and only then."""

from __future__ import annotations

import gc

from tests.e2e.conftest import ApiFactory


async def test_the_startup_heap_is_frozen_while_the_app_runs(api_factory: ApiFactory) -> None:
    gc.unfreeze()  # whatever an earlier test left

    async with api_factory() as api:
        frozen = gc.get_freeze_count()
        response = await api.post({"query": "{ __typename }"})

    assert frozen > 0
    assert response.json()["data"] == {"__typename": "Query"}
    assert gc.get_freeze_count() == 0
