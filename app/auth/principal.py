"""The one principal every request carries, whatever authenticated it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from uuid import UUID


class PrincipalKind(enum.StrEnum):
    ANONYMOUS = "anonymous"
    CUSTOMER = "customer"
    ADMIN = "admin"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    user_id: UUID | None = None
    client_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # The API key that authenticated the request, if one did (its own query-cost budget).
    api_key_id: UUID | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.kind is PrincipalKind.ANONYMOUS


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS, scopes=frozenset({"products:read"}))

OPERATOR = Principal(PrincipalKind.ADMIN, scopes=frozenset({"admin"}))
"""Whoever runs `python -m app`'s commands on the server: an admin with no account."""
