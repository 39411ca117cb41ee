"""S3 checks: Block Public Access, public policies and ACLs, encryption at rest and in transit, versioning,
MFA delete, access logging, ACL use and lifecycle rules."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from app.checks.base import Result, account_check, account_result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.base import Inventory
from app.scanners.s3 import PUBLIC_GRANTEES, PublicAccessBlock, S3AccountPublicAccessBlock, S3Bucket

LISTED = frozenset({"s3:ListAllMyBuckets", "s3:GetBucketLocation"})
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
BPA_SWITCHES = tuple(PublicAccessBlock.model_fields)


def _needs(*actions: str) -> frozenset[str]:
    return LISTED | frozenset(actions)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(body, value, re.IGNORECASE if ignore_case else 0) is not None


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))


def _denies_insecure_transport(bucket: S3Bucket) -> bool:
    """A Deny for everyone on the bucket's objects when aws:SecureTransport is false."""
    statements = _as_list((bucket.policy or {}).get("Statement"))
    objects = f"{bucket.arn}/any-object"
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Deny" or not _everyone(st.get("Principal")):
            continue
        if not any(isinstance(a, str) and _wildcard_match(a, "s3:GetObject", ignore_case=True)
                   for a in _as_list(st.get("Action"))):
            continue
        if not any(isinstance(r, str) and _wildcard_match(r, objects) for r in _as_list(st.get("Resource"))):
            continue
        condition = st.get("Condition") or {}
        for operator in ("Bool", "BoolIfExists"):
            tests = {k.lower(): v for k, v in (condition.get(operator) or {}).items()}
            if any(str(v).lower() == "false" for v in _as_list(tests.get("aws:securetransport"))):
                return True
    return False


def _public_grants(bucket: S3Bucket) -> list[dict[str, str]]:
    if bucket.acls_disabled or not bucket.acl_grants:
        return []
    return [{"grantee": g.grantee or "", "permission": g.permission}
            for g in bucket.acl_grants if g.grantee in PUBLIC_GRANTEES]


def _effective_block(bucket: S3Bucket) -> dict[str, str | None]:
    """For each switch: "bucket", "account" (where it is on) or None (off at both levels)."""
    out: dict[str, str | None] = {}
    for switch in BPA_SWITCHES:
        if bucket.public_access_block and getattr(bucket.public_access_block, switch):
            out[switch] = "bucket"
        elif bucket.account_public_access_block and getattr(bucket.account_public_access_block, switch):
            out[switch] = "account"
        else:
            out[switch] = None
    return out


@account_check("s3_account_public_access_block", requires={"s3:GetAccountPublicAccessBlock"})
def s3_account_public_access_block(inventory: Inventory) -> Iterable[Result]:
    for setting in inventory.of(S3AccountPublicAccessBlock):
        assert isinstance(setting, S3AccountPublicAccessBlock)
        kwargs = {"resource_type": setting.resource_type, "resource_id": setting.resource_id, "arn": setting.arn}
        if setting.configuration is None:
            yield account_result(inventory, False, "S3 Block Public Access is not configured at the account level: "
                                 "each bucket relies on its own settings.", **kwargs)
            continue
        off = setting.configuration.disabled()
        if off:
            yield account_result(inventory, False, "S3 Block Public Access at the account level is only partly on; "
                                 f"off: {', '.join(off)}.", disabled=off, **kwargs)
        else:
            yield account_result(inventory, True, "All four S3 Block Public Access settings are on for the account.",
                                 **kwargs)


@resource_check("s3_bucket_block_public_access", S3Bucket,
                requires=_needs("s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock"))
def s3_bucket_block_public_access(bucket: S3Bucket) -> Result:
    effective = _effective_block(bucket)
    off = [switch for switch, where in effective.items() if where is None]
    if off:
        return failed(bucket, f"Block Public Access is not fully on for bucket {bucket.name} (neither at bucket nor "
                              f"account level): {', '.join(off)}.", disabled=off, effective=effective)
    return passed(bucket, f"All four Block Public Access settings apply to bucket {bucket.name}.", effective=effective)


