"""Everything authentication needs for a process's lifetime, built once at startup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from app.auth.authenticator import Authenticator
from app.auth.keys import KeyRing, SigningKey, key_sealer, load_signing_key
from app.auth.login import Logins
from app.auth.oauth_server import OAuthServer
from app.auth.passwords import Passwords
from app.auth.ratelimit import RateLimiter, create_rate_limiter
from app.auth.revocation import KeyUsage, RevokedTokens, refresh_forever, refresh_keys
from app.auth.tokens import AccessTokens
from app.config import AuthSettings, Settings
from app.db.engine import Database
from app.repositories.unit_of_work import SqlUnitOfWork

log = logging.getLogger("app.auth")


@dataclass
class AuthServices:
    settings: AuthSettings
    db: Database
    signing_key: SigningKey
    keys: KeyRing
    tokens: AccessTokens
    revoked: RevokedTokens
    usage: KeyUsage
    limiter: RateLimiter
    passwords: Passwords
    authenticator: Authenticator
    oauth: OAuthServer
    logins: Logins
    _refresher: asyncio.Task[None] | None = field(default=None, repr=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @classmethod
    def create(cls, settings: Settings, db: Database) -> AuthServices:
        auth = settings.auth
        key = load_signing_key(auth, create=auth.environment != "production")
        keys = KeyRing(key, auth.access_token_seconds, key_sealer(auth, key))
        tokens = AccessTokens(keys, auth)
        revoked = RevokedTokens()
        usage = KeyUsage()
        limiter = create_rate_limiter(settings.redis_url, auth.redis_prefix)
        passwords = Passwords(auth)
        return cls(
            settings=auth,
            db=db,
            signing_key=key,
            keys=keys,
            tokens=tokens,
            revoked=revoked,
            usage=usage,
            limiter=limiter,
            passwords=passwords,
            authenticator=Authenticator(
                db=db,
                settings=auth,
                tokens=tokens,
                revoked=revoked,
                limiter=limiter,
                usage=usage,
            ),
            oauth=OAuthServer(
                db=db,
                uow=SqlUnitOfWork.factory(db),
                settings=auth,
                tokens=tokens,
                revoked=revoked,
                limiter=limiter,
            ),
            logins=Logins(db, passwords, limiter, auth),
        )

    async def start(self) -> None:
        """Load the revoked set before serving, then keep it fresh in the background.

        A database that is down at start-up must not stop the process (it serves
        SERVICE_UNAVAILABLE and recovers); the background loop loads the set once it answers.
        """
        try:
            await self.revoked.refresh(self.db)
            await refresh_keys(self.db, self.keys)
        except Exception as error:
            log.warning(
                "revoked tokens not loaded at start-up, retrying in the background: %s", error
            )
        self._refresher = asyncio.create_task(
            refresh_forever(
                self.db,
                self.revoked,
                self.usage,
                self.settings.revocation_refresh_seconds,
                self._stop,
                self.keys,
            ),
            name="auth-refresh",
        )

    async def close(self) -> None:
        if self._refresher is not None:
            self._stop.set()
            await self._refresher
            self._refresher = None
        with contextlib.suppress(Exception):
            await self.usage.flush(self.db)
        await self.limiter.close()
        self.passwords.close()
