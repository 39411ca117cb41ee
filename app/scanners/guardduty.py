"""GuardDuty per region: the detector, its protection plans, and its active high and critical findings.

Findings are listed with a server-side filter (severity >= 7, not archived), most severe first, and at most
FINDINGS_CAP of them are read; of each only a summary is kept (type, severity, title, affected resource).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

HIGH_SEVERITY = 7.0          # GuardDuty: high 7.0-8.9, critical 9.0-10.0
FINDINGS_CAP = 500           # findings read per region; the total is still counted up to LIST_CAP
LIST_CAP = 5000
BATCH = 50                   # GetFindings takes at most 50 ids

# Protection plans named by the older DataSources shape, for detectors that report no Features.
_DATA_SOURCE_FEATURES = {
    "S3_DATA_EVENTS": ("S3Logs", "Status"),
    "EKS_AUDIT_LOGS": ("Kubernetes", "AuditLogs", "Status"),
    "EBS_MALWARE_PROTECTION": ("MalwareProtection", "ScanEc2InstanceWithFindings", "EbsVolumes", "Status"),
}


class GuardDutyFinding(BaseModel):
    finding_id: str
    type: str
    severity: float
    title: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    count: int = 1
    archived: bool = False
    updated_at: str | None = None
    sample: bool = False


class GuardDutyRegion(Resource):
    """GuardDuty in one region of the account."""

    resource_type = "AwsGuardDutyDetector"
    detector_id: str | None = None
    status: str | None = None                 # ENABLED | DISABLED; None when there is no detector
    features: dict[str, str] = {}             # protection plan -> ENABLED | DISABLED
    high_findings: list[GuardDutyFinding] = []   # as listed with the severity >= 7, not archived criteria
    high_findings_listed: int = 0             # ids listed (up to LIST_CAP)
    high_findings_truncated: bool = False     # more listed than read, or more than LIST_CAP exist


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _features(detector: dict[str, Any]) -> dict[str, str]:
    features = {f["Name"]: str(f.get("Status", "")).upper() for f in detector.get("Features") or [] if f.get("Name")}
    for name, path in _DATA_SOURCE_FEATURES.items():
        status = _dig(detector.get("DataSources"), *path)
        if name not in features and status:
            features[name] = str(status).upper()
    return features


def _resource(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    kind = resource.get("ResourceType")
    ident = (_dig(resource, "InstanceDetails", "InstanceId")
             or _dig(resource, "AccessKeyDetails", "UserName") or _dig(resource, "AccessKeyDetails", "AccessKeyId")
             or next((b.get("Name") for b in resource.get("S3BucketDetails") or [] if b.get("Name")), None)
             or _dig(resource, "EksClusterDetails", "Name")
             or _dig(resource, "RdsDbInstanceDetails", "DbInstanceIdentifier")
             or _dig(resource, "LambdaDetails", "FunctionName")
             or _dig(resource, "EcsClusterDetails", "Name"))
    return kind, ident


def summarize(finding: dict[str, Any]) -> GuardDutyFinding:
    kind, ident = _resource(finding.get("Resource") or {})
    service = finding.get("Service") or {}
    info = str(_dig(service, "AdditionalInfo", "Value") or "")
    return GuardDutyFinding(
        finding_id=finding.get("Id", ""), type=finding.get("Type", ""), severity=float(finding.get("Severity", 0)),
        title=finding.get("Title"), resource_type=kind, resource_id=ident, count=int(service.get("Count") or 1),
        archived=bool(service.get("Archived")), updated_at=finding.get("UpdatedAt"),
        sample='"sample":true' in info.replace(" ", "").lower())


@register
class GuardDutyCollector(Collector):
    name = "guardduty_detectors"
    service = "guardduty"
    scope = "regional"
    actions = frozenset({"guardduty:ListDetectors", "guardduty:GetDetector", "guardduty:ListFindings",
                         "guardduty:GetFindings"})

    async def collect(self, ctx: CollectorContext) -> None:
        detectors = await ctx.collect_all("guardduty", "ListDetectors", "DetectorIds")
        region = GuardDutyRegion(region=ctx.region, resource_id=f"{ctx.account_id}/{ctx.region}/guardduty")
        if detectors:
            # One detector per account and region is all AWS allows.
            detector_id = detectors[0]
            region.detector_id = detector_id
            region.arn = ctx.arn("guardduty", f"detector/{detector_id}")
            detector = await ctx.call("guardduty", "GetDetector", DetectorId=detector_id) or {}
            region.status = detector.get("Status")
            region.features = _features(detector)
            try:
                await self._findings(ctx, region, detector_id)
            except AwsCallFailed:
                pass  # recorded: the findings check reports ERROR here, the configuration checks still run
        ctx.add(region)

    async def _findings(self, ctx: CollectorContext, region: GuardDutyRegion, detector_id: str) -> None:
        ids: list[str] = []
        token = None
        while len(ids) < LIST_CAP:
            page = await ctx.call(
                "guardduty", "ListFindings", DetectorId=detector_id, MaxResults=BATCH,
                # An administrator account's detector also holds its members' findings: keep this account's.
                FindingCriteria={"Criterion": {"severity": {"GreaterThanOrEqual": int(HIGH_SEVERITY)},
                                               "service.archived": {"Equals": ["false"]},
                                               "accountId": {"Equals": [ctx.account_id]}}},
                SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"},
                **({"NextToken": token} if token else {})) or {}
            ids.extend(page.get("FindingIds", []))
            token = page.get("NextToken")
            if not token:
                break
        region.high_findings_listed = len(ids)
        region.high_findings_truncated = bool(token) or len(ids) > FINDINGS_CAP
        wanted = ids[:FINDINGS_CAP]
        answers = await asyncio.gather(*(
            ctx.call("guardduty", "GetFindings", DetectorId=detector_id, FindingIds=wanted[start:start + BATCH])
            for start in range(0, len(wanted), BATCH)))
        summaries = [summarize(f) for answer in answers for f in (answer or {}).get("Findings", [])]
        region.high_findings = sorted(summaries, key=lambda s: (-s.severity, s.type, s.finding_id))
