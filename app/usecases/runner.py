"""Running a use case's work in a unit of work, with bounded retries for lost races."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from app.domain.errors import DomainError, Problem
from app.errors import Retryable
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
log = logging.getLogger("app.usecases")

ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What a use case did: its result, or the problems that stopped it (and undid its work)."""

    value: T | None = None
    problems: tuple[Problem, ...] = ()


def utcnow() -> datetime:
    return datetime.now(UTC)


async def run(
    uow_factory: UnitOfWorkFactory,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
) -> Outcome[T]:
    """Run `work` in a fresh unit of work; on a retryable error, start again from a fresh read.

    Rule violations come back as problems. Retries back off with jitter so racing writers do not
    collide again in step.
    """
    for attempt in range(1, attempts + 1):
        uow = uow_factory()
        try:
            async with uow:
                value = await work(uow)
        except DomainError as error:
            return Outcome(problems=error.problems)
        except Retryable as error:
            if attempt == attempts:
                log.warning(
                    "gave up after %d attempts: %s",
                    attempts,
                    getattr(error, "detail", error.message),
                )
                raise
            log.info(
                "retrying after %s (attempt %d of %d): %s",
                type(error).__name__,
                attempt,
                attempts,
                getattr(error, "detail", error.message),
            )
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
            continue
        return Outcome(value)
    raise AssertionError("unreachable")
