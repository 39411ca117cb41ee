"""Security Hub per region: whether the hub is enabled, its enabled standards, and its active high and critical
findings.

"Not subscribed" (InvalidAccessException) from DescribeHub means Security Hub is off in the region: that is
data, not an error. Findings are read with server-side filters (severity HIGH or CRITICAL, record ACTIVE,
workflow NEW or NOTIFIED, of this account, from this region) and GuardDuty's own findings are left out: the GuardDuty
collector reads those directly. At most FINDINGS_CAP findings are read per region, as summaries.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

FINDINGS_CAP = 500
PAGE = 100
NOT_SUBSCRIBED = "InvalidAccessException"


def findings_filters(account_id: str, region: str) -> dict[str, list[dict[str, str]]]:
    eq = "EQUALS"
    return {
        # An administrator account's hub also holds its members' findings: keep this account's.
        "AwsAccountId": [{"Value": account_id, "Comparison": eq}],
        "SeverityLabel": [{"Value": "CRITICAL", "Comparison": eq}, {"Value": "HIGH", "Comparison": eq}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": eq}],
        "WorkflowStatus": [{"Value": "NEW", "Comparison": eq}, {"Value": "NOTIFIED", "Comparison": eq}],
        "Region": [{"Value": region, "Comparison": eq}],
        "ProductName": [{"Value": "GuardDuty", "Comparison": "NOT_EQUALS"}],
    }


class SecurityHubStandard(BaseModel):
    standards_arn: str
    subscription_arn: str | None = None
    status: str | None = None           # PENDING | READY | FAILED | DELETING | INCOMPLETE


class SecurityHubFinding(BaseModel):
    finding_id: str
    product: str | None = None
    title: str | None = None
    type: str | None = None
    severity: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    control_id: str | None = None
    updated_at: str | None = None


class SecurityHubRegion(Resource):
    """Security Hub in one region of the account."""

    resource_type = "AwsSecurityHubHub"
    enabled: bool = False
    subscribed_at: str | None = None
    standards: list[SecurityHubStandard] = []
    active_findings: list[SecurityHubFinding] = []
    findings_truncated: bool = False


def summarize(finding: dict[str, Any]) -> SecurityHubFinding:
    resource = next(iter(finding.get("Resources") or []), {})
    types = finding.get("Types") or []
    return SecurityHubFinding(
        finding_id=finding.get("Id", ""), product=finding.get("ProductName"), title=finding.get("Title"),
        type=types[0] if types else None, severity=(finding.get("Severity") or {}).get("Label"),
        resource_type=resource.get("Type"), resource_id=resource.get("Id"),
        control_id=(finding.get("Compliance") or {}).get("SecurityControlId"),
        updated_at=finding.get("UpdatedAt"))


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
        ctx.add(region)

    async def _standards(self, ctx: CollectorContext, region: SecurityHubRegion) -> None:
        subscriptions = await ctx.collect_all("securityhub", "GetEnabledStandards", "StandardsSubscriptions")
        region.standards = [SecurityHubStandard(standards_arn=s.get("StandardsArn", ""),
                                                subscription_arn=s.get("StandardsSubscriptionArn"),
                                                status=s.get("StandardsStatus")) for s in subscriptions]

    async def _findings(self, ctx: CollectorContext, region: SecurityHubRegion) -> None:
        found: list[SecurityHubFinding] = []
        token = None
        while True:
            page = await ctx.call("securityhub", "GetFindings", Filters=findings_filters(ctx.account_id, ctx.region),
                                  SortCriteria=[{"Field": "SeverityNormalized", "SortOrder": "desc"}],
                                  MaxResults=PAGE, **({"NextToken": token} if token else {})) or {}
            found.extend(summarize(f) for f in page.get("Findings", []))
            token = page.get("NextToken")
            if not token or len(found) >= FINDINGS_CAP:
                break
        region.findings_truncated = bool(token)
        region.active_findings = found[:FINDINGS_CAP]
