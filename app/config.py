"""Settings come from the environment only, so one image serves every deployment."""

from __future__ import annotations

import enum
import math
import os
import re
import secrets
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "ordergraph.sqlite3"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_SQLITE_PATH}"
DEFAULT_SIGNING_KEY_FILE = PROJECT_ROOT / "var" / "signing-key.pem"
DEFAULT_ISSUER = "http://127.0.0.1:8000"
# Signs login sessions when SESSION_SECRET is unset (never in production): random per process, so
# no secret is public; sessions then end when the process restarts and are not shared between
# processes (set SESSION_SECRET wherever several processes serve the same users).
_PROCESS_SESSION_SECRET = secrets.token_urlsafe(32)
ENVIRONMENTS = ("development", "test", "staging", "production")
# What a production secret (SESSION_SECRET) must at least look like: see secret_problem.
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10
MIN_SECRET_BITS = 100

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting has a value the server cannot run with."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, not {value}")
    return value


@dataclass(frozen=True)
class PoolSettings:
    size: int = 10
    max_overflow: int = 5
    timeout: float = 5.0
    recycle: int = 1800
    pre_ping: bool = True


@dataclass(frozen=True)
class AuthSettings:
    """Who signs tokens, for whom, and what requests and passwords cost.

    The issuer and audience are configuration, so every process behind a load balancer mints and
    accepts the same tokens; only in development, when OAUTH_ISSUER is unset, is the issuer
    derived from the bind address (HOST and PORT).
    """

    issuer: str = DEFAULT_ISSUER
    # OAUTH_ISSUER was set; otherwise the issuer is derived from HOST and PORT (development).
    issuer_configured: bool = False
    audience: str = "ordergraph"
    # PEM text of the RSA signing key; when unset the key is read from signing_key_file, which
    # development creates once so restarts keep issued tokens valid.
    signing_key_pem: str | None = None
    signing_key_file: Path = DEFAULT_SIGNING_KEY_FILE
    # Fernet key(s) encrypting the private keys `rotate-signing-key` stores in the database;
    # outside production one is derived from the signing key when unset (app.auth.keys).
    key_encryption_key: str | None = None
    access_token_seconds: int = 3600
    revocation_refresh_seconds: float = 5.0
    rate_per_minute: int = 600
    rate_burst: int = 60
    # Requests without credentials, per client address: validation and anonymous reads cost CPU
    # too, and without this anyone could spend it freely.
    anonymous_rate_per_minute: int = 600
    anonymous_rate_burst: int = 120
    # Active (unrevoked) API keys one user may hold.
    max_api_keys_per_user: int = 20
    client_auth_failures_per_minute: int = 10
    redis_prefix: str = "ordergraph:"
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    password_workers: int = 2
    # Password jobs running or queued on those threads at once; sign-in checks beyond it are
    # refused as throttled (429) instead of queueing unbounded Argon2 work.
    password_queue: int = 16
    api_key_environment: str = "live"
    # APP_ENV: the login session cookie is `Secure` everywhere but development, and production
    # refuses development defaults (app.config.production_problems).
    environment: str = "development"
    session_secret: str | None = None
    session_seconds: int = 3600
    authorization_code_seconds: int = 600
    refresh_token_seconds: int = 30 * 24 * 3600
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    sign_ups_per_address: int = 5

    @property
    def session_key(self) -> str:
        """The key signing login sessions: SESSION_SECRET, else this process's random one."""
        return self.session_secret or _PROCESS_SESSION_SECRET

    @property
    def secure_cookies(self) -> bool:
        return self.environment != "development"


