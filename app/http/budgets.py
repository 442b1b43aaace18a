"""Query-cost budgets: a leaky bucket of points per principal, refilled at a steady rate.

The buckets are the rate limiter's (app.auth.ratelimit): in process memory by default, in Redis
when REDIS_URL is set, so every process draws on one budget per principal. An operation takes its
requested cost before it runs and gets back the difference once its actual cost is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.auth.principal import Principal
from app.auth.ratelimit import RateLimiter
from app.config import BudgetSettings


@dataclass(frozen=True, slots=True)
class Charge:
    """The bucket after an attempt to take points: `retry_after` is 0 when they were taken."""

    retry_after: int
    available: float


def budget_key(principal: Principal, client_address: str) -> str:
    """Whose budget pays: the API key, else the user, else the OAuth client, else the address."""
    if principal.api_key_id is not None:
        return f"key:{principal.api_key_id}"
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if principal.client_id is not None:
        return f"client:{principal.client_id}"
    return f"address:{client_address}"


class Budgets:
    def __init__(self, limiter: RateLimiter, settings: BudgetSettings) -> None:
        self._limiter = limiter
        self.settings = settings
        self._per_minute = settings.restore_rate * 60

    async def charge(self, key: str, points: int) -> Charge:
        """Take `points` if the bucket holds them; otherwise take nothing."""
        taken = await self._limiter.take(
            f"cost:{key}", self._per_minute, self.settings.maximum, points
        )
        return Charge(taken.wait if points > 0 else 0, taken.available)

    async def refund(self, key: str, points: int) -> float:
        """Give back points charged but not spent; what the bucket holds afterwards."""
        taken = await self._limiter.take(
            f"cost:{key}", self._per_minute, self.settings.maximum, -points
        )
        return taken.available

    def status(self, available: float) -> dict[str, Any]:
        """The `throttleStatus` every answer reports."""
        return {
            "maximumAvailable": self.settings.maximum,
            "currentlyAvailable": max(0, math.floor(available)),
            "restoreRate": self.settings.restore_rate,
        }
