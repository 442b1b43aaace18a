"""Sign-in throttling under concurrency: charged before Argon2, refunded on success, bounded."""

from __future__ import annotations

import asyncio
from collections import Counter

from app.auth.login import Logins, Outcome
from app.auth.passwords import Passwords, PasswordsBusy
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases.operators import create_user
from tests.auth_support import AuthApp, auth_settings

PASSWORD = "Correct-Horse-9"


async def test_concurrent_wrong_guesses_are_checked_only_within_the_bucket(
    auth_app: AuthApp,
) -> None:
    await create_user(
        SqlUnitOfWork.factory(auth_app.db),
        auth_app.services.passwords,
        email="race@example.test",
        password=PASSWORD,
    )
    logins = auth_app.services.logins
    per_account = auth_app.services.settings.login_failures_per_account

    results = await asyncio.gather(
        *(logins.sign_in("race@example.test", f"Wrong-{i}-x", "198.51.100.7") for i in range(60))
    )

    outcomes = Counter(result.outcome for result in results)
    assert outcomes[Outcome.INVALID] == per_account, outcomes
    assert outcomes[Outcome.THROTTLED] == 60 - per_account, outcomes
    late = await logins.sign_in("race@example.test", PASSWORD, "198.51.100.7")
    assert late.outcome is Outcome.THROTTLED, "the right password, after the bucket emptied"


async def test_a_successful_sign_in_costs_nothing(auth_app: AuthApp) -> None:
    await create_user(
        SqlUnitOfWork.factory(auth_app.db),
        auth_app.services.passwords,
        email="ok@example.test",
        password=PASSWORD,
    )
    logins = auth_app.services.logins
    per_account = auth_app.services.settings.login_failures_per_account

    for _ in range(per_account - 1):
        assert (await logins.sign_in("ok@example.test", "nope", "192.0.2.1")).outcome is (
            Outcome.INVALID
        )
    signed_in = await logins.sign_in("ok@example.test", PASSWORD, "192.0.2.1")
    last_try = await logins.sign_in("ok@example.test", "nope", "192.0.2.1")

    assert signed_in.outcome is Outcome.SIGNED_IN
    assert last_try.outcome is Outcome.INVALID, "the sign-in gave its token back"
    throttled = await logins.sign_in("ok@example.test", PASSWORD, "192.0.2.1")
    assert throttled.outcome is Outcome.THROTTLED


async def test_a_full_password_queue_refuses_checks_instead_of_queueing() -> None:
    passwords = Passwords(auth_settings(password_workers=1, password_queue=3))
    try:
        stored = await passwords.hash(PASSWORD)
        results = await asyncio.gather(
            *(passwords.verify(stored, PASSWORD) for _ in range(10)), return_exceptions=True
        )
    finally:
        passwords.close()

    assert results[:3] == [True, True, True]
    assert all(isinstance(result, PasswordsBusy) for result in results[3:]), results


class _FullQueue(Passwords):
    """A password pool whose queue is always full (what a flood of parallel guesses causes)."""

    async def verify(self, password_hash: str, password: str) -> bool:
        raise PasswordsBusy


async def test_a_sign_in_refused_by_a_full_queue_is_throttled_and_not_charged(
    auth_app: AuthApp,
) -> None:
    await create_user(
        SqlUnitOfWork.factory(auth_app.db),
        auth_app.services.passwords,
        email="busy@example.test",
        password=PASSWORD,
    )
    settings = auth_app.services.settings
    busy = Logins(auth_app.db, _FullQueue(settings), auth_app.services.limiter, settings)

    refused = [
        await busy.sign_in("busy@example.test", "guess", "203.0.113.9")
        for _ in range(settings.login_failures_per_account + 1)
    ]

    assert {result.outcome for result in refused} == {Outcome.THROTTLED}
    assert all(result.retry_after >= 1 for result in refused)
    logins = auth_app.services.logins
    signed_in = await logins.sign_in("busy@example.test", PASSWORD, "203.0.113.9")
    assert signed_in.outcome is Outcome.SIGNED_IN, "no refused attempt was charged"
