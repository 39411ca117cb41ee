"""CloudWatch Logs filter patterns, evaluated against sample CloudTrail records.

A CIS 4.x metric filter is judged by what it matches, not by how it is written: the pattern is parsed
(JSON patterns `{ $.a = "x" && ($.b != y || $.c NOT EXISTS) }`, and plain term patterns) and run against
sample CloudTrail records. It is good enough when it matches every record the control is about and none
of a few ordinary records (a pattern that matches everything would alarm all day). Whitespace, quoting,
operand order, extra alternatives and extra exclusions therefore make no difference.

Semantics follow the CloudWatch Logs documentation: `*` is a wildcard in string values, `%...%` a regular
expression, `&&` binds tighter than `||`, string comparison is case-sensitive, and a comparison on a
property the record does not have is false (for `!=` too); use `NOT EXISTS` / `IS NULL` for absence.
Space-delimited (`[a, b, ...]`) patterns do not apply to JSON records and never match here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Record = dict[str, Any]
Matcher = Callable[[Record], bool]


class PatternError(ValueError):
    """A filter pattern this module cannot read (CloudWatch may or may not accept it)."""


# --------------------------------------------------------------------------------------------------
# JSON patterns
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str   # ( ) && || op sel word str regex
    text: str


_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_WORD_END = set(" \t\r\n()&|}=!<>")


def _tokenize(body: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(_Token(c, c))
            i += 1
        elif body.startswith("&&", i) or body.startswith("||", i):
            tokens.append(_Token(body[i:i + 2], body[i:i + 2]))
            i += 2
        elif c in "=!<>":
            op = next((o for o in _OPERATORS if body.startswith(o, i)), None)
            if op is None:
                raise PatternError(f"unexpected {c!r} at {i}")
            tokens.append(_Token("op", op))
            i += len(op)
        elif c == '"':
            j, out = i + 1, []
            while j < n and body[j] != '"':
                if body[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(body[j])
                j += 1
            if j >= n:
                raise PatternError("unterminated string")
            tokens.append(_Token("str", "".join(out)))
            i = j + 1
        elif c == "%":
            j = body.find("%", i + 1)
            if j < 0:
                raise PatternError("unterminated regular expression")
            tokens.append(_Token("regex", body[i + 1:j]))
            i = j + 1
        else:
            j = i
            while j < n and body[j] not in _WORD_END:
                j += 1
            word = body[i:j]
            tokens.append(_Token("sel" if word.startswith("$") else "word", word))
            i = j
    return tokens


_SELECTOR_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]")


def _selector(text: str) -> tuple[str | int, ...]:
    if not text.startswith("$"):
        raise PatternError(f"not a selector: {text}")
    parts: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _SELECTOR_PART.match(text, pos)
        if m is None:
            raise PatternError(f"cannot read selector {text}")
        if m.group(1) is not None:
            parts.append(m.group(1))
        else:
            parts.append(-1 if m.group(2) == "*" else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise PatternError("a selector needs a property")
    return tuple(parts)


def _values(record: Any, path: tuple[str | int, ...]) -> list[Any]:
    """Every value the selector reaches ([*] fans out); an empty list when the property is absent."""
    current: list[Any] = [record]
    for part in path:
        nxt: list[Any] = []
        for value in current:
            if isinstance(part, str) and isinstance(value, dict) and part in value:
                nxt.append(value[part])
            elif isinstance(part, int) and isinstance(value, list):
                if part == -1:
                    nxt.extend(value)
                elif 0 <= part < len(value):
                    nxt.append(value[part])
        current = nxt
    return current


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@lru_cache(maxsize=512)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern), re.DOTALL)


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _comparison(path: tuple[str | int, ...], op: str, kind: str, operand: str) -> Matcher:
    numeric = _number(operand) if kind == "word" else None
    if op in ("<", ">", "<=", ">=") and numeric is None:
        raise PatternError(f"{op} needs a number, not {operand!r}")
    regex = re.compile(operand) if kind == "regex" else None

    def equal(value: Any) -> bool:
        if regex is not None:
            text = _as_text(value)
            return text is not None and regex.fullmatch(text) is not None
        if numeric is not None and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) == numeric
        text = _as_text(value)
        return text is not None and _wildcard(operand).fullmatch(text) is not None

    def compare(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert numeric is not None
        return {"<": value < numeric, ">": value > numeric, "<=": value <= numeric,
                ">=": value >= numeric}[op]

    def match(record: Record) -> bool:
        values = [v for v in _values(record, path) if v is not None]
        if not values:
            return False
        if op == "=":
            return any(equal(v) for v in values)
        if op == "!=":
            return not any(equal(v) for v in values)
        return any(compare(v) for v in values)

    return match


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (kind is not None and token.kind != kind):
            raise PatternError(f"expected {kind or 'more'} at token {self.pos}")
        self.pos += 1
        return token

    def parse(self) -> Matcher:
        matcher = self.or_expr()
        if self.peek() is not None:
            raise PatternError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return matcher

    def or_expr(self) -> Matcher:
        parts = [self.and_expr()]
        while (t := self.peek()) is not None and t.kind == "||":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda r, ps=tuple(parts): any(p(r) for p in ps))

    def and_expr(self) -> Matcher:
        parts = [self.unary()]
        while (t := self.peek()) is not None and t.kind == "&&":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r, ps=tuple(parts): all(p(r) for p in ps))

    def unary(self) -> Matcher:
        token = self.peek()
        if token is not None and token.kind == "(":
            self.take()
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Matcher:
        path = _selector(self.take("sel").text)
        token = self.take()
        if token.kind == "op":
            operand = self.take()
            if operand.kind not in ("str", "word", "regex"):
                raise PatternError(f"expected a value after {token.text}")
            return _comparison(path, token.text, operand.kind, operand.text)
        word = token.text.upper() if token.kind == "word" else ""
        if word == "IS":
            what = self.take("word").text.upper()
            if what == "NULL":
                return lambda r: any(v is None for v in _values(r, path))
            if what in ("TRUE", "FALSE"):
                wanted = what == "TRUE"
                return lambda r: any(v is wanted for v in _values(r, path))
            raise PatternError(f"IS {what} is not a test")
        if word == "NOT":
            if self.take("word").text.upper() != "EXISTS":
                raise PatternError("NOT must be followed by EXISTS")
            return lambda r: not _values(r, path)
        if word == "EXISTS":
            return lambda r: bool(_values(r, path))
        raise PatternError(f"unexpected {token.text!r} after a selector")


# --------------------------------------------------------------------------------------------------
# Term patterns (not JSON): every term present, one of the ?terms, none of the -terms
# --------------------------------------------------------------------------------------------------

_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|(\S+))')


def _terms(pattern: str) -> Matcher:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    for m in _TERM.finditer(pattern):
        prefix, quoted, bare = m.groups()
        term = quoted.replace('\\"', '"') if quoted is not None else bare
        {"?": optional, "-": excluded}.get(prefix, required).append(term)

    def match(record: Record) -> bool:
        text = json.dumps(record, separators=(",", ":"))
        return (all(t in text for t in required)
                and (not optional or any(t in text for t in optional))
                and not any(t in text for t in excluded))

    return match


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Matcher:
    """A predicate over one CloudTrail record; raises PatternError for what cannot be read."""
    text = pattern.strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise PatternError("a JSON pattern must end with }")
        tokens = _tokenize(text[1:-1])
        if not tokens:
            raise PatternError("empty JSON pattern")
        return _Parser(tokens).parse()
    if text.startswith("["):
        raise PatternError("space-delimited patterns do not apply to CloudTrail's JSON records")
    if text.startswith("%") and text.endswith("%") and len(text) > 1:
        regex = re.compile(text[1:-1])
        return lambda r: regex.search(json.dumps(r, separators=(",", ":"))) is not None
    return _terms(text)  # the empty pattern matches every record, as in CloudWatch Logs


# --------------------------------------------------------------------------------------------------
# Sample CloudTrail records and the CIS AWS Foundations 3.0 section 4 controls
# --------------------------------------------------------------------------------------------------

_ACCOUNT = "111122223333"


def record(event_name: str, event_source: str, **overrides: Any) -> Record:
    """A CloudTrail management event as delivered to CloudWatch Logs, from an IAM user unless overridden."""
    base: Record = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEEXAMPLE01",
                         "arn": f"arn:aws:iam::{_ACCOUNT}:user/jane", "accountId": _ACCOUNT,
                         "accessKeyId": "AKIAEXAMPLEEXAMPLE01", "userName": "jane"},
        "eventTime": "2024-05-04T10:11:12Z",
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "0b5e5a1c-7f5e-4b53-9c1e-1f3e1c3e9a10",
        "eventID": "5d7b8a9c-2f4e-4c1d-8e0a-9b1c2d3e4f50",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": _ACCOUNT,
        "eventCategory": "Management",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


_ROOT = {"type": "Root", "principalId": _ACCOUNT, "arn": f"arn:aws:iam::{_ACCOUNT}:root",
         "accountId": _ACCOUNT, "accessKeyId": "ASIAEXAMPLEEXAMPLE02"}


def _console_login(*, mfa: bool, success: bool, identity: dict[str, Any] | None = None) -> Record:
    login = record("ConsoleLogin", "signin.amazonaws.com", eventType="AwsConsoleSignIn",
                   readOnly=False, responseElements={"ConsoleLogin": "Success" if success else "Failure"},
                   additionalEventData={"LoginTo": "https://console.aws.amazon.com/console/home",
                                        "MobileVersion": "No", "MFAUsed": "Yes" if mfa else "No"})
    login["userIdentity"] = identity or {"type": "IAMUser", "principalId": "AIDAEXAMPLEEXAMPLE01",
                                         "arn": f"arn:aws:iam::{_ACCOUNT}:user/jane", "accountId": _ACCOUNT,
                                         "userName": "jane"}
    if not success:
        login["errorMessage"] = "Failed authentication"
    return login


# Ordinary activity no CIS alarm should fire on: a pattern matching any of these matches (nearly) everything.
ORDINARY_RECORDS: tuple[tuple[str, Record], ...] = (
    ("a successful read-only EC2 DescribeInstances call", record(
        "DescribeInstances", "ec2.amazonaws.com", readOnly=True)),
    ("a successful S3 ListBuckets call by an assumed role", record(
        "ListBuckets", "s3.amazonaws.com", readOnly=True,
        userIdentity={"type": "AssumedRole", "arn": f"arn:aws:sts::{_ACCOUNT}:assumed-role/app/i-0abc",
                      "accessKeyId": "ASIAEXAMPLEEXAMPLE03", "userName": None})),
    ("a successful GetObject data event", record(
        "GetObject", "s3.amazonaws.com", readOnly=True, managementEvent=False, eventCategory="Data")),
    # Read-only calls to each monitored service: "every call to service X" is not "changes to X".
    *((f"a read-only {label} call", record(name, source, readOnly=True))
      for label, name, source in (("IAM ListUsers", "ListUsers", "iam.amazonaws.com"),
                                  ("KMS Decrypt", "Decrypt", "kms.amazonaws.com"),
                                  ("CloudTrail DescribeTrails", "DescribeTrails", "cloudtrail.amazonaws.com"),
                                  ("AWS Config DescribeConfigurationRecorders", "DescribeConfigurationRecorders",
                                   "config.amazonaws.com"),
                                  ("Organizations ListAccounts", "ListAccounts", "organizations.amazonaws.com"))),
)


@dataclass(frozen=True)
class MonitoredActivity:
    """One CIS 4.x control: the records its metric filter must match (and those it may miss)."""

    check_id: str
    cis: str
    activity: str                              # "unauthorized API calls", used in messages
    required: tuple[tuple[str, Record], ...]   # (what the record is, the record)
    optional: tuple[tuple[str, Record], ...] = ()
    reference_pattern: str = ""                # the benchmark's pattern, shown in remediation


def _events(source: str, names: tuple[str, ...]) -> tuple[tuple[str, Record], ...]:
    return tuple((f"{name} ({source})", record(name, source)) for name in names)


def _cis_pattern(source: str | None, names: tuple[str, ...]) -> str:
    alternatives = " || ".join(f"($.eventName = {n})" for n in names)
    if source is None:
        return f"{{ {alternatives} }}"
    return f"{{ ($.eventSource = {source}) && ({alternatives}) }}"


_IAM_POLICY_EVENTS = (
    "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
    "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
    "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy", "AttachGroupPolicy",
    "DetachGroupPolicy")
_TRAIL_EVENTS = ("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")
_KMS_EVENTS = ("DisableKey", "ScheduleKeyDeletion")
_S3_POLICY_EVENTS = (
    "PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle", "PutBucketReplication",
    "DeleteBucketPolicy", "DeleteBucketCors", "DeleteBucketLifecycle", "DeleteBucketReplication")
_CONFIG_EVENTS = ("StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
                  "PutConfigurationRecorder")
_SG_EVENTS = ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
              "RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup")
_NACL_EVENTS = ("CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
                "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation")
_GATEWAY_EVENTS = ("CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway",
                   "CreateInternetGateway", "DeleteInternetGateway", "DetachInternetGateway")
_ROUTE_EVENTS = ("CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation",
                 "DeleteRouteTable", "DeleteRoute", "DisassociateRouteTable")
_VPC_EVENTS = ("CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
               "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection")
# EC2-Classic and ClassicLink were retired in 2022: the benchmark still lists these, a filter may omit them.
_CLASSIC_LINK_EVENTS = ("AttachClassicLinkVpc", "DetachClassicLinkVpc", "DisableVpcClassicLink",
                        "EnableVpcClassicLink")
_ORGANIZATIONS_EVENTS = (
    "AcceptHandshake", "AttachPolicy", "CreateAccount", "CreateOrganizationalUnit", "CreatePolicy",
    "DeclineHandshake", "DeleteOrganization", "DeleteOrganizationalUnit", "DeletePolicy", "DetachPolicy",
    "DisablePolicyType", "EnablePolicyType", "InviteAccountToOrganization", "LeaveOrganization", "MoveAccount",
    "RemoveAccountFromOrganization", "UpdatePolicy", "UpdateOrganizationalUnit")

MONITORED: tuple[MonitoredActivity, ...] = (
    MonitoredActivity(
        "cloudwatch_unauthorized_api_calls_alarm", "4.1", "unauthorized API calls",
        (("an EC2 call refused with Client.UnauthorizedOperation", record(
            "RunInstances", "ec2.amazonaws.com", errorCode="Client.UnauthorizedOperation",
            errorMessage="You are not authorized to perform this operation.")),
         ("an S3 call refused with AccessDenied", record(
             "GetBucketPolicy", "s3.amazonaws.com", readOnly=True, errorCode="AccessDenied",
             errorMessage="Access Denied")),
         ("a Lambda call refused with AccessDeniedException", record(
             "GetFunction", "lambda.amazonaws.com", readOnly=True, errorCode="AccessDeniedException",
             errorMessage="User is not authorized to perform: lambda:GetFunction"))),
        reference_pattern='{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && '
                          '($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }'),
    MonitoredActivity(
        "cloudwatch_console_login_without_mfa_alarm", "4.2", "console sign-ins without MFA",
        (("a successful console sign-in by an IAM user without MFA", _console_login(mfa=False, success=True)),),
        reference_pattern='{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }'),
    MonitoredActivity(
        "cloudwatch_root_usage_alarm", "4.3", "use of the root user",
        (("an API call made with root credentials", record(
            "CreateAccessKey", "iam.amazonaws.com", userIdentity=_ROOT)),
         ("a console sign-in as root", _console_login(mfa=True, success=True, identity=dict(_ROOT)))),
        reference_pattern='{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
                          '$.eventType != "AwsServiceEvent" }'),
    MonitoredActivity(
        "cloudwatch_iam_policy_changes_alarm", "4.4", "IAM policy changes",
        _events("iam.amazonaws.com", _IAM_POLICY_EVENTS),
        reference_pattern=_cis_pattern("iam.amazonaws.com", _IAM_POLICY_EVENTS)),
    MonitoredActivity(
        "cloudwatch_cloudtrail_changes_alarm", "4.5", "CloudTrail configuration changes",
        _events("cloudtrail.amazonaws.com", _TRAIL_EVENTS),
        reference_pattern=_cis_pattern(None, _TRAIL_EVENTS)),
    MonitoredActivity(
        "cloudwatch_console_auth_failures_alarm", "4.6", "console authentication failures",
        (("a failed console sign-in", _console_login(mfa=False, success=False)),
         ("a console sign-in that failed at the MFA step", _console_login(mfa=True, success=False))),
        reference_pattern='{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }'),
    MonitoredActivity(
        "cloudwatch_cmk_disable_or_deletion_alarm", "4.7", "disabling or scheduled deletion of KMS keys",
        _events("kms.amazonaws.com", _KMS_EVENTS),
        reference_pattern=_cis_pattern("kms.amazonaws.com", _KMS_EVENTS)),
    MonitoredActivity(
        "cloudwatch_s3_bucket_policy_changes_alarm", "4.8", "S3 bucket policy changes",
        _events("s3.amazonaws.com", _S3_POLICY_EVENTS),
        reference_pattern=_cis_pattern("s3.amazonaws.com", _S3_POLICY_EVENTS)),
    MonitoredActivity(
        "cloudwatch_config_changes_alarm", "4.9", "AWS Config configuration changes",
        _events("config.amazonaws.com", _CONFIG_EVENTS),
        reference_pattern=_cis_pattern("config.amazonaws.com", _CONFIG_EVENTS)),
    MonitoredActivity(
        "cloudwatch_security_group_changes_alarm", "4.10", "security group changes",
        _events("ec2.amazonaws.com", _SG_EVENTS), reference_pattern=_cis_pattern(None, _SG_EVENTS)),
    MonitoredActivity(
        "cloudwatch_nacl_changes_alarm", "4.11", "network ACL changes",
        _events("ec2.amazonaws.com", _NACL_EVENTS), reference_pattern=_cis_pattern(None, _NACL_EVENTS)),
    MonitoredActivity(
        "cloudwatch_network_gateway_changes_alarm", "4.12", "network gateway changes",
        _events("ec2.amazonaws.com", _GATEWAY_EVENTS), reference_pattern=_cis_pattern(None, _GATEWAY_EVENTS)),
    MonitoredActivity(
        "cloudwatch_route_table_changes_alarm", "4.13", "route table changes",
        _events("ec2.amazonaws.com", _ROUTE_EVENTS),
        reference_pattern=_cis_pattern("ec2.amazonaws.com", _ROUTE_EVENTS)),
    MonitoredActivity(
        "cloudwatch_vpc_changes_alarm", "4.14", "VPC changes",
        _events("ec2.amazonaws.com", _VPC_EVENTS), optional=_events("ec2.amazonaws.com", _CLASSIC_LINK_EVENTS),
        reference_pattern=_cis_pattern(None, _VPC_EVENTS + _CLASSIC_LINK_EVENTS)),
    MonitoredActivity(
        "cloudwatch_organizations_changes_alarm", "4.15", "AWS Organizations changes",
        _events("organizations.amazonaws.com", _ORGANIZATIONS_EVENTS),
        reference_pattern=_cis_pattern("organizations.amazonaws.com", _ORGANIZATIONS_EVENTS)),
)
MONITORED_BY_CHECK = {m.check_id: m for m in MONITORED}


@dataclass(frozen=True)
class Verdict:
    """Whether a pattern covers an activity; `reason` says why not."""

    ok: bool
    reason: str = ""


def covers(pattern: str, activity: MonitoredActivity) -> Verdict:
    try:
        match = compile_pattern(pattern)
    except (PatternError, re.error) as exc:
        return Verdict(False, f"the pattern cannot be read ({exc})")
    missed = [what for what, rec in activity.required if not match(rec)]
    if missed:
        shown = ", ".join(missed[:3]) + (f" and {len(missed) - 3} more" if len(missed) > 3 else "")
        return Verdict(False, f"it does not match {shown}")
    noisy = [what for what, rec in ORDINARY_RECORDS if match(rec)]
    if noisy:
        return Verdict(False, f"it also matches ordinary activity ({noisy[0]}), so its alarm would fire all the time")
    return Verdict(True)
