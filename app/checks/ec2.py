"""EC2 and EBS checks."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.ebs import EbsEncryptionDefault


@resource_check("ec2_ebs_default_encryption", EbsEncryptionDefault, requires={"ec2:GetEbsEncryptionByDefault"})
def ec2_ebs_default_encryption(setting: EbsEncryptionDefault) -> Result:
    if setting.enabled:
        return passed(setting, f"EBS encryption by default is enabled in {setting.region}.",
                      kms_key_id=setting.kms_key_id)
    return failed(setting, f"EBS encryption by default is disabled in {setting.region}: new volumes and "
                           "snapshot copies can be created unencrypted.")
