"""The `cloudwizard` command: scan an account from a terminal, list checks, serve the API, run the worker,
migrate, and administer users.

Exit codes, for every command: 0 success, 1 a usage or credential error (a bad option, unknown check id,
no or expired AWS credentials, AssumeRole refused), 2 a configuration error (CW_* settings, an inconsistent
check catalog), 3 `scan --fail-on` found failed findings at or above the given severity. Errors are one
line on stderr, never a traceback. Service commands read the configuration afresh (Settings()); `scan` and
`checks` need no configuration, database or signing key. Heavy modules are imported inside the commands
so that the command starts quickly. Sub-command groups are Typer apps added with `cli.add_typer(...)`.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

if TYPE_CHECKING:
    from app.config import Settings
    from app.reports import ScanReport
    from app.scanners.engine import ScanOutcome, ScanPlan

EXIT_FAILURE = 1
EXIT_USAGE = 1
EXIT_CONFIG = 2
EXIT_FINDINGS = 3
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 usage or credential error; 2 configuration error; "
    "3 failed findings at or above --fail-on."
)


# Click's UsageError, reached through the class Typer exports (newer Typer releases vendor click).
_UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Group(TyperGroup):
    """Click exits 2 on a usage error; here 2 means a configuration error, so usage errors exit 1."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise


cli = typer.Typer(
    name="cloudwizard", cls=_Group, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="CloudWizard: read-only AWS security-posture scanning service.", epilog=EXIT_CODES_HELP,
)
admin_cli = typer.Typer(no_args_is_help=True, help="Administrative tasks run directly against the database.")
cli.add_typer(admin_cli, name="admin")
checks_cli = typer.Typer(no_args_is_help=True, help="The check catalog: what `scan` can evaluate.")
cli.add_typer(checks_cli, name="checks")

out = Console()
err = Console(stderr=True)
# The async drivers the project installs; `postgresql://` alone would look for psycopg.
DATABASE_DRIVERS = {"postgresql+asyncpg", "sqlite+aiosqlite"}


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings(*, need_signing_key: bool = False) -> Settings:
    """Read CW_* settings now; a bad configuration ends the command with exit code 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from app.config import ConfigError, Settings

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
    _check_database_url(settings.database_url)
    return settings


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        driver = make_url(url).drivername
    except ArgumentError:
        driver = None
    if driver not in DATABASE_DRIVERS:
        _fail(f"CW_DATABASE_URL must start with {' or '.join(d + '://' for d in sorted(DATABASE_DRIVERS))} "
              f"(got {_display_url(url)})", EXIT_CONFIG)


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
        _fail(f"CW_DATABASE_URL is not usable: {exc}", EXIT_CONFIG)
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
    from app.config import ConfigError
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
    from sqlalchemy.exc import SQLAlchemyError

    from app.migrate import upgrade

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
    from pydantic import ValidationError

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


# --------------------------------------------------------------------------------------------------
# cloudwizard scan / cloudwizard checks
# --------------------------------------------------------------------------------------------------

class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    ocsf = "ocsf"
    html = "html"


class FailOn(enum.StrEnum):
    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class ListFormat(enum.StrEnum):
    table = "table"
    json = "json"


_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}")
_CREDENTIALS_MISSING = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
_CREDENTIALS_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired",
                        "RefreshWithMFAUnsupportedError"}
_SSO_PROBLEMS = {"UnauthorizedSSOTokenError", "SSOTokenLoadError", "TokenRetrievalError", "SSOError",
                 "PendingAuthorizationExpiredError"}
_CREDENTIALS_REJECTED = {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                         "AuthFailure", "InvalidAccessKeyId", "InvalidToken", "IncompleteSignature"}
_UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                "HTTPClientError", "ProxyConnectionError", "SSLError"}


class _CliError(Exception):
    """A one-line reason to stop, raised inside the event loop and printed outside it."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(items)) or None


def _catalog() -> dict[str, Any]:
    """The check catalog; code and metadata that disagree are an installation problem (exit 2)."""
    from pydantic import ValidationError

    from app.checks.catalog import catalog

    try:
        return catalog()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _CliError(f"the check catalog is invalid: {first.get('msg')} "
                        f"({'.'.join(map(str, first.get('loc', ())))})", EXIT_CONFIG) from None
    except (ValueError, OSError) as exc:
        raise _CliError(f"the check catalog is inconsistent: {exc}", EXIT_CONFIG) from None


