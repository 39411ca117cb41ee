"""IAM collectors: the credential report, the account authorization details, the password policy, virtual MFA
devices, server certificates (global) and IAM Access Analyzer analyzers (per region).

The whole IAM picture costs a handful of calls: the credential report answers every question about users'
passwords, MFA and access keys, and GetAccountAuthorizationDetails returns users, groups, roles and customer
managed policies with their documents. No per-user call is made.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from app.scanners.base import (
    GLOBAL,
    AwsCallFailed,
    CollectionError,
    Collector,
    CollectorContext,
    Resource,
    register,
)

ROOT_ROW = "<root_account>"
# GenerateCredentialReport answers STARTED/INPROGRESS until the report is ready (seconds, in large accounts a
# minute). Poll with a growing delay, but never longer than this: a scan must end.
REPORT_MAX_WAIT_SECONDS = 90.0
REPORT_POLL_DELAYS = (0.25, 0.5, 1.0, 2.0, 3.0)
# GetAccountAuthorizationDetails accepts up to 1000 items per page; fewer pages, fewer round trips.
AUTH_DETAILS_PAGE_SIZE = 1000
AUTH_DETAILS_FILTERS = ("User", "Group", "Role", "LocalManagedPolicy")


# --------------------------------------------------------------------------------------------------
# Inventory types
# --------------------------------------------------------------------------------------------------

class AccessKeyState(BaseModel):
    slot: int                       # 1 or 2, as the credential report numbers them
    active: bool
    last_rotated: datetime | None   # creation time of the current key in that slot
    last_used: datetime | None      # None: never used


class IamUserCredentials(Resource):
    """One user's row of the credential report."""

    resource_type = "AwsIamUser"
    created: datetime | None = None
    password_enabled: bool
    password_last_used: datetime | None = None
    password_last_changed: datetime | None = None
    mfa_active: bool
    access_keys: list[AccessKeyState] = []

    @property
    def active_keys(self) -> list[AccessKeyState]:
        return [k for k in self.access_keys if k.active]


class IamRootAccount(Resource):
    """The <root_account> row of the credential report."""

    resource_type = "AwsAccount"
    password_last_used: datetime | None = None
    mfa_active: bool
    access_keys: list[AccessKeyState] = []
    signing_certificates_active: int = 0

    @property
    def active_keys(self) -> list[AccessKeyState]:
        return [k for k in self.access_keys if k.active]


class AttachedPolicy(BaseModel):
    name: str
    arn: str


class InlinePolicy(BaseModel):
    name: str
    document: dict[str, Any] | None   # None: the document could not be parsed


class IamUser(Resource):
    resource_type = "AwsIamUser"
    path: str = "/"
    created: datetime | None = None
    groups: list[str] = []
    attached_policies: list[AttachedPolicy] = []
    inline_policies: list[InlinePolicy] = []
    permissions_boundary: str | None = None


class IamGroup(Resource):
    resource_type = "AwsIamGroup"
    path: str = "/"
    attached_policies: list[AttachedPolicy] = []
    inline_policies: list[InlinePolicy] = []


class IamRole(Resource):
    resource_type = "AwsIamRole"
    path: str = "/"
    created: datetime | None = None
    trust_policy: dict[str, Any] | None = None
    attached_policies: list[AttachedPolicy] = []
    inline_policies: list[InlinePolicy] = []
    last_used: datetime | None = None
    last_used_region: str | None = None
    instance_profiles: list[str] = []
    permissions_boundary: str | None = None

    @property
    def account_id(self) -> str:
        return (self.arn or "").split(":")[4] if self.arn and self.arn.count(":") >= 5 else ""

    @property
    def service_linked(self) -> bool:
        # Service-linked roles live under /aws-service-role/; AWS creates, uses and deletes them.
        return self.path.startswith("/aws-service-role/")


class IamManagedPolicy(Resource):
    """A customer managed policy and its default version's document."""

    resource_type = "AwsIamPolicy"
    path: str = "/"
    default_version_id: str | None = None
    document: dict[str, Any] | None = None
    attachment_count: int = 0


class IamPasswordPolicy(Resource):
    """The account password policy; `configured` is False when the account has none (NoSuchEntity)."""

    resource_type = "AwsAccount"
    configured: bool
    minimum_length: int | None = None
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase: bool = False
    require_lowercase: bool = False
    expire_passwords: bool = False
    max_age_days: int | None = None
    reuse_prevention: int | None = None
    hard_expiry: bool = False


