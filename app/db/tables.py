"""Table definitions for SQLAlchemy Core query building.

The schema itself is owned by the yoyo migrations; a test reflects the migrated database and
checks these definitions against it, so the two cannot drift apart silently.
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.db.types import UTCDateTime

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

profiles = Table(
    "profiles",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("display_name", Text, nullable=False),
    Column("preferences", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("sku", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("price_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", Uuid, ForeignKey("products.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_amount", BigInteger, nullable=False),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("client_secret_hash", CHAR(64)),
    Column("name", Text, nullable=False),
    Column("client_type", String(16), nullable=False),
    Column("grant_types", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("redirect_uris", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(64), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("user_id", Uuid, ForeignKey("users.id")),
    Column("scope", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # The refresh-token family (one per code exchange) the token belongs to, for user tokens.
    Column("family_id", Uuid),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("key_hash", CHAR(64), nullable=False, unique=True),
    Column("last_four", CHAR(4), nullable=False),
    Column("environment", String(8), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("rate_per_minute", Integer),
    Column("use_count", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", CHAR(64), primary_key=True),
    Column("client_id", String(64), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("family_id", Uuid),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", CHAR(64), primary_key=True),
    Column("family_id", Uuid, nullable=False),
    Column("client_id", String(64), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(128), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activates_at", UTCDateTime, nullable=False),
)

_JSON = JSON().with_variant(JSONB(), "postgresql")

# The event store, which is also the outbox: every state change's events, in commit order per
# stream; the side-effect dispatcher claims the rows whose `handled_at` is still empty, and the
# relay (app.messaging.relay) hands the rows whose `published_at` is still empty to the broker.
events = Table(
    "events",
    metadata,
    Column("sequence", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("stream_id", Uuid, nullable=False),
    Column("stream_type", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", _JSON, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    Column("handled_at", UTCDateTime),
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Column("retry_at", UTCDateTime),
    UniqueConstraint("stream_id", "version", name="events_stream_version_key"),
)

handler_runs = Table(
    "handler_runs",
    metadata,
    Column("event_id", Uuid, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("handler", String(100), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

trusted_documents = Table(
    "trusted_documents",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("sha256", CHAR(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("name", String(200)),
    Column("registered_at", UTCDateTime, nullable=False),
)
