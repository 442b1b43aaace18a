"""The operators' auth commands of `python -m app`: clients, users, API keys and tokens.

Every command reads DATABASE_URL like the server. With `--json` each prints one JSON object;
bad input and conflicts exit 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from app.auth.oauth_server import FormRequest
from app.auth.services import AuthServices
from app.config import Settings
from app.db.engine import Database
from app.db.migrate import migrate
from app.db.urls import DatabaseUrl
from app.domain.auth import ApiKey, OAuthClient
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases import operators
from app.usecases.operators import OperatorError

COMMANDS = frozenset(
    {
        "create-client",
        "list-clients",
        "revoke-client",
        "rotate-client-secret",
        "create-user",
        "disable-user",
        "create-api-key",
        "list-api-keys",
        "revoke-api-key",
        "issue-token",
        "rotate-signing-key",
    }
)


def add_commands(commands: Any) -> None:
    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        return parser

    p = command("create-client", "register an OAuth client (prints its secret once)")
    p.add_argument("--name", required=True)
    p.add_argument("--grant-types", required=True, help="comma-separated, e.g. client_credentials")
    p.add_argument("--scopes", required=True, help="comma-separated, e.g. orders:read,users:read")
    p.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris")
    p.add_argument("--public", action="store_true", help="a public client (no secret)")
    command("list-clients", "list OAuth clients")
    p = command("revoke-client", "revoke a client and every token it holds")
    p.add_argument("client_id")
    p = command("rotate-client-secret", "replace a client's secret (prints the new one once)")
    p.add_argument("client_id")
    p = command("create-user", "create a user")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--admin", action="store_true")
    p = command("disable-user", "disable a user and revoke their tokens and API keys")
    p.add_argument("--email", required=True)
    p = command("create-api-key", "create an API key for a user (prints it once)")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--scopes", required=True)
    p.add_argument("--rate", type=int, default=None, help="requests a minute (default: global)")
    p = command("list-api-keys", "list a user's API keys")
    p.add_argument("--email", required=True)
    p = command("revoke-api-key", "revoke an API key by its ID")
    p.add_argument("key_id")
    p = command("issue-token", "print a bare access token (client credentials; --json: all)")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--scope", default=None)
    p = command(
        "rotate-signing-key",
        "add a new access-token signing key; the old one stays published until its tokens expire",
    )
    p.add_argument(
        "--activate-in",
        type=float,
        default=None,
        help="seconds before it signs (default: 3 revocation refreshes)",
    )


def _client_json(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "type": client.client_type.value,
        "grant_types": sorted(client.grant_types),
        "scopes": sorted(client.scopes),
        "redirect_uris": list(client.redirect_uris),
        "created_at": client.created_at.isoformat(),
        "revoked": client.revoked_at is not None,
    }


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "name": key.name,
        "key": f"sk_{key.environment}_…{key.last_four}",
        "scopes": sorted(key.scopes),
        "rate_per_minute": key.rate_per_minute,
        "use_count": key.use_count,
        "last_used_at": None if key.last_used_at is None else key.last_used_at.isoformat(),
        "revoked": key.revoked_at is not None,
    }


async def _execute(args: argparse.Namespace, settings: Settings, db: Database) -> dict[str, Any]:
    name = args.command
    uow = SqlUnitOfWork.factory(db)
    if name == "create-client":
        made = await operators.create_client(
            uow,
            name=args.name,
            grant_types=args.grant_types,
            scopes=args.scopes,
            redirect_uris=args.redirect_uris,
            public=args.public,
        )
        result: dict[str, Any] = {"client_id": made.client.client_id}
        if made.secret is not None:
            result["client_secret"] = made.secret
        return result
    if name == "list-clients":
        return {"clients": [_client_json(c) for c in await operators.list_clients(uow)]}
    if name == "revoke-client":
        await operators.revoke_client(uow, args.client_id)
        return {"client_id": args.client_id, "revoked": True}
    if name == "rotate-client-secret":
        secret = await operators.rotate_client_secret(uow, args.client_id)
        return {"client_id": args.client_id, "client_secret": secret}
    if name == "disable-user":
        disabled = await operators.disable_user(uow, args.email)
        return {
            "email": args.email.strip().lower(),
            "tokens_revoked": disabled.tokens,
            "keys_revoked": disabled.keys,
        }
    if name == "create-api-key":
        key, plaintext = await operators.create_api_key(
            uow,
            email=args.email,
            name=args.name,
            scopes=args.scopes,
            rate_per_minute=args.rate,
            environment=settings.auth.api_key_environment,
            max_keys=settings.auth.max_api_keys_per_user,
        )
        return {"id": str(key.id), "key": plaintext}
    if name == "list-api-keys":
        return {"api_keys": [_key_json(k) for k in await operators.list_api_keys(uow, args.email)]}
    if name == "revoke-api-key":
        await operators.revoke_api_key(uow, args.key_id)
        return {"id": args.key_id, "revoked": True}
    services = AuthServices.create(settings, db)
    try:
        if name == "rotate-signing-key":
            delay = args.activate_in
            if delay is None:
                delay = 3 * settings.auth.revocation_refresh_seconds
            rotation = await operators.rotate_signing_key(
                uow,
                services.signing_key,
                sealer=services.keys.sealer,
                token_lifetime_seconds=settings.auth.access_token_seconds,
                activate_in=delay,
            )
            return {
                "kid": rotation.kid,
                "signs_from": rotation.activates_at.isoformat(),
                "dropped": rotation.dropped,
            }
        if name == "create-user":
            user = await operators.create_user(
                uow, services.passwords, email=args.email, password=args.password, admin=args.admin
            )
            return {"id": str(user.id), "email": user.email}
        return await issue_token(services, args.client_id, args.client_secret, args.scope)
    finally:
        await services.close()


async def issue_token(
    services: AuthServices, client_id: str, client_secret: str, scope: str | None
) -> dict[str, Any]:
    """Through the token endpoint's own logic, so the CLI cannot mint what HTTP would refuse."""
    form = {"grant_type": "client_credentials", "client_id": client_id}
    form["client_secret"] = client_secret
    if scope:
        form["scope"] = scope
    response = await services.oauth.token(
        FormRequest("POST", f"{services.settings.issuer}/oauth/token", {}, form)
    )
    if response.status != 200:
        raise OperatorError(
            f"{response.body.get('error')}: {response.body.get('error_description', '')}".strip()
        )
    return dict(response.body)


