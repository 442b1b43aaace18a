"""Query-cost budgets over the in-memory buckets: depletion, refill, refunds, one per principal."""

from __future__ import annotations

from uuid import uuid4

from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.auth.ratelimit import MemoryRateLimiter
from app.config import BudgetSettings
from app.http.budgets import Budgets, budget_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_depletion_refill_and_refund() -> None:
    clock = Clock()
    budgets = Budgets(MemoryRateLimiter(clock), BudgetSettings(maximum=100, restore_rate=10))

    first = await budgets.charge("user:a", 70)
    assert (first.retry_after, first.available) == (0, 30)
    # 50 more than the 30 left: refused, nothing taken, told to wait for the 20 missing.
    refused = await budgets.charge("user:a", 50)
    assert (refused.retry_after, refused.available) == (2, 30)
    # The first operation used 10 of its 70: 60 come back.
    assert await budgets.refund("user:a", 60) == 90
    clock.now += 1  # 10 a second, never above the maximum
    again = await budgets.charge("user:a", 50)
    assert (again.retry_after, again.available) == (0, 50)
    clock.now += 60
    assert (await budgets.charge("user:a", 0)).available == 100


async def test_an_operation_larger_than_the_bucket_never_fits() -> None:
    budgets = Budgets(MemoryRateLimiter(Clock()), BudgetSettings(maximum=100, restore_rate=10))
    charge = await budgets.charge("user:a", 101)
    assert charge.retry_after > 0
    assert charge.available == 100


def test_each_principal_has_its_own_budget() -> None:
    user, key = uuid4(), uuid4()
    customer = Principal(PrincipalKind.CUSTOMER, user_id=user, client_id="web")
    by_key = Principal(PrincipalKind.CUSTOMER, user_id=user, api_key_id=key)
    client = Principal(PrincipalKind.CLIENT, client_id="partner")

    assert budget_key(customer, "10.0.0.1") == f"user:{user}"
    assert budget_key(by_key, "10.0.0.1") == f"key:{key}"
    assert budget_key(client, "10.0.0.1") == "client:partner"
    assert budget_key(ANONYMOUS, "10.0.0.1") == "address:10.0.0.1"
    assert budget_key(ANONYMOUS, "10.0.0.2") == "address:10.0.0.2"


def test_throttle_status_reports_whole_points() -> None:
    budgets = Budgets(MemoryRateLimiter(), BudgetSettings(maximum=1000, restore_rate=50))
    assert budgets.status(412.7) == {
        "maximumAvailable": 1000,
        "currentlyAvailable": 412,
        "restoreRate": 50,
    }
