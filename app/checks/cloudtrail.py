"""CloudTrail checks (CIS AWS Foundations 3.0 section 3): a multi-region trail that logs management events,
log file validation, KMS encryption, CloudWatch Logs delivery, the trail bucket's access logging and exposure,
and S3 object-level (data event) logging.

Event selectors are read the way CloudTrail applies them: basic selectors (ReadWriteType,
IncludeManagementEvents, DataResources) or advanced selectors (field conditions); a trail that never had
selectors set logs every management event, read and write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.checks.base import (
    Result,
    Status,
    account_arn,
    account_check,
    account_result,
    failed,
    passed,
    resource_check,
)
from app.checks.s3 import s3_bucket_public_access
from app.scanners.base import GLOBAL, CollectionError, Inventory
from app.scanners.cloudtrail import CloudTrailTrail
from app.scanners.s3 import S3Bucket

DESCRIBE = "cloudtrail:DescribeTrails"
STATUS = "cloudtrail:GetTrailStatus"
SELECTORS = "cloudtrail:GetEventSelectors"
TRAIL_ACTIONS = frozenset({DESCRIBE, STATUS, SELECTORS})
S3_LISTING = frozenset({"s3:ListAllMyBuckets", "s3:GetBucketLocation"})
S3_PUBLIC = frozenset({"s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketOwnershipControls",
                       "s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock"})
FRESH = timedelta(hours=24)   # "recently delivered": CloudTrail delivers every ~5 minutes while it logs
S3_OBJECT = "AWS::S3::Object"


# --------------------------------------------------------------------------------------------------
# Shared helpers (also used by the monitoring checks)
# --------------------------------------------------------------------------------------------------

def trails(inventory: Inventory) -> list[CloudTrailTrail]:
    return [t for t in inventory.of(CloudTrailTrail) if isinstance(t, CloudTrailTrail)]


def trail_errors(inventory: Inventory, trail: CloudTrailTrail, actions: Iterable[str]) -> list[CollectionError]:
    """Errors of the per-trail detail calls (status, selectors) for this trail."""
    wanted = {a.lower() for a in actions}
    return [e for e in inventory.errors if e.resource_id == trail.resource_id and e.action.lower() in wanted]


def error_result(inventory: Inventory, errors: list[CollectionError], *, region: str = GLOBAL,
                 resource_type: str = "AwsAccount", resource_id: str | None = None,
                 arn: str | None = None, context: str = "") -> Result:
    """ERROR for an account-level check that could not conclude because per-resource reads failed."""
    e = errors[0]
    prefix = f"{context}: " if context else ""
    return Result(status=Status.ERROR, resource_type=resource_type, resource_id=resource_id or inventory.account_id,
                  region=region, resource_arn=arn or account_arn(inventory),
                  message=f"Could not evaluate: {prefix}{e.action} failed in {e.region} with {e.code}: {e.message}",
                  details={"errors": [x.model_dump() for x in errors[:5]]})


def _field_conditions(selector: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Advanced selector field -> {operator: values}."""
    out: dict[str, dict[str, list[str]]] = {}
    for fs in selector.get("FieldSelectors") or []:
        ops = {k: [str(v) for v in vals] for k, vals in fs.items() if k != "Field" and isinstance(vals, list)}
        out.setdefault(str(fs.get("Field", "")), {}).update(ops)
    return out


_POSITIVE = ("Equals", "StartsWith", "EndsWith")


def _read_write(conditions: dict[str, dict[str, list[str]]]) -> tuple[bool, bool]:
    """Whether an advanced selector's readOnly condition lets read and write events through."""
    ro = conditions.get("readOnly", {})
    values = {v.lower() for v in ro.get("Equals", [])}
    not_values = {v.lower() for v in ro.get("NotEquals", [])}
    read = (not values or "true" in values) and "true" not in not_values
    write = (not values or "false" in values) and "false" not in not_values
    return read, write