DEMO_CLIENT_NAME = "demo"
DEMO_APP_NAME = "demo-web-app"
DEMO_KEY_NAME = "demo"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"


async def _demo(settings: Settings, db: Database) -> dict[str, str]:
    """The demo client (its secret is rotated each start: only hashes are stored) and a token,
    plus fresh API keys for the demo admin and customer (the previous demo keys are revoked)."""
    from app.seed import DEMO_ADMIN_EMAIL, DEMO_CUSTOMER_EMAIL

    uow = SqlUnitOfWork.factory(db)

    existing = await operators.find_client_by_name(uow, DEMO_CLIENT_NAME)
    if existing is None:
        made = await operators.create_client(
            uow,
            name=DEMO_CLIENT_NAME,
            grant_types="client_credentials",
            scopes="products:read,orders:read,users:read",
        )
        client_id, secret = made.client.client_id, made.secret or ""
    else:
        client_id = existing.client_id
        secret = await operators.rotate_client_secret(uow, client_id)
    services = AuthServices.create(settings, db)
    try:
        token = await issue_token(services, client_id, secret, None)
    finally:
        await services.close()
    result = {"client_id": client_id, "client_secret": secret, "token": token["access_token"]}
    # A public client for trying the authorization-code flow by hand (redirects to a loopback
    # URL nothing listens on: the code is read from the browser's address bar).
    web = await operators.find_client_by_name(uow, DEMO_APP_NAME)
    if web is None:
        web = (
            await operators.create_client(
                uow,
                name=DEMO_APP_NAME,
                grant_types="authorization_code,refresh_token",
                scopes="products:read,orders:read,orders:write,users:read,admin",
                redirect_uris=[DEMO_REDIRECT_URI],
                public=True,
            )
        ).client
    result["web_client_id"] = web.client_id
    for label, email in (("admin_key", DEMO_ADMIN_EMAIL), ("customer_key", DEMO_CUSTOMER_EMAIL)):
        try:
            for old in await operators.list_api_keys(uow, email):
                if old.name == DEMO_KEY_NAME and old.revoked_at is None:
                    await operators.revoke_api_key(uow, str(old.id))
            scopes = "admin" if label == "admin_key" else "products:read,orders:read"
            _, plaintext = await operators.create_api_key(
                uow, email=email, name=DEMO_KEY_NAME, scopes=scopes, environment="test"
            )
        except OperatorError:
            continue  # the demo users are not there (a database seeded by hand)
        result[label] = plaintext
    return result


def demo_credentials(settings: Settings) -> dict[str, str]:
    url = DatabaseUrl.parse(settings.database_url)

    async def main() -> dict[str, str]:
        db = Database(url, settings)
        try:
            return await _demo(settings, db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def run(args: argparse.Namespace, settings: Settings) -> int:
    url = DatabaseUrl.parse(settings.database_url)
    migrate(url)

    async def main() -> dict[str, Any]:
        db = Database(url, settings)
        try:
            return await _execute(args, settings, db)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(main())
    except OperatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.command == "issue-token" and not args.json:
        # The bare token, so `TOKEN=$(python -m app issue-token …)` captures a usable header value.
        print(result["access_token"])
        return 0
    _print(result, args.json)
    return 0


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    for key, value in result.items():
        if isinstance(value, list):
            for item in value:
                print(
                    "  ".join(f"{k}={v}" for k, v in item.items())
                    if isinstance(item, dict)
                    else item
                )
        else:
            print(f"{key}: {value}")
