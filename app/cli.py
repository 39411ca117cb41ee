"""The `cloudwizard` command: serve the API, run the worker, migrate, and administer users.

Each command reads the configuration afresh (Settings()) and refuses to run on a configuration error
with exit code 2 and a one-paragraph explanation, never a traceback. Sub-command groups are Typer apps
added with `cli.add_typer(...)`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from app.config import ConfigError, Settings

cli = typer.Typer(
    name="cloudwizard", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="CloudWizard: read-only AWS security-posture scanning service.",
)
admin_cli = typer.Typer(no_args_is_help=True, help="Administrative tasks run directly against the database.")
cli.add_typer(admin_cli, name="admin")

out = Console()
err = Console(stderr=True)

EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings(*, need_signing_key: bool = False) -> Settings:
    """Read CW_* settings now; a bad configuration ends the command with exit code 2."""
    try:
        settings = Settings()
        if need_signing_key:
            settings.resolved_jwt_secret()
    except ValidationError as exc:
        problems = "; ".join(
            f"CW_{'_'.join(map(str, e['loc'])).upper() or '?'}: {e['msg']}" for e in exc.errors()
        )
        _fail(f"invalid configuration: {problems}", EXIT_CONFIG)
    except SettingsError as exc:  # a value that could not be parsed at all (e.g. malformed JSON)
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        _fail(f"invalid configuration: {exc}{cause}", EXIT_CONFIG)
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    return settings


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a valid database URL>"


def _database_failure(exc: Exception, settings: Settings) -> NoReturn:
    """Explain a database error in one line (operators need the cause, not a traceback)."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    where = _display_url(settings.database_url)
    if isinstance(exc, OSError):
        _fail(f"cannot reach the database {where}: {exc}")
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        _fail(f"CW_DATABASE_URL is not usable ({exc}); expected e.g. postgresql+asyncpg://user:pass@host/db")
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        _fail(f"database error on {where}: {reason} (has `cloudwizard migrate` been run?)")
    if isinstance(exc, SQLAlchemyError):
        _fail(f"database error on {where}: {exc}")
    raise exc


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[Any]:
    """A unit of work on an engine of its own, so the command uses exactly the settings it was given."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.db import make_engine

    engine = make_engine(settings)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
    finally:
        await engine.dispose()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in containers).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    proxy_headers: Annotated[bool, typer.Option(
        "--proxy-headers/--no-proxy-headers",
        help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a reverse proxy).")] = False,
    forwarded_allow_ips: Annotated[str, typer.Option(
        help="Comma-separated proxy addresses whose forwarded headers are trusted.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (more than 1 only with PostgreSQL and Redis).")] = 1,
) -> None:
    """Run the HTTP API with uvicorn."""
    settings = load_settings(need_signing_key=True)
    if workers > 1 and (settings.is_sqlite or not settings.redis_url):
        _fail("--workers > 1 needs CW_DATABASE_URL (PostgreSQL) and CW_REDIS_URL: rate limits and in-process "
              "jobs would otherwise be per process.", EXIT_CONFIG)
    import uvicorn

    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    err.print(f"CloudWizard API on [bold]{base}[/] — interactive docs at [bold]{base}/docs[/]  "
              f"(database: {_display_url(settings.database_url)})", highlight=False, soft_wrap=True)
    uvicorn.run(
        "app.main:create_app", factory=True, host=host, port=port, workers=workers,
        proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips,
        # Our middleware writes one structured (and redacted) log line per request.
        access_log=False, log_config=None, server_header=False,
    )


@cli.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Run the queued jobs, then exit.")] = False,
) -> None:
    """Run the background job worker (arq); needs CW_REDIS_URL."""
    settings = load_settings()
    if not settings.redis_url:
        _fail("CW_REDIS_URL is not set. The worker takes jobs from Redis, e.g. "
              "CW_REDIS_URL=redis://127.0.0.1:6379/0. Without Redis the API runs jobs in its own process "
              "and needs no worker.", EXIT_CONFIG)
    from arq import run_worker

    from app import worker as worker_module
    from app.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    try:
        settings_cls = worker_module.build_worker_settings()
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    err.print(f"CloudWizard worker on queue {worker_module.QUEUE_NAME} "
              f"({_display_url(settings.redis_url)})", highlight=False)
    run_worker(settings_cls, burst=burst)


@cli.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision (default: the latest).")] = "head",
) -> None:
    """Apply database migrations (alembic upgrade)."""
    settings = load_settings()
    from alembic.util.exc import CommandError

    from app.migrate import upgrade

    from sqlalchemy.exc import SQLAlchemyError

    try:
        upgrade(revision, settings.database_url)
    except CommandError as exc:
        _fail(f"migration failed: {exc}")
    except (OSError, SQLAlchemyError) as exc:
        _database_failure(exc, settings)
    out.print(f"Database {_display_url(settings.database_url)} is at revision [bold]{revision}[/].",
              highlight=False, soft_wrap=True)


@cli.command()
def openapi(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """Print or write the OpenAPI document of the API."""
    load_settings(need_signing_key=True)
    from app.main import create_app

    document = json.dumps(create_app().openapi(), indent=2, sort_keys=False) + "\n"
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)
        out.print(f"Wrote {output}")


@admin_cli.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="The new user's e-mail address (their sign-in name).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="Prompted for when omitted (hidden, asked twice).")],
    display_name: Annotated[str | None, typer.Option(help="Name shown in the API.")] = None,
) -> None:
    """Create a user directly in the database (Argon2id password hash)."""
    settings = load_settings()
    from app.schemas.auth import SignupRequest

    try:
        # The same rules as self-service sign-up: e-mail normalised to lower case, password policy.
        data = SignupRequest(email=email, password=password, display_name=display_name)
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()))
    email = data.email

    async def _create() -> Any:
        from sqlalchemy.exc import IntegrityError

        from app.models import User
        from app.security import hash_password
        from app.services.auth import get_user_by_email

        async with _session(settings) as session:
            if await get_user_by_email(session, email) is not None:
                return None
            user = User(email=email, password_hash=hash_password(data.password),
                        display_name=data.display_name, is_active=True)
            session.add(user)
            try:
                await session.flush()
            except IntegrityError:  # lost a race with a concurrent sign-up
                return None
            return user.id

    from sqlalchemy.exc import SQLAlchemyError

    try:
        user_id = asyncio.run(_create())
    except (OSError, SQLAlchemyError) as exc:
        _database_failure(exc, settings)
    if user_id is None:
        _fail(f"a user with e-mail {email} already exists.")
    out.print(f"Created user [bold]{email}[/] (id {user_id}).", highlight=False)


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
