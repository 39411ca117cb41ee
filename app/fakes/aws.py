"""WSGI fake in front of moto's server: enforces AssumeRole trust, injects faults, counts calls, fills gaps.

Tests and the demo only. moto 5.2 issues credentials for any AssumeRole (right, wrong or missing External
ID, missing role, untrusted caller); this middleware answers such calls the way AWS does before moto sees
them. It also adds per-call latency, throttling and AccessDenied injection with the real error shapes of
each protocol, per-operation call statistics, and a registry of handlers for calls moto lacks.

Control API (paths that cannot collide with AWS, JSON in and out):
    GET  /_cwfake/health   -> {"status": "ok"}
    GET  /_cwfake/config   -> current configuration
    POST /_cwfake/config   {"latency_ms": 30, "throttle": [rule...], "deny": [rule...], "caller_arn": "...",
                            "seed": 7}; each key given replaces that part of the configuration
    GET  /_cwfake/stats    -> {"total": n, "calls": {"ec2:DescribeRegions": n}, "throttled": {...},
                            "denied": {...}, "by_account": {"123456789012": {"ec2:DescribeRegions": n}}}
    POST /_cwfake/reset    clears configuration and statistics (moto's own state: POST /moto-api/reset)
    POST /_cwfake/guardduty/findings  seeds GuardDuty findings (see app.fakes.security_services)
A rule is {"service": "ec2", "operation": "DescribeRegions" (default "*", shell wildcards), "account_id": ...,
"region": ..., "count": n (default: every matching call), "fraction": 0.0-1.0 (default 1)}. Service and
operation names are botocore's ("cloudwatch", "s3control", "DescribeRegions").

moto is imported lazily so that app.fakes.server can set moto's environment before moto loads.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import json
import os
import random
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

CONTROL_PREFIX = "/_cwfake"
DEFAULT_CALLER_ARN = "arn:aws:iam::111111111111:role/CloudWizardScanner"
# The session name the default caller appears under when it is a role (what GetCallerIdentity shows).
DEFAULT_CALLER_SESSION = "cloudwizard-scanner"
CALLER_ARN_ENV = "CW_FAKE_CALLER_ARN"

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_ROLE_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}")
_SESSION_NAME = re.compile(r"[\w+=,.@-]*")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]*")
_ROLE_CHAINING_LIMIT = 3600

# A handler answers instead of moto; returning None lets moto answer (handlers that only observe a call).
Handler = Callable[["FakeCall"], Response | None]
# (botocore service name, operation name) -> handler for calls moto does not implement (or gets wrong).
HANDLERS: dict[tuple[str, str], Handler] = {}
# Called whenever moto's state is reset (POST /moto-api/reset), for handlers that keep their own state.
RESET_HOOKS: list[Callable[[], None]] = []
# (HTTP method, path after /_cwfake/) -> control endpoint for seeding what no AWS API can create; it takes the
# parsed JSON body and returns (payload, status); ValueError answers 400 with its message.
ControlHandler = Callable[[Any], tuple[Any, int]]
CONTROL_HANDLERS: dict[tuple[str, str], ControlHandler] = {}


def handler(service: str, operation: str) -> Callable[[Handler], Handler]:
    """Register a handler for one operation; it answers instead of moto."""

    def register(fn: Handler) -> Handler:
        HANDLERS[(service, operation)] = fn
        return fn

    return register


# --------------------------------------------------------------------------------------------------
# Trust policy evaluation (pure): enough of IAM's logic for AssumeRole, failing closed on the rest.
# --------------------------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards are only * and ?; fnmatch would also give meaning to [...].
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_COMPARATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # operator -> (match(request_value, policy_value), negated)
    "StringEquals": (lambda r, p: r == p, False),
    "StringNotEquals": (lambda r, p: r == p, True),
    "StringEqualsIgnoreCase": (lambda r, p: r.lower() == p.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda r, p: r.lower() == p.lower(), True),
    "StringLike": (lambda r, p: bool(_wildcard(p, ignore_case=False).fullmatch(r)), False),
    "StringNotLike": (lambda r, p: bool(_wildcard(p, ignore_case=False).fullmatch(r)), True),
    "ArnEquals": (lambda r, p: bool(_wildcard(p, ignore_case=False).fullmatch(r)), False),
    "ArnLike": (lambda r, p: bool(_wildcard(p, ignore_case=False).fullmatch(r)), False),
    "ArnNotEquals": (lambda r, p: bool(_wildcard(p, ignore_case=False).fullmatch(r)), True),
    "ArnNotLike": (lambda r, p: bool(_wildcard(p, ignore_case=False).fullmatch(r)), True),
    "Bool": (lambda r, p: r.lower() == p.lower(), False),
}


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool | None:
    """One condition key under one operator; None when the operator is not supported."""
    set_op = None
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if operator.startswith(prefix):
            set_op, operator = prefix[:-1], operator[len(prefix):]
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    values = [_condition_value(v) for v in _as_list(expected)]
    present = key.lower() in context
    if operator == "Null":
        if if_exists or set_op or not values:
            return None
        return any((v.lower() == "true") == (not present) for v in values)
    spec = _COMPARATORS.get(operator)
    if spec is None:
        return None
    compare, negated = spec
    if not present:
        if if_exists or set_op == "ForAllValues":
            return True
        if set_op == "ForAnyValue":
            return False
        return negated
    request_value = context[key.lower()]
    matched = any(compare(request_value, v) for v in values)
    return not matched if negated else matched


def conditions_hold(block: Any, context: dict[str, str], *, unsupported: bool) -> bool:
    """All operators and keys of a Condition block; `unsupported` is the answer for what we cannot judge."""
    if not block:
        return True
    if not isinstance(block, dict):
        return unsupported
    for operator, tests in block.items():
        if not isinstance(operator, str) or not isinstance(tests, dict) or not tests:
            return unsupported
        for key, expected in tests.items():
            result = _condition_holds(operator, str(key), expected, context)
            if result is None:
                result = unsupported
            if not result:
                return False
    return True


def principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _as_list(principal.get("AWS")):
        if not isinstance(value, str):
            continue
        if value == "*":
            return True
        if re.fullmatch(r"\d{12}", value):
            if value == caller.account_id:
                return True
            continue
        root = re.fullmatch(r"arn:([\w-]+):iam::(\d{12}):root", value)
        if root:
            if (root.group(1), root.group(2)) == (caller.partition, caller.account_id):
                return True
            continue
        if value in caller.matching_arns:
            return True
    return False


def _action_matches(patterns: Any, action: str) -> bool:
    return any(
        isinstance(p, str) and _wildcard(p, ignore_case=True).fullmatch(action) for p in _as_list(patterns)
    )


def _statement_applies(statement: dict[str, Any], caller: Caller, action: str) -> bool:
    if "Action" in statement:
        action_ok = _action_matches(statement["Action"], action)
    elif "NotAction" in statement:
        action_ok = not _action_matches(statement["NotAction"], action)
    else:
        action_ok = False
    if "Principal" in statement:
        principal_ok = principal_matches(statement["Principal"], caller)
    elif "NotPrincipal" in statement:
        principal_ok = not principal_matches(statement["NotPrincipal"], caller)
    else:
        principal_ok = False
    return action_ok and principal_ok


def parse_policy(document: Any) -> dict[str, Any] | None:
    """A policy document as moto stores it (JSON text, sometimes URL-encoded), or None if unreadable."""
    if isinstance(document, dict):
        return document
    if not isinstance(document, str):
        return None
    from urllib.parse import unquote

    for text in (document, unquote(document)):
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        return parsed if isinstance(parsed, dict) else None
    return None


def trust_allows(document: Any, caller: Caller, actions: Iterable[str], context: dict[str, str]) -> bool:
    """Whether a role trust policy lets `caller` perform every one of `actions`.

    An explicit Deny wins; otherwise some Allow must match principal, action and every condition.
    Anything we cannot evaluate counts against the caller on both sides (fail closed).
    """
    policy = parse_policy(document)
    if policy is None:
        return False
    statements = [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]
    lowered = {k.lower(): v for k, v in context.items()}
    for action in actions:
        allowed = False
        for statement in statements:
            effect = statement.get("Effect")
            if effect not in ("Allow", "Deny") or not _statement_applies(statement, caller, action):
                continue
            if effect == "Deny" and conditions_hold(statement.get("Condition"), lowered, unsupported=True):
                return False
            if effect == "Allow" and conditions_hold(statement.get("Condition"), lowered, unsupported=False):
                allowed = True
        if not allowed:
            return False
    return True


# --------------------------------------------------------------------------------------------------
# Who is calling
# --------------------------------------------------------------------------------------------------

def _stable_id(prefix: str, seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return prefix + digest[:17]


@dataclass(frozen=True)
class Caller:
    arn: str                # what GetCallerIdentity reports, and what AccessDenied messages name
    account_id: str
    partition: str
    user_id: str
    principal_arn: str      # aws:PrincipalArn: the role ARN for a role session
    principal_type: str     # AssumedRole | User | Account
    source: str             # configured | moto-session | moto-user

    @property
    def matching_arns(self) -> frozenset[str]:
        """ARNs a trust policy may name in Principal.AWS to mean this caller."""
        return frozenset({self.arn, self.principal_arn})

    @property
    def is_role_session(self) -> bool:
        return self.principal_type == "AssumedRole"

    @classmethod
    def role_session(cls, role_arn: str, session_name: str, source: str) -> Caller:
        m = re.fullmatch(r"arn:([\w-]+):iam::(\d{12}):role/(?:.*/)?([^/]+)", role_arn)
        if not m:
            raise ValueError(f"not a role ARN: {role_arn}")
        partition, account, name = m.groups()
        return cls(
            arn=f"arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}",
            account_id=account, partition=partition,
            user_id=f"{_stable_id('AROA', role_arn)}:{session_name}",
            principal_arn=role_arn, principal_type="AssumedRole", source=source,
        )

    @classmethod
    def from_arn(cls, arn: str, source: str = "configured") -> Caller:
        """A caller from a role, assumed-role session, user or account root ARN."""
        m = re.fullmatch(r"arn:([\w-]+):(iam|sts)::(\d{12}):(.+)", arn or "")
        if not m or m.group(1) not in PARTITIONS:
            raise ValueError(f"not an IAM principal ARN: {arn!r}")
        partition, service, account, resource = m.groups()
        if service == "iam" and resource.startswith("role/"):
            return cls.role_session(arn, DEFAULT_CALLER_SESSION, source)
        if service == "sts" and resource.startswith("assumed-role/") and resource.count("/") == 2:
            _, name, session = resource.split("/")
            caller = cls.role_session(f"arn:{partition}:iam::{account}:role/{name}", session, source)
            return caller
        if service == "iam" and resource.startswith("user/"):
            return cls(arn=arn, account_id=account, partition=partition, user_id=_stable_id("AIDA", arn),
                       principal_arn=arn, principal_type="User", source=source)
        if service == "iam" and resource == "root":
            return cls(arn=arn, account_id=account, partition=partition, user_id=account,
                       principal_arn=arn, principal_type="Account", source=source)
        raise ValueError(f"not an IAM principal ARN: {arn!r}")


def resolve_caller(access_key: str | None, default: Caller) -> Caller:
    """The principal behind an access key moto issued (role session or IAM user), else the default."""
    if not access_key:
        return default
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id, by_partition in list(iam_backends.items()):
        for partition, iam in list(by_partition.items()):
            key = iam.access_keys.get(access_key)
            if key is None:
                continue
            if key.role_arn and account_id in sts_backends:
                session = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key)
                if session is not None:
                    return Caller.role_session(session.role_arn, session.session_name, "moto-session")
            user = iam.get_user_from_access_key_id(access_key)
            if user is not None:
                return Caller(arn=user.arn, account_id=account_id, partition=partition, user_id=user.id,
                              principal_arn=user.arn, principal_type="User", source="moto-user")
    return default


def _moto_account(environ: dict[str, Any], access_key: str | None) -> str:
    # The same order moto uses to pick the account a request acts on.
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "")


# --------------------------------------------------------------------------------------------------
# What is being called
# --------------------------------------------------------------------------------------------------

# SigV4 signing name -> botocore service name, where they differ.
_SIGNING_TO_SERVICE = {
    "monitoring": "cloudwatch",
    "access-analyzer": "accessanalyzer",
    "email": "ses",
    "states": "stepfunctions",
    "elasticfilesystem": "efs",
    "elasticmapreduce": "emr",
    "mobiletargeting": "pinpoint",
    "cloudcontrolapi": "cloudcontrol",
    "awsssoportal": "sso",
    "sso": "sso-admin",
}


@cache
def _service_model(service: str) -> dict[str, Any] | None:
    import botocore.session
    from botocore.exceptions import DataNotFoundError, UnknownServiceError

    try:
        return botocore.session.get_session().get_component("data_loader").load_service_model(
            service, "service-2"
        )
    except (DataNotFoundError, UnknownServiceError):
        return None


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    path: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    literal_length: int


@cache
def _rest_routes(service: str) -> tuple[_Route, ...]:
    model = _service_model(service)
    if model is None:
        return ()
    routes = []
    for name, op in model.get("operations", {}).items():
        http = op.get("http") or {}
        uri: str = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        pattern = ""
        literal = 0
        for token in re.split(r"(\{[^}]+\})", path):
            if token.startswith("{"):
                pattern += "(.+)" if token.endswith("+}") else "([^/]+)"
            else:
                pattern += re.escape(token)
                literal += len(token)
        required = tuple(
            (k, v or None) for k, _, v in (item.partition("=") for item in query.split("&") if item)
        )
        routes.append(_Route(name, http.get("method", "POST").upper(), re.compile(pattern + "/?"),
                             required, literal))
    return tuple(routes)


def _match_rest_operation(service: str, method: str, path: str, query: dict[str, list[str]]) -> str | None:
    best: tuple[int, int] | None = None
    found = None
    for route in _rest_routes(service):
        if route.method != method or not route.path.fullmatch(path):
            continue
        if any(k not in query or (v is not None and v not in query[k]) for k, v in route.query):
            continue
        score = (len(route.query), route.literal_length)
        if best is None or score > best:
            best, found = score, route.operation
    return found


@dataclass
class FakeCall:
    """One AWS request as the fake sees it."""

    environ: dict[str, Any]
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    service: str
    operation: str
    protocol: str               # query | ec2 | json | rest-json | rest-xml | unknown
    region: str
    access_key: str | None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    params: dict[str, Any] = field(default_factory=dict)
    caller: Caller | None = None
    _account_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.service}:{self.operation}"

    @property
    def account_id(self) -> str:
        """The account moto acts on for this request."""
        if self._account_id is None:
            self._account_id = _moto_account(self.environ, self.access_key)
        return self._account_id

    @property
    def xml_namespace(self) -> str | None:
        model = _service_model(self.service)
        return (model or {}).get("metadata", {}).get("xmlNamespace")


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def _read_body(environ: dict[str, Any]) -> bytes:
    """Buffer the request body and put it back so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def identify(environ: dict[str, Any]) -> FakeCall:
    """Service, operation and protocol of a request, decided the way moto's dispatcher routes it."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "") or "/"
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    query: dict[str, list[str]] = defaultdict(list)
    for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        query[k].append(v)
    query = dict(query)

    access_key = region = signing = None
    m = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m is None and query.get("X-Amz-Credential"):
        m = re.fullmatch(r"([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", query["X-Amz-Credential"][0])
    if m is not None:
        access_key, region, signing = m.groups()
    signing = (signing or "").lower()

    content_type = environ.get("CONTENT_TYPE", "")
    body = b"" if signing == "s3" and "urlencoded" not in content_type else _read_body(environ)

    form: dict[str, str] = {k: v[0] for k, v in query.items()}
    if "application/x-www-form-urlencoded" in content_type and body:
        form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

    service = _SIGNING_TO_SERVICE.get(signing, signing) or "unknown"
    if signing == "s3" and (path.startswith("/v20180820/") or "s3-control" in environ.get("HTTP_HOST", "")):
        service = "s3control"
    elif signing == "ses" and path.startswith("/v2/"):
        service = "sesv2"
    elif signing == "es":
        service = "opensearch" if path.startswith("/2021-01-01/") else "es"
    elif signing == "apigateway" and path.startswith("/v2/"):
        service = "apigatewayv2"
    elif signing == "elasticloadbalancing":
        service = "elbv2" if form.get("Version") == "2015-12-01" else "elb"

    target = environ.get("HTTP_X_AMZ_TARGET")
    params: dict[str, Any] = {}
    if target:
        protocol, operation = "json", target.rsplit(".", 1)[-1]
    elif "Action" in form:
        protocol, operation = ("ec2" if service == "ec2" else "query"), form["Action"]
        params = form
    else:
        model = _service_model(service) or {}
        protocol = model.get("metadata", {}).get("protocol", "rest-json" if signing else "unknown")
        if protocol not in ("rest-json", "rest-xml"):
            protocol = "rest-json"
        route_path = path
        if service == "s3":
            # Virtual-hosted style (bucket.localhost, bucket.s3.amazonaws.com) carries the bucket in the host.
            host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
            vhost = re.fullmatch(r"(.+?)\.(?:localhost|s3[.-].*amazonaws\.com(?:\.cn)?)", host)
            if vhost:
                route_path = f"/{vhost.group(1)}{path}"
        operation = _match_rest_operation(service, method, route_path, query) or "Unknown"
    if protocol in ("json", "rest-json") and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        params = decoded if isinstance(decoded, dict) else {}
    return FakeCall(environ=environ, method=method, path=path, query=query, body=body, service=service,
                    operation=operation, protocol=protocol, region=region or "us-east-1",
                    access_key=access_key, params=params)


# --------------------------------------------------------------------------------------------------
# Answers in each protocol's real shape
# --------------------------------------------------------------------------------------------------

def _is_s3(call: FakeCall) -> bool:
    return call.service in ("s3", "s3control")


def xml_response(call: FakeCall, payload: str, status: int = 200) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + payload, status=status,
                    content_type="text/xml;charset=UTF-8", headers={"x-amzn-RequestId": call.request_id})


def query_response(call: FakeCall, result_xml: str) -> Response:
    """A query-protocol success: <OpResponse><OpResult>...</OpResult><ResponseMetadata/></OpResponse>."""
    ns = f' xmlns="{call.xml_namespace}"' if call.xml_namespace else ""
    op = call.operation
    return xml_response(call, f"<{op}Response{ns}><{op}Result>{result_xml}</{op}Result>"
                              f"<ResponseMetadata><RequestId>{call.request_id}</RequestId></ResponseMetadata>"
                              f"</{op}Response>")


def ec2_response(call: FakeCall, body_xml: str) -> Response:
    ns = f' xmlns="{call.xml_namespace}/"' if call.xml_namespace else ""
    op = call.operation
    return xml_response(call, f"<{op}Response{ns}><requestId>{call.request_id}</requestId>{body_xml}"
                              f"</{op}Response>")


def json_response(call: FakeCall, payload: dict[str, Any], status: int = 200) -> Response:
    content_type = ("application/x-amz-json-1.1" if call.protocol == "json" else "application/json")
    return Response(json.dumps(payload), status=status, content_type=content_type,
                    headers={"x-amzn-RequestId": call.request_id})


def error_response(call: FakeCall, code: str, message: str, status: int) -> Response:
    """An error exactly as the call's protocol carries it, so botocore parses code and message."""
    if call.protocol == "ec2":
        return xml_response(call, f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>"
                                  f"{escape(message)}</Message></Error></Errors>"
                                  f"<RequestID>{call.request_id}</RequestID></Response>", status)
    if call.protocol == "rest-xml" and _is_s3(call):
        host_id = base64.b64encode(hashlib.sha256(call.request_id.encode()).digest()).decode()
        request_id = call.request_id.replace("-", "")[:16].upper()
        return Response('<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                        f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>",
                        status=status, content_type="application/xml",
                        headers={"x-amz-request-id": request_id, "x-amz-id-2": host_id})
    if call.protocol in ("query", "rest-xml"):
        ns = f' xmlns="{call.xml_namespace}"' if call.xml_namespace else ""
        return xml_response(call, f"<ErrorResponse{ns}><Error><Type>Sender</Type><Code>{escape(code)}</Code>"
                                  f"<Message>{escape(message)}</Message></Error>"
                                  f"<RequestId>{call.request_id}</RequestId></ErrorResponse>", status)
    if call.protocol == "json":
        response = json_response(call, {"__type": code, "message": message}, status)
    else:
        response = json_response(call, {"message": message}, status)
    response.headers["x-amzn-ErrorType"] = code
    return response