class IamVirtualMfaDevice(Resource):
    """An assigned virtual MFA device: its serial and to whom it belongs (never its seed or QR code)."""

    resource_type = "AwsIamVirtualMfaDevice"
    user_arn: str | None = None
    enabled: datetime | None = None

    @property
    def belongs_to_root(self) -> bool:
        if self.user_arn:
            return self.user_arn.endswith(":root")
        # Without an owner in the answer, the serial AWS gave root devices before they could be named.
        return self.resource_id.endswith(":mfa/root-account-mfa-device")


class IamServerCertificate(Resource):
    resource_type = "AwsIamServerCertificate"
    name: str
    expiration: datetime | None = None
    uploaded: datetime | None = None


class AccessAnalyzerSummary(BaseModel):
    name: str
    arn: str
    type: str      # ACCOUNT | ORGANIZATION | *_UNUSED_ACCESS | *_INTERNAL_ACCESS
    status: str    # ACTIVE | CREATING | DISABLED | FAILED


class AccessAnalyzerRegion(Resource):
    """The IAM Access Analyzer analyzers of one region (possibly none)."""

    resource_type = "AwsAccessAnalyzerRegion"
    analyzers: list[AccessAnalyzerSummary] = []


# --------------------------------------------------------------------------------------------------
# Parsing helpers (shape only; no evaluation)
# --------------------------------------------------------------------------------------------------

