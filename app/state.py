"""What the running application holds for its lifetime."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from app.auth.services import AuthServices
from app.config import Settings
from app.db.engine import Database


@dataclass
class AppState:
    settings: Settings
    db: Database
    schema: strawberry.Schema
    auth: AuthServices
