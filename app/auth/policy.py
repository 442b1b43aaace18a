"""Who may read what: the rules of the API, as pure functions over a principal and entities.

Every GraphQL path (`me`, `user`, `users`, `order`, `orders`, `node`, `nodes` and nested fields)
asks these functions, so one rule never has two implementations. Reading another user's object,
or an order the principal may not read, looks exactly like a missing one (NOT_FOUND): existence
is not revealed. Lists the principal may not see at all are FORBIDDEN; anonymous callers are told
to authenticate (UNAUTHENTICATED). Products are public.
"""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from app.auth.principal import Principal, PrincipalKind
from app.auth.scopes import ADMIN, ORDERS_READ, ROLE_SCOPES, USERS_READ
from app.domain.auth import ApiKey
from app.domain.models import Order, User
from app.errors import Forbidden, NotFound, Unauthenticated


def has_scope(principal: Principal, scope: str) -> bool:
    """`admin` implies every scope."""
    return scope in principal.scopes or ADMIN in principal.scopes


def is_admin(principal: Principal) -> bool:
    return principal.kind is PrincipalKind.ADMIN and ADMIN in principal.scopes


def require_authenticated(principal: Principal) -> None:
    if principal.is_anonymous:
        raise Unauthenticated("sign in or send an access token or API key")


def may_read_user(principal: Principal, user_id: UUID) -> bool:
    """Oneself always; everyone with `users:read` (clients) or `admin`."""
    return principal.user_id == user_id or has_scope(principal, USERS_READ)


def own_account(principal: Principal) -> UUID | None:
    """The account `me` shows: a signed-in user's (a client acting for a user has none)."""
    if principal.kind is PrincipalKind.CLIENT:
        return None
    return principal.user_id


def may_read_key(principal: Principal, key: ApiKey) -> bool:
    """Only its owner sees a key; to anyone else it does not exist."""
    return principal.user_id is not None and key.user_id == principal.user_id


def may_send_unregistered_documents(principal: Principal, open_clients: Collection[str]) -> bool:
    """Under trusted documents, only a third party named open (an OAuth client acting for
    itself, not for a user) may send a document nobody registered."""
    return (
        principal.client_id is not None
        and principal.user_id is None
        and principal.client_id in open_clients
    )


def may_see_email(principal: Principal, user_id: UUID) -> bool:
    return may_read_user(principal, user_id)


def may_read_orders_of(principal: Principal, user_id: UUID) -> bool:
    """With `orders:read`: a customer their own orders; clients and admins everyone's."""
    if not has_scope(principal, ORDERS_READ):
        return False
    if principal.kind is PrincipalKind.CUSTOMER:
        return principal.user_id == user_id
    return principal.kind in (PrincipalKind.CLIENT, PrincipalKind.ADMIN)


def may_read_order(principal: Principal, order: Order) -> bool:
    return may_read_orders_of(principal, order.user_id)


def visibility(principal: Principal) -> tuple[object, ...]:
    """What every rule here decides by: two principals with equal visibility are shown exactly
    the same, so subscribers may share one execution per event (app.http.subscriptions).

    The kind, the scopes and the user (one's own orders and profile), except that with `admin`
    every rule answers yes whoever the admin is; clients act for no user.
    """
    user = None if ADMIN in principal.scopes else principal.user_id
    return (principal.kind, user, principal.scopes)


def response_visibility(principal: Principal) -> str:
    """Which cached answers of catalogue reads the principal may be served (app.cache.responses).

    Everyone sees the same catalogue today, so there is one class; a rule that showed some
    principals more (cost prices to admins, say) must return a class per view here.
    """
    return "public"


def require_user_list(principal: Principal) -> None:
    require_authenticated(principal)
    if not has_scope(principal, USERS_READ):
        raise Forbidden("listing users needs the users:read scope")


def order_list_owner(principal: Principal) -> UUID | None:
    """Whose orders `orders` lists: one customer's (filtered in SQL) or, for None, everyone's."""
    require_authenticated(principal)
    if not has_scope(principal, ORDERS_READ):
        raise Forbidden("listing orders needs the orders:read scope")
    if principal.kind is PrincipalKind.CUSTOMER:
        assert principal.user_id is not None
        return principal.user_id
    if principal.kind in (PrincipalKind.CLIENT, PrincipalKind.ADMIN):
        return None
    raise Forbidden("listing orders needs the orders:read scope")


# --- writes: who may run which use case ---------------------------------------------------------


def require_signed_in(principal: Principal) -> UUID:
    """The principal's user, for use cases that act on a user's own data."""
    require_authenticated(principal)
    if principal.user_id is None:
        raise Forbidden("only a signed-in user can do this")
    return principal.user_id


def require_scope(principal: Principal, scope: str) -> None:
    require_authenticated(principal)
    if not has_scope(principal, scope):
        raise Forbidden(f"this needs the {scope} scope")


def require_admin(principal: Principal) -> None:
    require_scope(principal, ADMIN)


def require_order_owner_or_admin(principal: Principal, order: Order, scope: str) -> None:
    """The order's owner acting with `scope`, or an admin.

    Someone who may not even read the order is told it does not exist, as when reading it.
    """
    if has_scope(principal, ADMIN):
        return
    require_scope(principal, scope)
    if principal.user_id == order.user_id:
        return
    if may_read_order(principal, order):
        raise Forbidden("only the order's owner or an admin can do this")
    raise NotFound("No order has this ID")


def require_scopes_held(principal: Principal, scopes: Collection[str]) -> None:
    """A credential never mints one wider than itself (a key, a token)."""
    beyond = sorted(s for s in scopes if not has_scope(principal, s))
    if beyond:
        raise Forbidden(f"this credential does not hold {', '.join(beyond)}")


def require_key_owner_may_hold(owner: User | None, scopes: Collection[str]) -> User:
    """An API key's owner is an enabled user whose role allows every scope of the key."""
    if owner is None or owner.is_disabled:
        raise Forbidden("a disabled or deleted user cannot get keys")
    over_role = sorted(set(scopes) - ROLE_SCOPES[owner.role])
    if over_role:
        raise Forbidden(f"a {owner.role.value} may not hold {', '.join(over_role)}")
    return owner


def is_operator(principal: Principal) -> bool:
    """The command line's principal: an admin that is nobody's account."""
    return is_admin(principal) and principal.user_id is None


def require_operator(principal: Principal) -> None:
    if not is_operator(principal):
        raise Forbidden("only an operator can do this")


def may_manage_key(principal: Principal, key: ApiKey) -> bool:
    """Its owner, or an operator."""
    return principal.user_id == key.user_id or is_operator(principal)