def policy_document(raw: Any) -> dict[str, Any] | None:
    """A policy document as a dict: boto3 URL-decodes documents into dicts, but a string (JSON, possibly
    URL-encoded) is accepted too."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return None
    for text in (raw, unquote(raw)):
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        return parsed if isinstance(parsed, dict) else None
    return None


def report_time(value: str | None) -> datetime | None:
    """A credential report timestamp; N/A, no_information and not_supported mean "none"."""
    if not value or value in ("N/A", "no_information", "not_supported"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _access_keys(row: dict[str, str]) -> list[AccessKeyState]:
    return [AccessKeyState(slot=n, active=_flag(row.get(f"access_key_{n}_active")),
                           last_rotated=report_time(row.get(f"access_key_{n}_last_rotated")),
                           last_used=report_time(row.get(f"access_key_{n}_last_used_date")))
            for n in (1, 2)]


def parse_credential_report(content: bytes | str) -> list[dict[str, str]]:
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    return list(csv.DictReader(io.StringIO(text)))


def credential_report_resources(content: bytes | str, account_id: str, root_arn: str
                                ) -> tuple[IamRootAccount | None, list[IamUserCredentials]]:
    """The root user (None when the report has no <root_account> row) and the users of a credential report."""
    root = None
    users = []
    for row in parse_credential_report(content):
        name = row.get("user", "")
        if name == ROOT_ROW:
            root = IamRootAccount(
                region=GLOBAL, resource_id=account_id, arn=row.get("arn") or root_arn,
                password_last_used=report_time(row.get("password_last_used")),
                mfa_active=_flag(row.get("mfa_active")), access_keys=_access_keys(row),
                signing_certificates_active=sum(_flag(row.get(f"cert_{n}_active")) for n in (1, 2)))
            continue
        users.append(IamUserCredentials(
            region=GLOBAL, resource_id=name, arn=row.get("arn"), created=report_time(row.get("user_creation_time")),
            password_enabled=_flag(row.get("password_enabled")),
            password_last_used=report_time(row.get("password_last_used")),
            password_last_changed=report_time(row.get("password_last_changed")),
            mfa_active=_flag(row.get("mfa_active")), access_keys=_access_keys(row)))
    return root, users


def _attached(items: list[dict[str, Any]] | None) -> list[AttachedPolicy]:
    return [AttachedPolicy(name=p.get("PolicyName", ""), arn=p.get("PolicyArn", "")) for p in items or []]


def _inline(items: list[dict[str, Any]] | None) -> list[InlinePolicy]:
    return [InlinePolicy(name=p.get("PolicyName", ""), document=policy_document(p.get("PolicyDocument")))
            for p in items or []]


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or [] if "Key" in t}


def _boundary(detail: dict[str, Any]) -> str | None:
    return (detail.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")


# --------------------------------------------------------------------------------------------------
# Collectors
# --------------------------------------------------------------------------------------------------

@register
class IamCredentialReportCollector(Collector):
    """Users' and the root user's passwords, MFA and access keys, from one CSV report.

    AWS regenerates the report at most every 4 hours; a fresher one is returned as is, so very recent changes
    can be missing from it.
    """

    name = "iam_credential_report"
    service = "iam"
    scope = "global"
    actions = frozenset({"iam:GenerateCredentialReport", "iam:GetCredentialReport"})

    async def collect(self, ctx: CollectorContext) -> None:
        content = await self._report(ctx)
        root, users = credential_report_resources(content, ctx.account_id, ctx.arn("iam", "root"))
        for user in users:
            ctx.add(user)
        if root is not None:
            ctx.add(root)
        else:
            # Without the root row nothing is known about the root user: its checks must say so (ERROR),
            # and the scan is partial. Scoped to the root row so that user checks still evaluate.
            ctx.scan.inventory.record_error(CollectionError(
                service="iam", action="iam:GetCredentialReport", region=GLOBAL, resource_id=ROOT_ROW,
                code="RootRowMissing", message="The credential report has no <root_account> row."))

    async def _report(self, ctx: CollectorContext) -> bytes:
        deadline = time.monotonic() + REPORT_MAX_WAIT_SECONDS
        attempt = 0
        while True:
            state = ((await ctx.call("iam", "GenerateCredentialReport")) or {}).get("State")
            if state == "COMPLETE":
                answer = await ctx.call("iam", "GetCredentialReport",
                                        ignore_codes=("ReportInProgress", "ReportNotPresent", "ReportExpired"))
                if answer is not None:
                    return answer.get("Content") or b""
            delay = REPORT_POLL_DELAYS[min(attempt, len(REPORT_POLL_DELAYS) - 1)]
            if time.monotonic() + delay > deadline:
                error = CollectionError(
                    service="iam", action="iam:GetCredentialReport", region=GLOBAL, code="ReportNotReady",
                    message=f"The credential report was not ready after {REPORT_MAX_WAIT_SECONDS:.0f} seconds "
                            f"(last state: {state}).")
                ctx.scan.inventory.record_error(error)
                raise AwsCallFailed(error)
            attempt += 1
            await asyncio.sleep(delay)


@register
class IamAuthorizationDetailsCollector(Collector):
    """Users, groups, roles and customer managed policies, with their policy documents and attachments.

    AWS managed policies are left out (Filter): their documents are public and large, and checks only
    need to know which of them are attached, which the entities' own lists say.
    """

    name = "iam_authorization_details"
    service = "iam"
    scope = "global"
    actions = frozenset({"iam:GetAccountAuthorizationDetails"})

    async def collect(self, ctx: CollectorContext) -> None:
        # One pagination per entity type, concurrently: four short marker chains instead of one long one.
        answers = await asyncio.gather(*(self._pages(ctx, kind) for kind in AUTH_DETAILS_FILTERS),
                                       return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        merged: dict[str, list[dict[str, Any]]] = {}
        for answer in answers:
            for key, items in answer.items():  # type: ignore[union-attr]
                merged.setdefault(key, []).extend(items)
        for user in merged.get("UserDetailList", []):
            ctx.add(IamUser(
                region=GLOBAL, resource_id=user["UserName"], arn=user.get("Arn"), path=user.get("Path", "/"),
                created=user.get("CreateDate"), groups=list(user.get("GroupList") or []),
                attached_policies=_attached(user.get("AttachedManagedPolicies")),
                inline_policies=_inline(user.get("UserPolicyList")), permissions_boundary=_boundary(user),
                tags=_tags(user.get("Tags"))))
        for group in merged.get("GroupDetailList", []):
            ctx.add(IamGroup(
                region=GLOBAL, resource_id=group["GroupName"], arn=group.get("Arn"), path=group.get("Path", "/"),
                attached_policies=_attached(group.get("AttachedManagedPolicies")),
                inline_policies=_inline(group.get("GroupPolicyList"))))
        for role in merged.get("RoleDetailList", []):
            last = role.get("RoleLastUsed") or {}
            ctx.add(IamRole(
                region=GLOBAL, resource_id=role["RoleName"], arn=role.get("Arn"), path=role.get("Path", "/"),
                created=role.get("CreateDate"), trust_policy=policy_document(role.get("AssumeRolePolicyDocument")),
                attached_policies=_attached(role.get("AttachedManagedPolicies")),
                inline_policies=_inline(role.get("RolePolicyList")),
                last_used=last.get("LastUsedDate"), last_used_region=last.get("Region"),
                instance_profiles=[p.get("InstanceProfileName", "") for p in role.get("InstanceProfileList") or []],
                permissions_boundary=_boundary(role), tags=_tags(role.get("Tags"))))
        for policy in merged.get("Policies", []):
            default = policy.get("DefaultVersionId")
            versions = policy.get("PolicyVersionList") or []
            version = next((v for v in versions if v.get("IsDefaultVersion")), None) or \
                next((v for v in versions if v.get("VersionId") == default), None)
            ctx.add(IamManagedPolicy(
                region=GLOBAL, resource_id=policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1],
                arn=policy["Arn"], path=policy.get("Path", "/"), default_version_id=default,
                document=policy_document((version or {}).get("Document")),
                attachment_count=int(policy.get("AttachmentCount") or 0)))

    async def _pages(self, ctx: CollectorContext, kind: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        async for page in ctx.pages("iam", "GetAccountAuthorizationDetails", Filter=[kind],
                                    PaginationConfig={"PageSize": AUTH_DETAILS_PAGE_SIZE}):
            for key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
                out.setdefault(key, []).extend(page.get(key) or [])
        return out


@register
class IamPasswordPolicyCollector(Collector):
    name = "iam_password_policy"
    service = "iam"
    scope = "global"
    actions = frozenset({"iam:GetAccountPasswordPolicy"})

    async def collect(self, ctx: CollectorContext) -> None:
        # NoSuchEntity is the answer of an account that never set a policy: data, not an error.
        answer = await ctx.call("iam", "GetAccountPasswordPolicy", ignore_codes=("NoSuchEntity",))
        common = {"region": GLOBAL, "resource_id": ctx.account_id, "arn": ctx.arn("iam", "root")}
        if answer is None:
            ctx.add(IamPasswordPolicy(configured=False, **common))
            return
        p = answer.get("PasswordPolicy") or {}
        ctx.add(IamPasswordPolicy(
            configured=True, minimum_length=p.get("MinimumPasswordLength"),
            require_symbols=bool(p.get("RequireSymbols")), require_numbers=bool(p.get("RequireNumbers")),
            require_uppercase=bool(p.get("RequireUppercaseCharacters")),
            require_lowercase=bool(p.get("RequireLowercaseCharacters")),
            expire_passwords=bool(p.get("ExpirePasswords")), max_age_days=p.get("MaxPasswordAge"),
            reuse_prevention=p.get("PasswordReusePrevention"), hard_expiry=bool(p.get("HardExpiry")),
            **common))


@register
class IamVirtualMfaCollector(Collector):
    name = "iam_virtual_mfa_devices"
    service = "iam"
    scope = "global"
    actions = frozenset({"iam:ListVirtualMFADevices"})

    async def collect(self, ctx: CollectorContext) -> None:
        devices = await ctx.collect_all("iam", "ListVirtualMFADevices", "VirtualMFADevices",
                                        AssignmentStatus="Assigned")
        for device in devices:
            # Keep the serial and the owner only: some implementations echo the seed and QR code.
            serial = device["SerialNumber"]
            ctx.add(IamVirtualMfaDevice(region=GLOBAL, resource_id=serial, arn=serial,
                                        user_arn=(device.get("User") or {}).get("Arn"),
                                        enabled=device.get("EnableDate")))


@register
class IamServerCertificateCollector(Collector):
    name = "iam_server_certificates"
    service = "iam"
    scope = "global"
    actions = frozenset({"iam:ListServerCertificates"})

    async def collect(self, ctx: CollectorContext) -> None:
        for cert in await ctx.collect_all("iam", "ListServerCertificates", "ServerCertificateMetadataList"):
            ctx.add(IamServerCertificate(
                region=GLOBAL, resource_id=cert["ServerCertificateName"], arn=cert.get("Arn"),
                name=cert["ServerCertificateName"], expiration=cert.get("Expiration"),
                uploaded=cert.get("UploadDate")))


@register
class AccessAnalyzerCollector(Collector):
    name = "accessanalyzer_analyzers"
    service = "accessanalyzer"
    scope = "regional"
    actions = frozenset({"access-analyzer:ListAnalyzers"})

    async def collect(self, ctx: CollectorContext) -> None:
        analyzers = await ctx.collect_all("accessanalyzer", "ListAnalyzers", "analyzers")
        ctx.add(AccessAnalyzerRegion(
            region=ctx.region, resource_id=f"{ctx.account_id}/{ctx.region}/access-analyzer",
            analyzers=[AccessAnalyzerSummary(name=a.get("name", ""), arn=a.get("arn", ""),
                                             type=a.get("type", ""), status=a.get("status", ""))
                       for a in analyzers]))
