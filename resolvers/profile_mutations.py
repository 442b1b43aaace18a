"""updateProfile: its input and payload."""

from __future__ import annotations

import strawberry
from strawberry import UNSET

from app.domain.profiles import KEEP, Keep, ProfileChanges
from app.usecases import profiles as usecases
from resolvers.context import Info
from resolvers.user import User, load_user
from resolvers.user_error import UserError, user_errors


@strawberry.input(
    description="Fields left out stay as they are; null clears a name. A cleared display name"
    " falls back to one made from the names."
)
class UpdateProfileInput:
    first_name: str | None = UNSET
    last_name: str | None = UNSET
    display_name: str | None = UNSET


@strawberry.type
class UpdateProfilePayload:
    user: User | None
    errors: list[UserError]


def _change(value: str | None) -> str | Keep | None:
    return KEEP if value is UNSET else value


async def update_profile(info: Info, input: UpdateProfileInput) -> UpdateProfilePayload:
    changes = ProfileChanges(
        first_name=_change(input.first_name),
        last_name=_change(input.last_name),
        display_name=_change(input.display_name),
    )
    outcome = await usecases.update_own_profile(
        info.context.unit_of_work, info.context.principal, changes
    )
    if outcome.value is None:
        return UpdateProfilePayload(user=None, errors=user_errors(outcome.problems))
    return UpdateProfilePayload(
        user=await load_user(info.context, outcome.value.user_id), errors=[]
    )