def throttling_response(call: FakeCall) -> Response:
    if call.protocol == "ec2":
        return error_response(call, "RequestLimitExceeded", "Request limit exceeded.", 503)
    if _is_s3(call):
        return error_response(call, "SlowDown", "Please reduce your request rate.", 503)
    if call.protocol in ("query", "rest-xml"):
        return error_response(call, "Throttling", "Rate exceeded", 400)
    if call.protocol == "json":
        return error_response(call, "ThrottlingException", "Rate exceeded", 400)
    return error_response(call, "TooManyRequestsException", "Rate exceeded", 429)


def iam_action_of(call: FakeCall) -> str:
    """The IAM action of a call, as AWS names it in AccessDenied messages."""
    model = _service_model(call.service)
    if model is not None and call.operation in model.get("operations", {}):
        from botocore.model import ServiceModel

        from app.aws.guard import iam_action

        try:
            return iam_action(ServiceModel(model, call.service), call.operation)
        except Exception:  # noqa: BLE001 - the message is cosmetic; never fail the request over it
            pass
    return f"{call.service}:{call.operation}"


def access_denied_response(call: FakeCall) -> Response:
    action = iam_action_of(call)
    who = call.caller.arn if call.caller else "unknown"
    detail = (f"User: {who} is not authorized to perform: {action} "
              f"because no identity-based policy allows the {action} action")
    if call.protocol == "ec2":
        return error_response(call, "UnauthorizedOperation",
                              f"You are not authorized to perform this operation. {detail}", 403)
    if call.protocol in ("query", "rest-xml"):
        return error_response(call, "AccessDenied", detail, 403)
    return error_response(call, "AccessDeniedException", detail, 400 if call.protocol == "json" else 403)


