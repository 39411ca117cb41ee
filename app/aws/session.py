"""The one place that creates AWS sessions and clients: AssumeRole, refreshing credentials, read-only guard.

The scanner's own identity comes from the standard AWS chain; customer accounts are entered with STS
AssumeRole and an External ID; short-lived credentials refresh themselves by assuming the role again; every
client gets the read-only guard before anyone can use it.

Credentials live only in memory, inside botocore's credential object: they are never logged (botocore's
debug logs are scrubbed too), never part of a repr, never pickled, never returned as plain values.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import aioboto3
import aiohttp
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError
from botocore.httpsession import create_urllib3_context, get_cert_path
from botocore.loaders import Loader, create_loader

from app import __version__
from app.aws.errors import (
    AssumeRoleDenied,
    AwsCallError,
    InvalidAssumeRoleInput,
    InvalidRoleArn,
    SessionNotStarted,
)
from app.aws.guard import install_readonly_guard

log = structlog.get_logger(__name__)

USER_AGENT_EXTRA = f"CloudWizard/{__version__}"
# AssumeRole is not a read, but it is how we get read-only credentials; only STS clients get it.
STS_EXTRA_ALLOWED = frozenset({"sts:AssumeRole", "sts:GetCallerIdentity"})
DEFAULT_SESSION_NAME = "CloudWizard"
DEFAULT_DURATION_SECONDS = 900   # short on purpose: a leaked session is worth 15 minutes
MIN_DURATION_SECONDS = 900       # STS minimum
MAX_DURATION_SECONDS = 3600      # role chaining (a scanner running as a role) caps sessions at 1 hour
# Refresh windows before expiry. botocore's defaults (15 and 10 minutes) would refresh a 15-minute session
# on every call.
DEFAULT_ADVISORY_REFRESH_SECONDS = 300
DEFAULT_MANDATORY_REFRESH_SECONDS = 120
PARTITION_STS_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}

_ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]+")
_PATH_CHARS = re.compile(r"[\x21-\x7e]*")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:/-]{2,1224}")

AssumeHook = Callable[[dict[str, Any]], Awaitable[None] | None]


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoleArn:
    partition: str
    account_id: str
    path: str
    name: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role{self.path}{self.name}"


def parse_role_arn(arn: str) -> RoleArn:
    """Parse `arn:<partition>:iam::<12 digits>:role/<path/>NAME`; InvalidRoleArn says what is wrong."""
    if not isinstance(arn, str):
        raise InvalidRoleArn(arn, "must be a string")
    if not arn:
        raise InvalidRoleArn(arn, "must not be empty")
    if any(c.isspace() for c in arn):
        raise InvalidRoleArn(arn, "must not contain whitespace")
    if len(arn) > 2048:
        raise InvalidRoleArn(arn, "must be at most 2048 characters")
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise InvalidRoleArn(arn, "must look like arn:aws:iam::123456789012:role/NAME")
    _, partition, service, region, account_id, resource = parts
    if partition not in PARTITION_STS_REGION:
        raise InvalidRoleArn(arn, f"unknown partition {partition!r} (expected aws, aws-us-gov or aws-cn)")
    if service == "sts" and resource.startswith("assumed-role/"):
        raise InvalidRoleArn(arn, "this is an assumed-role session ARN; give the ARN of the role itself "
                                  "(arn:aws:iam::ACCOUNT:role/NAME)")
    if service != "iam":
        raise InvalidRoleArn(arn, f"service must be 'iam', not {service!r}")
    if region:
        raise InvalidRoleArn(arn, "IAM ARNs have no region: the fourth field must be empty")
    if not re.fullmatch(r"[0-9]{12}", account_id):
        raise InvalidRoleArn(arn, f"account ID must be exactly 12 digits, not {account_id!r}")
    if not resource.startswith("role/"):
        kind = resource.split("/", 1)[0] or resource
        raise InvalidRoleArn(arn, f"must name a role (role/NAME), not {kind!r}")
    rest = resource[len("role"):]
    cut = rest.rfind("/")
    path, name = rest[: cut + 1], rest[cut + 1:]
    if not name:
        raise InvalidRoleArn(arn, "role name is empty")
    if len(name) > 64:
        raise InvalidRoleArn(arn, "role name must be at most 64 characters")
    if not _ROLE_NAME.fullmatch(name):
        raise InvalidRoleArn(arn, "role name may contain only letters, digits and + = , . @ _ -")
    if len(path) > 512:
        raise InvalidRoleArn(arn, "role path must be at most 512 characters")
    if "//" in path:
        raise InvalidRoleArn(arn, "role path has an empty segment (//)")
    if not _PATH_CHARS.fullmatch(path):
        raise InvalidRoleArn(arn, "role path may contain only printable ASCII characters")
    return RoleArn(partition=partition, account_id=account_id, path=path, name=name)


def validate_session_name(name: str) -> str:
    if not isinstance(name, str) or not _SESSION_NAME.fullmatch(name):
        raise InvalidAssumeRoleInput(
            "session_name", "must be 2-64 characters of letters, digits and + = , . @ _ -"
        )
    return name


def validate_external_id(external_id: str | None) -> str | None:
    if external_id is not None and (
        not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id)
    ):
        raise InvalidAssumeRoleInput(
            "external_id", "must be 2-1224 characters of letters, digits and + = , . @ : / _ -"
        )
    return external_id


def validate_duration(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not (
        MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS
    ):
        raise InvalidAssumeRoleInput(
            "duration_seconds", f"must be an integer from {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}"
        )
    return seconds


@cache
def _shared_loader() -> Loader:
    """botocore's data files (endpoints, partitions, one model per service), parsed once per process.

    Every new botocore session would otherwise parse them again: a verify creates four sessions and ~40
    clients, and spent about a second of event-loop CPU re-reading the same JSON.
    """
    return create_loader()


def _new_botocore_session() -> AioSession:
    session = AioSession()
    session.register_component("data_loader", _shared_loader())
    return session


@cache
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    context = create_urllib3_context()
    context.load_verify_locations(ca_bundle)
    return context


class _SharedTlsHttpSession(AIOHTTPSession):
    """aiobotocore builds a TLS context and parses the whole CA bundle for every client (25-60 ms of CPU
    each); one verified context per CA bundle serves all of them the same way."""

    def _create_connector(self, proxy_url: str | None) -> aiohttp.TCPConnector:
        if not self._verify or proxy_url or self._cert_file:
            return super()._create_connector(proxy_url)
        return aiohttp.TCPConnector(limit=self._max_pool_connections,
                                    ssl=_tls_context(get_cert_path(self._verify)), **self._connector_args)


@dataclass(frozen=True)
class ClientOptions:
    """How every client is built: adaptive retries, a connection pool sized for concurrency, timeouts."""

    # None: AWS_MAX_ATTEMPTS or the profile's max_attempts, else botocore's default for adaptive mode (3).
    max_attempts: int | None = None
    max_pool_connections: int = 50
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # Normally unset: botocore resolves AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> by itself.
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if (self.max_attempts is not None and self.max_attempts < 1) or self.max_pool_connections < 1:
            raise ValueError("max_attempts and max_pool_connections must be at least 1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")

    def botocore_config(self) -> AioConfig:
        retries: dict[str, Any] = {"mode": "adaptive"}
        if self.max_attempts is not None:
            # total_max_attempts counts the first try; botocore's "max_attempts" key counts retries only.
            retries["total_max_attempts"] = self.max_attempts
        return AioConfig(
            http_session_cls=_SharedTlsHttpSession,
            retries=retries,
            max_pool_connections=self.max_pool_connections,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            user_agent_extra=USER_AGENT_EXTRA,
        )


class CallerIdentity(NamedTuple):
    account_id: str
    arn: str


# --------------------------------------------------------------------------------------------------
# Log scrubbing: botocore logs request headers, parameters and response bodies at DEBUG
# --------------------------------------------------------------------------------------------------

_REDACTED = "[REDACTED]"
_LOG_SCRUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(<(SecretAccessKey|SessionToken|AccessKeyId)>)[^<]*(</\2>)"), rf"\1{_REDACTED}\3"),
    (re.compile(r"""((?i:secretaccesskey|sessiontoken|secret_key|secret_access_key|session_token|token"""
                r"""|externalid|external_id|x-amz-security-token|signature)['"]?\s*[:=]\s*b?['"]?)"""
                r"""[^'"&,\s}]+"""), rf"\1{_REDACTED}"),
    (re.compile(r"\b(?:ASIA|AKIA)[A-Z0-9]{12,}\b"), _REDACTED),
)
_SENSITIVE_LOGGERS = (
    "botocore.endpoint", "botocore.parsers", "botocore.auth", "botocore.credentials", "botocore.hooks",
    "botocore.retryhandler", "botocore.httpsession", "botocore.client", "botocore.utils",
    "aiobotocore.endpoint", "aiobotocore.credentials", "aiobotocore.httpsession", "aiobotocore.client",
    "aiobotocore.parsers", "aiobotocore.hooks", "aiobotocore.utils",
)
_LOGGER_FAMILIES = ("botocore", "aiobotocore", "boto3", "aioboto3", "urllib3", "aiohttp")


