"""What every resolver can reach: the request's loaders and principal, and the unit of work
mutations run in, all handed in by the composition root (app.main.graphql_context).

Over a WebSocket each operation has its own Context. A subscription's events are executed with
a context whose `loaders` are pointed at the fresh set each event (or replayed batch) comes with,
so nothing cached for one event serves the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from app.auth.principal import ANONYMOUS, Principal
from app.domain.accounts import MAX_KEYS_PER_USER
from app.unit_of_work import UnitOfWorkFactory
from app.usecases.accounts import SignUps
from loaders import Loaders


@dataclass(slots=True)
class Context:
    loaders: Loaders
    # Mutations' use cases open their units of work with this; reads never do.
    unit_of_work: UnitOfWorkFactory
    principal: Principal = ANONYMOUS
    request_id: str = ""
    # The request's peer (the socket's, or the forwarding proxy's client when FORWARDED_ALLOW_IPS
    # trusts that proxy): sign-ups are rate limited per address.
    client_address: str = ""
    # Password hashing and the sign-up limit; None where no auth services run (schema tests).
    sign_ups: SignUps | None = None
    api_key_environment: str = "live"
    max_api_keys_per_user: int = MAX_KEYS_PER_USER


Info = strawberry.Info[Context, None]