@resource_check("s3_bucket_default_encryption", S3Bucket, requires=_needs("s3:GetEncryptionConfiguration"))
def s3_bucket_default_encryption(bucket: S3Bucket) -> Result:
    if bucket.encryption_algorithm:
        return passed(bucket, f"Bucket {bucket.name} encrypts new objects by default ({bucket.encryption_algorithm}).",
                      algorithm=bucket.encryption_algorithm)
    return failed(bucket, f"Bucket {bucket.name} has no default encryption configuration: objects uploaded "
                          "without encryption headers are stored unencrypted.")


@resource_check("s3_bucket_kms_encryption", S3Bucket, requires=_needs("s3:GetEncryptionConfiguration"))
def s3_bucket_kms_encryption(bucket: S3Bucket) -> Result:
    if bucket.encryption_algorithm in KMS_ALGORITHMS:
        return passed(bucket, f"Bucket {bucket.name} encrypts by default with AWS KMS ({bucket.encryption_algorithm}).",
                      kms_key_id=bucket.kms_key_id, bucket_key_enabled=bucket.bucket_key_enabled)
    current = bucket.encryption_algorithm or "none"
    return failed(bucket, f"Bucket {bucket.name} does not use SSE-KMS by default (current: {current}): key use "
                          "is neither access-controlled by a key policy nor logged in CloudTrail.",
                  algorithm=bucket.encryption_algorithm)


@resource_check("s3_bucket_secure_transport", S3Bucket, requires=_needs("s3:GetBucketPolicy"))
def s3_bucket_secure_transport(bucket: S3Bucket) -> Result:
    if _denies_insecure_transport(bucket):
        return passed(bucket, f"The policy of bucket {bucket.name} denies requests not sent over TLS.")
    reason = "has no bucket policy" if bucket.policy is None else "has a policy without a Deny on aws:SecureTransport"
    return failed(bucket, f"Bucket {bucket.name} {reason}: it accepts plain HTTP requests.")


@resource_check("s3_bucket_policy_not_public", S3Bucket, requires=_needs("s3:GetBucketPolicy"))
def s3_bucket_policy_not_public(bucket: S3Bucket) -> Result:
    public = public_statements(bucket.policy)
    if public:
        return failed(bucket, f"The policy of bucket {bucket.name} grants access to anyone in {len(public)} "
                              "statement(s) without a limiting condition.",
                      statements=[summarize(s) for s in public])
    return passed(bucket, f"The policy of bucket {bucket.name} grants no public access."
                  if bucket.policy else f"Bucket {bucket.name} has no bucket policy.")


@resource_check("s3_bucket_acl_not_public", S3Bucket,
                requires=_needs("s3:GetBucketOwnershipControls", "s3:GetBucketAcl"))
def s3_bucket_acl_not_public(bucket: S3Bucket) -> Result:
    if bucket.acls_disabled:
        return passed(bucket, f"ACLs are disabled on bucket {bucket.name} (BucketOwnerEnforced): they grant nothing.")
    grants = _public_grants(bucket)
    if grants:
        return failed(bucket, f"The ACL of bucket {bucket.name} grants access to AllUsers or AuthenticatedUsers.",
                      grants=grants)
    return passed(bucket, f"The ACL of bucket {bucket.name} grants nothing to AllUsers or AuthenticatedUsers.")


@resource_check("s3_bucket_public_access", S3Bucket,
                requires=_needs("s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketOwnershipControls",
                                "s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock"))