@dataclass
class ManagementCoverage:
    read: bool = False
    write: bool = False
    excluded_sources: list[str] = field(default_factory=list)

    @property
    def all(self) -> bool:
        return self.read and self.write

    def describe(self) -> str:
        kinds = "read and write" if self.all else "read-only" if self.read else "write-only" if self.write else "no"
        return f"{kinds} management events"


def management_coverage(trail: CloudTrailTrail) -> ManagementCoverage:
    basic = trail.event_selectors or []
    advanced = trail.advanced_event_selectors or []
    cov = ManagementCoverage()
    if not basic and not advanced and not trail.has_custom_event_selectors:
        cov.read = cov.write = True   # CloudTrail's default: all management events
        return cov
    for sel in basic:
        if sel.get("IncludeManagementEvents", True) is False:
            continue
        rw = sel.get("ReadWriteType") or "All"
        cov.read |= rw in ("All", "ReadOnly")
        cov.write |= rw in ("All", "WriteOnly")
        cov.excluded_sources += list(sel.get("ExcludeManagementEventSources") or [])
    for sel in advanced:
        conditions = _field_conditions(sel)
        if "Management" not in conditions.get("eventCategory", {}).get("Equals", []):
            continue
        read, write = _read_write(conditions)
        cov.read |= read
        cov.write |= write
        cov.excluded_sources += conditions.get("eventSource", {}).get("NotEquals", [])
    cov.excluded_sources = sorted(set(cov.excluded_sources))
    return cov


@dataclass
class ObjectCoverage:
    """S3 object-level (data event) logging of one trail: all buckets, or some."""

    read_all: bool = False
    write_all: bool = False
    read_buckets: set[str] = field(default_factory=set)
    write_buckets: set[str] = field(default_factory=set)


def _is_all_buckets(value: str) -> bool:
    # "arn:aws:s3" (current) and "arn:aws:s3:::" (older consoles) both mean every bucket, present and future.
    parts = value.rstrip("/").split(":")
    return len(parts) >= 3 and parts[2] == "s3" and all(p == "" for p in parts[3:]) and len(parts) in (3, 6)


def _bucket_of(value: str) -> str | None:
    if ":::" not in value:
        return None
    bucket = value.split(":::", 1)[1].split("/", 1)[0]
    return bucket or None


def object_coverage(trail: CloudTrailTrail) -> ObjectCoverage:
    cov = ObjectCoverage()
    for sel in trail.event_selectors or []:
        rw = sel.get("ReadWriteType") or "All"
        read, write = rw in ("All", "ReadOnly"), rw in ("All", "WriteOnly")
        for resource in sel.get("DataResources") or []:
            if resource.get("Type") != S3_OBJECT:
                continue
            for value in resource.get("Values") or []:
                everything = _is_all_buckets(str(value))
                bucket = None if everything else _bucket_of(str(value))
                if read:
                    cov.read_all |= everything
                    if bucket:
                        cov.read_buckets.add(bucket)
                if write:
                    cov.write_all |= everything
                    if bucket:
                        cov.write_buckets.add(bucket)
    for sel in trail.advanced_event_selectors or []:
        conditions = _field_conditions(sel)
        if "Data" not in conditions.get("eventCategory", {}).get("Equals", []):
            continue
        if S3_OBJECT not in conditions.get("resources.type", {}).get("Equals", []):
            continue
        read, write = _read_write(conditions)
        arn_limits = [v for op in _POSITIVE for v in conditions.get("resources.ARN", {}).get(op, [])]
        # Any other positive condition (eventName, userIdentity.arn...) narrows the selector to some events;
        # negative ones (NotEquals, NotStartsWith) only leave out what the customer chose to exclude.
        narrowed = any(op in _POSITIVE for name, ops in conditions.items()
                       if name not in ("eventCategory", "resources.type", "readOnly", "resources.ARN") for op in ops)
        everything = not arn_limits and not narrowed
        buckets = {b for v in arn_limits if (b := _bucket_of(v))} if not narrowed else set()
        if read:
            cov.read_all |= everything
            cov.read_buckets |= buckets
        if write:
            cov.write_all |= everything
            cov.write_buckets |= buckets
    return cov


