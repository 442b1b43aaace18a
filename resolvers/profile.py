"""A user's public face."""

from __future__ import annotations

import strawberry

from app.domain import models


@strawberry.type
class Profile:
    first_name: str | None
    last_name: str | None
    display_name: str

    @classmethod
    def of(cls, profile: models.Profile) -> Profile:
        return cls(
            first_name=profile.first_name,
            last_name=profile.last_name,
            display_name=profile.display_name,
        )
