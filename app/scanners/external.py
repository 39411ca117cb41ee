"""GuardDuty and Security Hub findings as CloudWizard findings: their source, their own id, a normalized severity
and category, and which (source, region) pairs a scan read completely (the only ones whose silence resolves).

Mapping, per source:

- uid: `gd-`/`sh-` + sha256(source | account | region | the source's id)[:32], so the same finding is one row
  across scans, apart from any check's `cw-` uid; `source_id` keeps the source's id (GuardDuty finding id,
  Security Hub finding Id) for looking it up there.
- check_id: GuardDuty `guardduty:<finding type>` (guardduty:CryptoCurrency:EC2/BitcoinTool.B!DNS); Security Hub
  `securityhub:<control id>` for its controls (securityhub:S3.1), `securityhub:<product>` for other products
  (securityhub:inspector, securityhub:iam-access-analyzer), `securityhub:custom/<generator id>` for findings
  imported under a custom product (ProductName "Default"). The findings API's check_id filter takes them as is.
- severity (app.checks.base.Severity): GuardDuty 9.0-10 critical, 7.0-8.9 high, 4.0-6.9 medium, 1.0-3.9 low,
  below informational; Security Hub from Severity.Label, else from Severity.Normalized (90+ critical, 70+ high,
  40+ medium, 1+ low, else informational).
- category: GuardDuty threat-detection. Security Hub: see `securityhub_category`.
- status FAIL (an active finding is an open problem); service is the source; compliance is {} except a control
  of the AWS Foundational Security Best Practices standard ({"aws-fsbp": [control id]}).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache

from app.checks.base import Severity
from app.scanners.base import GLOBAL, Inventory
from app.scanners.engine import FindingRecord
from app.scanners.guardduty import GuardDutyCollector, GuardDutyFinding, GuardDutyRegion
from app.scanners.securityhub import SecurityHubCollector, SecurityHubFinding, SecurityHubRegion

GUARDDUTY = "guardduty"
SECURITYHUB = "securityhub"
_UID_PREFIX = {GUARDDUTY: "gd", SECURITYHUB: "sh"}
MESSAGE_CAP = 1000
# Column sizes of the findings table.
CHECK_ID_CAP, TITLE_CAP, TYPE_CAP, SOURCE_ID_CAP, ARN_CAP = 128, 300, 128, 512, 2048

# GuardDuty's resource types as the ASFF names them (as Security Hub shows GuardDuty findings).
_GUARDDUTY_RESOURCE_TYPES = {
    "Instance": "AwsEc2Instance", "AccessKey": "AwsIamAccessKey", "S3Bucket": "AwsS3Bucket",
    "EKSCluster": "AwsEksCluster", "RDSDBInstance": "AwsRdsDbInstance", "Lambda": "AwsLambdaFunction",
    "ECSCluster": "AwsEcsCluster", "Container": "Container", "KubernetesCluster": "AwsEksCluster",
}

# ---- Security Hub category, first rule that decides wins:
# 1. a control id that a catalog check maps to (its aws-fsbp compliance ids): that check's category;
# 2. a control id whose service prefix says it all (_CONTROL_PREFIX_CATEGORIES);
# 3. a control's title words (_CONTROL_TITLE_CATEGORIES: AWS's control titles are regular);
# 4. the finding's Types, in its order, against _TYPE_CATEGORIES (prefixes, any case);
# 5. the product (_PRODUCT_CATEGORIES);
# 6. DEFAULT_CATEGORY: a configuration weakness nothing above classifies.
_CONTROL_PREFIX_CATEGORIES = {
    "IAM": "identity", "Account": "identity", "Cognito": "identity", "SecretsManager": "identity",
    "KMS": "encryption", "ACM": "encryption", "PCA": "encryption",
    "CloudTrail": "logging", "Config": "logging", "CloudWatch": "logging",
    "GuardDuty": "threat-detection", "Macie": "threat-detection", "Detective": "threat-detection",
    "Inspector": "patching", "SSM": "patching", "Backup": "resilience",
}
_CONTROL_TITLE_CATEGORIES = (
    (re.compile(r"encrypt|\btls\b|\bssl\b|https", re.I), "encryption"),
    (re.compile(r"public|internet|unrestricted|0\.0\.0\.0|::/0|\bopen\b|restrict|vpc endpoint", re.I), "exposure"),
    (re.compile(r"logging|\blogs?\b|monitor|audit", re.I), "logging"),
    (re.compile(r"backup|deletion protection|multi-az|multiple availability|point-in-time|replicat|versioning",
                re.I), "resilience"),
    (re.compile(r"\bmfa\b|multi-factor|password|root user|access key|credential|privilege|\biam\b", re.I),
     "identity"),
    (re.compile(r"patch|supported (runtime|version|engine)|latest|upgrade|deprecated", re.I), "patching"),
)
_TYPE_CATEGORIES = (
    ("TTPs", "threat-detection"),
    ("Unusual Behaviors", "threat-detection"),
    ("Effects/Data Exposure", "exposure"),
    ("Effects", "threat-detection"),
    ("Sensitive Data Identifications", "exposure"),
    ("Software and Configuration Checks/Vulnerabilities", "patching"),
    ("Software and Configuration Checks/Patch Management", "patching"),
    ("Software and Configuration Checks/AWS Security Best Practices/Network Reachability", "exposure"),
    ("Software and Configuration Checks/AWS Security Best Practices/External Access Granted", "exposure"),
    ("Software and Configuration Checks/AWS Security Best Practices/Unused", "identity"),
    ("Software and Configuration Checks/AWS Security Best Practices/Runtime Behavior Analysis", "threat-detection"),
)
_PRODUCT_CATEGORIES = {
    "Inspector": "patching", "Systems Manager Patch Manager": "patching", "Macie": "exposure",
    "IAM Access Analyzer": "exposure", "Firewall Manager": "exposure", "Detective": "threat-detection",
    "Health": "resilience",
}
DEFAULT_CATEGORY = "exposure"
FSBP_STANDARD = "aws-foundational-security-best-practices"


def external_uid(source: str, account_id: str, region: str, source_id: str) -> str:
    digest = hashlib.sha256(f"{source}|{account_id}|{region}|{source_id}".encode()).hexdigest()[:32]
    return f"{_UID_PREFIX[source]}-{digest}"


# Lower bounds of each severity, most severe first: GuardDuty's 0-10 score, Security Hub's normalized 0-100.
_GUARDDUTY_BANDS = ((9.0, Severity.critical), (7.0, Severity.high), (4.0, Severity.medium), (1.0, Severity.low))
_NORMALIZED_BANDS = ((90, Severity.critical), (70, Severity.high), (40, Severity.medium), (1, Severity.low))


def _banded(score: float, bands: tuple[tuple[float, Severity], ...]) -> Severity:
    return next((severity for floor, severity in bands if score >= floor), Severity.informational)


def guardduty_severity(score: float) -> Severity:
    return _banded(score, _GUARDDUTY_BANDS)


def securityhub_severity(label: str | None, normalized: float | None = None) -> Severity:
    if label and label.lower() in Severity.__members__:
        return Severity(label.lower())
    return _banded(normalized or 0, _NORMALIZED_BANDS)


@cache
def _catalog_control_categories() -> dict[str, str]:
    """Security Hub control id -> the category of the catalog checks that map to it (the most common one)."""
    from app.checks.catalog import catalog

    votes: dict[str, Counter[str]] = {}
    for entry in catalog().values():
        for control in entry.meta.compliance.get("aws-fsbp", []):
            votes.setdefault(control, Counter())[entry.meta.category] += 1
    return {control: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for control, c in votes.items()}


def securityhub_category(finding: SecurityHubFinding) -> str:
    if finding.control_id:
        known = _catalog_control_categories().get(finding.control_id)
        if known:
            return known
        prefix = finding.control_id.split(".", 1)[0]
        if prefix in _CONTROL_PREFIX_CATEGORIES:
            return _CONTROL_PREFIX_CATEGORIES[prefix]
        for pattern, category in _CONTROL_TITLE_CATEGORIES:
            if finding.title and pattern.search(finding.title):
                return category
    for finding_type in finding.types:
        lowered = finding_type.lower()
        for prefix, category in _TYPE_CATEGORIES:
            if lowered.startswith(prefix.lower()):
                return category
    return _PRODUCT_CATEGORIES.get(finding.product or "", DEFAULT_CATEGORY)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.:_/-]+", "-", text.lower()).strip("-") or "unknown"


def securityhub_check_id(finding: SecurityHubFinding) -> str:
    if finding.control_id:
        name = finding.control_id
    elif (finding.product or "Default") == "Default":
        name = f"custom/{_slug(finding.generator_id or 'unknown')}"
    else:
        name = _slug(finding.product or "unknown")
    return f"{SECURITYHUB}:{name}"[:CHECK_ID_CAP]


def _message(title: str, description: str | None, suffix: str = "") -> str:
    text = title if not description or description.strip() == title.strip() else f"{title} {description}"
    return (text + suffix)[:MESSAGE_CAP]


def _arn(value: str | None) -> str | None:
    return value[:ARN_CAP] if value and value.startswith("arn:") else None


def guardduty_record(finding: GuardDutyFinding, account_id: str, region: str,
                     tags: dict[str, str] | None = None) -> FindingRecord:
    title = finding.title or finding.type
    if finding.sample:
        title = f"[SAMPLE] {title}"   # as the GuardDuty console shows sample findings
    details = finding.model_dump(exclude={"resource_tags", "archived"}, exclude_none=True)
    resource_id = finding.resource_id or finding.resource_arn or account_id
    return FindingRecord(
        uid=external_uid(GUARDDUTY, account_id, region, finding.finding_id),
        check_id=f"{GUARDDUTY}:{finding.type}"[:CHECK_ID_CAP], title=title[:TITLE_CAP], status="FAIL",
        severity=guardduty_severity(finding.severity).value, service=GUARDDUTY, category="threat-detection",
        region=region, account_id=account_id,
        resource_type=_GUARDDUTY_RESOURCE_TYPES.get(finding.resource_type or "", finding.resource_type or "Other")
        [:TYPE_CAP],
        resource_id=resource_id, resource_arn=finding.resource_arn[:ARN_CAP] if finding.resource_arn else None,
        message=_message(title, finding.description,
                         " (a GuardDuty sample finding: no real activity behind it)" if finding.sample else ""),
        source=GUARDDUTY, source_id=finding.finding_id[:SOURCE_ID_CAP], compliance={}, details=details,
        resource_tags=tags or finding.resource_tags,
    )


def securityhub_record(finding: SecurityHubFinding, account_id: str, region: str,
                       tags: dict[str, str] | None = None) -> FindingRecord:
    title = finding.title or finding.type or finding.control_id or "Security Hub finding"
    compliance: dict[str, list[str]] = {}
    if finding.control_id and (any(FSBP_STANDARD in s for s in finding.standards)
                               or (finding.generator_id or "").startswith(FSBP_STANDARD)):
        compliance["aws-fsbp"] = [finding.control_id]
    details = finding.model_dump(exclude={"resource_tags"}, exclude_none=True)
    return FindingRecord(
        uid=external_uid(SECURITYHUB, account_id, region, finding.finding_id),
        check_id=securityhub_check_id(finding), title=title[:TITLE_CAP], status="FAIL",
        severity=securityhub_severity(finding.severity, finding.severity_normalized).value, service=SECURITYHUB,
        category=securityhub_category(finding), region=region, account_id=account_id,
        resource_type=(finding.resource_type or "Other")[:TYPE_CAP], resource_id=finding.resource_id or account_id,
        resource_arn=_arn(finding.resource_id), message=_message(title, finding.description),
        source=SECURITYHUB, source_id=finding.finding_id[:SOURCE_ID_CAP], compliance=compliance, details=details,
        resource_tags=tags or finding.resource_tags,
    )


def external_findings(inventory: Inventory, tags: dict[tuple[str, str], dict[str, str]] | None = None,
                      ) -> tuple[list[FindingRecord], frozenset[tuple[str, str]]]:
    """The GuardDuty and Security Hub findings the collectors read, and the (source, region) pairs read completely:
    the collector ran to its end there, and its findings listing neither failed nor stopped at the cap."""
    tags = tags or {}
    records: dict[str, FindingRecord] = {}   # by uid: one finding listed twice is still one finding
    complete: set[tuple[str, str]] = set()
    account = inventory.account_id

    def add(found: Iterable[FindingRecord]) -> None:
        for record in found:
            records.setdefault(record.uid, record)

    for gd in inventory.of(GuardDutyRegion):
        assert isinstance(gd, GuardDutyRegion)
        add(guardduty_record(f, account, gd.region, _tags_for(tags, gd.region, f.resource_id)) for f in gd.findings)
        if gd.findings_complete and (GuardDutyCollector.name, gd.region) in inventory.completed:
            complete.add((GUARDDUTY, gd.region))
    for sh in inventory.of(SecurityHubRegion):
        assert isinstance(sh, SecurityHubRegion)
        add(securityhub_record(f, account, sh.region, _tags_for(tags, sh.region, f.resource_id))
            for f in sh.active_findings)
        if sh.findings_complete and (SecurityHubCollector.name, sh.region) in inventory.completed:
            complete.add((SECURITYHUB, sh.region))
    return list(records.values()), frozenset(complete)


def _tags_for(tags: dict[tuple[str, str], dict[str, str]], region: str, ident: str | None) -> dict[str, str] | None:
    """The inventory's tags of the finding's resource, when a collector of this scan read it. Security Hub names
    resources by ARN; the inventory knows most by name or id."""
    if not ident or not tags:
        return None
    for key in dict.fromkeys((ident, ident.rsplit("/", 1)[-1], ident.rsplit(":", 1)[-1])):
        for reg in (region, GLOBAL):
            if (reg, key) in tags:
                return tags[(reg, key)]
    return None