def _fresh(moment: datetime | None, now: datetime) -> bool:
    if moment is None:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return now - moment <= FRESH


def _org_note(trail: CloudTrailTrail, inventory: Inventory) -> str:
    owner = trail.owner_account
    if trail.is_organization_trail and owner and owner != inventory.account_id:
        return f" (organization trail managed from account {owner})"
    return ""


# --------------------------------------------------------------------------------------------------
# Account-wide: a multi-region trail that logs every management event
# --------------------------------------------------------------------------------------------------

@account_check("cloudtrail_multi_region_enabled", requires=TRAIL_ACTIONS)
def cloudtrail_multi_region_enabled(inventory: Inventory) -> Result:
    all_trails = trails(inventory)
    good: list[CloudTrailTrail] = []
    problems: list[str] = []
    unknown: list[CollectionError] = []
    for trail in sorted(all_trails, key=lambda t: t.resource_id):
        if not trail.is_multi_region:
            problems.append(f"{trail.name} covers only {trail.home_region}")
            continue
        errors = trail_errors(inventory, trail, (STATUS, SELECTORS))
        if errors:
            unknown += errors
            continue
        if not trail.is_logging:
            problems.append(f"{trail.name} is multi-region but logging is stopped")
            continue
        coverage = management_coverage(trail)
        if not coverage.all:
            problems.append(f"{trail.name} is multi-region but records {coverage.describe()}")
            continue
        good.append(trail)
    if good:
        names = ", ".join(t.name for t in good)
        excluded = sorted({s for t in good for s in management_coverage(t).excluded_sources})
        note = f" (excluding events from {', '.join(excluded)})" if excluded else ""
        return account_result(inventory, True, f"Multi-region trail(s) {names} are logging all read and write "
                                               f"management events{note}.",
                              trails=[t.resource_id for t in good], excluded_event_sources=excluded)
    if unknown:
        return error_result(inventory, unknown, context="the status or event selectors of a multi-region trail")
    if not all_trails:
        return account_result(inventory, False, "No CloudTrail trail exists: API activity is kept only in the "
                                                "90-day event history and not in any durable, queryable log.")
    return account_result(inventory, False, "No multi-region trail is logging all read and write management events: "
                                             + "; ".join(problems) + ".", problems=problems)


# --------------------------------------------------------------------------------------------------
# Per trail
# --------------------------------------------------------------------------------------------------

@resource_check("cloudtrail_trail_logging_active", CloudTrailTrail, requires={DESCRIBE, STATUS})
def cloudtrail_trail_logging_active(trail: CloudTrailTrail) -> Result:
    now = datetime.now(UTC)
    if not trail.is_logging:
        return failed(trail, f"Trail {trail.name} exists but its logging is stopped: it records nothing.")
    if trail.latest_delivery_error and not _fresh(trail.latest_delivery_time, now):
        return failed(trail, f"Trail {trail.name} is logging but cannot deliver log files to S3 bucket "
                             f"{trail.s3_bucket_name}: {trail.latest_delivery_error}.",
                      latest_delivery_error=trail.latest_delivery_error,
                      latest_delivery_time=str(trail.latest_delivery_time or ""))
    return passed(trail, f"Trail {trail.name} is logging and delivering to S3 bucket {trail.s3_bucket_name}.")


@resource_check("cloudtrail_log_file_validation_enabled", CloudTrailTrail, requires={DESCRIBE})
def cloudtrail_log_file_validation_enabled(trail: CloudTrailTrail) -> Result:
    if trail.log_file_validation:
        if trail.latest_digest_delivery_error:
            return failed(trail, f"Log file validation is on for trail {trail.name}, but digest files are not "
                                 f"being delivered: {trail.latest_digest_delivery_error}.",
                          latest_digest_delivery_error=trail.latest_digest_delivery_error)
        return passed(trail, f"Log file validation is enabled for trail {trail.name}.")
    return failed(trail, f"Log file validation is disabled for trail {trail.name}: altered or deleted log files "
                         "cannot be detected.")