def validation_error(call: FakeCall, problems: list[str]) -> Response:
    n = len(problems)
    message = f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems)
    return error_response(call, "ValidationError", message, 400)


# --------------------------------------------------------------------------------------------------
# Configuration and statistics
# --------------------------------------------------------------------------------------------------

_RULE_KEYS = {"service", "operation", "account_id", "region", "count", "fraction"}


@dataclass
class Rule:
    service: str
    operation: str = "*"
    account_id: str | None = None
    region: str | None = None
    count: int | None = None        # remaining matching calls to affect; None = all of them
    fraction: float = 1.0

    @classmethod
    def from_json(cls, data: Any) -> Rule:
        if not isinstance(data, dict):
            raise ValueError("a rule must be an object")
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown rule keys: {sorted(unknown)}")
        if not isinstance(data.get("service"), str) or not data["service"]:
            raise ValueError("a rule needs a service")
        for key in ("operation", "account_id", "region"):
            if key in data and not isinstance(data[key], str):
                raise ValueError(f"{key} must be a string")
        count = data.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
            raise ValueError("count must be a non-negative integer")
        fraction = data.get("fraction", 1.0)
        if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        return cls(service=data["service"], operation=data.get("operation", "*"),
                   account_id=data.get("account_id"), region=data.get("region"), count=count,
                   fraction=float(fraction))

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "account_id": self.account_id,
                "region": self.region, "count": self.count, "fraction": self.fraction}

    def matches(self, call: FakeCall) -> bool:
        return (
            self.service in ("*", call.service)
            and fnmatch.fnmatchcase(call.operation, self.operation)
            and (self.region is None or self.region == call.region)
            and (self.account_id is None or self.account_id == call.account_id)
        )

    def fire(self, rng: random.Random) -> bool:
        if self.count == 0:
            return False
        if self.fraction < 1.0 and rng.random() >= self.fraction:
            return False
        if self.count is not None:
            self.count -= 1
        return True


