"""GET /.well-known/oauth-authorization-server (RFC 8414) and /.well-known/jwks.json."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.auth_support import ISSUER, AuthApp


async def test_metadata_is_built_from_the_configured_issuer(auth_app: AuthApp) -> None:
    response = await auth_app.http.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == ISSUER
    assert body["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert body["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert body["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert body["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert body["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert body["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert set(body["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert "admin" in body["scopes_supported"]


async def test_a_token_verifies_with_the_published_key(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    token = await auth_app.token(client)

    published = (await auth_app.http.get("/.well-known/jwks.json")).json()

    assert all("d" not in key for key in published["keys"]), "no private parts"
    keys = KeySet.import_key_set(published)
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    assert decoded.claims["client_id"] == client.client.client_id
    assert decoded.header["kid"] in {key["kid"] for key in published["keys"]}
