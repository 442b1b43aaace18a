"""Operators' command line: `python -m app serve | migrate | seed | schema | register-documents |
<auth commands>`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from app import cli as auth_cli
from app.config import (
    PROJECT_ROOT,
    ConfigError,
    Settings,
    production_notices,
    production_problems,
)
from app.db.urls import DatabaseUrl
from app.observability import logs


def _serve(settings: Settings) -> int:
    import uvicorn

    problems = production_problems(settings)
    if problems:
        print("refusing to serve with APP_ENV=production:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    for notice in production_notices(settings):
        logging.getLogger("app").warning("%s", notice)

    from app.db.migrate import migrate
    from app.http.server import uvicorn_options
    from app.server import run

    ops = settings.operations
    migrate(DatabaseUrl.parse(settings.database_url))
    if ops.workers > 1:
        _share_metrics_between_workers()
    if ops.metrics_port is not None:
        from app.observability.metrics import serve_separately

        serve_separately(ops.metrics_host, ops.metrics_port)
    config = uvicorn.Config(
        # Each worker builds its own application from the environment.
        "app.main:create_app" if ops.workers > 1 else _app_for(settings),
        factory=ops.workers > 1,
        host=settings.host,
        port=settings.port,
        workers=ops.workers,
        # Logging is configured once (app.observability.logs); app.access replaces uvicorn's
        # access lines with ones that carry the request ID, principal and operation.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=ops.shutdown_grace_seconds,
        **uvicorn_options(settings),
        # Client addresses (throttling keys) come from X-Forwarded-For only when it is sent by a
        # trusted proxy; otherwise the header is ignored, as anyone may send it.
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
    )
    run(config)
    return 0


def _app_for(settings: Settings) -> Any:
    from app.main import create_app

    return create_app(settings)


def _share_metrics_between_workers() -> None:
    """prometheus-client's multi-process mode: every worker writes its values under one
    directory, read by whichever process answers a scrape. It must be set before a worker imports
    prometheus_client; a directory left by an earlier run is emptied first (its files would be
    counted again)."""
    from app.observability.metrics import MULTIPROC_ENV

    directory = os.environ.get(MULTIPROC_ENV)
    if directory is None:
        directory = tempfile.mkdtemp(prefix="ordergraph-metrics-")
        os.environ[MULTIPROC_ENV] = directory
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def banner(settings: Settings, demo: dict[str, str]) -> str:
    """What `make run` prints: where everything is, the demo credentials, and the truth about
    GraphiQL."""
    from app.cli import DEMO_REDIRECT_URI
    from app.http.graphiql import availability
    from app.seed import DEMO_ADMIN_EMAIL, DEMO_CUSTOMER_EMAIL, DEMO_PASSWORD

    base = f"http://{settings.host}:{settings.port}"
    # The customer's key answers `me`; without the demo users only the client's token is there.
    credential = demo.get("customer_key") or demo["token"]
    query = (
        "{ me { email } }"
        if "customer_key" in demo
        else "{ products(first: 3) { edges { node { name } } } }"
    )
    graphiql = availability(settings) or f"{base}/graphql  (open it in a browser)"
    return f"""