class FakeState:
    """Fault-injection configuration and call statistics, shared by the server's threads."""

    def __init__(self, caller_arn: str) -> None:
        self._lock = threading.Lock()
        self._initial_caller = Caller.from_arn(caller_arn)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.latency_ms = 0.0
            self.throttle: list[Rule] = []
            self.deny: list[Rule] = []
            self.caller = self._initial_caller
            self.rng = random.Random(0)
            self.calls: Counter[str] = Counter()
            self.throttled: Counter[str] = Counter()
            self.denied: Counter[str] = Counter()
            self.by_account: dict[str, Counter[str]] = defaultdict(Counter)

    def configure(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise ValueError("configuration must be a JSON object")
        unknown = set(data) - {"latency_ms", "throttle", "deny", "caller_arn", "seed"}
        if unknown:
            raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
        latency = data.get("latency_ms", 0)
        if not isinstance(latency, int | float) or isinstance(latency, bool) or not 0 <= latency <= 60_000:
            raise ValueError("latency_ms must be a number between 0 and 60000")
        throttle = [Rule.from_json(r) for r in _as_list(data.get("throttle"))] if "throttle" in data else None
        deny = [Rule.from_json(r) for r in _as_list(data.get("deny"))] if "deny" in data else None
        caller = Caller.from_arn(data["caller_arn"]) if "caller_arn" in data else None
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError("seed must be an integer")
        with self._lock:
            if "latency_ms" in data:
                self.latency_ms = float(latency)
            if throttle is not None:
                self.throttle = throttle
            if deny is not None:
                self.deny = deny
            if caller is not None:
                self.caller = caller
            if seed is not None:
                self.rng = random.Random(seed)

    def config_json(self) -> dict[str, Any]:
        with self._lock:
            return {"latency_ms": self.latency_ms, "caller_arn": self.caller.arn,
                    "throttle": [r.to_json() for r in self.throttle],
                    "deny": [r.to_json() for r in self.deny]}

    def stats_json(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self.calls.values()), "calls": dict(self.calls),
                    "throttled": dict(self.throttled), "denied": dict(self.denied),
                    "by_account": {a: dict(c) for a, c in self.by_account.items()}}

    def record(self, call: FakeCall) -> None:
        with self._lock:
            self.calls[call.key] += 1
            self.by_account[call.account_id][call.key] += 1

    def injected(self, call: FakeCall) -> str | None:
        """"throttle" or "deny" when a rule picks this call, counting it."""
        with self._lock:
            for kind, rules, counter in (("throttle", self.throttle, self.throttled),
                                         ("deny", self.deny, self.denied)):
                for rule in rules:
                    if rule.matches(call) and rule.fire(self.rng):
                        counter[call.key] += 1
                        return kind
        return None

    def count_denied(self, call: FakeCall) -> None:
        with self._lock:
            self.denied[call.key] += 1


