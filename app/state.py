"""What the running application holds for its lifetime."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from app.config import Settings
from app.db.engine import Database
from app.messaging.dispatcher import Dispatcher


@dataclass
class AppState:
    settings: Settings
    db: Database
    schema: strawberry.Schema
    # Runs side effects after commits; None where nothing should (e.g. one-off tools).
    dispatcher: Dispatcher | None = None