@resource_check("cloudtrail_kms_encryption_enabled", CloudTrailTrail, requires={DESCRIBE})
def cloudtrail_kms_encryption_enabled(trail: CloudTrailTrail) -> Result:
    if trail.kms_key_id:
        return passed(trail, f"Trail {trail.name} encrypts its log files with KMS key {trail.kms_key_id}.",
                      kms_key_id=trail.kms_key_id)
    return failed(trail, f"Trail {trail.name} log files are encrypted only with SSE-S3: anyone who can read the "
                         "bucket can read them, without any key policy or key-use audit.")


@resource_check("cloudtrail_cloudwatch_logs_enabled", CloudTrailTrail, requires={DESCRIBE, STATUS})
def cloudtrail_cloudwatch_logs_enabled(trail: CloudTrailTrail) -> Result:
    if not trail.cloudwatch_log_group_arn:
        return failed(trail, f"Trail {trail.name} does not send events to CloudWatch Logs: no metric filter or "
                             "alarm can watch its activity in near real time.")
    details = {"log_group_arn": trail.cloudwatch_log_group_arn,
               "latest_delivery": str(trail.latest_cloudwatch_logs_delivery_time or "") or None}
    if not trail.is_logging:
        return failed(trail, f"Trail {trail.name} is configured for log group {trail.cloudwatch_log_group_arn} but its "
                             "logging is stopped: nothing is delivered.", **details)
    if not _fresh(trail.latest_cloudwatch_logs_delivery_time, datetime.now(UTC)):
        error = trail.latest_cloudwatch_logs_delivery_error
        when = (f"last on {trail.latest_cloudwatch_logs_delivery_time:%Y-%m-%d %H:%M} UTC"
                if trail.latest_cloudwatch_logs_delivery_time else "never")
        reason = f"; CloudTrail reports: {error}" if error else ""
        return failed(trail, f"Trail {trail.name} has delivered no events to CloudWatch Logs in the last 24 hours "
                             f"({when}){reason}.", delivery_error=error, **details)
    return passed(trail, f"Trail {trail.name} delivers events to CloudWatch Logs "
                         f"({trail.cloudwatch_log_group_arn}).", **details)


# --------------------------------------------------------------------------------------------------
# The trail buckets (read by the S3 collector)
# --------------------------------------------------------------------------------------------------

def _trail_buckets(inventory: Inventory) -> Iterator[tuple[S3Bucket, list[CloudTrailTrail]]]:
    """Each bucket of this account that receives a trail's log files, with those trails. Buckets of other
    accounts (a central log archive) are out of this account's reach and are not judged here."""
    by_name: dict[str, list[CloudTrailTrail]] = {}
    for trail in trails(inventory):
        if trail.s3_bucket_name:
            by_name.setdefault(trail.s3_bucket_name, []).append(trail)
    buckets = {b.resource_id: b for b in inventory.of(S3Bucket) if isinstance(b, S3Bucket)}
    for name in sorted(by_name):
        if name in buckets:
            yield buckets[name], by_name[name]


def _bucket_errors(inventory: Inventory, bucket: S3Bucket, actions: Iterable[str]) -> list[CollectionError]:
    return [e for e in inventory.errors_for(actions, bucket.region, bucket.resource_id) if e.resource_id]


@account_check("cloudtrail_bucket_access_logging_enabled",
               requires={DESCRIBE, *S3_LISTING, "s3:GetBucketLogging"})