def _scan_plan(regions: str | None, services: str | None, checks: str | None) -> ScanPlan:
    """The plan from the options, checked before any AWS call.

    Ids and services are checked against the metadata files alone: importing every check module (and
    what they import) waits until the credentials have been tried, so a credential problem shows at once.
    """
    from pydantic import ValidationError

    from app.checks.catalog import metadata
    from app.scanners.engine import ScanPlan

    wanted_regions = _split(regions)
    for region in wanted_regions or []:
        if not _REGION.fullmatch(region):
            _fail(f"--regions: {region!r} is not an AWS region name (e.g. us-east-1, eu-west-3)", EXIT_USAGE)
    plan = ScanPlan(regions=wanted_regions, services=set(_split(services) or []) or None,
                    checks=set(_split(checks) or []) or None)
    try:
        known = metadata()
    except ValidationError as exc:
        _fail(f"the check metadata is invalid: {exc.errors()[0].get('msg')}", EXIT_CONFIG)
    except (ValueError, OSError) as exc:
        _fail(f"the check metadata is unreadable: {exc}", EXIT_CONFIG)
    # The same messages as the engine's select_checks, which checks again against the full catalog.
    unknown = sorted((plan.checks or set()) - set(known))
    if unknown:
        _fail(f"unknown check ids: {', '.join(unknown)}; `cloudwizard checks list` shows them all", EXIT_USAGE)
    services_known = {m.service for m in known.values()}
    unknown = sorted((plan.services or set()) - services_known)
    if unknown:
        _fail(f"unknown services: {', '.join(unknown)} (known: {', '.join(sorted(services_known))})", EXIT_USAGE)
    if not any((not plan.checks or m.id in plan.checks) and (not plan.services or m.service in plan.services)
               for m in known.values()):
        _fail("--checks and --services together select no check", EXIT_USAGE)
    return plan


def _credential_problem(exc: Any, profile: str | None) -> str:
    """A failed STS call as one actionable line (an AwsCallError: code, message, operation)."""
    code, message, where = exc.code, exc.message, f"{exc.service}:{exc.operation}"
    login = f"aws sso login --profile {profile}" if profile else "aws sso login"
    if code in _CREDENTIALS_MISSING:
        return ("no AWS credentials found: pass --profile, set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or run `{login}` ({code})")
    if code in _CREDENTIALS_EXPIRED:
        return f"the AWS credentials have expired ({code}): get fresh ones, e.g. `{login}`, and try again"
    if code in _SSO_PROBLEMS:
        return f"the AWS SSO session is missing or has expired ({code}): run `{login}`"
    if code in _CREDENTIALS_REJECTED:
        return f"AWS rejected the credentials ({code}): {message}"
    if code in _UNREACHABLE:
        return f"cannot reach AWS for {where}: {message}"
    return f"{where} failed: {code}: {message}"


