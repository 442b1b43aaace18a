"""What the running application holds for its lifetime."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import strawberry

from app.auth.services import AuthServices
from app.config import Settings
from app.db.engine import Database
from app.http.documents import DocumentPreparer
from app.messaging.dispatcher import Dispatcher
from app.messaging.fanout import Fanout
from loaders import Loaders


@dataclass
class AppState:
    settings: Settings
    db: Database
    schema: strawberry.Schema
    auth: AuthServices
    # Runs side effects after commits; None where nothing should (e.g. one-off tools).
    dispatcher: Dispatcher | None = None
    # This process's live subscribers; brokers publish committed events into it. Each event
    # gets fresh DataLoaders, shared by the subscribers it reaches.
    fanout: Fanout[Loaders] | None = None
    # Parsed and validated query documents, by query text, for this schema and these limits.
    documents: DocumentPreparer = field(init=False)
    # Admission control: a turn to execute one GraphQL operation (MAX_CONCURRENT_OPERATIONS).
    operations: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.documents = DocumentPreparer(self.schema._schema, self.settings.graphql)
        self.operations = asyncio.Semaphore(self.settings.graphql.max_concurrent_operations)
