"""EC2 and EBS checks: encryption of volumes and snapshots, public snapshots and AMIs, instance settings."""

from __future__ import annotations

from datetime import timedelta

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.ebs import EbsEncryptionDefault, EbsSnapshot, EbsVolume
from app.scanners.ec2 import Ec2Image, Ec2Instance

INSTANCES = {"ec2:DescribeInstances"}
STOPPED_LIMIT = timedelta(days=30)   # Security Hub EC2.4's default


@resource_check("ec2_ebs_default_encryption", EbsEncryptionDefault, requires={"ec2:GetEbsEncryptionByDefault"})
def ec2_ebs_default_encryption(setting: EbsEncryptionDefault) -> Result:
    if setting.enabled:
        return passed(setting, f"EBS encryption by default is enabled in {setting.region}.",
                      kms_key_id=setting.kms_key_id)
    return failed(setting, f"EBS encryption by default is disabled in {setting.region}: new volumes and "
                           "snapshot copies can be created unencrypted.")


@resource_check("ec2_ebs_volume_encrypted", EbsVolume, requires={"ec2:DescribeVolumes"})
def ec2_ebs_volume_encrypted(volume: EbsVolume) -> Result:
    where = f"attached to {', '.join(volume.attached_instance_ids)}" if volume.attached_instance_ids else "unattached"
    if volume.encrypted:
        return passed(volume, f"EBS volume {volume.volume_id} ({where}) is encrypted.", kms_key_id=volume.kms_key_id)
    return failed(volume, f"EBS volume {volume.volume_id} ({where}) is not encrypted.",
                  attached_instance_ids=volume.attached_instance_ids)


@resource_check("ec2_ebs_snapshot_encrypted", EbsSnapshot, requires={"ec2:DescribeSnapshots"})
def ec2_ebs_snapshot_encrypted(snapshot: EbsSnapshot) -> Result:
    if snapshot.encrypted:
        return passed(snapshot, f"EBS snapshot {snapshot.snapshot_id} is encrypted.", kms_key_id=snapshot.kms_key_id)
    return failed(snapshot, f"EBS snapshot {snapshot.snapshot_id} (of {snapshot.volume_id or 'an unknown volume'}) "
                            "is not encrypted.")


@resource_check("ec2_ebs_snapshot_not_public", EbsSnapshot,
                requires={"ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute"})
def ec2_ebs_snapshot_not_public(snapshot: EbsSnapshot) -> Result:
    if snapshot.public:
        return failed(snapshot, f"EBS snapshot {snapshot.snapshot_id} is public: any AWS account can create a "
                                "volume from it and read its data.", encrypted=snapshot.encrypted)
    return passed(snapshot, f"EBS snapshot {snapshot.snapshot_id} is not public.")


@resource_check("ec2_ami_not_public", Ec2Image, requires={"ec2:DescribeImages"})
def ec2_ami_not_public(image: Ec2Image) -> Result:
    label = f"{image.image_id} ({image.name})" if image.name else image.image_id
    if image.public:
        return failed(image, f"AMI {label} is public: any AWS account can launch it and read its disks.")
    return passed(image, f"AMI {label} is private.")


def _label(instance: Ec2Instance) -> str:
    name = instance.tags.get("Name")
    return f"{instance.instance_id} ({name})" if name else instance.instance_id


@resource_check("ec2_instance_imdsv2_required", Ec2Instance, requires=INSTANCES)
def ec2_instance_imdsv2_required(instance: Ec2Instance) -> Result:
    if instance.http_endpoint == "disabled":
        return passed(instance, f"Instance {_label(instance)} has the instance metadata service turned off.")
    if instance.http_tokens == "required":
        return passed(instance, f"Instance {_label(instance)} requires IMDSv2 session tokens.",
                      hop_limit=instance.http_put_response_hop_limit)
    return failed(instance, f"Instance {_label(instance)} accepts IMDSv1 requests (HttpTokens is "
                            f"{instance.http_tokens or 'not set'}): a server-side request forgery can read its role "
                            "credentials.", http_tokens=instance.http_tokens)


@resource_check("ec2_instance_no_public_ip", Ec2Instance, requires=INSTANCES)
def ec2_instance_no_public_ip(instance: Ec2Instance) -> Result:
    if instance.public_ip:
        return failed(instance, f"Instance {_label(instance)} has the public IPv4 address {instance.public_ip}.",
                      public_ip=instance.public_ip, state=instance.state)
    return passed(instance, f"Instance {_label(instance)} has no public IPv4 address.",
                  ipv6_addresses=instance.ipv6_addresses)


@resource_check("ec2_instance_profile_attached", Ec2Instance, requires=INSTANCES)
def ec2_instance_profile_attached(instance: Ec2Instance) -> Result:
    if instance.iam_instance_profile_arn:
        return passed(instance, f"Instance {_label(instance)} uses the instance profile "
                                f"{instance.iam_instance_profile_arn}.")
    return failed(instance, f"Instance {_label(instance)} has no IAM instance profile: software on it that calls AWS "
                            "needs long-lived access keys instead of role credentials.")


@resource_check("ec2_instance_not_stopped_over_30_days", Ec2Instance, requires=INSTANCES)
def ec2_instance_not_stopped_over_30_days(instance: Ec2Instance) -> Result | None:
    if instance.state not in ("stopped", "stopping"):
        return passed(instance, f"Instance {_label(instance)} is {instance.state}.")
    if instance.state_changed_at is None:
        # AWS gives the stop time only inside the transition reason; without it the age is unknown.
        return None
    stopped_for = instance.observed_at - instance.state_changed_at
    days = stopped_for.days
    if stopped_for > STOPPED_LIMIT:
        return failed(instance, f"Instance {_label(instance)} has been stopped for {days} days (since "
                                f"{instance.state_changed_at:%Y-%m-%d}).", stopped_since=instance.state_changed_at)
    return passed(instance, f"Instance {_label(instance)} was stopped {days} day(s) ago.",
                  stopped_since=instance.state_changed_at)


@resource_check("ec2_instance_hvm_virtualization", Ec2Instance, requires=INSTANCES)
def ec2_instance_hvm_virtualization(instance: Ec2Instance) -> Result | None:
    if instance.virtualization_type is None:
        return None
    if instance.virtualization_type == "paravirtual":
        return failed(instance, f"Instance {_label(instance)} uses paravirtual (PV) virtualization, which current "
                                "instance types and security features no longer support.")
    return passed(instance, f"Instance {_label(instance)} uses {instance.virtualization_type} virtualization.")
