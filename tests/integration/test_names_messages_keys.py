"""Names, emails, answers that confirm nothing, and API keys per user (issue 11)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from app.auth.login import Outcome
from app.domain.events import EventType, StreamType, new_event
from app.email import InMemoryEmailSender
from app.messaging.handlers import welcome_email
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases import operators as admin
from tests.auth_support import AuthApp, basic, running_app
from tests.conftest import MakeDb

PASSWORD = "Sturdy-pass-1"
REGISTER = """mutation($input: RegisterUserInput!) {
  registerUser(input: $input) { user { id } errors { field code } } }"""
PROFILE = """mutation($input: UpdateProfileInput!) {
  updateProfile(input: $input) { user { id } errors { field code } } }"""
CREATE_KEY = """mutation($name: String!) {
  createApiKey(input: {name: $name, scopes: ["orders:read"]}) { key errors { field code } } }"""
ME = "{ me { id } }"
SPOOF = "Ann\n\nYour account was suspended. Restore it at https://evil.example/restore"
UNPRINTABLE = [SPOOF, "Ann\rBcc", "Ann\u202egnp.exe", "Ann\u200bBob", "Ann\x07", "Tab\tName"]


async def _key(app: AuthApp, email: str, **key: Any) -> str:
    await admin.create_user(
        SqlUnitOfWork.factory(app.db), app.services.passwords, email=email, password=PASSWORD
    )
    _, secret = await admin.create_api_key(
        SqlUnitOfWork.factory(app.db),
        email=email,
        name=key.pop("name", "k"),
        scopes="orders:read",
        **key,
    )
    return secret


async def test_names_are_one_line_of_printable_text(auth_app: AuthApp) -> None:
    key = await _key(auth_app, "names@example.com")
    for index, bad in enumerate(UNPRINTABLE):
        async with auth_app.peer(f"198.51.100.{100 + index}") as peer:  # sign-ups are per address
            registered = await peer.post(
                "/graphql",
                json={
                    "query": REGISTER,
                    "variables": {
                        "input": {
                            "email": f"{uuid.uuid4().hex}@example.com",
                            "password": PASSWORD,
                            "firstName": bad,
                        }
                    },
                },
            )
        profile = await auth_app.graphql(PROFILE, {"X-API-Key": key}, input={"displayName": bad})
        named_key = await auth_app.graphql(CREATE_KEY, {"X-API-Key": key}, name=bad)
        for response, field, payload in (
            (registered, ["firstName"], "registerUser"),
            (profile, ["displayName"], "updateProfile"),
            (named_key, ["name"], "createApiKey"),
        ):
            body = response.json()
            assert "errors" not in body, body
            assert body["data"][payload]["errors"] == [
                {"field": field, "code": "BAD_USER_INPUT"}
            ], (bad, payload)
    fine = await auth_app.graphql(
        PROFILE, {"X-API-Key": key}, input={"displayName": "Zoë O'Brien-Łukasz 李"}
    )
    assert fine.json()["data"]["updateProfile"]["errors"] == []


async def test_the_welcome_email_never_lets_the_name_pose_as_the_message() -> None:
    sender = InMemoryEmailSender()
    name = "Support: your account was suspended, restore it at https://evil.example now " * 3
    event = new_event(
        EventType.USER_REGISTERED,
        StreamType.USER,
        uuid.uuid4(),
        1,
        {"email": "victim@example.com", "displayName": name + "\nmore"},
        datetime.now(UTC),
    )

    await welcome_email(sender)(event)

    [email] = sender.sent
    first_line, *rest = email.body.splitlines()
    assert first_line == "Welcome to ordergraph: an account was created with this email address."
    assert "suspended" not in first_line
    named = [line for line in rest if "suspended" in line]
    assert len(named) == 1, "the name stays on one labelled line"
    assert named[0].startswith('The name given was "')
    assert "\nmore" not in email.body
    assert len(named[0]) < 120, "and it is shortened"
    assert "If you did not sign up" in email.body


async def test_a_disabled_account_gets_the_wrong_password_answer(auth_app: AuthApp) -> None:
    email = "gone@example.com"
    await admin.create_user(
        SqlUnitOfWork.factory(auth_app.db),
        auth_app.services.passwords,
        email=email,
        password=PASSWORD,
    )
    await admin.disable_user(SqlUnitOfWork.factory(auth_app.db), email)
    logins = auth_app.services.logins

    right = await logins.sign_in(email, PASSWORD, "198.51.100.20")
    wrong = await logins.sign_in(email, "Wrong-pass-1", "198.51.100.21")

    assert right.outcome is Outcome.INVALID
    assert wrong.outcome is Outcome.INVALID


async def test_unknown_client_and_wrong_secret_get_one_answer(auth_app: AuthApp) -> None:
    known = await auth_app.client(name="one-answer")
    form = {"grant_type": "client_credentials"}
    unknown = await auth_app.http.post(
        "/oauth/token", data=form, headers=basic("og_" + uuid.uuid4().hex, "cs_whatever")
    )
    wrong = await auth_app.http.post(
        "/oauth/token", data=form, headers=basic(known.client.client_id, "cs_wrong")
    )
    posted = await auth_app.http.post(
        "/oauth/token",
        data={**form, "client_id": "og_" + uuid.uuid4().hex, "client_secret": "x"},
    )

    assert unknown.status_code == wrong.status_code == posted.status_code == 401
    assert unknown.json() == wrong.json() == posted.json()
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


async def test_api_keys_are_capped_per_user(make_db: MakeDb, backend: str) -> None:
    db = await make_db(backend, "key_cap")
    async with running_app(db.url, max_api_keys_per_user=3) as app:
        key = await _key(app, "capped@example.com")  # the first of three
        made = [
            (await app.graphql(CREATE_KEY, {"X-API-Key": key}, name=f"k{i}")).json()["data"][
                "createApiKey"
            ]
            for i in range(3)
        ]
        with pytest.raises(admin.OperatorError, match="at most 3"):
            await admin.create_api_key(
                SqlUnitOfWork.factory(db),
                email="capped@example.com",
                name="cli",
                scopes="orders:read",
                max_keys=3,
            )

    assert [m["errors"] for m in made] == [[], [], [{"field": None, "code": "TOO_MANY_API_KEYS"}]]
    assert made[2]["key"] is None


async def test_api_keys_are_rate_limited_per_user_as_well_as_per_key(
    make_db: MakeDb, backend: str
) -> None:
    """The review made 3 keys and got 180 requests through against a burst of 60."""
    db = await make_db(backend, "key_user_rate")
    async with running_app(db.url, rate_per_minute=4, rate_burst=4) as app:
        keys = [await _key(app, "many-keys@example.com")]
        for i in range(2):
            _, secret = await admin.create_api_key(
                SqlUnitOfWork.factory(db),
                email="many-keys@example.com",
                name=f"k{i}",
                scopes="orders:read",
            )
            keys.append(secret)
        statuses = [
            (await app.graphql(ME, {"X-API-Key": keys[i % 3]})).status_code for i in range(6)
        ]

    assert statuses == [200, 200, 200, 200, 429, 429]
