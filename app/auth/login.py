"""Signing a user in with email and password, throttled per account and per client address.

Each failure takes a token from two buckets (the account, the address); while either is empty,
attempts are refused before any password is checked, so guessing costs the attacker time and the
server no Argon2 work. Unknown emails are verified against a dummy hash so they take as long as
known ones. Argon2 runs on the bounded password executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from app.auth.passwords import Passwords
from app.auth.ratelimit import RateLimiter
from app.config import AuthSettings
from app.db.engine import Database
from app.domain.models import InvalidUser, User, normalize_email
from app.repositories import users as user_repo

MAX_PASSWORD_LENGTH = 1024


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    INVALID = "invalid"
    DISABLED = "disabled"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class LoginResult:
    outcome: Outcome
    user: User | None = None
    retry_after: int = 0


class Logins:
    def __init__(
        self, db: Database, passwords: Passwords, limiter: RateLimiter, settings: AuthSettings
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._limiter = limiter
        self._settings = settings
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()

    def _buckets(self, email: str, address: str) -> list[tuple[str, int]]:
        return [
            (f"login-failures:account:{email}", self._settings.login_failures_per_account),
            (f"login-failures:address:{address}", self._settings.login_failures_per_address),
        ]

    async def sign_in(self, email: str, password: str, address: str) -> LoginResult:
        try:
            normalized = normalize_email(email)
        except InvalidUser:
            normalized = email.strip().lower()[:254]
        buckets = self._buckets(normalized, address)
        for key, per_minute in buckets:
            wait = await self._limiter.acquire(key, per_minute, per_minute, cost=0)
            if wait:
                return LoginResult(Outcome.THROTTLED, retry_after=wait)
        user = None
        if normalized and len(password) <= MAX_PASSWORD_LENGTH:
            async with self._db.read() as conn:
                user = await user_repo.get_by_email(conn, normalized)
        if user is None:
            await self._passwords.verify(await self._dummy(), password[:MAX_PASSWORD_LENGTH])
            verified = False
        else:
            verified = await self._passwords.verify(user.password_hash, password)
        if not verified:
            for key, per_minute in buckets:
                await self._limiter.acquire(key, per_minute, per_minute)
            return LoginResult(Outcome.INVALID)
        assert user is not None
        if user.is_disabled:
            return LoginResult(Outcome.DISABLED)
        return LoginResult(Outcome.SIGNED_IN, user)

    async def _dummy(self) -> str:
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self._passwords.hash("dummy password, never matches")
            return self._dummy_hash