def cloudtrail_bucket_access_logging_enabled(inventory: Inventory) -> Iterator[Result]:
    for bucket, users in _trail_buckets(inventory):
        names = ", ".join(t.name for t in users)
        errors = _bucket_errors(inventory, bucket, {"s3:GetBucketLogging", "s3:GetBucketLocation"})
        if errors:
            yield error_result(inventory, errors, region=bucket.region, resource_type=bucket.resource_type,
                               resource_id=bucket.resource_id, arn=bucket.arn, context=f"bucket {bucket.name}")
        elif bucket.logging_target:
            yield passed(bucket, f"CloudTrail bucket {bucket.name} (trail {names}) logs access requests to "
                                 f"bucket {bucket.logging_target}.", trails=[t.resource_id for t in users])
        else:
            yield failed(bucket, f"CloudTrail bucket {bucket.name} (trail {names}) has no server access logging: "
                                 "reads and deletions of the audit logs themselves leave no trace.",
                         trails=[t.resource_id for t in users])


@account_check("cloudtrail_bucket_not_public", requires={DESCRIBE, *S3_LISTING, *S3_PUBLIC})
def cloudtrail_bucket_not_public(inventory: Inventory) -> Iterator[Result]:
    for bucket, users in _trail_buckets(inventory):
        names = ", ".join(t.name for t in users)
        errors = _bucket_errors(inventory, bucket, S3_PUBLIC | {"s3:GetBucketLocation"})
        if errors:
            yield error_result(inventory, errors, region=bucket.region, resource_type=bucket.resource_type,
                               resource_id=bucket.resource_id, arn=bucket.arn, context=f"bucket {bucket.name}")
            continue
        verdict = s3_bucket_public_access(bucket)
        details = {**verdict.details, "trails": [t.resource_id for t in users]}
        if verdict.status == Status.FAIL:
            yield failed(bucket, f"CloudTrail bucket {bucket.name} (trail {names}) is publicly accessible: "
                                 f"{verdict.message}", **details)
        else:
            yield passed(bucket, f"CloudTrail bucket {bucket.name} (trail {names}) is not publicly accessible.",
                         **details)


# --------------------------------------------------------------------------------------------------
# S3 object-level logging (data events)
# --------------------------------------------------------------------------------------------------

def _object_logging(inventory: Inventory, write: bool) -> Result:
    kind = "write" if write else "read"
    covering: list[CloudTrailTrail] = []
    partial: dict[str, set[str]] = {}
    unknown: list[CollectionError] = []
    for trail in sorted(trails(inventory), key=lambda t: t.resource_id):
        errors = trail_errors(inventory, trail, (STATUS, SELECTORS))
        if errors:
            unknown += errors
            continue
        if not trail.is_logging:
            continue
        coverage = object_coverage(trail)
        everything = coverage.write_all if write else coverage.read_all
        some = coverage.write_buckets if write else coverage.read_buckets
        if everything and trail.is_multi_region:
            covering.append(trail)
        elif everything or some:
            partial[trail.name] = set(some) if some else {f"all buckets in {trail.home_region} only"}
    if covering:
        names = ", ".join(t.name for t in covering)
        return account_result(inventory, True, f"Multi-region trail(s) {names} log S3 object-level {kind} events "
                                               "for all buckets.", trails=[t.resource_id for t in covering])
    if unknown:
        return error_result(inventory, unknown, context="the status or event selectors of a trail")
    if partial:
        shown = "; ".join(f"{name}: {', '.join(sorted(b)[:5])}" for name, b in sorted(partial.items()))
        return account_result(inventory, False, f"S3 object-level {kind} events are logged only for some buckets "
                                                f"({shown}), not for every bucket in every region.",
                              partial={k: sorted(v) for k, v in partial.items()})
    return account_result(inventory, False, f"No logging trail records S3 object-level {kind} events (data events "
                                            f"for {S3_OBJECT}): who {'changed or deleted' if write else 'read'} "
                                            "which object cannot be established.")


@account_check("cloudtrail_s3_object_write_events_logged", requires=TRAIL_ACTIONS)
def cloudtrail_s3_object_write_events_logged(inventory: Inventory) -> Result:
    return _object_logging(inventory, write=True)


@account_check("cloudtrail_s3_object_read_events_logged", requires=TRAIL_ACTIONS)
def cloudtrail_s3_object_read_events_logged(inventory: Inventory) -> Result:
    return _object_logging(inventory, write=False)