def s3_bucket_public_access(bucket: S3Bucket) -> Result:
    effective = _effective_block(bucket)
    policy_public = public_statements(bucket.policy)
    acl_public = _public_grants(bucket)
    exposed_by: list[str] = []
    if policy_public and effective["restrict_public_buckets"] is None:
        exposed_by.append("bucket policy")
    if acl_public and effective["ignore_public_acls"] is None:
        exposed_by.append("bucket ACL")
    details = {"public_policy_statements": [summarize(s) for s in policy_public], "public_acl_grants": acl_public,
               "block_public_access": effective}
    if exposed_by:
        return failed(bucket, f"Bucket {bucket.name} is public through its {' and '.join(exposed_by)}, and Block "
                              "Public Access does not neutralize it.", exposed_by=exposed_by, **details)
    if policy_public or acl_public:
        return passed(bucket, f"Bucket {bucket.name} has public grants, but Block Public Access "
                              "(RestrictPublicBuckets / IgnorePublicAcls) neutralizes them.", **details)
    return passed(bucket, f"Neither the policy nor the ACL of bucket {bucket.name} grants public access.", **details)


@resource_check("s3_bucket_versioning_enabled", S3Bucket, requires=_needs("s3:GetBucketVersioning"))
def s3_bucket_versioning_enabled(bucket: S3Bucket) -> Result:
    if bucket.versioning == "Enabled":
        return passed(bucket, f"Versioning is enabled on bucket {bucket.name}.")
    state = (bucket.versioning or "never enabled").lower()
    return failed(bucket, f"Versioning is {state} on bucket {bucket.name}: overwritten or deleted objects "
                          "cannot be recovered.", versioning=bucket.versioning)


@resource_check("s3_bucket_mfa_delete", S3Bucket, requires=_needs("s3:GetBucketVersioning"))
def s3_bucket_mfa_delete(bucket: S3Bucket) -> Result:
    if bucket.versioning == "Enabled" and bucket.mfa_delete:
        return passed(bucket, f"MFA delete is enabled on bucket {bucket.name}.")
    if bucket.versioning != "Enabled":
        return failed(bucket, f"MFA delete is off on bucket {bucket.name} (versioning is not enabled, which MFA "
                              "delete requires).", versioning=bucket.versioning)
    return failed(bucket, f"MFA delete is off on bucket {bucket.name}: object versions can be deleted and versioning "
                          "suspended without a second factor.")


@resource_check("s3_bucket_access_logging", S3Bucket, requires=_needs("s3:GetBucketLogging"))
def s3_bucket_access_logging(bucket: S3Bucket) -> Result:
    if bucket.logging_target:
        return passed(bucket, f"Server access logging of bucket {bucket.name} is delivered to "
                              f"{bucket.logging_target}.", target_bucket=bucket.logging_target)
    return failed(bucket, f"Server access logging is off for bucket {bucket.name}.")


@resource_check("s3_bucket_acls_not_used", S3Bucket,
                requires=_needs("s3:GetBucketOwnershipControls", "s3:GetBucketAcl"))
def s3_bucket_acls_not_used(bucket: S3Bucket) -> Result:
    if bucket.acls_disabled:
        return passed(bucket, f"ACLs are disabled on bucket {bucket.name} (object ownership BucketOwnerEnforced).")
    others = [g for g in bucket.acl_grants or [] if not (g.grantee_type == "CanonicalUser"
                                                        and g.grantee == bucket.owner_id)]
    ownership = bucket.object_ownership or "not configured (ObjectWriter)"
    if others:
        return failed(bucket, f"The ACL of bucket {bucket.name} grants access to {len(others)} grantee(s) besides the "
                              f"owner; object ownership is {ownership}.",
                      grants=[g.model_dump() for g in others], object_ownership=bucket.object_ownership)
    return passed(bucket, f"The ACL of bucket {bucket.name} grants only its owner; ACLs are still enabled "
                          f"(object ownership {ownership}), consider BucketOwnerEnforced.",
                  object_ownership=bucket.object_ownership)


@resource_check("s3_bucket_lifecycle_configured", S3Bucket, requires=_needs("s3:GetLifecycleConfiguration"))
def s3_bucket_lifecycle_configured(bucket: S3Bucket) -> Result:
    if bucket.lifecycle_rules_enabled:
        return passed(bucket, f"Bucket {bucket.name} has {bucket.lifecycle_rules_enabled} enabled lifecycle rule(s).")
    return failed(bucket, f"Bucket {bucket.name} has no enabled lifecycle rule: data (and old versions) are kept "
                          "forever unless deleted by hand.")
