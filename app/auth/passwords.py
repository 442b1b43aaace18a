"""Argon2id password hashing, off the event loop.

Argon2 is slow on purpose (tens of milliseconds and tens of megabytes per hash), so every hash and
verification runs on a small dedicated thread pool: the event loop keeps serving while a password
is checked, and a burst of sign-ups or logins queues instead of starving the process. The queue is
bounded too: at most `password_queue` jobs are running or waiting on the pool, and a sign-in check
that finds it full is refused at once (`PasswordsBusy`, answered as throttled) rather than letting
parallel guesses pile up unlimited Argon2 work. Hashing for new accounts waits for a place instead
(sign-ups are rate limited per address already). The cost parameters come from configuration so
tests can make hashing cheap.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import AuthSettings
from app.domain.models import Role, User


class PasswordsBusy(Exception):
    """The password pool's queue is full: try again shortly."""


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=settings.password_workers, thread_name_prefix="argon2"
        )
        self._places = asyncio.Semaphore(settings.password_queue)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def new_user(self, *, email: str, password: str, role: Role) -> User:
        """A new user under the domain's rules, hashed on the password pool."""
        create = partial(
            User.create,
            email=email,
            password=password,
            role=role,
            now=datetime.now(UTC),
            hash_password=self.hash_sync,
        )
        async with self._places:
            return await asyncio.get_running_loop().run_in_executor(self._executor, create)

    async def hash(self, password: str) -> str:
        async with self._places:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self.hash_sync, password
            )

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches; raises PasswordsBusy when the queue is full."""
        if self._places.locked():
            raise PasswordsBusy

        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        async with self._places:
            return await asyncio.get_running_loop().run_in_executor(self._executor, check)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
