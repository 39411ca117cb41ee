"""KMS checks on customer managed keys: rotation, public key policies, keys scheduled for deletion."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.kms import KmsKey

DESCRIBED = frozenset({"kms:ListKeys", "kms:DescribeKey"})


def _name(key: KmsKey) -> str:
    return f"{key.resource_id} ({', '.join(key.aliases)})" if key.aliases else key.resource_id


@resource_check("kms_key_rotation_enabled", KmsKey, requires=DESCRIBED | {"kms:GetKeyRotationStatus"})
def kms_key_rotation_enabled(key: KmsKey) -> Result | None:
    if not key.rotation_applies:
        return None  # asymmetric, HMAC, imported, custom key store, disabled or pending deletion
    if key.rotation_enabled:
        return passed(key, f"Automatic rotation is enabled for KMS key {_name(key)}.")
    return failed(key, f"Automatic rotation is off for customer managed KMS key {_name(key)}.")


@resource_check("kms_key_policy_not_public", KmsKey, requires=DESCRIBED | {"kms:GetKeyPolicy"})
def kms_key_policy_not_public(key: KmsKey) -> Result:
    public = public_statements(key.policy)
    if public:
        return failed(key, f"The key policy of KMS key {_name(key)} grants access to anyone without a limiting "
                           "condition.", statements=[summarize(s) for s in public])
    return passed(key, f"The key policy of KMS key {_name(key)} grants no public access.")


@resource_check("kms_key_pending_deletion", KmsKey, requires=DESCRIBED)
def kms_key_pending_deletion(key: KmsKey) -> Result:
    if key.key_state in ("PendingDeletion", "PendingReplicaDeletion"):
        when = key.deletion_date.isoformat() if key.deletion_date else "soon"
        return failed(key, f"KMS key {_name(key)} is scheduled for deletion on {when}: data encrypted under it "
                           "becomes unreadable; cancel the deletion if it is still in use.",
                      deletion_date=when)
    return passed(key, f"KMS key {_name(key)} is not scheduled for deletion.", key_state=key.key_state)
