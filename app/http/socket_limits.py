"""How many WebSockets and subscriptions one client address, and one principal, may hold.

Every subscription costs work on every event it listens to, so without a bound one caller (or one
address opening many anonymous sockets) makes each event expensive for the whole process. The
counts are this process's: with several processes behind a balancer each enforces its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from app.auth.principal import Principal
from app.config import WebSocketSettings

Release = Callable[[], None]


class LimitReached(Exception):
    """Over a cap; the message names the setting."""


def principal_key(principal: Principal) -> str | None:
    """Whom a credential stands for (a user, or a client); None for anonymous sockets."""
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    if principal.client_id is not None:
        return f"client:{principal.client_id}"
    return None


class SocketLimits:
    def __init__(self, settings: WebSocketSettings) -> None:
        self._settings = settings
        self._sockets: Counter[str] = Counter()
        self._subscriptions: Counter[str] = Counter()

    def take_socket(self, address: str) -> Release:
        """A socket from `address`; call the result when it closes. LimitReached over the cap."""
        limit = self._settings.max_sockets_per_address
        return self._take(self._sockets, [(f"address:{address}", limit, "ADDRESS")], "SOCKETS")

    def take_principal_socket(self, principal: Principal) -> Release:
        key = principal_key(principal)
        if key is None:
            return _nothing
        limit = self._settings.max_sockets_per_principal
        return self._take(self._sockets, [(key, limit, "PRINCIPAL")], "SOCKETS")

    def take_subscription(self, address: str, principal: Principal) -> Release:
        settings = self._settings
        keys = [(f"address:{address}", settings.max_subscriptions_per_address, "ADDRESS")]
        key = principal_key(principal)
        if key is not None:
            keys.append((key, settings.max_subscriptions_per_principal, "PRINCIPAL"))
        return self._take(self._subscriptions, keys, "SUBSCRIPTIONS")

    @staticmethod
    def _take(counts: Counter[str], keys: list[tuple[str, int, str]], what: str) -> Release:
        for key, limit, per in keys:
            if counts[key] >= limit:
                raise LimitReached(f"at most {limit} at once (WS_MAX_{what}_PER_{per})")
        for key, _, _ in keys:
            counts[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            for key, _, _ in keys:
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]

        return release


def _nothing() -> None:
    return None