@dataclass(frozen=True)
class GraphQLLimits:
    """What one HTTP request may ask of the server; each is checked before anything executes."""

    max_body_bytes: int = 1_048_576
    max_query_length: int = 32_768
    # Validation's work grows with tokens (about 10 µs each): 1000 keeps the costliest
    # document these limits admit near 15 ms of CPU (`python -m bench.validation`); the full
    # introspection query takes under 200, a large page's query a few hundred.
    max_tokens: int = 1_000
    max_depth: int = 12
    max_aliases: int = 30
    max_root_fields: int = 20
    # Fields in the whole document, fragments expanded: bounds validation's work (see
    # app.http.documents.document_selections).
    max_selections: int = 1000
    # Pairs of same-named fields at one place, which validation compares pairwise (see
    # app.http.documents.overlapping_pairs).
    max_overlapping_pairs: int = 1000
    # Seconds a request body may take between two of its chunks (then 408), and seconds a
    # request's headers may take in all (`serve` closes the connection).
    body_read_timeout: float = 10.0
    header_read_timeout: float = 10.0
    max_batch: int = 0  # 0 refuses JSON-array (batched) bodies outright
    execution_timeout: float = 10.0
    # Operations executing at once in one process; the rest wait (within execution_timeout) for
    # a turn instead of all slowing down together and starving the pool. from_env defaults it to
    # DB_POOL_SIZE.
    max_concurrent_operations: int = 10
    introspection: bool = False
    document_cache_size: int = 512


@dataclass(frozen=True)
class CostSettings:
    """Static query cost (app.http.cost): the limit, and how lists and fields are weighed."""

    # Operations whose requested cost is above this are refused before they run (0: no limit).
    max_cost: int = 10_000
    # Assumed length of a list with no slicing argument (an order's items, its history).
    list_size: int = 10
    # `Type.field` -> weight per value returned, replacing the default (1 object, 0 scalar).
    field_weights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetSettings:
    """Per-principal query-cost budgets (app.http.budgets): a leaky bucket of points."""

    # Points a principal's bucket holds (0: no budgets; costs are still computed and reported).
    maximum: int = 20_000
    # Points restored per second.
    restore_rate: float = 1_000.0

    @property
    def enabled(self) -> bool:
        return self.maximum > 0


class PersistedQueryMode(enum.StrEnum):
    OFF = "off"
    APQ = "apq"
    TRUSTED = "trusted"


@dataclass(frozen=True)
class PersistedQuerySettings:
    """Persisted queries (app.http.persisted): automatic, or trusted documents only."""

    mode: PersistedQueryMode = PersistedQueryMode.APQ
    # Query texts kept in each process (least recently used dropped first).
    max_entries: int = 10_000
    # How long a registered text stays in Redis without being registered again.
    ttl_seconds: int = 7 * 24 * 3600
    # OAuth clients (third parties) that may send any document when the mode is `trusted`.
    open_clients: frozenset[str] = frozenset()
    # Cache-Control max-age of a GET answering a persisted query without credentials.
    max_age: int = 300


@dataclass(frozen=True)
class WebSocketSettings:
    """What one WebSocket at /graphql may hold, and how often the server looks after it."""

    # A socket that has not sent connection_init by then is closed (4408).
    init_timeout: float = 10.0
    # Server pings (graphql-transport-ws) or `ka` messages (graphql-ws) so idle proxies keep it.
    keepalive: float = 12.0
    # How often a socket's credentials are checked again (expiry, revocation, disabled owner).
    auth_recheck: float = 5.0
    # Operations in flight at once on one socket, subscriptions included.
    max_operations: int = 100
    # Encoded events waiting for one subscription. A subscription that overflows it is not
    # closed: it catches up from the event store at its own pace (app.http.subscriptions).
    max_queued_events: int = 100
    # Events read from the store per batch when a subscription replays after a cursor or
    # catches up after overflowing.
    replay_batch: int = 100
    # A subscription whose oldest undelivered event is older than this is truly too slow: its
    # socket is closed with 1013, and the client resumes with its last cursor.
    max_lag: float = 60.0
    # Admission control for subscription work: event executions (live or replayed) running at
    # once in this process, kept apart from MAX_CONCURRENT_OPERATIONS so an event storm cannot
    # take every turn from queries and mutations.
    max_concurrent_event_executions: int = 4
    # Sockets and subscriptions held at once in this process, per client address and per
    # principal (a user or a client): every subscription costs work on each of its events.
    max_sockets_per_address: int = 20
    max_sockets_per_principal: int = 20
    max_subscriptions_per_address: int = 200
    max_subscriptions_per_principal: int = 200