ordergraph is starting on {base}
  GraphQL endpoint   {base}/graphql
  GraphiQL           {graphiql}
  Database           {DatabaseUrl.parse(settings.database_url)}
  Demo users         {DEMO_ADMIN_EMAIL} (admin), {DEMO_CUSTOMER_EMAIL}; password {DEMO_PASSWORD}
  API keys           admin    {demo.get("admin_key", "-")}
                     customer {demo.get("customer_key", "-")}
  Demo OAuth client  client_id {demo["client_id"]}  client_secret {demo["client_secret"]}
                     (POST {base}/oauth/token with grant_type=client_credentials)
  Bearer token       {demo["token"]}
                     (the demo client's own: no user, so `me` is null for it)
  Sign-in flow       public client {demo.get("web_client_id", "-")}, redirect {DEMO_REDIRECT_URI}
                     open {base}/oauth/authorize?response_type=code&client_id=<id>
                       &redirect_uri=<uri>&code_challenge=<S256 of a verifier>
                       &code_challenge_method=S256&state=x
                     then POST {base}/oauth/token grant_type=authorization_code, code,
                       redirect_uri, client_id, code_verifier (README: "Signing users in")
  Try it             curl -s {base}/graphql -H 'Authorization: Bearer {credential}' \\
                       -H 'Content-Type: application/json' -d '{{"query":"{query}"}}'
"""


def _dev(settings: Settings) -> int:
    """`make run`: migrate, seed an empty database, say where everything is, serve."""
    _seed(settings)
    print(banner(settings, auth_cli.demo_credentials(settings)), flush=True)
    return _serve(settings)


def _migrate(settings: Settings) -> int:
    from app.db.migrate import migrate

    applied = migrate(DatabaseUrl.parse(settings.database_url))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _seed(settings: Settings) -> int:
    from app.db.engine import Database
    from app.db.migrate import migrate
    from app.seed import seed

    url = DatabaseUrl.parse(settings.database_url)
    migrate(url)

    async def run() -> bool:
        db = Database(url, settings)
        try:
            return await seed(db, progress=True)
        finally:
            await db.dispose()

    if asyncio.run(run()):
        print("seeded the demo data set")
    else:
        print("the database already has data; seeding skipped")
    return 0


def _purge(settings: Settings) -> int:
    from app.db.engine import Database
    from app.db.migrate import migrate
    from app.retention import purge

    url = DatabaseUrl.parse(settings.database_url)
    migrate(url)

    async def run() -> dict[str, int]:
        db = Database(url, settings)
        try:
            return await purge(db, settings.retention)
        finally:
            await db.dispose()

    deleted = asyncio.run(run())
    print(", ".join(f"{kind}: {count}" for kind, count in deleted.items()))
    return 0


def _schema(check: bool) -> int:
    from resolvers.schema import schema

    path = PROJECT_ROOT / "schema.graphql"
    text = schema.as_str() + "\n"
    if check:
        if not path.exists() or path.read_text() != text:
            print("schema.graphql is stale: run `make schema`", file=sys.stderr)
            return 1
        return 0
    Path(path).write_text(text)
    print(f"wrote {path.name}")
    return 0


def _register_documents(settings: Settings, manifest: Path) -> int:
    import json

    from app.db.engine import Database
    from app.db.migrate import migrate
    from app.domain.documents import ManifestError, parse_manifest
    from app.http.manifest import check_documents
    from app.repositories.unit_of_work import SqlUnitOfWork
    from app.usecases.operators import register_documents
    from resolvers.schema import schema

    try:
        documents = parse_manifest(json.loads(manifest.read_text(encoding="utf-8")))
        check_documents(schema._schema, settings.graphql, documents)
    except (OSError, ValueError) as error:  # ManifestError and JSONDecodeError are ValueErrors
        what = "manifest" if isinstance(error, ManifestError) else "cannot read the manifest"
        print(f"{what}: {error}", file=sys.stderr)
        return 1
    url = DatabaseUrl.parse(settings.database_url)
    migrate(url)

    async def run() -> int:
        db = Database(url, settings)
        try:
            return await register_documents(SqlUnitOfWork.factory(db), documents)
        finally:
            await db.dispose()

    added = asyncio.run(run())
    print(f"registered {added} new trusted document(s) of {len(documents)} in {manifest.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="apply migrations and serve (never seeds)")
    commands.add_parser("dev", help="migrate, seed an empty database and serve (make run)")
    commands.add_parser("migrate", help="apply pending migrations")
    commands.add_parser("seed", help="load the demo data set into an empty database")
    commands.add_parser(
        "purge", help="delete expired tokens and codes, old idempotency keys (and old events)"
    )
    schema = commands.add_parser("schema", help="write schema.graphql from the code")
    schema.add_argument("--check", action="store_true", help="fail if schema.graphql is stale")
    documents = commands.add_parser(
        "register-documents",
        help="register trusted documents from a manifest (Apollo's or Relay's format)",
    )
    documents.add_argument("manifest", type=Path, help="the manifest's JSON file")
    auth_cli.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        env = dict(os.environ)
        if args.command == "dev":
            env.setdefault("INTROSPECTION", "true")  # development: GraphiQL's docs and completion
        settings = Settings.from_env(env)
        if args.command in ("serve", "dev"):
            logs.configure(settings.operations.log_format, settings.operations.log_level)
        else:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
            )
        DatabaseUrl.parse(settings.database_url)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "dev":
            return _dev(settings)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "seed":
            return _seed(settings)
        if args.command == "purge":
            return _purge(settings)
        if args.command == "register-documents":
            return _register_documents(settings, args.manifest)
        if args.command in auth_cli.COMMANDS:
            return auth_cli.run(args, settings)
        return _schema(args.check)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
