"""AWS Security Finding Format (ASFF 2018-10-08): a finding as Security Hub's BatchImportFindings accepts it.

Mapping (Security Hub's own conventions for posture controls):

    CloudWizard           ASFF
    uid                   Id (stable per account, region, check and resource)
    check_id              GeneratorId
    PASS / FAIL / ERROR   Compliance.Status PASSED / FAILED / NOT_AVAILABLE (the AWS call the check needs failed)
    severity              Severity.Original; Severity.Label in capitals, but INFORMATIONAL for a PASS (as
                          Security Hub labels passed controls)
    open / resolved       RecordState ACTIVE / ARCHIVED
    workflow              Workflow.Status SUPPRESSED (muted), RESOLVED (resolved, or PASS), else NEW
    first/last seen       FirstObservedAt, CreatedAt / LastObservedAt, UpdatedAt
    category, frameworks  Types "Software and Configuration Checks/CloudWizard/<category>" and one
                          ".../Industry and Regulatory Standards/<framework>" per mapped framework;
                          Compliance.RelatedRequirements "<framework> <control>"
    remediation           Remediation.Recommendation (text, first http(s) reference)

ProductArn is the account's default product in the finding's region (a global resource: the partition's home
region), `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`, which is what a customer
imports into their own Security Hub. Strings are cut to the service's limits (Title 256, Description 1024...);
resource tags with an empty or blank key or value are left out (ASFF strings must hold a non-blank character).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

ASFF_SCHEMA_VERSION = "2018-10-08"
SEVERITY_LABEL = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW",
                  "informational": "INFORMATIONAL"}
COMPLIANCE_STATUS = {"PASS": "PASSED", "FAIL": "FAILED", "ERROR": "NOT_AVAILABLE"}
HOME_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
FRAMEWORK_TYPES = {
    "cis-aws-3.0": "CIS AWS Foundations Benchmark",
    "aws-fsbp": "AWS Foundational Security Best Practices",
    "pci-dss-4.0": "PCI-DSS",
    "nist-800-53-r5": "NIST 800-53",
    "soc2": "SOC 2",
    "iso27001-2022": "ISO 27001",
    "hipaa": "HIPAA",
}
# Service limits (the API model does not carry them; BatchImportFindings refuses longer values).
TITLE_MAX, DESCRIPTION_MAX, RECOMMENDATION_MAX = 256, 1024, 512
ID_MAX, RESOURCE_ID_MAX, TYPES_MAX, REQUIREMENTS_MAX, TAGS_MAX, PRODUCT_FIELDS_MAX = 512, 512, 50, 32, 50, 50


def _cut(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _filled(text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip())


def _https(url: Any) -> str | None:
    text = str(url or "")
    return text if urlsplit(text).scheme in ("http", "https") else None


def product_region(region: str, partition: str | None) -> str:
    """The region a finding is filed in: its own, or the partition's home region for a global resource."""
    if region and region != "global":
        return region
    return HOME_REGION.get(partition or "aws", "us-east-1")


def asff_finding(finding: dict[str, Any], meta: dict[str, Any], *, partition: str | None, created_at: str,
                 updated_at: str, last_observed_at: str | None = None, resolved: bool = False,
                 muted: bool = False, resource_tags: dict[str, str] | None = None,
                 product_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """One finding (FINDING_FIELDS + details) as an ASFF finding. Timestamps are RFC 3339 UTC: `created_at` is
    the first sighting (also FirstObservedAt), `updated_at` the last change, `last_observed_at` (default
    `updated_at`) the last sighting. `product_fields` adds our own ids under ProductFields."""
    partition = partition or "aws"
    account = finding["account_id"]
    region = product_region(finding["region"], partition)
    status = finding["status"]
    severity = finding["severity"]
    title = _cut(finding["title"] or finding["check_id"], TITLE_MAX)
    description = finding["message"] or title
    if meta.get("description") and meta["description"] != description:
        description = f"{description}\n\n{meta['description']}"
    types = [f"Software and Configuration Checks/CloudWizard/{finding['category']}"]
    types += [f"Software and Configuration Checks/Industry and Regulatory Standards/{FRAMEWORK_TYPES[fw]}"
              for fw in sorted(finding["compliance"] or {}) if fw in FRAMEWORK_TYPES]
    requirements = [f"{fw} {ctl}" for fw in sorted(finding["compliance"] or {})
                    for ctl in finding["compliance"][fw]][:REQUIREMENTS_MAX]
    resource: dict[str, Any] = {
        "Type": _cut(finding["resource_type"] or "Other", 256),
        "Id": _cut(finding["resource_arn"] or finding["resource_id"] or account, RESOURCE_ID_MAX),
        "Partition": partition,
        "Region": region,
    }
    # ASFF strings must hold a non-blank character: a tag with an empty (or blank) value, which AWS allows, cannot
    # be carried, and Security Hub would refuse the whole finding for it.
    tags = {_cut(k, 128): _cut(v, 256) for k, v in (resource_tags or {}).items()
            if _filled(k) and _filled(v)}
    tags = dict(list(tags.items())[:TAGS_MAX])
    if tags:
        resource["Tags"] = tags
    compliance: dict[str, Any] = {"Status": COMPLIANCE_STATUS[status]}
    if requirements:
        compliance["RelatedRequirements"] = requirements
    if status == "ERROR":
        compliance["StatusReasons"] = [{"ReasonCode": "CLOUDWIZARD_EVALUATION_ERROR",
                                        "Description": _cut(finding["message"] or "Not evaluated.", 2048)}]
    workflow = "SUPPRESSED" if muted else "RESOLVED" if resolved or status == "PASS" else "NEW"
    fields = {"ProviderName": "CloudWizard", "cloudwizard/check_id": finding["check_id"],
              "cloudwizard/uid": finding["uid"], "cloudwizard/status": status,
              "cloudwizard/service": finding["service"], "cloudwizard/category": finding["category"],
              "cloudwizard/source": finding["source"], **(product_fields or {})}
    out: dict[str, Any] = {
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": _cut(finding["uid"], ID_MAX),
        "ProductArn": f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default",
        "ProductName": "CloudWizard",
        "CompanyName": "CloudWizard",
        "Region": region,
        "GeneratorId": _cut(finding["check_id"], 512),
        "AwsAccountId": account,
        "Types": types[:TYPES_MAX],
        "CreatedAt": created_at,
        "UpdatedAt": updated_at,
        "FirstObservedAt": created_at,
        "LastObservedAt": last_observed_at or updated_at,
        "Severity": {"Label": "INFORMATIONAL" if status == "PASS" else SEVERITY_LABEL.get(severity, "INFORMATIONAL"),
                     "Original": severity or "informational"},
        "Title": title,
        "Description": _cut(description, DESCRIPTION_MAX),
        "Resources": [resource],
        "Compliance": compliance,
        "Workflow": {"Status": workflow},
        "RecordState": "ARCHIVED" if resolved else "ACTIVE",
        "ProductFields": {_cut(k, 128): _cut(v, 2048) for k, v in list(fields.items())[:PRODUCT_FIELDS_MAX]
                          if v not in (None, "")},
    }
    remediation = (meta.get("remediation") or {}).get("text")
    if remediation:
        recommendation = {"Text": _cut(remediation, RECOMMENDATION_MAX)}
        url = next((u for u in map(_https, meta.get("references") or []) if u), None)
        if url:
            recommendation["Url"] = url
        out["Remediation"] = {"Recommendation": recommendation}
    return out
