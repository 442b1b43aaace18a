"""The REST API per version and resource: shapes, versions, errors, caching headers, writes, and
the authorization rules table (the same policy as GraphQL: someone else's order is 404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import select

from app.auth.scopes import ALL_SCOPES, CLIENT_SCOPES, ROLE_SCOPES
from app.config import DeprecatedVersion, Settings
from app.db.tables import orders, products, users
from app.domain.models import Role
from app.main import create_app
from app.seed import DEMO_ADMIN_EMAIL, DEMO_CUSTOMER_EMAIL, SeedSize
from resolvers.global_id import to_global_id
from tests.conftest import MakeDb


@dataclass
class Rest:
    http: httpx.AsyncClient
    customer: dict[str, str]
    admin: dict[str, str]
    client: dict[str, str]
    # A customer's token with products:read only.
    narrow: dict[str, str]
    customer_id: UUID
    admin_id: UUID
    own_order: str
    other_order: str
    product: str
    in_stock: str
    stock: int

    async def get(
        self, path: str, *credentials: dict[str, str] | None, **headers: str
    ) -> httpx.Response:
        sent = {name: value for each in credentials for name, value in (each or {}).items()}
        return await self.http.get(path, headers={**sent, **headers})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def rest(make_db: MakeDb) -> AsyncIterator[Rest]:
    db = await make_db(
        "sqlite", f"rest_{uuid4().hex[:6]}", SeedSize(products=6, users=8, orders=40)
    )
    async with db.read() as conn:
        ids = dict((await conn.execute(select(users.c.email, users.c.id))).all())
        rows = (await conn.execute(select(orders.c.id, orders.c.user_id))).all()
        stock = (await conn.execute(select(products.c.id, products.c.stock))).all()
    customer, admin = ids[DEMO_CUSTOMER_EMAIL], ids[DEMO_ADMIN_EMAIL]
    own = next(o for o, u in rows if u == customer)
    other = next(o for o, u in rows if u not in (customer, admin))
    settings = Settings(
        database_url=str(db.url),
        api_deprecated_versions=(
            DeprecatedVersion("v1", since=date(2026, 11, 1), sunset=date(2027, 6, 30)),
        ),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        tokens = app.state.og.auth.tokens

        def mint(user: UUID | None, scopes: frozenset[str] | tuple[str, ...]) -> dict[str, str]:
            token, _ = tokens.mint(client_id="rest-tests", user_id=user, scope=" ".join(scopes))
            return bearer(token)

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Rest(
                http=http,
                customer=mint(customer, ROLE_SCOPES[Role.CUSTOMER]),
                admin=mint(admin, ALL_SCOPES),
                client=mint(None, CLIENT_SCOPES),
                narrow=mint(customer, ("products:read",)),
                customer_id=customer,
                admin_id=admin,
                own_order=to_global_id("Order", own),
                other_order=to_global_id("Order", other),
                product=to_global_id("Product", stock[0][0]),
                in_stock=to_global_id("Product", max(stock, key=lambda r: r[1])[0]),
                stock=max(row[1] for row in stock),
            )


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["detail"]
    return body


# --- versions -----------------------------------------------------------------------------------


async def test_the_version_comes_from_the_header_else_the_url_else_v1(rest: Rest) -> None:
    me = "/api/v1/me"
    assert set((await rest.get(me, rest.customer)).json()) == {"id", "email", "name"}
    v2 = (await rest.get("/api/v2/me", rest.customer)).json()
    assert set(v2) == {"id", "email", "profile", "preferences"}
    assert set(v2["profile"]) == {"firstName", "lastName", "displayName"}
    assert "newsletter" in v2["preferences"]
    header = await rest.get("/api/v1/me", rest.customer, **{"api-version": "v2"})
    assert "profile" in header.json()
    assert "name" in (await rest.get("/api/me", rest.customer)).json()
    assert "profile" in (await rest.get("/api/me", rest.customer, **{"api-version": "2"})).json()


@pytest.mark.parametrize(
    ("path", "headers"), [("/api/v3/products", {}), ("/api/products", {"api-version": "v9"})]
)
async def test_an_unknown_version_is_400_naming_the_supported_ones(
    rest: Rest, path: str, headers: dict[str, str]
) -> None:
    body = problem(await rest.get(path, **headers), 400, "BAD_USER_INPUT")
    assert body["supportedVersions"] == ["v1", "v2"]


async def test_a_deprecated_version_says_so_and_links_its_successor(rest: Rest) -> None:
    response = await rest.get("/api/v1/products")
    assert response.headers["deprecation"] == "@1793491200"
    assert response.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert response.headers["link"].startswith('</api/v2/products>; rel="successor-version"')
    assert "deprecation" not in (await rest.get("/api/v2/products")).headers


# --- shapes -------------------------------------------------------------------------------------


async def test_products_per_version_and_cursor_pagination(rest: Rest) -> None:
    v1 = (await rest.get("/api/v1/products?first=4")).json()
    assert len(v1["items"]) == 4
    assert set(v1["items"][0]) == {"id", "sku", "name", "description", "price", "currency", "stock"}
    rest_of = (await rest.get(f"/api/v1/products?first=4&after={v1['nextCursor']}")).json()
    assert [p["sku"] for p in v1["items"] + rest_of["items"]] == sorted(
        p["sku"] for p in v1["items"] + rest_of["items"]
    )
    assert rest_of["nextCursor"] is None
    v2_response = await rest.get("/api/v2/products?first=4")
    v2 = v2_response.json()
    assert v2["pageInfo"]["hasNextPage"] is True
    assert v2["pageInfo"]["endCursor"] == v1["nextCursor"]  # the same opaque cursors
    assert set(v2["items"][0]["price"]) == {"amount", "currency"}
    assert 'rel="next"' in v2_response.headers["link"]
    one = (await rest.get(f"/api/v2/products/{v2['items'][0]['id']}")).json()
    assert one == v2["items"][0]


async def test_orders_per_version(rest: Rest) -> None:
    v1 = (await rest.get(f"/api/v1/orders/{rest.own_order}", rest.customer)).json()
    assert set(v1) == {"id", "userId", "status", "total", "currency", "createdAt", "items"}
    assert set(v1["items"][0]) == {"productId", "quantity", "unitPrice"}
    v2 = (await rest.get(f"/api/v2/orders/{rest.own_order}", rest.customer)).json()
    assert set(v2["total"]) == {"amount", "currency"}
    assert set(v2["items"][0]) == {"productId", "quantity", "unitPrice", "lineTotal"}
    assert v2["createdAt"].endswith("Z")
    listed = (await rest.get("/api/v2/orders?first=100", rest.customer)).json()
    assert {o["userId"] for o in listed["items"]} == {to_global_id("User", rest.customer_id)}
    placed = (await rest.get("/api/v2/orders?status=PLACED", rest.admin)).json()
    assert {o["status"] for o in placed["items"]} <= {"PLACED"}


# --- the rules table ----------------------------------------------------------------------------

ANON, CUSTOMER, ADMIN, CLIENT, NARROW = "anonymous", "customer", "admin", "client", "narrow"
RULES = [
    # (path template, principal, status)
    ("/api/v1/products", ANON, 200),
    ("/api/v1/products/{product}", ANON, 200),
    ("/api/v1/me", ANON, 401),
    ("/api/v1/me", CUSTOMER, 200),
    ("/api/v1/me", CLIENT, 404),
    ("/api/v1/users/{customer_id}", ANON, 401),
    ("/api/v1/users/{customer_id}", CUSTOMER, 200),
    ("/api/v1/users/{customer_id}", CLIENT, 200),
    ("/api/v1/users/{admin_id}", CUSTOMER, 404),
    ("/api/v1/orders", ANON, 401),
    ("/api/v1/orders", CUSTOMER, 200),
    ("/api/v1/orders", CLIENT, 200),
    ("/api/v1/orders/{own_order}", CUSTOMER, 200),
    ("/api/v1/orders/{other_order}", CUSTOMER, 404),
    ("/api/v1/orders/{other_order}", ADMIN, 200),
    ("/api/v1/orders/{other_order}", CLIENT, 200),
    ("/api/v1/orders/{own_order}", ANON, 401),
    ("/api/v1/orders", NARROW, 403),
    ("/api/v1/orders/{own_order}", NARROW, 404),
    ("/api/v2/users/{customer_id}", NARROW, 200),
]


@pytest.mark.parametrize(("template", "who", "status"), RULES)
async def test_the_rules_table(rest: Rest, template: str, who: str, status: int) -> None:
    credentials = {
        ANON: None,
        CUSTOMER: rest.customer,
        ADMIN: rest.admin,
        CLIENT: rest.client,
        NARROW: rest.narrow,
    }
    path = template.format(
        product=rest.product,
        customer_id=to_global_id("User", rest.customer_id),
        admin_id=to_global_id("User", rest.admin_id),
        own_order=rest.own_order,
        other_order=rest.other_order,
    )
    response = await rest.get(path, credentials[who])
    assert response.status_code == status, response.text
    if status == 401:
        problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"].startswith("Bearer")
    if status == 404:
        problem(response, 404, "NOT_FOUND")
    if status == 403:
        problem(response, 403, "FORBIDDEN")


# --- errors and HTTP caching -------------------------------------------------------------------


async def test_errors_are_problem_documents_with_catalogue_codes(rest: Rest) -> None:
    problem(await rest.get("/api/v1/products/not-an-id"), 400, "BAD_USER_INPUT")
    problem(await rest.get("/api/v1/products?first=101"), 400, "BAD_USER_INPUT")
    problem(await rest.get("/api/v1/products?after=bogus"), 400, "BAD_USER_INPUT")
    problem(await rest.get("/api/v1/nowhere"), 404, "NOT_FOUND")
    refused = await rest.http.delete("/api/v1/products")
    problem(refused, 405, "BAD_USER_INPUT")
    assert refused.headers["allow"] == "GET"
    bad_token = await rest.get("/api/v1/products", bearer("not-a-token"))
    problem(bad_token, 401, "UNAUTHENTICATED")


async def test_etags_answer_304_and_cache_control_says_who_may_keep_it(rest: Rest) -> None:
    first = await rest.get("/api/v2/products")
    assert first.headers["cache-control"] == "public, no-cache"
    etag = first.headers["etag"]
    again = await rest.get("/api/v2/products", **{"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (await rest.get("/api/v2/products", **{"if-none-match": '"other"'})).status_code == 200
    mine = await rest.get("/api/v2/me", rest.customer)
    assert mine.headers["cache-control"] == "private, no-cache"
    assert "Authorization" in mine.headers["vary"]


# --- writes -------------------------------------------------------------------------------------


async def test_placing_and_cancelling_an_order(rest: Rest) -> None:
    body = {"items": [{"productId": rest.in_stock, "quantity": 1}]}
    key = {"idempotency-key": f"rest-{uuid4()}"}
    placed = await rest.http.post("/api/v2/orders", json=body, headers={**rest.customer, **key})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert placed.headers["location"] == f"/api/v2/orders/{order['id']}"
    assert order["status"] == "PLACED"
    repeat = await rest.http.post("/api/v2/orders", json=body, headers={**rest.customer, **key})
    assert repeat.json()["id"] == order["id"]  # the idempotency key names the first order
    assert (await rest.get(placed.headers["location"], rest.customer)).json() == order
    other = await rest.http.post(f"/api/v1/orders/{rest.other_order}/cancel", headers=rest.customer)
    problem(other, 404, "NOT_FOUND")
    cancelled = await rest.http.post(f"/api/v1/orders/{order['id']}/cancel", headers=rest.customer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    again = await rest.http.post(f"/api/v1/orders/{order['id']}/cancel", headers=rest.customer)
    body_again = problem(again, 422, "INVALID_TRANSITION")
    assert body_again["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_write_refusals(rest: Rest) -> None:
    too_many = {"items": [{"productId": rest.in_stock, "quantity": rest.stock + 1}]}
    refused = await rest.http.post("/api/v1/orders", json=too_many, headers=rest.customer)
    assert problem(refused, 422, "INSUFFICIENT_STOCK")["errors"][0]["field"] == [
        "items",
        "0",
        "quantity",
    ]
    bad_id = {"items": [{"productId": "nope", "quantity": 1}]}
    refused = await rest.http.post("/api/v1/orders", json=bad_id, headers=rest.customer)
    assert problem(refused, 422, "BAD_USER_INPUT")["errors"][0]["field"] == [
        "items",
        "0",
        "productId",
    ]
    shapeless = await rest.http.post("/api/v1/orders", json={"lines": []}, headers=rest.customer)
    problem(shapeless, 400, "BAD_USER_INPUT")
    not_json = await rest.http.post(
        "/api/v1/orders",
        content=b"{",
        headers={**rest.customer, "content-type": "application/json"},
    )
    problem(not_json, 400, "BAD_USER_INPUT")
    text = await rest.http.post(
        "/api/v1/orders", content=b"x", headers={**rest.customer, "content-type": "text/plain"}
    )
    problem(text, 415, "BAD_USER_INPUT")
    anonymous = await rest.http.post("/api/v1/orders", json=too_many)
    problem(anonymous, 401, "UNAUTHENTICATED")
    narrow = await rest.http.post("/api/v1/orders", json=too_many, headers=rest.narrow)
    problem(narrow, 403, "FORBIDDEN")


# --- the documents ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_each_version_serves_a_valid_openapi_31_document(rest: Rest, version: str) -> None:
    from openapi_spec_validator import validate

    document = (await rest.get(f"/api/{version}/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert f"/api/{version}/orders/{{id}}/cancel" in document["paths"]
