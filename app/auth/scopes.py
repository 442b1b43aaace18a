"""The scopes tokens and API keys carry, and what each role may hold."""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.models import Role

PRODUCTS_READ = "products:read"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
ORDERS_FULFILL = "orders:fulfill"
USERS_READ = "users:read"
ADMIN = "admin"

ALL_SCOPES = (PRODUCTS_READ, ORDERS_READ, ORDERS_WRITE, ORDERS_FULFILL, USERS_READ, ADMIN)
"""In a stable order: metadata and CLI output list them like this."""

CLIENT_SCOPES = frozenset(ALL_SCOPES) - {ADMIN}
"""Clients act for themselves, never as an administrator."""

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.CUSTOMER: frozenset({PRODUCTS_READ, ORDERS_READ, ORDERS_WRITE}),
    Role.ADMIN: frozenset(ALL_SCOPES),
}


class UnknownScope(ValueError):
    """A scope name the server does not define."""


def parse_scopes(raw: str | Iterable[str]) -> frozenset[str]:
    """Scopes from `a b`, `a,b` or an iterable; unknown names are an error, not ignored."""
    parts = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw)
    unknown = sorted(set(parts) - set(ALL_SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope(s): {', '.join(unknown)}")
    return frozenset(parts)


def scope_string(scopes: Iterable[str]) -> str:
    """Space-separated (RFC 6749 §3.3), in the canonical order, so equal sets print equally."""
    wanted = set(scopes)
    return " ".join(s for s in ALL_SCOPES if s in wanted)
