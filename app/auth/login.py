"""Signing a user in with email and password, throttled per account and per client address.

Each attempt takes a token from two buckets (the account, the address) *before* the password is
checked, and a successful sign-in gives them back, so only failures cost. Charging first matters:
checking the buckets and charging after Argon2 (which yields) would let any number of concurrent
guesses pass the same check. While either bucket is empty, attempts are refused before any
password is checked, so guessing costs the attacker time and the server no Argon2 work. Unknown
emails are verified against a dummy hash so they take as long as known ones. Argon2 runs on the
bounded password executor, never on the event loop; when its queue is full the attempt is refused
as throttled (and refunded: no guess was checked).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from app.auth.passwords import Passwords, PasswordsBusy
from app.auth.ratelimit import RateLimiter
from app.config import AuthSettings
from app.db.engine import Database
from app.domain.models import InvalidUser, User, normalize_email
from app.repositories import users as user_repo

MAX_PASSWORD_LENGTH = 1024


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    INVALID = "invalid"
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
        charged: list[tuple[str, int]] = []
        for key, per_minute in self._buckets(normalized, address):
            wait = await self._limiter.acquire(key, per_minute, per_minute)
            if wait:
                await self._refund(charged)
                return LoginResult(Outcome.THROTTLED, retry_after=wait)
            charged.append((key, per_minute))
        try:
            user, verified = await self._check(normalized, password)
        except PasswordsBusy:
            await self._refund(charged)
            return LoginResult(Outcome.THROTTLED, retry_after=1)
        except Exception:
            await self._refund(charged)  # the database failed: nothing was guessed
            raise
        if not verified or user is None or user.is_disabled:
            # One answer, and the charge kept, whether the password was wrong or the account is
            # disabled: a guesser learns neither that the password was right nor the state.
            return LoginResult(Outcome.INVALID)
        await self._refund(charged)
        return LoginResult(Outcome.SIGNED_IN, user)

    async def _check(self, email: str, password: str) -> tuple[User | None, bool]:
        user = None
        if email and len(password) <= MAX_PASSWORD_LENGTH:
            async with self._db.read() as conn:
                user = await user_repo.get_by_email(conn, email)
        if user is None:
            await self._passwords.verify(await self._dummy(), password[:MAX_PASSWORD_LENGTH])
            return None, False
        return user, await self._passwords.verify(user.password_hash, password)

    async def _refund(self, charged: list[tuple[str, int]]) -> None:
        for key, per_minute in charged:
            await self._limiter.refund(key, per_minute, per_minute)

    async def _dummy(self) -> str:
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self._passwords.hash("dummy password, never matches")
            return self._dummy_hash
