"""Who may run which use case. The one place the use cases ask, so that reconciling with the
auth module's policy touches only this file."""

from __future__ import annotations

from uuid import UUID

from app.auth.principal import Principal
from app.errors import Forbidden, Unauthenticated

ADMIN = "admin"


def has_scope(principal: Principal, scope: str) -> bool:
    """`admin` implies every scope."""
    return scope in principal.scopes or ADMIN in principal.scopes


def require_signed_in(principal: Principal) -> UUID:
    """The principal's user, for use cases that act on a user's own data."""
    if principal.is_anonymous:
        raise Unauthenticated("Sign in to do this")
    if principal.user_id is None:
        raise Forbidden("Only a signed-in user can do this")
    return principal.user_id


def require_scope(principal: Principal, scope: str) -> None:
    if principal.is_anonymous and not has_scope(principal, scope):
        raise Unauthenticated("Sign in to do this")
    if not has_scope(principal, scope):
        raise Forbidden(f"This needs the {scope} scope")


def require_admin(principal: Principal) -> None:
    require_scope(principal, ADMIN)


def require_owner_or_admin(principal: Principal, owner_id: UUID, scope: str) -> None:
    """The owner acting with `scope`, or an admin."""
    if has_scope(principal, ADMIN):
        return
    require_scope(principal, scope)
    if principal.user_id != owner_id:
        raise Forbidden("Only the owner or an admin can do this")
