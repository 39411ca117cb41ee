"""Secrets Manager checks: automatic rotation, public resource policies and unused secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.checks.base import Result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.secretsmanager import SecretsManagerSecret

UNUSED_AFTER = timedelta(days=90)
ROTATE_WITHIN = timedelta(days=90)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@resource_check("secretsmanager_secret_rotation_enabled", SecretsManagerSecret,
                requires={"secretsmanager:ListSecrets"})
def secretsmanager_secret_rotation_enabled(secret: SecretsManagerSecret) -> Result:
    if secret.rotation_enabled:
        every = f" every {secret.rotation_days} days" if secret.rotation_days else ""
        return passed(secret, f"Secret {secret.name} rotates automatically{every}.", rotation_days=secret.rotation_days)
    return failed(secret, f"Automatic rotation is off for secret {secret.name}: a leaked value stays valid until "
                          "someone changes it by hand.")


@resource_check("secretsmanager_secret_not_public", SecretsManagerSecret,
                requires={"secretsmanager:ListSecrets", "secretsmanager:GetResourcePolicy"})
def secretsmanager_secret_not_public(secret: SecretsManagerSecret) -> Result:
    public = public_statements(secret.policy)
    if public:
        return failed(secret, f"The resource policy of secret {secret.name} grants access to anyone without a "
                              "limiting condition.", statements=[summarize(s) for s in public])
    return passed(secret, f"The resource policy of secret {secret.name} grants no public access."
                  if secret.policy else f"Secret {secret.name} has no resource policy.")


@resource_check("secretsmanager_secret_unused", SecretsManagerSecret, requires={"secretsmanager:ListSecrets"})
def secretsmanager_secret_unused(secret: SecretsManagerSecret) -> Result:
    now = datetime.now(UTC)
    if secret.last_accessed is not None:
        idle = now - _aware(secret.last_accessed)
        if idle > UNUSED_AFTER:
            return failed(secret, f"Secret {secret.name} was last accessed {idle.days} days ago.",
                          last_accessed=secret.last_accessed.isoformat())
        return passed(secret, f"Secret {secret.name} was accessed within the last {UNUSED_AFTER.days} days.",
                      last_accessed=secret.last_accessed.isoformat())
    if secret.created is not None and now - _aware(secret.created) > UNUSED_AFTER:
        return failed(secret, f"Secret {secret.name} has never been accessed since it was created "
                              f"{(now - _aware(secret.created)).days} days ago.")
    return passed(secret, f"Secret {secret.name} is younger than {UNUSED_AFTER.days} days.")


@resource_check("secretsmanager_secret_rotated_90_days", SecretsManagerSecret, requires={"secretsmanager:ListSecrets"})
def secretsmanager_secret_rotated_90_days(secret: SecretsManagerSecret) -> Result:
    now = datetime.now(UTC)
    if secret.last_rotated is not None:
        age = now - _aware(secret.last_rotated)
        if age > ROTATE_WITHIN:
            return failed(secret, f"Secret {secret.name} was last rotated {age.days} days ago.",
                          last_rotated=secret.last_rotated.isoformat())
        return passed(secret, f"Secret {secret.name} was rotated {age.days} days ago.",
                      last_rotated=secret.last_rotated.isoformat())
    if secret.created is not None and now - _aware(secret.created) > ROTATE_WITHIN:
        return failed(secret, f"Secret {secret.name} has never been rotated since it was created "
                              f"{(now - _aware(secret.created)).days} days ago.")
    return passed(secret, f"Secret {secret.name} is younger than {ROTATE_WITHIN.days} days.")
