"""GuardDuty checks: a detector enabled in every region, its protection plans, and no active high or critical
findings left open (threat detection: the findings are named, counted by type)."""

from __future__ import annotations

from collections import Counter

from app.checks.base import Result, account_result, regional_check
from app.scanners.base import Inventory
from app.scanners.guardduty import HIGH_SEVERITY, GuardDutyFinding, GuardDutyRegion

LIST = "guardduty:ListDetectors"
GET = "guardduty:GetDetector"
CRITICAL_SEVERITY = 9.0
SHOWN_TYPES = 10
_DETAIL_EXCLUDED = {"description", "resource_tags", "arn", "account_id"}   # the ingested findings carry them


def _region(inventory: Inventory, region: str) -> GuardDutyRegion | None:
    return next((r for r in inventory.of(GuardDutyRegion) if isinstance(r, GuardDutyRegion) and r.region == region),
                None)


def _kwargs(data: GuardDutyRegion, region: str) -> dict[str, str | None]:
    return {"region": region, "resource_type": data.resource_type, "arn": data.arn}


@regional_check("guardduty_enabled", requires={LIST, GET})
def guardduty_enabled(inventory: Inventory, region: str) -> Result | None:
    data = _region(inventory, region)
    if data is None:
        return None
    if data.detector_id is None:
        return account_result(inventory, False, f"GuardDuty is not enabled in {region}: no detector watches "
                                                "CloudTrail, VPC flow and DNS activity there for threats.",
                              **_kwargs(data, region))
    if (data.status or "").upper() != "ENABLED":
        return account_result(inventory, False, f"GuardDuty detector {data.detector_id} in {region} is suspended "
                                                f"({data.status}): it produces no findings.",
                              detector_id=data.detector_id, **_kwargs(data, region))
    return account_result(inventory, True, f"GuardDuty detector {data.detector_id} is enabled in {region}.",
                          detector_id=data.detector_id, features=data.features, **_kwargs(data, region))


def _severity_label(severity: float) -> str:
    return "critical" if severity >= CRITICAL_SEVERITY else "high"


@regional_check("guardduty_no_high_severity_findings",
                requires={LIST, GET, "guardduty:ListFindings", "guardduty:GetFindings"})
def guardduty_no_high_severity_findings(inventory: Inventory, region: str) -> Result | None:
    data = _region(inventory, region)
    if data is None or data.detector_id is None:
        return None   # no detector, no findings: guardduty_enabled reports the gap
    active = [f for f in data.high_findings if not f.archived and f.severity >= HIGH_SEVERITY]
    kwargs = _kwargs(data, region)
    if not active:
        return account_result(inventory, True, f"GuardDuty reports no active high or critical finding in {region}.",
                              detector_id=data.detector_id, **kwargs)
    by_type: Counter[str] = Counter(f.type for f in active)
    worst: dict[str, GuardDutyFinding] = {}
    for f in active:
        if f.type not in worst or f.severity > worst[f.type].severity:
            worst[f.type] = f
    critical = sum(1 for f in active if f.severity >= CRITICAL_SEVERITY)
    parts = [f"{n} x {t} ({_severity_label(worst[t].severity)} {worst[t].severity:g})"
             for t, n in sorted(by_type.items(), key=lambda kv: (-worst[kv[0]].severity, -kv[1], kv[0]))]
    shown = "; ".join(parts[:SHOWN_TYPES]) + (f"; and {len(parts) - SHOWN_TYPES} more type(s)"
                                               if len(parts) > SHOWN_TYPES else "")
    truncated = data.high_findings_truncated
    total = len(active)
    count = f"at least {total}" if truncated else str(total)
    crit = f", {critical} critical" if critical else ""
    return account_result(
        inventory, False, f"GuardDuty has {count} active high or critical finding(s) in {region}{crit}: {shown}.",
        detector_id=data.detector_id, total=total, truncated=truncated,
        by_type=dict(sorted(by_type.items())), critical=critical,
        findings=[f.model_dump(exclude=_DETAIL_EXCLUDED) for f in active[:50]], **kwargs)


# --------------------------------------------------------------------------------------------------
# Protection plans (GuardDuty features), checked where a detector exists
# --------------------------------------------------------------------------------------------------

def _plan_check(check_id: str, features: tuple[str, ...], plan: str, risk: str) -> None:
    def check(inventory: Inventory, region: str) -> Result | None:
        data = _region(inventory, region)
        if data is None or data.detector_id is None:
            return None   # guardduty_enabled reports a region without a detector
        states = {name: data.features.get(name) for name in features}
        kwargs = _kwargs(data, region)
        if any((s or "").upper() == "ENABLED" for s in states.values()):
            return account_result(inventory, True, f"GuardDuty {plan} is enabled in {region}.",
                                  features=states, detector_id=data.detector_id, **kwargs)
        return account_result(inventory, False, f"GuardDuty {plan} is not enabled in {region}: {risk}",
                              features=states, detector_id=data.detector_id, **kwargs)

    check.__name__ = check.__qualname__ = check_id
    globals()[check_id] = regional_check(check_id, requires={LIST, GET})(check)


_plan_check("guardduty_s3_protection_enabled", ("S3_DATA_EVENTS",), "S3 Protection",
            "suspicious access to S3 objects (exfiltration, unusual deletions) goes unnoticed.")
_plan_check("guardduty_eks_audit_logs_enabled", ("EKS_AUDIT_LOGS",), "EKS Audit Log Monitoring",
            "malicious Kubernetes API activity in EKS clusters goes unnoticed.")
_plan_check("guardduty_malware_protection_enabled", ("EBS_MALWARE_PROTECTION",), "Malware Protection for EC2",
            "EBS volumes of instances with suspicious behaviour are not scanned for malware.")
_plan_check("guardduty_rds_protection_enabled", ("RDS_LOGIN_EVENTS",), "RDS Protection",
            "anomalous login activity on Aurora and RDS databases goes unnoticed.")
_plan_check("guardduty_lambda_protection_enabled", ("LAMBDA_NETWORK_LOGS",), "Lambda Protection",
            "network activity of compromised Lambda functions (crypto mining, C2 traffic) goes unnoticed.")
_plan_check("guardduty_runtime_monitoring_enabled", ("RUNTIME_MONITORING", "EKS_RUNTIME_MONITORING"),
            "Runtime Monitoring", "operating-system-level threats on EC2, ECS and EKS workloads go unnoticed.")