def _process_started_unix() -> float | None:
    """When this process started (Linux /proc), for the CW_BENCH start-up figure."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - uptime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _FirstCall:
    """CW_BENCH=1: note when the first AWS request leaves (botocore's before-send on the session)."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.cpu: float | None = None

    def __call__(self, **_: Any) -> None:
        if self.at is None:
            self.at, self.cpu = time.time(), time.process_time()

    def report(self) -> None:
        started = _process_started_unix()
        if self.at is None:
            return
        since = f"{self.at - started:.3f}" if started is not None else "unknown"
        # CPU time tells start-up cost apart from a busy machine's waiting.
        print(f"cw-bench first_aws_call_unix={self.at:.3f} process_start_to_first_call_s={since} "
              f"cpu_to_first_call_s={self.cpu:.3f}", file=sys.stderr, flush=True)


class _StderrLoggerFactory:
    """structlog lines go to the current stderr (never stdout, which carries the report)."""

    def __call__(self, *args: Any) -> Any:
        import structlog

        return structlog.PrintLogger(file=sys.stderr)


def _configure_scan_logging(verbose: bool) -> None:
    import logging

    import structlog

    from app.logging import redact

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.format_exc_info, redact,
                    structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO if verbose else logging.ERROR),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _ScanProgress:
    """The engine's progress snapshots as a rich progress bar on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _ScanProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("collectors · {task.fields[info]}"),
                                TimeElapsedColumn(), console=err, transient=False)
            self.bar.start()
            self.task = self.bar.add_task("Scanning", total=None, info="discovering regions")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, snap: dict[str, Any]) -> None:
        if self.bar is None:
            return
        info = (f"regions {snap['regions_done']}/{snap['regions_total']} · "
                f"services {snap['services_done']}/{snap['services_total']} · {snap['api_calls']} API calls · "
                f"{snap['throttled']} throttled · {snap['errors']} errors")
        self.bar.update(self.task, total=snap["collectors_total"], completed=snap["collectors_done"], info=info)


async def _open_provider(profile: str | None, role_arn: str | None, external_id: str | None,
                         session_name: str, options: Any, first_call: _FirstCall | None) -> tuple[Any, Any, str]:
    """(client provider, caller identity, partition) for the caller's credentials or an assumed role."""
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    from app.aws.errors import AssumeRoleDenied, AwsCallError, InvalidAssumeRoleInput, InvalidRoleArn
    from app.aws.session import AssumedRole, CallerCredentials, scanner_identity, scanner_session, verify_identity

    missing_profile = f"AWS profile {profile!r} is not in the AWS config or credentials file"
    try:
        session = scanner_session(profile)
        # Checked now: botocore would only notice when the first client is made.
        if profile is not None and profile not in session.available_profiles:
            raise _CliError(missing_profile)
    except ProfileNotFound:
        raise _CliError(missing_profile) from None
    except BotoCoreError as exc:
        raise _CliError(f"cannot read the AWS configuration: {exc}") from None
    if first_call is not None:
        session.events.register("before-send", first_call)
    if role_arn:
        try:
            assumed = AssumedRole(role_arn, external_id, session_name=session_name, scanner=session,
                                  options=options, scanner_principal=f"cli:{profile or 'default-chain'}")
        except (InvalidRoleArn, InvalidAssumeRoleInput) as exc:
            raise _CliError(f"--role-arn/--external-id/--session-name: {exc}") from None
        try:
            await assumed.start()
            identity = await verify_identity(assumed)
        except AssumeRoleDenied as exc:
            hint = "the External ID (--external-id)" if external_id else "an External ID (--external-id)"
            raise _CliError(f"AssumeRole on {role_arn} was refused (AccessDenied): {exc.message}. Check that the "
                            f"role exists, that its trust policy allows your identity, and whether it requires "
                            f"{hint}.") from None
        except AwsCallError as exc:
            raise _CliError(_credential_problem(exc, profile)) from None
        return assumed, identity, assumed.role.partition
    try:
        identity = await scanner_identity(session, region=session.region_name or "us-east-1", options=options)
    except AwsCallError as exc:
        raise _CliError(_credential_problem(exc, profile)) from None
    return CallerCredentials(session, options), identity, identity.arn.split(":")[1]


async def _scan_async(plan: ScanPlan, *, profile: str | None, role_arn: str | None, external_id: str | None,
                      session_name: str, concurrency: int, show_progress: bool,
                      first_call: _FirstCall | None) -> tuple[ScanOutcome, str]:
    from app.aws.session import ClientOptions
    from app.scanners.base import Limits
    from app.scanners.engine import UnknownSelection, run_scan

    options = ClientOptions(max_pool_connections=max(50, concurrency))
    provider, identity, partition = await _open_provider(profile, role_arn, external_id, session_name, options,
                                                         first_call)
    _catalog()
    if show_progress:
        err.print(f"Scanning AWS account [bold]{identity.account_id}[/] ({partition}) as {identity.arn}",
                  highlight=False, soft_wrap=True)
    with _ScanProgress(show_progress) as progress:
        try:
            outcome = await run_scan(provider, identity.account_id, partition, plan,
                                     limits=Limits(concurrency=concurrency), progress=progress)
        except UnknownSelection as exc:
            raise _CliError(f"{exc}; `cloudwizard checks list` shows them all", EXIT_USAGE) from None
    return outcome, identity.arn


