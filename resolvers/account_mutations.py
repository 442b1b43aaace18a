"""registerUser, createApiKey, revokeApiKey: their inputs and payloads."""

from __future__ import annotations

import strawberry

from app.errors import ServiceUnavailable
from app.usecases import accounts as usecases
from resolvers.api_key import ApiKey
from resolvers.context import Info
from resolvers.global_id import pk_of
from resolvers.user import User, load_user
from resolvers.user_error import UserError, user_errors


@strawberry.input
class RegisterUserInput:
    email: str
    password: str = strawberry.field(
        description="8 to 128 characters with upper- and lower-case letters and a digit."
    )
    first_name: str | None = None
    last_name: str | None = None


@strawberry.type
class RegisterUserPayload:
    user: User | None
    errors: list[UserError]


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[str] = strawberry.field(
        description="Within what the credential creating the key holds, e.g. orders:read."
    )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None
    key: str | None = strawberry.field(
        description="The secret: shown this once and never again (only its hash is stored)."
    )
    errors: list[UserError]


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    errors: list[UserError]


async def register_user(info: Info, input: RegisterUserInput) -> RegisterUserPayload:
    context = info.context
    if context.sign_ups is None:
        raise ServiceUnavailable("Sign-up is not available on this server")
    outcome = await usecases.register_user(
        context.unit_of_work,
        context.sign_ups,
        context.client_address,
        usecases.RegisterUser(
            email=input.email,
            password=input.password,
            first_name=input.first_name,
            last_name=input.last_name,
        ),
    )
    if outcome.value is None:
        return RegisterUserPayload(user=None, errors=user_errors(outcome.problems))
    return RegisterUserPayload(user=await load_user(info.context, outcome.value.id), errors=[])


async def create_api_key(info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
    context = info.context
    outcome = await usecases.create_api_key(
        context.unit_of_work,
        context.principal,
        usecases.CreateApiKey(
            name=input.name,
            scopes=tuple(input.scopes),
            max_keys=context.max_api_keys_per_user,
        ),
        context.api_key_environment,
    )
    if outcome.value is None:
        return CreateApiKeyPayload(api_key=None, key=None, errors=user_errors(outcome.problems))
    return CreateApiKeyPayload(
        api_key=ApiKey.of(outcome.value.key), key=outcome.value.secret, errors=[]
    )


async def revoke_api_key(info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
    context = info.context
    outcome = await usecases.revoke_api_key(
        context.unit_of_work, context.principal, pk_of(id, "ApiKey")
    )
    api_key = None if outcome.value is None else ApiKey.of(outcome.value)
    return RevokeApiKeyPayload(api_key=api_key, errors=user_errors(outcome.problems))