def scrub(text: str) -> str:
    """Remove AWS credentials, signatures and External IDs from a piece of log text."""
    for pattern, replacement in _LOG_SCRUBS:
        text = pattern.sub(replacement, text)
    return text


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record must still not leak its args
            message = str(record.msg)
        record.msg, record.args = scrub(message), ()
        return True


_SCRUB_FILTER = _ScrubFilter()


def _install_log_scrubbing() -> None:
    """Attach the scrubber to every AWS-library logger (filters do not inherit, so each one needs it)."""
    for name in _SENSITIVE_LOGGERS:
        logging.getLogger(name)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".", 1)[0] in _LOGGER_FAMILIES:
            if _SCRUB_FILTER not in logger.filters:
                logger.addFilter(_SCRUB_FILTER)


# --------------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------------

def _is_local(endpoint_url: str | None) -> bool:
    host = urlsplit(endpoint_url or "").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strip_account_host_prefix(endpoint_host: str) -> Callable[..., None]:
    """botocore sends S3 Control calls to <account-id>.<endpoint host>, which a local host cannot resolve."""

    def handler(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        prefix, _, rest = host.partition(".")
        if rest == endpoint_host and re.fullmatch(r"[0-9]{12}", prefix):
            netloc = parts.netloc.split(".", 1)[1]
            request.url = urlunsplit(parts._replace(netloc=netloc))
            if "host" in request.headers:
                request.headers["host"] = netloc

    return handler


@asynccontextmanager
async def _guarded_client(
    session: aioboto3.Session,
    service: str,
    region: str,
    options: ClientOptions,
    extra_allowed: frozenset[str],
) -> AsyncIterator[Any]:
    _install_log_scrubbing()
    kwargs: dict[str, Any] = {"region_name": region, "config": options.botocore_config()}
    if options.endpoint_url:
        kwargs["endpoint_url"] = options.endpoint_url
    async with session.client(service, **kwargs) as client:
        endpoint = client.meta.endpoint_url
        if service == "s3control" and _is_local(endpoint):
            client.meta.events.register("before-send.s3-control",
                                        _strip_account_host_prefix(urlsplit(endpoint).hostname or ""))
        install_readonly_guard(client, extra_allowed=frozenset(extra_allowed))
        yield client


def scanner_session(profile: str | None = None) -> aioboto3.Session:
    """The scanner's own identity, from the standard AWS chain (environment, profile, ECS/instance role).

    We never store long-lived keys: this takes none.
    """
    _install_log_scrubbing()
    return aioboto3.Session(botocore_session=_new_botocore_session(), profile_name=profile)


@asynccontextmanager
async def scanner_client(
    service: str,
    region: str,
    *,
    session: aioboto3.Session | None = None,
    options: ClientOptions | None = None,
    extra_allowed: frozenset[str] = frozenset(),
) -> AsyncIterator[Any]:
    """A read-only-guarded client on the scanner's own identity."""
    async with _guarded_client(session or scanner_session(), service, region, options or ClientOptions(),
                               extra_allowed) as client:
        yield client


class CallerCredentials:
    """A ClientProvider on the caller's own credentials (the `cloudwizard scan` command)."""

    def __init__(self, session: aioboto3.Session | None = None, options: ClientOptions | None = None) -> None:
        self.session = session or scanner_session()
        self.options = options or ClientOptions()

    def client(self, service: str, region: str, *, extra_allowed: frozenset[str] = frozenset()):
        return scanner_client(service, region, session=self.session, options=self.options,
                              extra_allowed=extra_allowed)


async def scanner_identity(
    session: aioboto3.Session | None = None,
    *,
    region: str = "us-east-1",
    options: ClientOptions | None = None,
) -> CallerIdentity:
    """Who the scanner is (GetCallerIdentity on its own credentials)."""
    try:
        async with scanner_client("sts", region, session=session, options=options) as sts:
            answer = await sts.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallError.from_exception(exc, service="sts", operation="GetCallerIdentity") from exc
    return CallerIdentity(answer["Account"], answer["Arn"])


# --------------------------------------------------------------------------------------------------
# Customer accounts
# --------------------------------------------------------------------------------------------------

def _utcnow() -> datetime:
    return datetime.now(UTC)


class AssumedRole:
    """A customer role assumed with an External ID; its credentials re-assume the role before they expire.

        assumed = await AssumedRole(role_arn, external_id).start()
        async with assumed.client("ec2", "eu-west-1") as ec2:
            ...

    `on_assume(event)` is called (and awaited if it returns an awaitable) after every AssumeRole, the first
    and each refresh, with: action, scanner_principal, account_id, role_arn, session_name,
    external_id_provided, duration_seconds, refresh, outcome (success | denied | error), request_id, and
    assumed_role_arn + expires_at on success or error_code + error_message otherwise. Never credentials.
    An exception from the hook propagates: an AssumeRole that cannot be audited does not count as done.
    """

    def __init__(
        self,
        role_arn: str | RoleArn,
        external_id: str | None,
        *,
        session_name: str = DEFAULT_SESSION_NAME,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        scanner: aioboto3.Session | None = None,
        options: ClientOptions | None = None,
        on_assume: AssumeHook | None = None,
        scanner_principal: str | None = None,
        sts_region: str | None = None,
        advisory_refresh_seconds: int = DEFAULT_ADVISORY_REFRESH_SECONDS,
        mandatory_refresh_seconds: int = DEFAULT_MANDATORY_REFRESH_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.role = role_arn if isinstance(role_arn, RoleArn) else parse_role_arn(role_arn)
        self.session_name = validate_session_name(session_name)
        self._external_id = validate_external_id(external_id)
        self.duration_seconds = validate_duration(duration_seconds)
        if not 0 <= mandatory_refresh_seconds <= advisory_refresh_seconds:
            raise ValueError("refresh windows need 0 <= mandatory <= advisory seconds")
        self._advisory = advisory_refresh_seconds
        self._mandatory = mandatory_refresh_seconds
        self._scanner = scanner or scanner_session()
        self._options = options or ClientOptions()
        self._on_assume = on_assume
        if scanner_principal is None:
            from app.config import get_settings

            scanner_principal = get_settings().scanner_principal_arn
        self.scanner_principal = scanner_principal
        self.sts_region = sts_region or PARTITION_STS_REGION[self.role.partition]
        self._clock = clock
        self._session: aioboto3.Session | None = None
        self._start_lock = asyncio.Lock()
        self.assume_count = 0
        self.assumed_role_arn: str | None = None
        self.expires_at: datetime | None = None

    @property
    def role_arn(self) -> str:
        return str(self.role)

    @property
    def account_id(self) -> str:
        return self.role.account_id

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> aioboto3.Session:
        """The aioboto3 session on the assumed, self-refreshing credentials."""
        if self._session is None:
            raise SessionNotStarted(f"call `await start()` before using {self!r}")
        return self._session

    def __repr__(self) -> str:
        expires = self.expires_at.isoformat() if self.expires_at else None
        return (f"AssumedRole(role_arn={self.role_arn!r}, session_name={self.session_name!r}, "
                f"started={self.started}, expires_at={expires!r}, assume_count={self.assume_count})")

    def __reduce__(self) -> Any:
        raise TypeError("AssumedRole holds live credentials and cannot be pickled or copied")

    async def start(self) -> AssumedRole:
        """AssumeRole once and set up credentials that refresh by assuming the role again."""
        async with self._start_lock:
            if self._session is not None:
                return self
            metadata = await self._assume(refresh=False)
            credentials = AioRefreshableCredentials(
                access_key=metadata["access_key"],
                secret_key=metadata["secret_key"],
                token=metadata["token"],
                expiry_time=self.expires_at,
                refresh_using=self._refresh,
                method="cloudwizard-assume-role",
                time_fetcher=self._clock,
                advisory_timeout=self._advisory,
                mandatory_timeout=self._mandatory,
            )
            del metadata
            botocore_session = _new_botocore_session()
            # botocore's own AssumeRole provider hands its refreshable credentials over the same way.
            botocore_session._credentials = credentials
            self._session = aioboto3.Session(botocore_session=botocore_session)
        return self

    @asynccontextmanager
    async def client(
        self, service: str, region: str, *, extra_allowed: frozenset[str] = frozenset()
    ) -> AsyncIterator[Any]:
        """A read-only-guarded client in the customer account; the guard is installed before you get it."""
        async with _guarded_client(self.session, service, region, self._options, extra_allowed) as client:
            yield client

    async def _refresh(self) -> dict[str, str]:
        return await self._assume(refresh=True)

    async def _assume(self, *, refresh: bool) -> dict[str, str]:
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self._external_id is not None:
            params["ExternalId"] = self._external_id
        event: dict[str, Any] = {
            "action": "aws.assume_role",
            "scanner_principal": self.scanner_principal,
            "account_id": self.account_id,
            "role_arn": self.role_arn,
            "session_name": self.session_name,
            "external_id_provided": self._external_id is not None,
            "duration_seconds": self.duration_seconds,
            "refresh": refresh,
        }
        try:
            async with _guarded_client(self._scanner, "sts", self.sts_region,
                                       self._options, STS_EXTRA_ALLOWED) as sts:
                answer = await sts.assume_role(**params)
        except (ClientError, BotoCoreError) as exc:
            error = AwsCallError.from_exception(exc, service="sts", operation="AssumeRole")
            if error.code == "AccessDenied":
                error = AssumeRoleDenied(role_arn=self.role_arn, message=error.message,
                                         request_id=error.request_id, http_status=error.http_status)
            await self._emit(event | {
                "outcome": "denied" if isinstance(error, AssumeRoleDenied) else "error",
                "request_id": error.request_id,
                "error_code": error.code,
                "error_message": error.message,
            })
            raise error from exc
        credentials = answer["Credentials"]
        self.assume_count += 1
        self.assumed_role_arn = answer.get("AssumedRoleUser", {}).get("Arn")
        self.expires_at = credentials["Expiration"]
        await self._emit(event | {
            "outcome": "success",
            "request_id": answer.get("ResponseMetadata", {}).get("RequestId"),
            "assumed_role_arn": self.assumed_role_arn,
            "expires_at": self.expires_at.isoformat(),
        })
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": self.expires_at.isoformat(),
        }

    async def _emit(self, event: dict[str, Any]) -> None:
        level = log.info if event["outcome"] == "success" else log.warning
        level("aws.assume_role", **{k: v for k, v in event.items() if k != "action"})
        if self._on_assume is not None:
            result = self._on_assume(dict(event))
            if inspect.isawaitable(result):
                await result


async def verify_identity(assumed: AssumedRole) -> CallerIdentity:
    """GetCallerIdentity on the assumed credentials; the account must be the role's own account."""
    try:
        async with assumed.client("sts", assumed.sts_region,
                                  extra_allowed=frozenset({"sts:GetCallerIdentity"})) as sts:
            answer = await sts.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallError.from_exception(exc, service="sts", operation="GetCallerIdentity") from exc
    identity = CallerIdentity(answer["Account"], answer["Arn"])
    if identity.account_id != assumed.account_id:
        raise AwsCallError(service="sts", operation="GetCallerIdentity", code="AccountMismatch",
                           message=f"credentials for {assumed.role_arn} act in account {identity.account_id}",
                           request_id=answer.get("ResponseMetadata", {}).get("RequestId"))
    return identity
