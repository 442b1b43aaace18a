"""Held plans: a subscription's group keeps its operation's plan, so a process holding more
subscriptions than the engine caches plans for does not rebuild (and recompile) one per event."""

from __future__ import annotations

from typing import Any, cast

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import VariableValues

from app.engine import Engine, levels
from resolvers.schema import build_schema

CACHED = 8  # the engine's plan cache, small so a handful of documents overflow it


async def test_held_plans_are_built_once_however_many_operations_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(build_schema())
    executor = levels.LevelExecutor(engine.schema, cache_size=CACHED)
    engine.levels = executor
    compiled: list[str] = []
    compile_fill = levels._compile_fill

    def counted(plan: Any) -> Any:
        compiled.append(plan.name)
        return compile_fill(plan)

    monkeypatch.setattr(levels, "_compile_fill", counted)
    documents = [parse(f"{{ a{n}: __typename }}") for n in range(CACHED * 3)]
    operations = [cast(OperationDefinitionNode, d.definitions[0]) for d in documents]
    plans = [engine.events_plan(d, o) for d, o in zip(documents, operations, strict=True)]
    no_variables = VariableValues({}, {})

    async def standard(_: Any) -> Any:
        raise AssertionError("the level executor runs these")

    for _ in range(2):  # two events each
        for n, (document, operation, plan) in enumerate(
            zip(documents, operations, plans, strict=True)
        ):
            [done] = await engine.execute_events(
                document=document,
                operation=operation,
                variables=no_variables,
                context=None,
                payloads=[None],
                standard=standard,
                plan=plan,
            )
            assert done.data == {f"a{n}": "Query"}
    assert len(compiled) == len(documents), "one plan each, built on its first event"

    # Without held plans, the cache's LRU order rebuilds every one on the second round.
    compiled.clear()
    for _ in range(2):
        for document, operation in zip(documents, operations, strict=True):
            await executor.execute_many(document, operation, no_variables, None, [None])
    assert len(compiled) == 2 * len(documents)
