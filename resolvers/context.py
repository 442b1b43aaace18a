"""What every resolver can reach: the request's loaders and principal, and the unit of work
mutations run in, all handed in by the composition root (app.main.graphql_context).

Over a WebSocket each operation has its own Context. A subscription's resolver points `loaders` at
the fresh set its current event came with, so nothing cached for one event serves the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import strawberry

from app.auth.principal import ANONYMOUS, Principal
from app.domain.accounts import MAX_KEYS_PER_USER
from app.domain.events import Event
from app.unit_of_work import UnitOfWorkFactory
from app.usecases.accounts import SignUps
from loaders import Loaders


class EventDelivery(Protocol):
    """One committed event and the fresh loaders that came with it."""

    @property
    def event(self) -> Event: ...

    @property
    def shared(self) -> Loaders: ...


class EventListener(Protocol):
    """Committed events of some types, in order, until closed (bounded by the transport)."""

    def __aiter__(self) -> AsyncIterator[EventDelivery]: ...

    def close(self) -> None: ...


Listen = Callable[[Collection[str]], EventListener]


@dataclass(slots=True)
class Context:
    loaders: Loaders
    # Mutations' use cases open their units of work with this; reads never do.
    unit_of_work: UnitOfWorkFactory
    principal: Principal = ANONYMOUS
    request_id: str = ""
    # Subscriptions listen to committed events with this (event types in, a bounded listener
    # out); None where no events are served (plain HTTP).
    listen: Listen | None = None
    # The request's peer (the socket's, or the forwarding proxy's client when FORWARDED_ALLOW_IPS
    # trusts that proxy): sign-ups are rate limited per address.
    client_address: str = ""
    # Password hashing and the sign-up limit; None where no auth services run (schema tests).
    sign_ups: SignUps | None = None
    api_key_environment: str = "live"
    max_api_keys_per_user: int = MAX_KEYS_PER_USER


Info = strawberry.Info[Context, None]
