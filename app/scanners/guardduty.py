"""GuardDuty per region: the detector, its protection plans, and its active findings.

The findings of this account that are not archived are listed (any severity, most severe first) and at most
FINDINGS_CAP of them are read, each as a small summary (type, severity, title, affected resource, when seen).
The high-severity check reads the high and critical ones; app.scanners.external turns them all into findings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, model_validator

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register, storable

HIGH_SEVERITY = 7.0          # GuardDuty: high 7.0-8.9, critical 9.0-10.0
FINDINGS_CAP = 2000          # active findings read per region; past it the region is marked truncated
BATCH = 50                   # ListFindings pages and GetFindings take at most 50 ids
TEXT_CAP = 500               # characters kept of a finding's description

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
    description: str | None = None
    arn: str | None = None
    account_id: str | None = None
    resource_type: str | None = None          # GuardDuty's own: Instance, AccessKey, S3Bucket, EKSCluster...
    resource_id: str | None = None
    resource_arn: str | None = None
    resource_tags: dict[str, str] = {}
    count: int = 1
    archived: bool = False
    first_seen: str | None = None             # service.eventFirstSeen
    last_seen: str | None = None              # service.eventLastSeen
    updated_at: str | None = None
    sample: bool = False                      # made by CreateSampleFindings: no real activity behind it

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return storable(data)


class GuardDutyRegion(Resource):
    """GuardDuty in one region of the account."""

    resource_type = "AwsGuardDutyDetector"
    detector_id: str | None = None
    status: str | None = None                 # ENABLED | DISABLED; None when there is no detector
    features: dict[str, str] = {}             # protection plan -> ENABLED | DISABLED
    findings: list[GuardDutyFinding] = []     # this account's active findings, most severe first (up to the cap)
    findings_truncated: bool = False          # more active findings exist than were read
    # Every active finding of the region was read (or there is no detector, so there are none): only then may a
    # finding missing from `findings` be taken as archived or deleted.
    findings_complete: bool = False

    @property
    def high_findings(self) -> list[GuardDutyFinding]:
        return [f for f in self.findings if not f.archived and f.severity >= HIGH_SEVERITY]

    @property
    def high_findings_truncated(self) -> bool:
        # Most severe first: if what was read reaches below high, every high finding was read.
        return self.findings_truncated and all(f.severity >= HIGH_SEVERITY for f in self.findings)


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


def _resource_arn(resource: dict[str, Any], finding: dict[str, Any]) -> str | None:
    instance = _dig(resource, "InstanceDetails", "InstanceId")
    if instance:
        return (f"arn:{finding.get('Partition') or 'aws'}:ec2:{finding.get('Region', '')}:"
                f"{finding.get('AccountId', '')}:instance/{instance}")
    return (next((b.get("Arn") for b in resource.get("S3BucketDetails") or [] if b.get("Arn")), None)
            or _dig(resource, "EksClusterDetails", "Arn") or _dig(resource, "RdsDbInstanceDetails", "DbInstanceArn")
            or _dig(resource, "LambdaDetails", "FunctionArn") or _dig(resource, "EcsClusterDetails", "Arn"))


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    tags = _dig(resource, "InstanceDetails", "Tags") or []
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags[:50] if isinstance(t, dict) and t.get("Key")}


def _text(value: Any) -> str | None:
    return str(value)[:TEXT_CAP] if value else None


def summarize(finding: dict[str, Any]) -> GuardDutyFinding:
    resource = finding.get("Resource") or {}
    kind, ident = _resource(resource)
    service = finding.get("Service") or {}
    info = str(_dig(service, "AdditionalInfo", "Value") or "")
    return GuardDutyFinding(
        finding_id=finding.get("Id", ""), type=finding.get("Type", ""), severity=float(finding.get("Severity", 0)),
        title=_text(finding.get("Title")), description=_text(finding.get("Description")), arn=finding.get("Arn"),
        account_id=finding.get("AccountId"), resource_type=kind, resource_id=ident,
        resource_arn=_resource_arn(resource, finding), resource_tags=_tags(resource),
        count=int(service.get("Count") or 1), archived=bool(service.get("Archived")),
        first_seen=_iso(service.get("EventFirstSeen") or finding.get("CreatedAt")),
        last_seen=_iso(service.get("EventLastSeen") or finding.get("UpdatedAt")),
        updated_at=_iso(finding.get("UpdatedAt")), sample='"sample":true' in info.replace(" ", "").lower())


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


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
        else:
            region.findings_complete = True   # no detector: GuardDuty deleted the region's findings with it
        ctx.add(region)

    async def _findings(self, ctx: CollectorContext, region: GuardDutyRegion, detector_id: str) -> None:
        ids: list[str] = []
        token = None
        while len(ids) < FINDINGS_CAP:
            page = await ctx.call(
                "guardduty", "ListFindings", DetectorId=detector_id, MaxResults=BATCH,
                # An administrator account's detector also holds its members' findings: keep this account's.
                FindingCriteria={"Criterion": {"service.archived": {"Equals": ["false"]},
                                               "accountId": {"Equals": [ctx.account_id]}}},
                SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"},
                **({"NextToken": token} if token else {})) or {}
            ids.extend(page.get("FindingIds", []))
            token = page.get("NextToken")
            if not token:
                break
        wanted = list(dict.fromkeys(ids))[:FINDINGS_CAP]   # a finding updated while listing can show up twice
        answers = await asyncio.gather(*(
            ctx.call("guardduty", "GetFindings", DetectorId=detector_id, FindingIds=wanted[start:start + BATCH])
            for start in range(0, len(wanted), BATCH)))
        summaries = [summarize(f) for answer in answers for f in (answer or {}).get("Findings", [])]
        # Archived or moved to another account between the listing and the read: not active here any more.
        active = [s for s in summaries if not s.archived and s.account_id in (None, ctx.account_id)]
        region.findings = sorted(active, key=lambda s: (-s.severity, s.type, s.finding_id))
        region.findings_truncated = bool(token) or len(ids) > FINDINGS_CAP
        region.findings_complete = not region.findings_truncated