# --------------------------------------------------------------------------------------------------
# STS: trust enforcement and the identity of unknown keys
# --------------------------------------------------------------------------------------------------

def _find_role(role_arn: str, partition: str, account_id: str) -> Any | None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    # Looking an account up would create it (and load every managed policy into it): check first.
    if account_id not in iam_backends:
        return None
    try:
        return iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except NotFoundException:
        return None


def _assume_role_problems(p: dict[str, str]) -> list[str]:
    """AWS's own input validation for AssumeRole, in its message format."""
    problems = []
    arn, name = p.get("RoleArn"), p.get("RoleSessionName")
    if arn is None:
        problems.append("Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
    elif not 20 <= len(arn) <= 2048:
        bound = "greater than or equal to 20" if len(arn) < 20 else "less than or equal to 2048"
        problems.append(f"Value '{arn}' at 'roleArn' failed to satisfy constraint: "
                        f"Member must have length {bound}")
    if name is None:
        problems.append("Value null at 'roleSessionName' failed to satisfy constraint: "
                        "Member must not be null")
    elif not 2 <= len(name) <= 64:
        bound = "greater than or equal to 2" if len(name) < 2 else "less than or equal to 64"
        problems.append(f"Value '{name}' at 'roleSessionName' failed to satisfy constraint: "
                        f"Member must have length {bound}")
    elif not _SESSION_NAME.fullmatch(name):
        problems.append(f"Value '{name}' at 'roleSessionName' failed to satisfy constraint: "
                        r"Member must satisfy regular expression pattern: [\w+=,.@-]*")
    external_id = p.get("ExternalId")
    if external_id is not None:
        if not 2 <= len(external_id) <= 1224:
            bound = "greater than or equal to 2" if len(external_id) < 2 else "less than or equal to 1224"
            problems.append(f"Value '{external_id}' at 'externalId' failed to satisfy constraint: "
                            f"Member must have length {bound}")
        elif not _EXTERNAL_ID.fullmatch(external_id):
            problems.append(f"Value '{external_id}' at 'externalId' failed to satisfy constraint: "
                            r"Member must satisfy regular expression pattern: [\w+=,.@:\/-]*")
    duration = p.get("DurationSeconds")
    if duration is not None:
        try:
            seconds = int(duration)
        except ValueError:
            problems.append(f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
                            "Member must be an integer")
        else:
            if not 900 <= seconds <= 43200:
                bound = "greater than or equal to 900" if seconds < 900 else "less than or equal to 43200"
                problems.append(f"Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: "
                                f"Member must have value {bound}")
    return problems


def enforce_assume_role(call: FakeCall, state: FakeState) -> Response | None:
    """The AWS answer to a refused AssumeRole, or None to let moto issue the credentials."""
    p = {k: v for k, v in call.params.items() if isinstance(v, str)}
    problems = _assume_role_problems(p)
    if problems:
        return validation_error(call, problems)
    role_arn = p["RoleArn"]
    m = _ROLE_ARN.fullmatch(role_arn)
    if m is None:
        return error_response(call, "ValidationError", "Request ARN is invalid", 400)
    caller = call.caller
    assert caller is not None
    actions = ["sts:AssumeRole"]
    if any(k.startswith("Tags.member.") for k in p):
        actions.append("sts:TagSession")
    if "SourceIdentity" in p:
        actions.append("sts:SetSourceIdentity")
    context = {
        "aws:PrincipalArn": caller.principal_arn,
        "aws:PrincipalAccount": caller.account_id,
        "aws:PrincipalType": caller.principal_type,
        "aws:userid": caller.user_id,
        "aws:SecureTransport": "true",
        "aws:RequestedRegion": call.region,
        "sts:RoleSessionName": p["RoleSessionName"],
    }
    if "ExternalId" in p:
        context["sts:ExternalId"] = p["ExternalId"]
    if "SourceIdentity" in p:
        context["sts:SourceIdentity"] = p["SourceIdentity"]
    role = _find_role(role_arn, m.group(1), m.group(2))
    # A missing role and an untrusted caller get the same answer, as in AWS: nothing is revealed.
    if role is None or not trust_allows(role.assume_role_policy_document, caller, actions, context):
        state.count_denied(call)
        return error_response(
            call, "AccessDenied",
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", 403,
        )
    duration = int(p.get("DurationSeconds", 3600))
    if duration > int(role.max_session_duration or 3600):
        return error_response(call, "ValidationError", "The requested DurationSeconds exceeds the "
                                                       "MaxSessionDuration set for this role.", 400)
    if caller.is_role_session and duration > _ROLE_CHAINING_LIMIT:
        return error_response(call, "ValidationError",
                              "The requested DurationSeconds exceeds the 1 hour session limit "
                              "for roles assumed by role chaining.", 400)
    return None


def caller_identity_response(call: FakeCall) -> Response:
    caller = call.caller
    assert caller is not None
    return query_response(call, f"<Arn>{escape(caller.arn)}</Arn><UserId>{escape(caller.user_id)}</UserId>"
                                f"<Account>{caller.account_id}</Account>")


# --------------------------------------------------------------------------------------------------
# Calls moto lacks
# --------------------------------------------------------------------------------------------------

_OPT_STATUS = {"opt-in-not-required": "ENABLED_BY_DEFAULT", "opted-in": "ENABLED", "not-opted-in": "DISABLED"}
_REGION_OPT_STATUSES = ("ENABLED", "ENABLING", "DISABLING", "DISABLED", "ENABLED_BY_DEFAULT")


def _partition_regions(partition: str) -> list[tuple[str, str]]:
    """(region, RegionOptStatus) of a partition, from the same table moto's DescribeRegions answers from."""
    import botocore.session
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    session = botocore.session.get_session()
    out = []
    for region in RegionsAndZonesBackend.regions:
        if session.get_partition_for_region(region.name) == partition:
            out.append((region.name, _OPT_STATUS.get(region.opt_in_status, "DISABLED")))
    return sorted(out)


def _account_scope_error(call: FakeCall) -> Response | None:
    account = call.params.get("AccountId")
    if account is not None and account != call.account_id:
        return error_response(call, "AccessDeniedException",
                              "Only the management account of an organization "
                              "can manage the Regions of another account.", 403)
    return None


@handler("account", "ListRegions")
def _list_regions(call: FakeCall) -> Response:
    refused = _account_scope_error(call)
    if refused is not None:
        return refused
    p = call.params
    wanted = p.get("RegionOptStatusContains")
    if wanted is not None and (
        not isinstance(wanted, list) or any(s not in _REGION_OPT_STATUSES for s in wanted)
    ):
        return error_response(call, "ValidationException", "RegionOptStatusContains must be a list of "
                                                           f"{', '.join(_REGION_OPT_STATUSES)}", 400)
    max_results = p.get("MaxResults")
    if max_results is not None and (not isinstance(max_results, int) or not 1 <= max_results <= 50):
        return error_response(call, "ValidationException", "MaxResults must be between 1 and 50", 400)
    start = 0
    if p.get("NextToken") is not None:
        try:
            start = int(base64.urlsafe_b64decode(str(p["NextToken"]).encode()).decode())
        except ValueError:
            return error_response(call, "ValidationException", "The NextToken is not valid", 400)
    partition = call.caller.partition if call.caller else "aws"
    regions = [(n, s) for n, s in _partition_regions(partition) if wanted is None or s in wanted]
    end = len(regions) if max_results is None else start + max_results
    page = [{"RegionName": n, "RegionOptStatus": s} for n, s in regions[start:end]]
    body: dict[str, Any] = {"Regions": page}
    if end < len(regions):
        body["NextToken"] = base64.urlsafe_b64encode(str(end).encode()).decode()
    return json_response(call, body)


@handler("account", "GetRegionOptStatus")
def _get_region_opt_status(call: FakeCall) -> Response:
    refused = _account_scope_error(call)
    if refused is not None:
        return refused
    name = call.params.get("RegionName")
    partition = call.caller.partition if call.caller else "aws"
    status = dict(_partition_regions(partition)).get(name)
    if status is None:
        return error_response(call, "ValidationException", f"Invalid region: {name}", 400)
    return json_response(call, {"RegionName": name, "RegionOptStatus": status})


DEFAULT_EBS_KMS_KEY = "alias/aws/ebs"
_ebs_default_keys: dict[tuple[str, str], str] = {}
RESET_HOOKS.append(_ebs_default_keys.clear)


@handler("ec2", "GetEbsDefaultKmsKeyId")
def _get_ebs_default_kms_key_id(call: FakeCall) -> Response:
    key = _ebs_default_keys.get((call.account_id, call.region), DEFAULT_EBS_KMS_KEY)
    return ec2_response(call, f"<kmsKeyId>{escape(key)}</kmsKeyId>")


@handler("ec2", "ModifyEbsDefaultKmsKeyId")
def _modify_ebs_default_kms_key_id(call: FakeCall) -> Response:
    key = call.params.get("KmsKeyId")
    if not key:
        return error_response(call, "MissingParameter",
                              "The request must contain the parameter KmsKeyId", 400)
    _ebs_default_keys[(call.account_id, call.region)] = key
    return ec2_response(call, f"<kmsKeyId>{escape(key)}</kmsKeyId>")


@handler("ec2", "ResetEbsDefaultKmsKeyId")
def _reset_ebs_default_kms_key_id(call: FakeCall) -> Response:
    _ebs_default_keys.pop((call.account_id, call.region), None)
    return ec2_response(call, f"<kmsKeyId>{DEFAULT_EBS_KMS_KEY}</kmsKeyId>")


# --------------------------------------------------------------------------------------------------
# The middleware
# --------------------------------------------------------------------------------------------------

class FakeAws:
    """WSGI middleware: control API, fault injection, AssumeRole enforcement, extra handlers, then moto."""

    def __init__(self, app: Callable[..., Any], *, caller_arn: str | None = None) -> None:
        self.app = app
        self.state = FakeState(caller_arn or os.environ.get(CALLER_ARN_ENV) or DEFAULT_CALLER_ARN)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(environ)(environ, start_response)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                for hook in RESET_HOOKS:
                    hook()
            return self.app(environ, start_response)
        return self._aws(environ)(environ, start_response)

    def _aws(self, environ: dict[str, Any]) -> Callable[..., Any]:
        call = identify(environ)
        call.caller = resolve_caller(call.access_key, self.state.caller)
        self.state.record(call)
        if self.state.latency_ms:
            time.sleep(self.state.latency_ms / 1000)
        injected = self.state.injected(call)
        if injected == "throttle":
            return throttling_response(call)
        if injected == "deny":
            return access_denied_response(call)
        if call.key == "sts:AssumeRole":
            refused = enforce_assume_role(call, self.state)
            if refused is not None:
                return refused
        if call.key == "sts:GetCallerIdentity" and call.caller.source == "configured":
            # moto would name an unknown key "user/moto" in its default account; the fake's caller is
            # the scanner principal the customer roles trust.
            return caller_identity_response(call)
        custom = HANDLERS.get((call.service, call.operation))
        if custom is not None:
            answer = custom(call)
            if answer is not None:
                return answer
        return self.app

    def _control(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        action = environ.get("PATH_INFO", "")[len(CONTROL_PREFIX):].strip("/")

        def answer(payload: Any, status: int = 200) -> Response:
            return Response(json.dumps(payload), status=status, content_type="application/json")

        if action == "health" and method == "GET":
            return answer({"status": "ok"})
        if action == "stats" and method == "GET":
            return answer(self.state.stats_json())
        if action == "config" and method == "GET":
            return answer(self.state.config_json())
        if action == "config" and method == "POST":
            try:
                self.state.configure(json.loads(_read_body(environ) or b"{}"))
            except ValueError as exc:
                return answer({"error": str(exc)}, 400)
            return answer(self.state.config_json())
        if action == "reset" and method == "POST":
            self.state.reset()
            return answer({"status": "reset"})
        control = CONTROL_HANDLERS.get((method, action))
        if control is not None:
            try:
                payload, status = control(json.loads(_read_body(environ) or b"{}"))
            except ValueError as exc:
                return answer({"error": str(exc)}, 400)
            return answer(payload, status)
        return answer({"error": f"no control endpoint {method} {CONTROL_PREFIX}/{action}"}, 404)


# Handlers for the security services (GuardDuty findings, Security Hub filters and standards, Access Analyzer,
# CloudTrail delivery status) live in their own module; importing it registers them.
from app.fakes import moto_gaps, security_services  # noqa: E402,F401
