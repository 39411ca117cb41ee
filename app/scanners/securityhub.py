"""Security Hub per region: whether the hub is enabled, its enabled standards, and its active findings.

"Not subscribed" (InvalidAccessException) from DescribeHub means Security Hub is off in the region: that is
data, not an error. Findings are read with server-side filters (record ACTIVE, workflow NEW or NOTIFIED, of this
account, from this region), most severe first, and GuardDuty's own findings are left out: the GuardDuty collector
reads those directly. At most FINDINGS_CAP findings are read per region, as small summaries; the high-severity
check reads the high and critical ones, app.scanners.external turns them all into findings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, model_validator

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register, storable

FINDINGS_CAP = 2000
PAGE = 100
TEXT_CAP = 500               # characters kept of a finding's description
NOT_SUBSCRIBED = "InvalidAccessException"
HIGH_LABELS = frozenset({"HIGH", "CRITICAL"})
_LABELS = ((90, "CRITICAL"), (70, "HIGH"), (40, "MEDIUM"), (1, "LOW"))


def findings_filters(account_id: str, region: str) -> dict[str, list[dict[str, str]]]:
    eq = "EQUALS"
    return {
        # An administrator account's hub also holds its members' findings: keep this account's.
        "AwsAccountId": [{"Value": account_id, "Comparison": eq}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": eq}],
        "WorkflowStatus": [{"Value": "NEW", "Comparison": eq}, {"Value": "NOTIFIED", "Comparison": eq}],
        # With cross-region aggregation a hub also holds other regions' findings: those are read there.
        "Region": [{"Value": region, "Comparison": eq}],
        "ProductName": [{"Value": "GuardDuty", "Comparison": "NOT_EQUALS"}],
    }


class SecurityHubStandard(BaseModel):
    standards_arn: str
    subscription_arn: str | None = None
    status: str | None = None           # PENDING | READY | FAILED | DELETING | INCOMPLETE


class SecurityHubFinding(BaseModel):
    finding_id: str                     # the finding's Id (an ARN for AWS products)
    product: str | None = None          # ProductName: Security Hub, Inspector, Macie, Default (a custom import)...
    generator_id: str | None = None
    account_id: str | None = None
    title: str | None = None
    description: str | None = None
    type: str | None = None             # the first of `types`
    types: list[str] = []
    severity: str | None = None         # the label: CRITICAL | HIGH | MEDIUM | LOW | INFORMATIONAL
    severity_normalized: int | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    resource_tags: dict[str, str] = {}
    control_id: str | None = None       # a Security Hub control's id (S3.1, IAM.4...)
    standards: list[str] = []           # the control's standards (StandardsId of Compliance.AssociatedStandards)
    compliance_status: str | None = None
    first_seen: str | None = None       # FirstObservedAt (else CreatedAt)
    last_seen: str | None = None        # LastObservedAt (else UpdatedAt)
    updated_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return storable(data)


class SecurityHubRegion(Resource):
    """Security Hub in one region of the account."""

    resource_type = "AwsSecurityHubHub"
    enabled: bool = False
    subscribed_at: str | None = None
    standards: list[SecurityHubStandard] = []
    active_findings: list[SecurityHubFinding] = []   # most severe first (up to the cap)
    findings_truncated: bool = False
    # Every active finding of the region was read (or the hub is off, so there are none): only then may a finding
    # missing from `active_findings` be taken as resolved, suppressed or archived.
    findings_complete: bool = False

    @property
    def high_findings(self) -> list[SecurityHubFinding]:
        return [f for f in self.active_findings if f.severity in HIGH_LABELS]

    @property
    def high_findings_truncated(self) -> bool:
        # Most severe first: if what was read reaches below high, every high finding was read.
        return self.findings_truncated and all(f.severity in HIGH_LABELS for f in self.active_findings)


def _label(severity: dict[str, Any]) -> str | None:
    label = str(severity.get("Label") or "").upper() or None
    if label is None and isinstance(severity.get("Normalized"), int | float):
        normalized = severity["Normalized"]
        label = next((name for floor, name in _LABELS if normalized >= floor), "INFORMATIONAL")
    return label


def _text(value: Any) -> str | None:
    return str(value)[:TEXT_CAP] if value else None


def _control_id(finding: dict[str, Any]) -> str | None:
    compliance = finding.get("Compliance") or {}
    if compliance.get("SecurityControlId"):
        return str(compliance["SecurityControlId"])
    # Findings of the older, per-standard control generator name the control only in ProductFields.
    if finding.get("ProductName") == "Security Hub":
        control = (finding.get("ProductFields") or {}).get("ControlId")
        return str(control) if control else None
    return None


def summarize(finding: dict[str, Any]) -> SecurityHubFinding:
    resource = next(iter(finding.get("Resources") or []), {})
    types = [str(t) for t in finding.get("Types") or []]
    severity = finding.get("Severity") or {}
    compliance = finding.get("Compliance") or {}
    normalized = severity.get("Normalized")
    return SecurityHubFinding(
        finding_id=finding.get("Id", ""), product=finding.get("ProductName"), generator_id=finding.get("GeneratorId"),
        account_id=finding.get("AwsAccountId"), title=_text(finding.get("Title")),
        description=_text(finding.get("Description")), type=types[0] if types else None, types=types[:5],
        severity=_label(severity), severity_normalized=int(normalized) if isinstance(normalized, int | float) else None,
        resource_type=resource.get("Type"), resource_id=resource.get("Id"),
        resource_tags={str(k): str(v) for k, v in list((resource.get("Tags") or {}).items())[:50]},
        control_id=_control_id(finding),
        standards=[str(s["StandardsId"]) for s in compliance.get("AssociatedStandards") or []
                   if isinstance(s, dict) and s.get("StandardsId")][:10],
        compliance_status=compliance.get("Status"),
        first_seen=finding.get("FirstObservedAt") or finding.get("CreatedAt"),
        last_seen=finding.get("LastObservedAt") or finding.get("UpdatedAt"), updated_at=finding.get("UpdatedAt"))


@register
class SecurityHubCollector(Collector):
    name = "securityhub_hub"
    service = "securityhub"
    scope = "regional"
    actions = frozenset({"securityhub:DescribeHub", "securityhub:GetEnabledStandards", "securityhub:GetFindings"})

    async def collect(self, ctx: CollectorContext) -> None:
        hub = await ctx.call("securityhub", "DescribeHub", ignore_codes={NOT_SUBSCRIBED})
        region = SecurityHubRegion(region=ctx.region, resource_id=f"{ctx.account_id}/{ctx.region}/securityhub",
                                   arn=(hub or {}).get("HubArn") or ctx.arn("securityhub", "hub/default"))
        if hub is not None:
            region.enabled = True
            subscribed = hub.get("SubscribedAt")
            region.subscribed_at = str(subscribed) if subscribed else None
            outcomes = await asyncio.gather(self._standards(ctx, region), self._findings(ctx, region),
                                            return_exceptions=True)
            for outcome in outcomes:
                # A failed call is recorded: only the checks that read its data report ERROR.
                if isinstance(outcome, BaseException) and not isinstance(outcome, AwsCallFailed):
                    raise outcome
        else:
            region.findings_complete = True   # not subscribed: disabling Security Hub deleted its findings
        ctx.add(region)

    async def _standards(self, ctx: CollectorContext, region: SecurityHubRegion) -> None:
        subscriptions = await ctx.collect_all("securityhub", "GetEnabledStandards", "StandardsSubscriptions")
        region.standards = [SecurityHubStandard(standards_arn=s.get("StandardsArn", ""),
                                                subscription_arn=s.get("StandardsSubscriptionArn"),
                                                status=s.get("StandardsStatus")) for s in subscriptions]

    async def _findings(self, ctx: CollectorContext, region: SecurityHubRegion) -> None:
        found: dict[str, SecurityHubFinding] = {}   # by Id: a finding updated while paging can show up twice
        token = None
        while True:
            page = await ctx.call("securityhub", "GetFindings", Filters=findings_filters(ctx.account_id, ctx.region),
                                  SortCriteria=[{"Field": "SeverityNormalized", "SortOrder": "desc"}],
                                  MaxResults=PAGE, **({"NextToken": token} if token else {})) or {}
            for f in page.get("Findings", []):
                summary = summarize(f)
                found.setdefault(summary.finding_id, summary)
            token = page.get("NextToken")
            if not token or len(found) >= FINDINGS_CAP:
                break
        region.findings_truncated = bool(token) or len(found) > FINDINGS_CAP
        region.active_findings = list(found.values())[:FINDINGS_CAP]
        region.findings_complete = not region.findings_truncated
