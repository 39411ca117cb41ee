"""Security Hub checks: the hub enabled in every region (CIS AWS Foundations 3.0, 4.16), at least one standard
enabled, and no active high or critical findings left open (threat detection: the findings are named)."""

from __future__ import annotations

from collections import Counter

from app.checks.base import Result, account_result, regional_check
from app.scanners.base import Inventory
from app.scanners.securityhub import SecurityHubRegion

DESCRIBE = "securityhub:DescribeHub"
SHOWN = 10
# What the check names of each finding (the ingested findings carry the rest).
_DETAIL_FIELDS = {"finding_id", "product", "title", "type", "severity", "resource_type", "resource_id", "control_id",
                  "updated_at"}
READY = frozenset({"READY", "INCOMPLETE"})   # INCOMPLETE: some controls could not be enabled, the rest run


def _region(inventory: Inventory, region: str) -> SecurityHubRegion | None:
    return next((r for r in inventory.of(SecurityHubRegion) if isinstance(r, SecurityHubRegion)
                 and r.region == region), None)


def _kwargs(data: SecurityHubRegion, region: str) -> dict[str, str | None]:
    return {"region": region, "resource_type": data.resource_type, "arn": data.arn}


@regional_check("securityhub_enabled", requires={DESCRIBE})
def securityhub_enabled(inventory: Inventory, region: str) -> Result | None:
    data = _region(inventory, region)
    if data is None:
        return None
    if data.enabled:
        return account_result(inventory, True, f"Security Hub is enabled in {region}.",
                              subscribed_at=data.subscribed_at, **_kwargs(data, region))
    return account_result(inventory, False, f"Security Hub is not enabled in {region}: findings from GuardDuty, "
                                            "Inspector, Macie and its own controls are not collected there.",
                          **_kwargs(data, region))


def _standard_name(arn: str) -> str:
    # arn:aws:securityhub:us-east-1::standards/aws-foundational-security-best-practices/v/1.0.0
    tail = arn.split(":", 5)[-1]
    return tail.split("/", 1)[-1] if "/" in tail else tail


@regional_check("securityhub_standards_enabled", requires={DESCRIBE, "securityhub:GetEnabledStandards"})
def securityhub_standards_enabled(inventory: Inventory, region: str) -> Result | None:
    data = _region(inventory, region)
    if data is None or not data.enabled:
        return None   # securityhub_enabled reports a region without a hub
    ready = [s for s in data.standards if (s.status or "").upper() in READY]
    names = sorted(_standard_name(s.standards_arn) for s in ready)
    if ready:
        return account_result(inventory, True, f"Security Hub in {region} evaluates {len(ready)} standard(s): "
                                               f"{', '.join(names)}.", standards=names, **_kwargs(data, region))
    pending = sorted(f"{_standard_name(s.standards_arn)} ({s.status})" for s in data.standards)
    extra = f" (not ready: {', '.join(pending)})" if pending else ""
    return account_result(inventory, False, f"Security Hub in {region} has no security standard enabled{extra}: "
                                            "none of its controls evaluate the account.",
                          standards=pending, **_kwargs(data, region))


@regional_check("securityhub_no_high_severity_findings", requires={DESCRIBE, "securityhub:GetFindings"})
def securityhub_no_high_severity_findings(inventory: Inventory, region: str) -> Result | None:
    data = _region(inventory, region)
    if data is None or not data.enabled:
        return None
    findings = data.high_findings
    if not findings:
        return account_result(inventory, True, f"Security Hub has no active high or critical finding in {region} "
                                               "(GuardDuty findings are checked separately).", **_kwargs(data, region))
    by_title: Counter[tuple[str, str]] = Counter(
        (f.severity or "HIGH", f"{f.product or 'unknown product'}: {f.control_id + ' ' if f.control_id else ''}"
                               f"{f.title or f.type or 'untitled'}") for f in findings)
    ordered = sorted(by_title.items(), key=lambda kv: (kv[0][0] != "CRITICAL", -kv[1], kv[0][1]))
    parts = [f"{n} x {title} ({severity.lower()})" for (severity, title), n in ordered]
    shown = "; ".join(parts[:SHOWN]) + (f"; and {len(parts) - SHOWN} more" if len(parts) > SHOWN else "")
    critical = sum(1 for f in findings if f.severity == "CRITICAL")
    count = f"at least {len(findings)}" if data.high_findings_truncated else str(len(findings))
    crit = f", {critical} critical" if critical else ""
    return account_result(
        inventory, False, f"Security Hub has {count} active high or critical finding(s) in {region}{crit}: {shown}.",
        total=len(findings), truncated=data.high_findings_truncated, critical=critical,
        by_title={title: n for (_, title), n in ordered},
        findings=[f.model_dump(include=_DETAIL_FIELDS) for f in findings[:50]], **_kwargs(data, region))
