"""Security-service calls moto lacks or gets wrong, answered in AWS's wire format (tests and the demo only).

- GuardDuty ListFindings / GetFindings / CreateSampleFindings / ArchiveFindings / UnarchiveFindings, on findings
  kept here per detector (DeleteDetector deletes them, as AWS does), with FindingCriteria
  (eq/neq/gt/gte/lt/lte and their long names) and SortCriteria honoured. Findings that no AWS
  API can create are seeded through the control endpoint
      POST /_cwfake/guardduty/findings {"account_id": "...", "region": "...", "detector_id": "..." (optional:
           the region's only detector), "findings": [{"type": "UnauthorizedAccess:EC2/SSHBruteForce",
           "severity": 8.0, "archived": false, "resource_id": "i-0abc", "title": "...", "count": 3,
           "member_account": "..." (a member's finding in this administrator's detector)}]}
      -> 201 {"detector_id": "...", "finding_ids": [...]}
- Security Hub GetFindings with AwsSecurityFindingFilters honoured (string, number and date filters, the
  positive filters of a field OR-ed, the negative ones AND-ed; an unsupported filter is refused rather than
  ignored), findings completed with the defaults AWS fills in (RecordState ACTIVE, Workflow.Status NEW,
  Region, ProductName, severity label/normalized), SortCriteria and pagination; BatchUpdateFindings (the
  customer's workflow, severity, note... on findings moto stores; moto lacks it); GetEnabledStandards,
  BatchEnableStandards, BatchDisableStandards, and EnableSecurityHub's default standards.
- Access Analyzer CreateAnalyzer / ListAnalyzers / GetAnalyzer / DeleteAnalyzer (moto has no backend).
- CloudTrail GetTrailStatus: moto's answer plus LatestCloudWatchLogsDeliveryTime for a logging trail that
  delivers to CloudWatch Logs, as AWS reports it.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Response

from app.fakes.aws import (
    CONTROL_HANDLERS,
    RESET_HOOKS,
    FakeCall,
    error_response,
    handler,
    json_response,
)

_lock = threading.RLock()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: Any) -> int | None:
    if token in (None, ""):
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
    except ValueError:
        return None
    return int(text[7:]) if text.startswith("offset:") and text[7:].isdigit() else None


def _dig(data: Any, path: Iterable[str]) -> list[Any]:
    """Values at a dotted path; "*" (or a list on the way) fans out."""
    current = [data]
    for key in path:
        nxt: list[Any] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if key == "*":
                    nxt.extend(item if isinstance(item, list) else [item])
                elif isinstance(item, dict) and key in item:
                    nxt.append(item[key])
        current = nxt
    out: list[Any] = []
    for value in current:
        out.extend(value if isinstance(value, list) else [value])
    return out


# --------------------------------------------------------------------------------------------------
# GuardDuty findings
# --------------------------------------------------------------------------------------------------

# type -> (default severity, resource type, title template); {r} is the affected resource.
GUARDDUTY_TYPES: dict[str, tuple[float, str, str]] = {
    "UnauthorizedAccess:EC2/SSHBruteForce": (2.0, "Instance", "SSH brute force attacks against {r}."),
    "UnauthorizedAccess:EC2/RDPBruteForce": (2.0, "Instance", "RDP brute force attacks against {r}."),
    "Recon:EC2/PortProbeUnprotectedPort": (2.0, "Instance", "Unprotected port on EC2 instance {r} is being probed."),
    "CryptoCurrency:EC2/BitcoinTool.B!DNS": (8.0, "Instance",
                                             "Bitcoin-related domain name queried by EC2 instance {r}."),
    "CryptoCurrency:EC2/BitcoinTool.B": (8.0, "Instance", "Bitcoin-related IP address contacted by EC2 instance {r}."),
    "Backdoor:EC2/C&CActivity.B!DNS": (8.0, "Instance",
                                       "Command and Control server domain name queried by EC2 instance {r}."),
    "Trojan:EC2/DNSDataExfiltration": (8.0, "Instance", "Data exfiltration through DNS queries from EC2 instance {r}."),
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": (
        8.0, "AccessKey", "Credentials for the EC2 instance role of {r} used from an external IP address."),
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS": (
        8.0, "AccessKey", "Credentials for the EC2 instance role of {r} used from a different AWS account."),
    "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B": (5.0, "AccessKey", "Unusual console login seen for {r}."),
    "Policy:IAMUser/RootCredentialUsage": (2.0, "AccessKey", "API was invoked using root credentials."),
    "Policy:S3/BucketBlockPublicAccessDisabled": (
        2.0, "S3Bucket", "Amazon S3 Block Public Access was disabled for S3 bucket {r}."),
    "Policy:S3/BucketAnonymousAccessGranted": (
        8.0, "S3Bucket", "Amazon S3 Public Anonymous Access was granted for the S3 bucket {r}."),
    "Exfiltration:S3/AnomalousBehavior": (8.0, "S3Bucket", "Anomalous data access from S3 bucket {r}."),
    "Impact:S3/AnomalousBehavior.Delete": (8.0, "S3Bucket", "Anomalous deletion of objects in S3 bucket {r}."),
    "PrivilegeEscalation:Kubernetes/PrivilegedContainer": (
        5.0, "EKSCluster", "Privileged container with root level access launched on EKS cluster {r}."),
    "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin": (
        5.0, "RDSDBInstance", "Unusual successful login to RDS database {r}."),
    "AttackSequence:IAM/CompromisedCredentials": (
        9.0, "AccessKey", "Potential credential compromise of {r} indicated by a sequence of actions."),
    "AttackSequence:S3/CompromisedData": (
        9.0, "S3Bucket", "Potential data compromise of S3 bucket {r} indicated by a sequence of actions."),
}
_DEFAULT_TYPE = (5.0, "Instance", "Suspicious activity involving {r}.")
_TYPE_NAME = re.compile(r"[A-Za-z]+:[A-Za-z0-9]+/[\w.!&-]+")

# (account, region, detector id) -> finding id -> finding (GuardDuty's camelCase wire format)
_gd_findings: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
RESET_HOOKS.append(_gd_findings.clear)


def _gd_resource(kind: str, ident: str | None, account: str, region: str) -> tuple[dict[str, Any], str]:
    partition = _partition(region)
    if kind == "AccessKey":
        user = ident or "GeneratedFindingUserName"
        return {"resourceType": kind, "accessKeyDetails": {
            "accessKeyId": "ASIAGENERATEDFINDING", "principalId": "AROAGENERATEDFINDING:i-99999999",
            "userName": user, "userType": "AssumedRole"}}, user
    if kind == "S3Bucket":
        bucket = ident or "generated-finding-bucket"
        return {"resourceType": kind, "s3BucketDetails": [{
            "arn": f"arn:{partition}:s3:::{bucket}", "name": bucket, "type": "Destination",
            "owner": {"id": "CanonicalIdOfTheBucketOwner"}}]}, bucket
    if kind == "EKSCluster":
        name = ident or "GeneratedFindingEKSClusterName"
        return {"resourceType": kind, "eksClusterDetails": {
            "name": name, "arn": f"arn:{partition}:eks:{region}:{account}:cluster/{name}", "status": "ACTIVE"}}, name
    if kind == "RDSDBInstance":
        name = ident or "generated-finding-db"
        return {"resourceType": kind, "rdsDbInstanceDetails": {
            "dbInstanceIdentifier": name, "engine": "aurora-postgresql", "dbClusterIdentifier": f"{name}-cluster",
            "dbInstanceArn": f"arn:{partition}:rds:{region}:{account}:db:{name}"}}, name
    if kind == "Lambda":
        name = ident or "GeneratedFindingFunction"
        return {"resourceType": kind, "lambdaDetails": {
            "functionName": name, "functionArn": f"arn:{partition}:lambda:{region}:{account}:function:{name}"}}, name
    instance = ident or "i-99999999"
    return {"resourceType": "Instance", "instanceDetails": {
        "instanceId": instance, "instanceType": "m5.large", "instanceState": "running",
        "availabilityZone": f"{region}a", "imageId": "ami-99999999", "launchTime": "2024-01-01T00:00:00.000Z",
        "tags": [{"key": "Name", "value": "GeneratedFindingInstance"}]}}, instance


def make_guardduty_finding(account: str, region: str, detector_id: str, finding_type: str, *,
                           severity: float | None = None, archived: bool = False, resource_id: str | None = None,
                           resource_type: str | None = None, title: str | None = None, count: int = 1,
                           updated_at: str | None = None, sample: bool = False,
                           member_account: str | None = None) -> dict[str, Any]:
    """A finding in `account`'s detector; `member_account` makes it a member's finding seen by its administrator."""
    default_severity, default_kind, template = GUARDDUTY_TYPES.get(finding_type, _DEFAULT_TYPE)
    account = member_account or account
    resource, label = _gd_resource(resource_type or default_kind, resource_id, account, region)
    finding_id = uuid.uuid4().hex
    now = updated_at or _now()
    service: dict[str, Any] = {
        "serviceName": "guardduty", "detectorId": detector_id, "archived": archived, "count": count,
        "eventFirstSeen": now, "eventLastSeen": now, "resourceRole": "TARGET",
        "action": {"actionType": "NETWORK_CONNECTION"} if resource["resourceType"] == "Instance"
        else {"actionType": "AWS_API_CALL"},
    }
    if sample:
        service["additionalInfo"] = {"value": json.dumps({"sample": True}), "type": "default"}
    rendered = (title or template).format(r=label)
    return {
        "accountId": account, "arn": f"arn:{_partition(region)}:guardduty:{region}:{account}:detector/"
                                     f"{detector_id}/finding/{finding_id}",
        "confidence": 5.0, "createdAt": now, "updatedAt": now, "description": rendered, "id": finding_id,
        "partition": _partition(region), "region": region, "resource": resource, "schemaVersion": "2.0",
        "service": service, "severity": float(severity if severity is not None else default_severity),
        "title": rendered, "type": finding_type,
    }


def _gd_detector(call: FakeCall) -> str | None:
    m = re.match(r"/detector/([^/]+)/findings", call.path)
    return m.group(1) if m else None


def _gd_detector_exists(account: str, region: str, detector_id: str) -> bool:
    from moto.guardduty.models import guardduty_backends

    return detector_id in guardduty_backends[account][region].detectors


def _gd_bad_request(call: FakeCall, message: str) -> Response:
    return error_response(call, "BadRequestException", message, 400)


def _gd_detector_or_error(call: FakeCall) -> tuple[str | None, Response | None]:
    detector_id = _gd_detector(call)
    if not detector_id or not _gd_detector_exists(call.account_id, call.region, detector_id):
        return None, _gd_bad_request(call, "The request is rejected because the input detectorId is not owned by "
                                           "the current account.")
    return detector_id, None


def _as_epoch_ms(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            return None
    return None


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b, "greaterThan": lambda a, b: a > b,
    "gte": lambda a, b: a >= b, "greaterThanOrEqual": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "lessThan": lambda a, b: a < b,
    "lte": lambda a, b: a <= b, "lessThanOrEqual": lambda a, b: a <= b,
}
_TIME_FIELDS = {"createdAt", "updatedAt", "service.eventFirstSeen", "service.eventLastSeen"}


def _gd_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _gd_matches(finding: dict[str, Any], criterion: dict[str, Any]) -> bool:
    for field_name, condition in criterion.items():
        values = _dig(finding, field_name.split("."))
        if not isinstance(condition, dict):
            return False
        for op, expected in condition.items():
            if op in ("eq", "equals"):
                wanted = {str(e) for e in expected}
                if not any(_gd_text(v) in wanted for v in values):
                    return False
            elif op in ("neq", "notEquals"):
                unwanted = {str(e) for e in expected}
                if any(_gd_text(v) in unwanted for v in values):
                    return False
            elif op in _NUMERIC_OPS:
                numbers = [_as_epoch_ms(v) if field_name in _TIME_FIELDS else
                           (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None)
                           for v in values]
                if not any(n is not None and _NUMERIC_OPS[op](n, float(expected)) for n in numbers):
                    return False
            else:
                raise ValueError(f"unsupported condition {op} for {field_name}")
    return True


def _gd_sorted(findings: list[dict[str, Any]], sort: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not sort or not sort.get("attributeName"):
        return sorted(findings, key=lambda f: f["updatedAt"], reverse=True)
    path = str(sort["attributeName"]).split(".")

    def key(f: dict[str, Any]) -> tuple[int, Any]:
        values = _dig(f, path)
        v = values[0] if values else None
        return (0, v) if isinstance(v, int | float) and not isinstance(v, bool) else (1, _gd_text(v or ""))

    return sorted(findings, key=key, reverse=str(sort.get("orderBy", "ASC")).upper() == "DESC")


@handler("guardduty", "ListFindings")
def _gd_list_findings(call: FakeCall) -> Response:
    detector_id, refused = _gd_detector_or_error(call)
    if refused is not None:
        return refused
    p = call.params
    max_results = p.get("maxResults", 50)
    if not isinstance(max_results, int) or not 1 <= max_results <= 50:
        return _gd_bad_request(call, "The request is rejected because maxResults must be between 1 and 50.")
    start = _offset(p.get("nextToken"))
    if start is None:
        return _gd_bad_request(call, "The request is rejected because the nextToken is not valid.")
    criterion = (p.get("findingCriteria") or {}).get("criterion") or {}
    with _lock:
        findings = list(_gd_findings.get((call.account_id, call.region, detector_id or ""), {}).values())
    try:
        matching = [f for f in findings if _gd_matches(f, criterion)]
    except (ValueError, TypeError) as exc:
        return _gd_bad_request(call, f"The request is rejected because the finding criteria are invalid: {exc}")
    ordered = _gd_sorted(matching, p.get("sortCriteria"))
    page = ordered[start:start + max_results]
    body: dict[str, Any] = {"findingIds": [f["id"] for f in page]}
    if start + max_results < len(ordered):
        body["nextToken"] = _token(start + max_results)
    return json_response(call, body)


def _gd_finding_ids(call: FakeCall) -> tuple[list[Any], Response | None]:
    ids = call.params.get("findingIds")
    if not isinstance(ids, list) or not 0 < len(ids) <= 50:
        return [], _gd_bad_request(call, "The request is rejected because findingIds must hold 1 to 50 ids.")
    return ids, None


@handler("guardduty", "GetFindings")
def _gd_get_findings(call: FakeCall) -> Response:
    detector_id, refused = _gd_detector_or_error(call)
    if refused is not None:
        return refused
    ids, refused = _gd_finding_ids(call)
    if refused is not None:
        return refused
    with _lock:
        store = _gd_findings.get((call.account_id, call.region, detector_id or ""), {})
        found = [copy.deepcopy(store[i]) for i in ids if i in store]
    return json_response(call, {"findings": _gd_sorted(found, call.params.get("sortCriteria"))})


@handler("guardduty", "CreateSampleFindings")
def _gd_create_sample_findings(call: FakeCall) -> Response:
    detector_id, refused = _gd_detector_or_error(call)
    if refused is not None:
        return refused
    types = call.params.get("findingTypes") or list(GUARDDUTY_TYPES)
    bad = [t for t in types if not isinstance(t, str) or not _TYPE_NAME.fullmatch(t)]
    if bad:
        return _gd_bad_request(call, f"The request is rejected because the finding type {bad[0]!r} is not valid.")
    add_guardduty_findings(call.account_id, call.region, detector_id or "",
                           [{"type": t, "sample": True} for t in types])
    return json_response(call, {})


def _gd_set_archived(call: FakeCall, archived: bool) -> Response:
    detector_id, refused = _gd_detector_or_error(call)
    if refused is not None:
        return refused
    ids, refused = _gd_finding_ids(call)
    if refused is not None:
        return refused
    with _lock:
        store = _gd_findings.get((call.account_id, call.region, detector_id or ""), {})
        for finding_id in ids:
            finding = store.get(finding_id)
            if finding is not None and finding["service"]["archived"] != archived:
                finding["service"]["archived"] = archived
                finding["updatedAt"] = _now()
    return json_response(call, {})


@handler("guardduty", "ArchiveFindings")
def _gd_archive_findings(call: FakeCall) -> Response:
    return _gd_set_archived(call, True)


@handler("guardduty", "UnarchiveFindings")
def _gd_unarchive_findings(call: FakeCall) -> Response:
    return _gd_set_archived(call, False)


@handler("guardduty", "DeleteDetector")
def _gd_observe_delete_detector(call: FakeCall) -> None:
    """Deleting a detector deletes its findings (moto deletes the detector and answers)."""
    m = re.match(r"/detector/([^/]+)/?$", call.path)
    if m is not None:
        with _lock:
            _gd_findings.pop((call.account_id, call.region, m.group(1)), None)
    return None


_SEED_KEYS = {"type", "severity", "archived", "resource_id", "resource_type", "title", "count", "updated_at",
              "sample", "member_account"}


def add_guardduty_findings(account: str, region: str, detector_id: str,
                           specs: list[dict[str, Any]]) -> list[str]:
    created = []
    for spec in specs:
        unknown = set(spec) - _SEED_KEYS
        if unknown:
            raise ValueError(f"unknown finding keys: {sorted(unknown)}")
        kind = spec.get("type")
        if not isinstance(kind, str) or not _TYPE_NAME.fullmatch(kind):
            raise ValueError(f"a finding needs a GuardDuty type (UnauthorizedAccess:EC2/SSHBruteForce), not {kind!r}")
        severity = spec.get("severity")
        if severity is not None and (isinstance(severity, bool) or not isinstance(severity, int | float)
                                     or not 1.0 <= severity <= 10.0):
            raise ValueError("severity must be a number from 1.0 to 10.0")
        member = spec.get("member_account")
        if member is not None and (not isinstance(member, str) or not re.fullmatch(r"\d{12}", member)):
            raise ValueError("member_account must be a 12-digit account id")
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        created.append(make_guardduty_finding(
            account, region, detector_id, kind, severity=severity, archived=bool(spec.get("archived", False)),
            resource_id=spec.get("resource_id"), resource_type=spec.get("resource_type"), title=spec.get("title"),
            count=count, updated_at=spec.get("updated_at"), sample=bool(spec.get("sample", False)),
            member_account=spec.get("member_account")))
    with _lock:
        store = _gd_findings.setdefault((account, region, detector_id), {})
        for finding in created:
            store[finding["id"]] = finding
    return [f["id"] for f in created]


def _seed_guardduty(body: Any) -> tuple[Any, int]:
    from moto.guardduty.models import guardduty_backends

    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(body) - {"account_id", "region", "detector_id", "findings"}
    if unknown:
        raise ValueError(f"unknown keys: {sorted(unknown)}")
    account, region = body.get("account_id"), body.get("region")
    if not isinstance(account, str) or not re.fullmatch(r"\d{12}", account):
        raise ValueError("account_id must be a 12-digit account id")
    if not isinstance(region, str) or not region:
        raise ValueError("region is required")
    findings = body.get("findings")
    if not isinstance(findings, list) or not findings or not all(isinstance(f, dict) for f in findings):
        raise ValueError("findings must be a non-empty list of objects")
    detectors = list(guardduty_backends[account][region].detectors)
    detector_id = body.get("detector_id")
    if detector_id is None:
        if len(detectors) != 1:
            raise ValueError(f"{account} has {len(detectors)} detectors in {region}: name one with detector_id")
        detector_id = detectors[0]
    elif detector_id not in detectors:
        raise ValueError(f"no detector {detector_id} in {account} {region}")
    return {"detector_id": detector_id, "finding_ids": add_guardduty_findings(account, region, detector_id,
                                                                              findings)}, 201


CONTROL_HANDLERS[("POST", "guardduty/findings")] = _seed_guardduty


# --------------------------------------------------------------------------------------------------
# Security Hub
# --------------------------------------------------------------------------------------------------

_SH_STRING_FIELDS: dict[str, tuple[str, ...]] = {
    "Id": ("Id",), "ProductArn": ("ProductArn",), "AwsAccountId": ("AwsAccountId",), "GeneratorId": ("GeneratorId",),
    "Region": ("Region",), "Type": ("Types",), "Title": ("Title",), "Description": ("Description",),
    "ProductName": ("ProductName",), "CompanyName": ("CompanyName",), "SeverityLabel": ("Severity", "Label"),
    "RecordState": ("RecordState",), "WorkflowStatus": ("Workflow", "Status"), "WorkflowState": ("WorkflowState",),
    "ComplianceStatus": ("Compliance", "Status"),
    "ComplianceSecurityControlId": ("Compliance", "SecurityControlId"),
    "ResourceType": ("Resources", "*", "Type"), "ResourceId": ("Resources", "*", "Id"),
    "ResourceRegion": ("Resources", "*", "Region"), "VerificationState": ("VerificationState",),
}
_SH_NUMBER_FIELDS: dict[str, tuple[str, ...]] = {
    "SeverityNormalized": ("Severity", "Normalized"), "SeverityProduct": ("Severity", "Product"),
    "Confidence": ("Confidence",), "Criticality": ("Criticality",),
}
_SH_DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "CreatedAt": ("CreatedAt",), "UpdatedAt": ("UpdatedAt",), "FirstObservedAt": ("FirstObservedAt",),
    "LastObservedAt": ("LastObservedAt",),
}
_SH_POSITIVE = {"EQUALS": lambda v, x: v == x, "PREFIX": lambda v, x: v.startswith(x),
                "CONTAINS": lambda v, x: x in v}
_SH_NEGATIVE = {"NOT_EQUALS": lambda v, x: v == x, "PREFIX_NOT_EQUALS": lambda v, x: v.startswith(x),
                "NOT_CONTAINS": lambda v, x: x in v}
_AWS_PRODUCTS = {"guardduty": "GuardDuty", "securityhub": "Security Hub", "inspector": "Inspector",
                 "macie": "Macie", "access-analyzer": "IAM Access Analyzer", "firewall-manager": "Firewall Manager",
                 "health": "Health", "config": "Config", "ssm-patch-manager": "Systems Manager Patch Manager"}
_LABEL_TO_NORMALIZED = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70, "CRITICAL": 90}


def _label(normalized: float) -> str:
    if normalized >= 90:
        return "CRITICAL"
    if normalized >= 70:
        return "HIGH"
    if normalized >= 40:
        return "MEDIUM"
    return "LOW" if normalized >= 1 else "INFORMATIONAL"


def _product_name(product_arn: str | None) -> str:
    m = re.fullmatch(r"arn:[\w-]+:securityhub:[\w-]*:(\d*):product/([^/]+)/(.+)", product_arn or "")
    if m is None:
        return "Default"
    owner, name = m.group(2), m.group(3)
    if owner == "aws":
        return _AWS_PRODUCTS.get(name, name)
    return "Default" if name == "default" else name


def complete_finding(data: dict[str, Any], region: str) -> dict[str, Any]:
    """A finding as GetFindings returns it: the fields Security Hub fills in when an importer leaves them out."""
    f = copy.deepcopy(data)
    f.setdefault("RecordState", "ACTIVE")
    workflow = f.setdefault("Workflow", {})
    workflow.setdefault("Status", f.get("WorkflowState") or "NEW")
    f.setdefault("WorkflowState", workflow["Status"])
    f.setdefault("Region", region)
    f.setdefault("ProductName", _product_name(f.get("ProductArn")))
    f.setdefault("CompanyName", "AWS" if ":product/aws/" in str(f.get("ProductArn", "")) else "Personal")
    severity = f.setdefault("Severity", {})
    if "Label" not in severity and "Normalized" in severity:
        severity["Label"] = _label(float(severity["Normalized"]))
    if "Normalized" not in severity and "Label" in severity:
        severity["Normalized"] = _LABEL_TO_NORMALIZED.get(str(severity["Label"]), 0)
    return f


def _sh_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sh_field_matches(finding: dict[str, Any], name: str, filters: list[dict[str, Any]]) -> bool:
    if name in _SH_STRING_FIELDS:
        values = [str(v) for v in _dig(finding, _SH_STRING_FIELDS[name]) if v is not None]
        positives = [f for f in filters if f.get("Comparison", "EQUALS") in _SH_POSITIVE]
        negatives = [f for f in filters if f.get("Comparison") in _SH_NEGATIVE]
        if len(positives) + len(negatives) != len(filters):
            bad = next(f.get("Comparison") for f in filters if f not in positives and f not in negatives)
            raise ValueError(f"unsupported comparison {bad} for {name}")
        if positives and not any(_SH_POSITIVE[f.get("Comparison", "EQUALS")](v, str(f.get("Value")))
                                 for f in positives for v in values):
            return False
        return not any(_SH_NEGATIVE[f["Comparison"]](v, str(f.get("Value"))) for f in negatives for v in values)
    if name in _SH_NUMBER_FIELDS:
        numbers = [float(v) for v in _dig(finding, _SH_NUMBER_FIELDS[name]) if isinstance(v, int | float)]
        for f in filters:
            tests = [(k, float(v)) for k, v in f.items() if k in ("Gte", "Lte", "Eq", "Gt", "Lt")]
            ops = {"Gte": lambda a, b: a >= b, "Lte": lambda a, b: a <= b, "Eq": lambda a, b: a == b,
                   "Gt": lambda a, b: a > b, "Lt": lambda a, b: a < b}
            if not any(all(ops[k](n, v) for k, v in tests) for n in numbers):
                return False
        return True
    if name in _SH_DATE_FIELDS:
        moments = [d for v in _dig(finding, _SH_DATE_FIELDS[name]) if (d := _sh_date(v)) is not None]
        for f in filters:
            start, end = _sh_date(f.get("Start")), _sh_date(f.get("End"))
            date_range = f.get("DateRange") or {}
            if date_range:
                if date_range.get("Unit", "DAYS") != "DAYS":
                    raise ValueError("DateRange.Unit must be DAYS")
                start, end = datetime.now(UTC) - timedelta(days=int(date_range.get("Value", 0))), None
            if not any((start is None or m >= start) and (end is None or m <= end) for m in moments):
                return False
        return True
    raise ValueError(f"the fake does not support the {name} filter")


def _sh_backend(call: FakeCall) -> Any:
    from moto.securityhub.models import securityhub_backends

    return securityhub_backends[call.account_id][call.region]


def _sh_not_subscribed(call: FakeCall) -> Response:
    return error_response(call, "InvalidAccessException", f"Account {call.account_id} is not subscribed to AWS "
                                                          "Security Hub", 401)


def _sh_invalid(call: FakeCall, message: str) -> Response:
    return error_response(call, "InvalidInputException", message, 400)


@handler("securityhub", "GetFindings")
def _sh_get_findings(call: FakeCall) -> Response:
    backend = _sh_backend(call)
    if not backend.enabled:
        return _sh_not_subscribed(call)
    p = call.params
    max_results = p.get("MaxResults", 100)
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        return _sh_invalid(call, "MaxResults must be a number between 1 and 100")
    start = _offset(p.get("NextToken"))
    if start is None:
        return _sh_invalid(call, "The NextToken is not valid")
    filters = p.get("Filters") or {}
    findings = [complete_finding(f.data, call.region) for f in backend.findings]
    try:
        matching = [f for f in findings
                    if all(_sh_field_matches(f, name, conds) for name, conds in filters.items() if conds)]
    except (ValueError, TypeError) as exc:
        return _sh_invalid(call, str(exc))
    for sort in reversed(p.get("SortCriteria") or []):
        field_name = sort.get("Field", "")
        path = _SH_NUMBER_FIELDS.get(field_name) or _SH_STRING_FIELDS.get(field_name) or \
            _SH_DATE_FIELDS.get(field_name) or (field_name,)

        def key(f: dict[str, Any], path: tuple[str, ...] = path) -> tuple[int, Any]:
            values = _dig(f, path)
            v = values[0] if values else None
            return (0, v) if isinstance(v, int | float) else (1, str(v or ""))

        matching.sort(key=key, reverse=str(sort.get("SortOrder", "asc")).lower() == "desc")
    page = matching[start:start + max_results]
    body: dict[str, Any] = {"Findings": page}
    if start + max_results < len(matching):
        body["NextToken"] = _token(start + max_results)
    return json_response(call, body)


_SH_UPDATABLE = {"Workflow", "Severity", "Note", "VerificationState", "Confidence", "Criticality", "Types",
                 "UserDefinedFields", "RelatedFindings", "FindingIdentifiers"}
_SH_WORKFLOW = {"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}


@handler("securityhub", "BatchUpdateFindings")
def _sh_batch_update_findings(call: FakeCall) -> Response:
    """The customer's side of a finding (workflow status, severity, note...), on the findings moto stores."""
    backend = _sh_backend(call)
    if not backend.enabled:
        return _sh_not_subscribed(call)
    p = call.params
    unknown = set(p) - _SH_UPDATABLE
    if unknown:
        return _sh_invalid(call, f"the fake does not support updating {sorted(unknown)}")
    identifiers = p.get("FindingIdentifiers")
    if not isinstance(identifiers, list) or not 0 < len(identifiers) <= 100:
        return _sh_invalid(call, "FindingIdentifiers must hold 1 to 100 findings")
    status = (p.get("Workflow") or {}).get("Status")
    if status is not None and status not in _SH_WORKFLOW:
        return _sh_invalid(call, f"Invalid workflow status {status!r}")
    label = (p.get("Severity") or {}).get("Label")
    if label is not None and label not in _LABEL_TO_NORMALIZED:
        return _sh_invalid(call, f"Invalid severity label {label!r}")
    processed, unprocessed = [], []
    with _lock:
        by_key = {(f.data.get("Id"), f.data.get("ProductArn")): f for f in backend.findings}
        for ident in identifiers:
            key = (ident.get("Id"), ident.get("ProductArn"))
            finding = by_key.get(key)
            if finding is None:
                unprocessed.append({"FindingIdentifier": ident, "ErrorCode": "FindingNotFound",
                                    "ErrorMessage": "Finding Not Found"})
                continue
            data = finding.data
            if status is not None:
                data["Workflow"] = {**(data.get("Workflow") or {}), "Status": status}
                data["WorkflowState"] = {"NEW": "NEW", "NOTIFIED": "ASSIGNED", "RESOLVED": "RESOLVED",
                                         "SUPPRESSED": "DEFERRED"}[status]
            if p.get("Severity"):
                severity = dict(data.get("Severity") or {})
                severity.update(p["Severity"])
                if label is not None and "Normalized" not in p["Severity"]:
                    severity["Normalized"] = _LABEL_TO_NORMALIZED[label]
                elif "Normalized" in p["Severity"] and label is None:
                    severity["Label"] = _label(float(p["Severity"]["Normalized"]))
                data["Severity"] = severity
            for name in ("Note", "VerificationState", "Confidence", "Criticality", "Types", "UserDefinedFields",
                         "RelatedFindings"):
                if name in p:
                    data[name] = copy.deepcopy(p[name])
            data["UpdatedAt"] = _now()
            processed.append({"Id": key[0], "ProductArn": key[1]})
    return json_response(call, {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


def _standards_arns(region: str) -> dict[str, str]:
    """Standards ARN -> subscription path, for the standards Security Hub offers in `region`."""
    p = _partition(region)
    return {
        f"arn:{p}:securityhub:{region}::standards/aws-foundational-security-best-practices/v/1.0.0":
            "aws-foundational-security-best-practices/v/1.0.0",
        f"arn:{p}:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0": "cis-aws-foundations-benchmark/v/1.2.0",
        f"arn:{p}:securityhub:{region}::standards/cis-aws-foundations-benchmark/v/1.4.0":
            "cis-aws-foundations-benchmark/v/1.4.0",
        f"arn:{p}:securityhub:{region}::standards/cis-aws-foundations-benchmark/v/3.0.0":
            "cis-aws-foundations-benchmark/v/3.0.0",
        f"arn:{p}:securityhub:{region}::standards/pci-dss/v/3.2.1": "pci-dss/v/3.2.1",
        f"arn:{p}:securityhub:{region}::standards/nist-800-53/v/5.0.0": "nist-800-53/v/5.0.0",
    }


def _default_standards(region: str) -> list[str]:
    arns = list(_standards_arns(region))
    return [arns[0], arns[1]]   # FSBP and CIS 1.2.0: what EnableDefaultStandards turns on


# (account, region) -> standards ARN -> subscription
_sh_standards: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
RESET_HOOKS.append(_sh_standards.clear)


def _subscription(account: str, region: str, standards_arn: str, status: str = "READY") -> dict[str, Any]:
    path = _standards_arns(region)[standards_arn]
    return {"StandardsSubscriptionArn": f"arn:{_partition(region)}:securityhub:{region}:{account}:subscription/{path}",
            "StandardsArn": standards_arn, "StandardsInput": {}, "StandardsStatus": status,
            "StandardsControlsUpdatable": "READY_FOR_UPDATES"}


@handler("securityhub", "EnableSecurityHub")
def _sh_observe_enable(call: FakeCall) -> None:
    """Moto enables the hub but ignores EnableDefaultStandards (true unless set false): record them."""
    if _sh_backend(call).enabled or call.params.get("EnableDefaultStandards") is False:
        return None
    with _lock:
        _sh_standards[(call.account_id, call.region)] = {
            arn: _subscription(call.account_id, call.region, arn) for arn in _default_standards(call.region)}
    return None


@handler("securityhub", "DisableSecurityHub")
def _sh_observe_disable(call: FakeCall) -> None:
    with _lock:
        _sh_standards.pop((call.account_id, call.region), None)
    return None


@handler("securityhub", "GetEnabledStandards")
def _sh_get_enabled_standards(call: FakeCall) -> Response:
    if not _sh_backend(call).enabled:
        return _sh_not_subscribed(call)
    wanted = call.params.get("StandardsSubscriptionArns")
    with _lock:
        subs = [copy.deepcopy(s) for s in _sh_standards.get((call.account_id, call.region), {}).values()]
    if wanted:
        subs = [s for s in subs if s["StandardsSubscriptionArn"] in wanted]
    return json_response(call, {"StandardsSubscriptions": subs})


@handler("securityhub", "BatchEnableStandards")
def _sh_batch_enable_standards(call: FakeCall) -> Response:
    if not _sh_backend(call).enabled:
        return _sh_not_subscribed(call)
    requests = call.params.get("StandardsSubscriptionRequests") or []
    known = _standards_arns(call.region)
    for req in requests:
        if req.get("StandardsArn") not in known:
            return _sh_invalid(call, f"Invalid standards ARN {req.get('StandardsArn')!r}")
    answered = []
    with _lock:
        store = _sh_standards.setdefault((call.account_id, call.region), {})
        for req in requests:
            store[req["StandardsArn"]] = _subscription(call.account_id, call.region, req["StandardsArn"])
            answered.append(_subscription(call.account_id, call.region, req["StandardsArn"], "PENDING"))
    return json_response(call, {"StandardsSubscriptions": answered})


@handler("securityhub", "BatchDisableStandards")
def _sh_batch_disable_standards(call: FakeCall) -> Response:
    if not _sh_backend(call).enabled:
        return _sh_not_subscribed(call)
    arns = call.params.get("StandardsSubscriptionArns") or []
    answered = []
    with _lock:
        store = _sh_standards.get((call.account_id, call.region), {})
        for standards_arn, sub in list(store.items()):
            if sub["StandardsSubscriptionArn"] in arns:
                del store[standards_arn]
                answered.append({**sub, "StandardsStatus": "DELETING"})
    return json_response(call, {"StandardsSubscriptions": answered})


# --------------------------------------------------------------------------------------------------
# IAM Access Analyzer (moto has no backend: its server answers 500)
# --------------------------------------------------------------------------------------------------

_ANALYZER_TYPES = ("ACCOUNT", "ORGANIZATION", "ACCOUNT_UNUSED_ACCESS", "ORGANIZATION_UNUSED_ACCESS")
_ANALYZER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,254}")
_analyzers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
RESET_HOOKS.append(_analyzers.clear)


def _aa_error(call: FakeCall, code: str, message: str, status: int) -> Response:
    return error_response(call, code, message, status)


@handler("accessanalyzer", "CreateAnalyzer")
def _aa_create(call: FakeCall) -> Response:
    p = call.params
    name, kind = p.get("analyzerName"), p.get("type")
    if not isinstance(name, str) or not _ANALYZER_NAME.fullmatch(name):
        return _aa_error(call, "ValidationException", "Invalid analyzerName", 400)
    if kind not in _ANALYZER_TYPES:
        return _aa_error(call, "ValidationException", f"type must be one of {', '.join(_ANALYZER_TYPES)}", 400)
    arn = f"arn:{_partition(call.region)}:access-analyzer:{call.region}:{call.account_id}:analyzer/{name}"
    with _lock:
        store = _analyzers.setdefault((call.account_id, call.region), {})
        if name in store:
            return _aa_error(call, "ConflictException", f"Analyzer {name} already exists", 409)
        store[name] = {"arn": arn, "name": name, "type": kind, "createdAt": _now(), "status": "ACTIVE",
                       "tags": dict(p.get("tags") or {})}
    return json_response(call, {"arn": arn})


@handler("accessanalyzer", "ListAnalyzers")
def _aa_list(call: FakeCall) -> Response:
    kind = (call.query.get("type") or [None])[0]
    if kind is not None and kind not in _ANALYZER_TYPES:
        return _aa_error(call, "ValidationException", f"type must be one of {', '.join(_ANALYZER_TYPES)}", 400)
    try:
        max_results = int((call.query.get("maxResults") or ["100"])[0])
    except ValueError:
        return _aa_error(call, "ValidationException", "maxResults must be a number", 400)
    start = _offset((call.query.get("nextToken") or [None])[0])
    if start is None or max_results < 1:
        return _aa_error(call, "ValidationException", "Invalid pagination parameters", 400)
    with _lock:
        analyzers = [copy.deepcopy(a) for a in _analyzers.get((call.account_id, call.region), {}).values()
                     if kind is None or a["type"] == kind]
    analyzers.sort(key=lambda a: a["name"])
    body: dict[str, Any] = {"analyzers": analyzers[start:start + max_results]}
    if start + max_results < len(analyzers):
        body["nextToken"] = _token(start + max_results)
    return json_response(call, body)


def _aa_name(call: FakeCall) -> str:
    return call.path.rstrip("/").rsplit("/", 1)[-1]


@handler("accessanalyzer", "GetAnalyzer")
def _aa_get(call: FakeCall) -> Response:
    name = _aa_name(call)
    with _lock:
        analyzer = copy.deepcopy(_analyzers.get((call.account_id, call.region), {}).get(name))
    if analyzer is None:
        return _aa_error(call, "ResourceNotFoundException", f"Analyzer {name} not found", 404)
    return json_response(call, {"analyzer": analyzer})


@handler("accessanalyzer", "DeleteAnalyzer")
def _aa_delete(call: FakeCall) -> Response:
    name = _aa_name(call)
    with _lock:
        removed = _analyzers.get((call.account_id, call.region), {}).pop(name, None)
    if removed is None:
        return _aa_error(call, "ResourceNotFoundException", f"Analyzer {name} not found", 404)
    return json_response(call, {})


# --------------------------------------------------------------------------------------------------
# CloudTrail: delivery to CloudWatch Logs in GetTrailStatus
# --------------------------------------------------------------------------------------------------

@handler("cloudtrail", "GetTrailStatus")
def _ct_trail_status(call: FakeCall) -> Response | None:
    from moto.cloudtrail.models import cloudtrail_backends

    name = call.params.get("Name")
    if not isinstance(name, str):
        return None
    backend = cloudtrail_backends[call.account_id][call.region]
    trail = next((t for t in backend.describe_trails(include_shadow_trails=True)
                  if name in (t.trail_name, t.arn)), None)
    if trail is None:
        return None   # moto answers TrailNotFoundException in its own words
    status = trail.status.description()
    if trail.cw_log_group_arn and trail.status.is_logging:
        # AWS delivers to CloudWatch Logs within minutes of logging; moto does not report it at all.
        status["LatestCloudWatchLogsDeliveryTime"] = status.get("LatestDeliveryTime")
    return json_response(call, status)