def _check_output_path(output: Path | None) -> None:
    if output is None:
        return
    if output.is_dir():
        _fail(f"--output {output} is a directory; give a file name", EXIT_USAGE)
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        _fail(f"--output: the directory {parent} does not exist", EXIT_USAGE)
    if not os.access(parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        _fail(f"--output: cannot write {output} (permission denied)", EXIT_USAGE)


def _emit_report(report: ScanReport, fmt: OutputFormat, output: Path | None) -> Path | None:
    """Write the report where it was asked for; returns the file written, if any."""
    from app.reports.formats import render_table, write

    if output is None and fmt is OutputFormat.html and sys.stdout.isatty():
        # An HTML page dumped on a terminal helps nobody: keep it in a file named after the scan.
        stamp = report.scan["finished_at"].replace(":", "").replace("-", "").split(".")[0]
        output = Path(f"cloudwizard-{report.scan['account_id']}-{stamp}.html")
    if output is None:
        if fmt is OutputFormat.table and sys.stdout.isatty():
            render_table(report, out)
        else:
            write(report, fmt.value, sys.stdout)
            sys.stdout.flush()
        return None
    try:
        # Written as it is rendered: a large report never sits in memory as one string.
        with output.open("w", encoding="utf-8", newline="") as stream:
            write(report, fmt.value, stream)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    return output


@cli.command(epilog=EXIT_CODES_HELP)
def scan(
    regions: Annotated[str | None, typer.Option(
        help="Comma-separated regions to scan (default: every region enabled in the account).")] = None,
    services: Annotated[str | None, typer.Option(
        help="Comma-separated services whose checks run, e.g. s3,ec2,iam (default: all).")] = None,
    checks: Annotated[str | None, typer.Option(
        help="Comma-separated check ids to run (default: all); see `cloudwizard checks list`.")] = None,
    output_format: Annotated[OutputFormat, typer.Option(
        "--format", "-f", help="Report format.", case_sensitive=False)] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="File to write (default: standard output; an HTML report asked for on a "
                               "terminal goes to cloudwizard-ACCOUNT-TIME.html).")] = None,
    fail_on: Annotated[FailOn | None, typer.Option(
        help="Exit with code 3 when a FAIL finding of this severity or worse exists (GuardDuty sample findings "
             "do not count).",
        case_sensitive=False)] = None,
    profile: Annotated[str | None, typer.Option(
        help="AWS profile to use (default: the standard chain: environment, AWS_PROFILE, SSO, instance role).")
    ] = None,
    role_arn: Annotated[str | None, typer.Option(
        help="Scan through this IAM role (AssumeRole from your credentials), e.g. the CloudWizard role "
             "deployed in another account.")] = None,
    external_id: Annotated[str | None, typer.Option(
        help="External ID for --role-arn, when its trust policy requires one.")] = None,
    session_name: Annotated[str, typer.Option(
        help="Role session name for --role-arn (shows in the account's CloudTrail).")] = "CloudWizardCLI",
    concurrency: Annotated[int, typer.Option(
        min=1, max=256, help="AWS calls in flight at once for the whole scan.")] = 32,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bar or summary on stderr; errors still show.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log scan events on stderr.")] = False,
) -> None:
    """Scan one AWS account with your own credentials and print or write a report.

    Runs locally with the same collectors and checks as the service: no server, database or CloudWizard
    configuration needed. AWS_ENDPOINT_URL and the other standard AWS_* variables are honoured.
    """
    first_call = _FirstCall() if os.environ.get("CW_BENCH") == "1" else None
    if external_id is not None and role_arn is None:
        _fail("--external-id needs --role-arn", EXIT_USAGE)
    plan = _scan_plan(regions, services, checks)
    _check_output_path(output)
    _configure_scan_logging(verbose)
    show_progress = not quiet
    try:
        outcome, caller = asyncio.run(_scan_async(
            plan, profile=profile, role_arn=role_arn, external_id=external_id, session_name=session_name,
            concurrency=concurrency, show_progress=show_progress, first_call=first_call))
    except _CliError as exc:
        _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    if first_call is not None:
        first_call.report()

    from app.reports import report_from_outcome

    report = report_from_outcome(outcome)
    written = _emit_report(report, output_format, output)
    skipped = sorted(set(plan.regions or []) - set(outcome.regions))
    if skipped:
        err.print(f"[yellow]warning:[/] not scanned (not enabled in this account): {', '.join(skipped)}",
                  highlight=False, soft_wrap=True)
    failing = report.failing_at_or_above(fail_on.value) if fail_on else []
    if show_progress:
        counts = report.scan["counts"]
        by_status = counts["by_status"]
        worst = ", ".join(f"{n} {s}" for s, n in counts["failed_by_severity"].items() if n)
        where = f"; report in {written}" if written else ""
        err.print(f"{by_status['FAIL']} failed{f' ({worst})' if worst else ''}, {by_status['PASS']} passed, "
                  f"{by_status['ERROR']} not evaluated · {len(outcome.regions)} regions · "
                  f"{report.scan['api_calls']} API calls · {report.scan['duration_seconds']:.1f} s{where}",
                  highlight=False, soft_wrap=True)
    if failing:
        if show_progress:
            err.print(f"[red]{len(failing)} failed findings at or above {fail_on.value}[/] (exit code "
                      f"{EXIT_FINDINGS})", highlight=False)
        raise typer.Exit(EXIT_FINDINGS)


