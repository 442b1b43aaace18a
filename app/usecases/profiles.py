"""The signed-in user's own profile."""

from __future__ import annotations

from app.auth import policy
from app.auth.principal import Principal
from app.domain.models import Profile
from app.domain.profiles import ProfileChanges, update_profile
from app.errors import NotFound
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory
from app.usecases.runner import Outcome, run, utcnow


async def update_own_profile(
    uow_factory: UnitOfWorkFactory, principal: Principal, changes: ProfileChanges
) -> Outcome[Profile]:
    """Change the caller's profile. Two updates racing on one profile meet at the user stream's
    next version; the later one starts again and applies its changes on top."""
    user_id = policy.require_signed_in(principal)

    async def work(uow: UnitOfWork) -> Profile:
        user = await uow.profiles.get_user(user_id)
        profile = await uow.profiles.get(user_id)
        if user is None or profile is None:
            raise NotFound("The signed-in user no longer exists")
        now = utcnow()
        version = await uow.events.last_version(user_id)
        changed, event = update_profile(
            profile, changes, email=user.email, stream_version=version, now=now
        )
        if event is None:
            return profile
        await uow.record(event)
        await uow.profiles.save(changed, now)
        return changed

    return await run(uow_factory, work)