@dataclass(frozen=True)
class EventSettings:
    """How committed events travel to subscribers, and the test-only switches around them.

    The Redis stream's key is `REDIS_PREFIX` + `events`, so deployments, CI runs and developers
    sharing one Redis each read only their own events.
    """

    # Entries the Redis stream keeps (trimmed approximately, `XADD MAXLEN ~`): how far behind a
    # reader may fall, across a Redis-side hiccup or a slow process, and still catch up.
    stream_maxlen: int = 100_000
    # The relay runs after every commit of this process; this poll is its fallback, which is how
    # it catches up after a crash, an outage or a restart, and picks up other processes' commits.
    relay_poll_seconds: float = 1.0
    relay_batch: int = 500
    # How far back a subscription may resume (`after` a cursor): an older cursor is
    # CURSOR_EXPIRED. Retention of handled events must keep at least this much of the store.
    replay_window: float = 7 * 24 * 3600.0
    # Events whose side-effect handlers the dispatcher runs at once (the handlers of one event
    # still run one after another), and so the most one claim takes: behind a backlog, claims
    # grow to this, and the bookkeeping's few transactions are shared by more events (at 8, a
    # busy process ran 100 events/s seconds behind; at 32, within about one).
    dispatch_concurrency: int = 32


@dataclass(frozen=True)
class RetentionSettings:
    """How long rows that have served their purpose are kept (app.retention)."""

    # Access tokens, authorization codes and refresh tokens: kept this long past their expiry.
    expired_grace_seconds: int = 24 * 3600
    # Idempotency keys: a retry with the same key within this window gets the first answer.
    idempotency_key_seconds: int = 24 * 3600
    # Events published and handled this long ago (with their handler runs); 0 keeps them all
    # (they are each order's history, `Order.events`).
    event_seconds: int = 0
    # The background job's period; 0 turns it off (`python -m app purge` from cron instead).
    interval_seconds: int = 3600
    batch: int = 1000
    max_batches: int = 100


@dataclass(frozen=True)
class OperationsSettings:
    """How the process runs, stops, logs and is measured."""

    # `serve` processes sharing HOST:PORT on this host.
    workers: int = 1
    # On SIGTERM, how long in-flight requests (and WebSockets closing) may take before they are
    # cancelled.
    shutdown_grace_seconds: int = 30
    # `json` (one object per line) or `text`; text in development, json elsewhere by default.
    log_format: str = "text"
    log_level: str = "INFO"
    # GET /metrics on the API's port for this bearer token; unset, no such route.
    metrics_token: str | None = None
    # A separate listener for /metrics (no token), on metrics_host; None: none.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True)
class CorsSettings:
    """Which browser origins may call the API (HTTP and WebSocket). Empty: same origin only."""

    # Exact origins (`scheme://host[:port]`), or ("*",) for any origin without credentials.
    allowed_origins: tuple[str, ...] = ()
    # Cookies and HTTP authentication on cross-origin requests; never with the wildcard. The API
    # authenticates with the Authorization header, which needs no credentials mode.
    allow_credentials: bool = False
    # How long a browser may cache a preflight answer.
    max_age: int = 600

    @property
    def any_origin(self) -> bool:
        return self.allowed_origins == ("*",)


@dataclass(frozen=True)
class CacheSettings:
    """The two-level cache (app.cache): L1 per process, L2 in Redis when REDIS_URL is set."""

    enabled: bool = True
    l1_max_entries: int = 10_000
    l1_ttl_seconds: float = 30.0
    # L2 is used when REDIS_URL is set and this is on.
    l2: bool = True
    l2_ttl_seconds: float = 300.0
    # Whole responses of public GraphQL operations and REST GETs (on top of the query cache).
    responses: bool = True


API_VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class DeprecatedVersion:
    version: str
    # Since when it is deprecated (the Deprecation header), and when it stops (Sunset), if known.
    since: date
    sunset: date | None = None