@checks_cli.command("list")
def checks_list(
    output_format: Annotated[ListFormat, typer.Option("--format", "-f", case_sensitive=False)] = ListFormat.table,
    service: Annotated[str | None, typer.Option(help="Only these services (comma-separated).")] = None,
    framework: Annotated[str | None, typer.Option(
        help="Only checks mapped to this framework (e.g. cis-aws-3.0, aws-fsbp, nist-800-53-r5).")] = None,
) -> None:
    """List the checks `scan` can run, with severity, service and compliance mappings."""
    from app.checks.catalog import FRAMEWORK_IDS

    try:
        entries = list(_catalog().values())
    except _CliError as exc:
        _fail(str(exc), exc.code)
    wanted = set(_split(service) or [])
    known_services = sorted({e.meta.service for e in entries})
    unknown = sorted(wanted - set(known_services))
    if unknown:
        _fail(f"unknown services: {', '.join(unknown)} (known: {', '.join(known_services)})", EXIT_USAGE)
    if framework is not None and framework not in FRAMEWORK_IDS:
        _fail(f"unknown framework {framework!r} (known: {', '.join(FRAMEWORK_IDS)})", EXIT_USAGE)
    chosen = [e for e in entries if (not wanted or e.meta.service in wanted)
              and (framework is None or framework in e.meta.compliance)]
    if output_format is ListFormat.json:
        rows = [{**e.meta.model_dump(mode="json"), "kind": e.spec.kind, "requires": sorted(e.spec.requires)}
                for e in chosen]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.markup import escape
    from rich.table import Table

    from app.reports.formats import SEVERITY_STYLE

    table = Table(header_style="bold")
    for name in ("Check", "Severity", "Service", "Category", "Title",
                 framework if framework else "Frameworks"):
        table.add_column(name, overflow="fold")
    for e in chosen:
        severity = e.meta.severity.value
        mapped = (", ".join(e.meta.compliance[framework]) if framework
                  else ", ".join(sorted(e.meta.compliance)))
        table.add_row(escape(e.meta.id), f"[{SEVERITY_STYLE[severity]}]{severity}[/]", escape(e.meta.service),
                      escape(e.meta.category), escape(e.meta.title), escape(mapped))
    out.print(table)
    out.print(f"{len(chosen)} of {len(entries)} checks", highlight=False)


@cli.command()
def demo(
    serve: Annotated[bool, typer.Option(
        "--serve", help="Afterwards keep the API and the simulated account running (Ctrl-C stops).")] = False,
    port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="API port (default: a free one; 8000 with --serve).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Folder for the scan's exports: HTML, JSON, CSV, OCSF, ASFF (default: "
                             "<CW_DATA_DIR>/reports).")] = None,
) -> None:
    """Scan a simulated AWS account (moto) through the real API, download the exports, mute a finding; see
    docs/DEMO.md."""
    settings = load_settings()
    from app.demo.run import DemoError, DemoOptions, run_demo

    if os.environ.get("CW_DATABASE_URL") or os.environ.get("CW_REDIS_URL"):
        err.print("note: the demo always uses the embedded default (SQLite in CW_DATA_DIR, in-process jobs); "
                  "CW_DATABASE_URL and CW_REDIS_URL are ignored.", highlight=False, soft_wrap=True)
    try:
        run_demo(DemoOptions(data_dir=settings.data_dir, output_dir=output, serve=serve, port=port), out)
    except DemoError as exc:
        _fail(f"demo failed: {exc}")


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