def parse_deprecated_versions(raw: str | None) -> tuple[DeprecatedVersion, ...]:
    """`API_DEPRECATED_VERSIONS`: comma-separated `version:since[:sunset]`, dates as YYYY-MM-DD,
    e.g. `v1:2026-12-01:2027-06-30`. The newest version has no successor and cannot be listed."""
    found = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        version, _, dates = item.strip().partition(":")
        if version not in API_VERSIONS[:-1]:
            raise ConfigError(
                f"API_DEPRECATED_VERSIONS: {version!r} is not a version with a successor "
                f"(one of {', '.join(API_VERSIONS[:-1])})"
            )
        since_text, _, sunset_text = dates.partition(":")
        try:
            since = date.fromisoformat(since_text)
            sunset = date.fromisoformat(sunset_text) if sunset_text else None
        except ValueError:
            raise ConfigError(
                f"API_DEPRECATED_VERSIONS: {item.strip()!r} is not version:YYYY-MM-DD[:YYYY-MM-DD]"
            ) from None
        found.append(DeprecatedVersion(version, since, sunset))
    return tuple(found)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False
    redis_url: str | None = None
    pool: PoolSettings = field(default_factory=PoolSettings)
    slow_statement_seconds: float = 1.0
    statement_timeout_ms: int = 5000
    graphiql: bool = True
    auth: AuthSettings = field(default_factory=AuthSettings)
    graphql: GraphQLLimits = field(default_factory=GraphQLLimits)
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    smtp_url: str | None = None
    email_from: str = "ordergraph <no-reply@localhost>"
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto `serve` believes (uvicorn's
    # forwarded_allow_ips: comma-separated addresses or networks, or *). Unset, none are: behind a
    # proxy every client would then share the proxy's address (and its throttling buckets).
    forwarded_allow_ips: str | None = None
    events: EventSettings = field(default_factory=EventSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    api_deprecated_versions: tuple[DeprecatedVersion, ...] = ()
    # Strict-Transport-Security max-age on responses served over https (0: not sent).
    hsts_seconds: int = 31_536_000
    cors: CorsSettings = field(default_factory=CorsSettings)
    operations: OperationsSettings = field(default_factory=OperationsSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    # Which executor runs query operations: "levels" (app/engine/levels.py) or "standard"
    # (graphql-core's, through Strawberry). Mutations and subscriptions always use the standard.
    graphql_executor: str = "levels"
    cost: CostSettings = field(default_factory=CostSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    persisted_queries: PersistedQuerySettings = field(default_factory=PersistedQuerySettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        pool_size = _int(env, "DB_POOL_SIZE", 10, minimum=1)
        settings = cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, minimum=0),
            debug=_bool(env, "DEBUG", False),
            redis_url=env.get("REDIS_URL") or None,
            pool=PoolSettings(
                size=pool_size,
                max_overflow=_int(env, "DB_POOL_MAX_OVERFLOW", 5),
                timeout=_float(env, "DB_POOL_TIMEOUT", 5.0),
                recycle=_int(env, "DB_POOL_RECYCLE", 1800),
                pre_ping=_bool(env, "DB_POOL_PRE_PING", True),
            ),
            slow_statement_seconds=_float(env, "DB_SLOW_STATEMENT_SECONDS", 1.0),
            statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 5000),
            # GraphiQL needs introspection, which production keeps off: off there by default.
            graphiql=_bool(env, "GRAPHIQL", _app_env(env) != "production"),
            auth=_auth(env),
            graphql=GraphQLLimits(
                max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, minimum=1024),
                max_query_length=_int(env, "MAX_QUERY_LENGTH", 32_768, minimum=1),
                max_tokens=_int(env, "MAX_QUERY_TOKENS", 1_000, minimum=1),
                max_depth=_int(env, "MAX_QUERY_DEPTH", 12, minimum=1),
                max_aliases=_int(env, "MAX_QUERY_ALIASES", 30),
                max_root_fields=_int(env, "MAX_ROOT_FIELDS", 20, minimum=1),
                max_selections=_int(env, "MAX_QUERY_SELECTIONS", 1000, minimum=1),
                max_overlapping_pairs=_int(env, "MAX_QUERY_OVERLAPS", 1000),
                body_read_timeout=_positive_float(env, "BODY_READ_TIMEOUT", 10.0),
                header_read_timeout=_positive_float(env, "HEADER_READ_TIMEOUT", 10.0),
                max_batch=_int(env, "MAX_BATCH_OPERATIONS", 0),
                execution_timeout=_positive_float(env, "EXECUTION_TIMEOUT", 10.0),
                max_concurrent_operations=_int(
                    env, "MAX_CONCURRENT_OPERATIONS", pool_size, minimum=1
                ),
                # Off unless asked for or debugging: `python -m app dev` (make run) turns it on.
                introspection=_bool(env, "INTROSPECTION", _bool(env, "DEBUG", False)),
                document_cache_size=_int(env, "DOCUMENT_CACHE_SIZE", 512),
            ),
            websocket=WebSocketSettings(
                init_timeout=_positive_float(env, "WS_INIT_TIMEOUT_SECONDS", 10.0),
                keepalive=_positive_float(env, "WS_KEEPALIVE_SECONDS", 12.0),
                auth_recheck=_positive_float(env, "WS_AUTH_RECHECK_SECONDS", 5.0),
                max_operations=_int(env, "WS_MAX_OPERATIONS", 100, minimum=1),
                max_queued_events=_int(env, "WS_MAX_QUEUED_EVENTS", 100, minimum=1),
                replay_batch=_int(env, "WS_REPLAY_BATCH", 100, minimum=1),
                max_lag=_positive_float(env, "WS_MAX_LAG_SECONDS", 60.0),
                max_concurrent_event_executions=_int(
                    env, "WS_MAX_CONCURRENT_EVENT_EXECUTIONS", 4, minimum=1
                ),
                max_sockets_per_address=_int(env, "WS_MAX_SOCKETS_PER_ADDRESS", 20, minimum=1),
                max_sockets_per_principal=_int(env, "WS_MAX_SOCKETS_PER_PRINCIPAL", 20, minimum=1),
                max_subscriptions_per_address=_int(
                    env, "WS_MAX_SUBSCRIPTIONS_PER_ADDRESS", 200, minimum=1
                ),
                max_subscriptions_per_principal=_int(
                    env, "WS_MAX_SUBSCRIPTIONS_PER_PRINCIPAL", 200, minimum=1
                ),
            ),
            smtp_url=env.get("SMTP_URL") or None,
            email_from=env.get("EMAIL_FROM") or "ordergraph <no-reply@localhost>",
            forwarded_allow_ips=(env.get("FORWARDED_ALLOW_IPS") or "").strip() or None,
            events=_events(env),
            cache=CacheSettings(
                enabled=_bool(env, "CACHE_ENABLED", True),
                l1_max_entries=_int(env, "CACHE_L1_MAX_ENTRIES", 10_000, minimum=1),
                l1_ttl_seconds=_positive_float(env, "CACHE_L1_TTL_SECONDS", 30.0),
                l2=_bool(env, "CACHE_L2", True),
                l2_ttl_seconds=_positive_float(env, "CACHE_L2_TTL_SECONDS", 300.0),
                responses=_bool(env, "CACHE_RESPONSES", True),
            ),
            api_deprecated_versions=parse_deprecated_versions(env.get("API_DEPRECATED_VERSIONS")),
            hsts_seconds=_int(env, "HSTS_SECONDS", 31_536_000),
            cors=_cors(env),
            operations=_operations(env),
            retention=RetentionSettings(
                expired_grace_seconds=_int(env, "RETENTION_EXPIRED_SECONDS", 24 * 3600),
                idempotency_key_seconds=_int(env, "RETENTION_IDEMPOTENCY_KEY_SECONDS", 24 * 3600),
                event_seconds=_int(env, "RETENTION_EVENT_SECONDS", 0),
                interval_seconds=_int(env, "RETENTION_INTERVAL_SECONDS", 3600),
                batch=_int(env, "RETENTION_BATCH", 1000, minimum=1),
                max_batches=_int(env, "RETENTION_MAX_BATCHES", 100, minimum=1),
            ),
            graphql_executor=_executor(env),
            cost=CostSettings(
                max_cost=_int(env, "MAX_QUERY_COST", 10_000),
                list_size=_int(env, "QUERY_COST_LIST_SIZE", 10, minimum=1),
                field_weights=_field_weights(env.get("QUERY_COST_FIELD_WEIGHTS") or ""),
            ),
            budget=BudgetSettings(
                maximum=_int(env, "QUERY_BUDGET", 20_000),
                restore_rate=_positive_float(env, "QUERY_BUDGET_RESTORE_RATE", 1_000.0),
            ),
            persisted_queries=_persisted_queries(env),
        )
        kept, window = settings.retention.event_seconds, settings.events.replay_window
        if 0 < kept < window:
            # Purging inside the window would let a subscriber resume past events it never got.
            raise ConfigError(
                f"RETENTION_EVENT_SECONDS ({kept}) must be 0 (keep every event) or at least "
                f"EVENTS_REPLAY_WINDOW_SECONDS ({window:g}), which subscribers may resume within"
            )
        return settings


def _operations(env: Mapping[str, str]) -> OperationsSettings:
    app_env = _app_env(env)
    log_format = (env.get("LOG_FORMAT") or ("text" if app_env == "development" else "json")).lower()
    if log_format not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    log_level = (env.get("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}")
    token = env.get("METRICS_TOKEN") or None
    if token is not None and len(token) < 16:
        raise ConfigError("METRICS_TOKEN must have at least 16 characters")
    port = _int(env, "METRICS_PORT", 0, minimum=0)
    return OperationsSettings(
        workers=_int(env, "WORKERS", 1, minimum=1),
        shutdown_grace_seconds=_int(env, "SHUTDOWN_GRACE_SECONDS", 30),
        log_format=log_format,
        log_level=log_level,
        metrics_token=token,
        metrics_port=port or None,
        metrics_host=env.get("METRICS_HOST") or "127.0.0.1",
    )


_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def _origin(raw: str) -> str:
    """As browsers send it in `Origin`: lower case, without the scheme's default port."""
    origin = raw.lower()
    for default in ("http://", ":80"), ("https://", ":443"):
        if origin.startswith(default[0]) and origin.endswith(default[1]):
            origin = origin.removesuffix(default[1])
    return origin


def _cors(env: Mapping[str, str]) -> CorsSettings:
    raw = (env.get("CORS_ALLOWED_ORIGINS") or "").replace(",", " ").split()
    origins = tuple(dict.fromkeys(_origin(o) for o in raw))
    credentials = _bool(env, "CORS_ALLOW_CREDENTIALS", False)
    if "*" in origins:
        if len(origins) > 1:
            raise ConfigError("CORS_ALLOWED_ORIGINS is either * or a list of origins, not both")
        if credentials:
            raise ConfigError(
                "CORS_ALLOW_CREDENTIALS cannot be true when CORS_ALLOWED_ORIGINS is *"
            )
    else:
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ConfigError(
                    f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin "
                    "(scheme://host[:port], no path or trailing slash)"
                )
    return CorsSettings(
        allowed_origins=origins,
        allow_credentials=credentials,
        max_age=_int(env, "CORS_MAX_AGE", 600),
    )


def _app_env(env: Mapping[str, str]) -> str:
    return (env.get("APP_ENV") or "development").strip().lower()


EXECUTORS = ("levels", "standard")


def _executor(env: Mapping[str, str]) -> str:
    raw = env.get("GRAPHQL_EXECUTOR")
    value = (raw or "levels").strip().lower()
    if value not in EXECUTORS:
        raise ConfigError(f"GRAPHQL_EXECUTOR must be levels or standard, not {raw!r}")
    return value


def _field_weights(raw: str) -> dict[str, int]:
    """`Type.field=N,Type.field=N` (QUERY_COST_FIELD_WEIGHTS)."""
    weights: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, value = item.partition("=")
        type_name, _, field_name = name.strip().partition(".")
        if not type_name or not field_name or not value.strip().isdigit():
            raise ConfigError(
                f"QUERY_COST_FIELD_WEIGHTS must be `Type.field=N`, comma-separated; not {item!r}"
            )
        weights[name.strip()] = int(value)
    return weights


def _persisted_queries(env: Mapping[str, str]) -> PersistedQuerySettings:
    raw = (env.get("PERSISTED_QUERIES") or "apq").strip().lower()
    try:
        mode = PersistedQueryMode(raw)
    except ValueError:
        raise ConfigError(f"PERSISTED_QUERIES must be off, apq or trusted, not {raw!r}") from None
    return PersistedQuerySettings(
        mode=mode,
        max_entries=_int(env, "PERSISTED_QUERIES_MAX_ENTRIES", 10_000, minimum=1),
        ttl_seconds=_int(env, "PERSISTED_QUERIES_TTL_SECONDS", 7 * 24 * 3600, minimum=1),
        open_clients=frozenset(
            filter(
                None,
                (c.strip() for c in (env.get("PERSISTED_QUERIES_OPEN_CLIENTS") or "").split(",")),
            )
        ),
        max_age=_int(env, "PERSISTED_QUERIES_MAX_AGE", 300),
    )


def _events(env: Mapping[str, str]) -> EventSettings:
    return EventSettings(
        stream_maxlen=_int(env, "EVENTS_STREAM_MAXLEN", 100_000, minimum=100),
        relay_poll_seconds=_positive_float(env, "EVENTS_RELAY_POLL_SECONDS", 1.0),
        relay_batch=_int(env, "EVENTS_RELAY_BATCH", 500, minimum=1),
        replay_window=_positive_float(env, "EVENTS_REPLAY_WINDOW_SECONDS", 7 * 24 * 3600.0),
        dispatch_concurrency=_int(env, "EVENTS_DISPATCH_CONCURRENCY", 32, minimum=1),
    )


def development_issuer(env: Mapping[str, str]) -> str:
    """Where this process itself answers (HOST and PORT), for when OAUTH_ISSUER is unset: tokens,
    the metadata document and every discovered endpoint then name an address that works. Only
    outside production, which requires OAUTH_ISSUER (the public URL, the same for every process)."""
    host = (env.get("HOST") or "127.0.0.1").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"  # a wildcard bind is reachable on loopback
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{_int(env, 'PORT', 8000)}"


def _auth(env: Mapping[str, str]) -> AuthSettings:
    refresh = _float(env, "REVOCATION_REFRESH_SECONDS", 5.0, minimum=0.1)
    if refresh > 5.0:
        raise ConfigError("REVOCATION_REFRESH_SECONDS must be at most 5 (revocation promise)")
    environment = env.get("API_KEY_ENVIRONMENT") or "live"
    if environment not in ("live", "test"):
        raise ConfigError(f"API_KEY_ENVIRONMENT must be live or test, not {environment!r}")
    app_env = _app_env(env)
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {app_env!r}")
    configured = (env.get("OAUTH_ISSUER") or "").strip().rstrip("/")
    if configured:
        scheme, _, rest = configured.partition("://")
        host = rest.split("/")[0].rsplit(":", 1)[0].strip("[]")
        if scheme != "https" and not (
            scheme == "http" and host in ("localhost", "127.0.0.1", "::1")
        ):
            raise ConfigError("OAUTH_ISSUER must be an https:// URL (http only on loopback)")
    return AuthSettings(
        issuer=configured or development_issuer(env),
        issuer_configured=bool(configured),
        audience=env.get("OAUTH_AUDIENCE") or "ordergraph",
        signing_key_pem=env.get("OAUTH_SIGNING_KEY") or None,
        signing_key_file=Path(env.get("OAUTH_SIGNING_KEY_FILE") or DEFAULT_SIGNING_KEY_FILE),
        key_encryption_key=env.get("OAUTH_KEY_ENCRYPTION_KEY") or None,
        access_token_seconds=_int(env, "ACCESS_TOKEN_SECONDS", 3600, minimum=60),
        revocation_refresh_seconds=refresh,
        rate_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 600, minimum=1),
        rate_burst=_int(env, "RATE_LIMIT_BURST", 60, minimum=1),
        anonymous_rate_per_minute=_int(env, "ANONYMOUS_RATE_LIMIT_PER_MINUTE", 600, minimum=1),
        anonymous_rate_burst=_int(env, "ANONYMOUS_RATE_LIMIT_BURST", 120, minimum=1),
        max_api_keys_per_user=_int(env, "MAX_API_KEYS_PER_USER", 20, minimum=1),
        client_auth_failures_per_minute=_int(env, "CLIENT_AUTH_FAILURES_PER_MINUTE", 10, 1),
        redis_prefix=env.get("REDIS_PREFIX") or "ordergraph:",
        argon2_time_cost=_int(env, "ARGON2_TIME_COST", 3, minimum=1),
        argon2_memory_kib=_int(env, "ARGON2_MEMORY_KIB", 65536, minimum=8),
        argon2_parallelism=_int(env, "ARGON2_PARALLELISM", 4, minimum=1),
        password_workers=_int(env, "PASSWORD_HASH_WORKERS", 2, minimum=1),
        password_queue=_int(env, "PASSWORD_HASH_QUEUE", 16, minimum=1),
        api_key_environment=environment,
        environment=app_env,
        session_secret=env.get("SESSION_SECRET") or None,
        session_seconds=_int(env, "SESSION_SECONDS", 3600, minimum=60),
        login_failures_per_account=_int(env, "LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1),
        login_failures_per_address=_int(env, "LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1),
        sign_ups_per_address=_int(env, "SIGN_UPS_PER_ADDRESS", 5, minimum=1),
        refresh_token_seconds=_int(env, "REFRESH_TOKEN_SECONDS", 30 * 24 * 3600, minimum=60),
    )


def secret_problem(secret: str | None) -> str | None:
    """Why `secret` is too weak to sign anything (None when it will do).

    Length alone passes 32 spaces or one repeated character, so the estimate is the secret's own
    character statistics: its length times its per-character Shannon entropy (a random
    32-character hex string estimates ~110 bits, `secrets.token_urlsafe(32)` ~190, `aaaa…` 0),
    and a repeated pattern such as `0123456789` four times, which that estimate misses, shows by
    compressing well.
    """
    if not secret:
        return "is not set"
    if secret != secret.strip():
        return "starts or ends with whitespace"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    counts = Counter(secret)
    if len(counts) < MIN_SECRET_DISTINCT:
        return f"uses fewer than {MIN_SECRET_DISTINCT} different characters"
    bits = -sum(n * math.log2(n / len(secret)) for n in counts.values())
    if bits < MIN_SECRET_BITS:
        return f"looks like about {bits:.0f} bits of randomness, below {MIN_SECRET_BITS}"
    if len(zlib.compress(secret.encode("utf-8"), 9)) < len(secret) * 3 // 4:
        return "repeats itself (it compresses well, which random text does not)"
    return None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two spellings name one file (`./var/x`, `var/../var/x`, a symlink, a hard link)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def production_problems(settings: Settings) -> list[str]:
    """Why this configuration must not serve production traffic (empty when it may).

    Development defaults are convenient but local: a signing key generated into var/, a session
    secret generated per process, an issuer on loopback, debugging output. In production they would
    expose the key to whoever reads the disk, end every sign-in on a restart and split sessions
    between processes, hand out tokens other deployments cannot verify, or show SQL and internal
    messages to anyone.
    """
    auth = settings.auth
    if auth.environment != "production":
        return []
    problems = []
    key_file = Path(auth.signing_key_file)
    if not auth.signing_key_pem and _same_file(key_file, DEFAULT_SIGNING_KEY_FILE):
        problems.append(
            "OAUTH_SIGNING_KEY (PEM) or OAUTH_SIGNING_KEY_FILE must be set: the generated "
            "development key is not for production"
        )
    elif not auth.signing_key_pem and not key_file.is_file():
        problems.append(f"OAUTH_SIGNING_KEY_FILE {auth.signing_key_file} does not exist")
    weak = secret_problem(auth.session_secret)
    if weak is not None:
        problems.append(
            f"SESSION_SECRET {weak}: set it to at least {MIN_SECRET_LENGTH} random characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    if not auth.issuer_configured or not auth.issuer.startswith("https://"):
        problems.append("OAUTH_ISSUER must be set to the public https:// URL of this API")
    if settings.debug:
        problems.append(
            "DEBUG must be off in production: it shows SQL, timings and internal messages to "
            "every caller"
        )
    return problems


def production_notices(settings: Settings) -> list[str]:
    """Choices production allows but the log must show at start-up.

    Introspection follows DEBUG by default, which production refuses, so there it is on only when
    INTROSPECTION=true was set: an explicit choice, and a logged one.
    """
    if settings.auth.environment != "production":
        return []
    notices = []
    if settings.graphql.introspection:
        notices.append(
            "INTROSPECTION=true in production: anyone may read the whole schema (__schema, __type)"
        )
    if settings.graphiql:
        notices.append("GRAPHIQL=true in production: the IDE page is served at GET /graphql")
    return notices
