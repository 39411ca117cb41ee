"""EC2 and EBS checks end to end against the fake (moto): instances, volumes, snapshots, AMIs and EBS default
encryption; fixture inventories for states moto cannot represent; ERROR when a listing or detail call fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.scanners.ebs import EbsSnapshot, EbsVolume
from app.scanners.ec2 import Ec2Image, Ec2Instance, state_changed_at
from tests.compute_helpers import REGION, collect, evaluate_on, findings, new_vpc, scan, status, statuses, verdict

INSTANCE_CHECKS = {"ec2_instance_imdsv2_required", "ec2_instance_no_public_ip", "ec2_instance_profile_attached",
                   "ec2_instance_not_stopped_over_30_days", "ec2_instance_hvm_virtualization"}
AMI = "ami-12345678"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _instance(**fields) -> Ec2Instance:
    base = {"region": REGION, "resource_id": "i-0123456789abcdef0", "instance_id": "i-0123456789abcdef0",
            "arn": f"arn:aws:ec2:{REGION}:123456789012:instance/i-0123456789abcdef0", "state": "running",
            "observed_at": NOW}
    return Ec2Instance(**{**base, **fields})


async def test_instance_checks_pass_and_fail_on_moto(aws_fake):
    ec2 = aws_fake.client("ec2")
    iam = aws_fake.client("iam")
    iam.create_instance_profile(InstanceProfileName="app")
    private = new_vpc(aws_fake)
    # Hardened: IMDSv2 required, instance profile, private subnet without public address.
    good = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=private["subnet_id"],
                             MetadataOptions={"HttpTokens": "required"},
                             IamInstanceProfile={"Name": "app"})["Instances"][0]["InstanceId"]
    # Metadata service off entirely: IMDSv1 cannot be reached either.
    off = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=private["subnet_id"],
                            MetadataOptions={"HttpEndpoint": "disabled"})["Instances"][0]["InstanceId"]
    # moto's defaults, like an old launch: IMDSv1 allowed, public IP in the default VPC, no profile.
    bad = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    stopped = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[stopped])
    gone = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])

    out = await scan(INSTANCE_CHECKS)
    assert not out.errors
    imds = statuses(out, "ec2_instance_imdsv2_required")
    assert imds == {good: "PASS", off: "PASS", bad: "FAIL", stopped: "FAIL"}, "terminated instances are not judged"
    assert status(out, "ec2_instance_no_public_ip", good) == "PASS"
    assert status(out, "ec2_instance_no_public_ip", bad) == "FAIL"
    assert "public IPv4 address" in findings(out, "ec2_instance_no_public_ip", bad)[0].message
    assert status(out, "ec2_instance_profile_attached", good) == "PASS"
    assert status(out, "ec2_instance_profile_attached", bad) == "FAIL"
    # Just stopped: within the 30 days.
    assert status(out, "ec2_instance_not_stopped_over_30_days", stopped) == "PASS"
    assert status(out, "ec2_instance_not_stopped_over_30_days", good) == "PASS"
    # moto launches its test AMI as paravirtual.
    assert status(out, "ec2_instance_hvm_virtualization", bad) == "FAIL"
    finding = findings(out, "ec2_instance_imdsv2_required", bad)[0]
    assert finding.resource_arn == f"arn:aws:ec2:{REGION}:123456789012:instance/{bad}"
    assert finding.severity == "high" and finding.compliance["cis-aws-3.0"] == ["5.6"]


def test_stopped_instance_age_comes_from_the_transition_reason():
    assert state_changed_at("User initiated (2019-06-03 13:42:01 GMT)") == datetime(2019, 6, 3, 13, 42, 1, tzinfo=UTC)
    assert state_changed_at("User initiated (2026-11-27 22:13:28 UTC)") is not None
    assert state_changed_at("Server.SpotInstanceShutdown") is None
    long_ago = _instance(state="stopped", state_changed_at=NOW - timedelta(days=45))
    recent = _instance(state="stopped", state_changed_at=NOW - timedelta(days=29))
    unknown = _instance(state="stopped", state_changed_at=None)
    assert verdict("ec2_instance_not_stopped_over_30_days", long_ago) == "FAIL"
    assert verdict("ec2_instance_not_stopped_over_30_days", recent) == "PASS"
    assert verdict("ec2_instance_not_stopped_over_30_days", unknown) is None, "no date: no guessed verdict"


def test_instance_fixture_states_moto_cannot_make():
    assert verdict("ec2_instance_hvm_virtualization", _instance(virtualization_type="hvm")) == "PASS"
    assert verdict("ec2_instance_hvm_virtualization", _instance(virtualization_type="paravirtual")) == "FAIL"
    assert verdict("ec2_instance_hvm_virtualization", _instance(virtualization_type=None)) is None
    # HttpEndpoint disabled passes whatever HttpTokens says; "optional" with the endpoint on fails.
    off = _instance(http_tokens="optional", http_endpoint="disabled")
    on = _instance(http_tokens="optional", http_endpoint="enabled")
    assert verdict("ec2_instance_imdsv2_required", off) == "PASS"
    assert verdict("ec2_instance_imdsv2_required", on) == "FAIL"
    assert verdict("ec2_instance_no_public_ip", _instance(ipv6_addresses=["2600:1f18::1"])) == "PASS"


async def test_volume_snapshot_and_ami_checks_on_moto(aws_fake):
    ec2 = aws_fake.client("ec2")
    plain = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    sealed = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, Encrypted=True)["VolumeId"]
    public_snap = ec2.create_snapshot(VolumeId=plain)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=public_snap, Attribute="createVolumePermission",
                                  OperationType="add", GroupNames=["all"])
    shared_snap = ec2.create_snapshot(VolumeId=plain)["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=shared_snap, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=["444455556666"])
    sealed_snap = ec2.create_snapshot(VolumeId=sealed)["SnapshotId"]
    instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    private_ami = ec2.create_image(InstanceId=instance, Name="private")["ImageId"]
    public_ami = ec2.create_image(InstanceId=instance, Name="public")["ImageId"]
    ec2.modify_image_attribute(ImageId=public_ami, LaunchPermission={"Add": [{"Group": "all"}]})

    out = await scan({"ec2_ebs_volume_encrypted", "ec2_ebs_snapshot_encrypted", "ec2_ebs_snapshot_not_public",
                      "ec2_ami_not_public"})
    assert not out.errors
    volumes = statuses(out, "ec2_ebs_volume_encrypted")
    assert volumes[plain] == "FAIL" and volumes[sealed] == "PASS"
    snaps = statuses(out, "ec2_ebs_snapshot_encrypted")
    assert snaps[sealed_snap] == "PASS" and snaps[public_snap] == "FAIL"
    public = statuses(out, "ec2_ebs_snapshot_not_public")
    # Besides ours, the AMIs' backing snapshots (private) are listed.
    assert public.pop(public_snap) == "FAIL"
    assert public.pop(shared_snap) == "PASS", "sharing with one account is not public"
    assert set(public.values()) == {"PASS"}
    assert findings(out, "ec2_ebs_snapshot_not_public", public_snap)[0].resource_arn == (
        f"arn:aws:ec2:{REGION}::snapshot/{public_snap}")
    amis = statuses(out, "ec2_ami_not_public")
    assert amis == {private_ami: "PASS", public_ami: "FAIL"}


async def test_public_snapshots_are_confirmed_per_candidate_only(aws_fake):
    """Only snapshots the RestorableByUserIds=all listing names get a DescribeSnapshotAttribute call."""
    ec2 = aws_fake.client("ec2")
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    snaps = [ec2.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(3)]
    before = aws_fake.calls("ec2:DescribeSnapshotAttribute")
    inventory = await collect("ebs_snapshots")
    calls = aws_fake.calls("ec2:DescribeSnapshotAttribute") - before
    # moto ignores the RestorableByUserIds filter and lists every snapshot as a candidate; AWS lists only
    # public ones. Either way each candidate is confirmed once, never more.
    assert calls <= len(snaps)
    assert sorted(s.resource_id for s in inventory.of(EbsSnapshot)) == sorted(snaps)
    assert not any(s.public for s in inventory.of(EbsSnapshot))


async def test_ebs_default_encryption_passes_and_fails_per_region(aws_fake):
    aws_fake.client("ec2", "eu-west-1").enable_ebs_encryption_by_default()
    out = await scan({"ec2_ebs_default_encryption"}, regions=["us-east-1", "eu-west-1"])
    assert not out.errors
    by_region = {f.region: f.status for f in out.findings}
    assert by_region == {"us-east-1": "FAIL", "eu-west-1": "PASS"}
    assert [f.details["kms_key_id"] for f in out.findings if f.status == "PASS"] == ["alias/aws/ebs"]


def test_volume_and_snapshot_fixtures():
    volume = EbsVolume(region=REGION, resource_id="vol-1", volume_id="vol-1", encrypted=False,
                       attached_instance_ids=["i-1"])
    assert verdict("ec2_ebs_volume_encrypted", volume) == "FAIL"
    public = EbsSnapshot(region=REGION, resource_id="snap-1", snapshot_id="snap-1", encrypted=True, public=True)
    assert verdict("ec2_ebs_snapshot_not_public", public) == "FAIL"
    assert verdict("ec2_ebs_snapshot_encrypted", public) == "PASS"
    image = Ec2Image(region=REGION, resource_id="ami-1", image_id="ami-1", public=False)
    assert verdict("ec2_ami_not_public", image) == "PASS"


# --- ERROR: a failed call is never a PASS or FAIL ---------------------------------------------------------


@pytest.mark.parametrize(("operation", "check_id", "other_check_id"), [
    ("DescribeInstances", "ec2_instance_imdsv2_required", "ec2_ebs_default_encryption"),
    ("DescribeImages", "ec2_ami_not_public", "ec2_ebs_default_encryption"),
    ("DescribeVolumes", "ec2_ebs_volume_encrypted", "ec2_ebs_default_encryption"),
    ("DescribeSnapshots", "ec2_ebs_snapshot_encrypted", "ec2_ebs_volume_encrypted"),
    ("GetEbsEncryptionByDefault", "ec2_ebs_default_encryption", "ec2_ebs_volume_encrypted"),
])
async def test_denied_listing_reports_error_for_that_region_only(aws_fake, operation, check_id, other_check_id):
    ec2 = aws_fake.client("ec2")
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    ec2.create_snapshot(VolumeId=volume)
    aws_fake.configure(deny=[{"service": "ec2", "operation": operation, "region": REGION}])
    out = await scan({check_id, other_check_id}, regions=[REGION, "eu-west-1"])
    denied = [f for f in findings(out, check_id) if f.region == REGION]
    assert denied and {f.status for f in denied} == {"ERROR"}
    assert f"ec2:{operation} failed" in denied[0].message
    assert all(f.status != "ERROR" for f in findings(out, check_id) if f.region == "eu-west-1")
    # A check fed by other calls still judges the denied region.
    others = [f for f in findings(out, other_check_id) if f.region == REGION]
    assert others and all(f.status in ("PASS", "FAIL") for f in others)


async def test_denied_snapshot_attribute_errors_only_that_snapshot(aws_fake):
    ec2 = aws_fake.client("ec2")
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    snaps = [ec2.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(3)]
    for sid in snaps:
        ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType="add",
                                      GroupNames=["all"])
    aws_fake.configure(deny=[{"service": "ec2", "operation": "DescribeSnapshotAttribute", "count": 1}])
    out = await scan({"ec2_ebs_snapshot_not_public", "ec2_ebs_snapshot_encrypted"})
    public = statuses(out, "ec2_ebs_snapshot_not_public")
    assert sorted(public.values()) == ["ERROR", "FAIL", "FAIL"]
    errored = next(sid for sid, s in public.items() if s == "ERROR")
    assert "ec2:DescribeSnapshotAttribute" in findings(out, "ec2_ebs_snapshot_not_public", errored)[0].message
    # The encryption verdict does not depend on the failed call.
    assert set(statuses(out, "ec2_ebs_snapshot_encrypted").values()) == {"FAIL"}


async def test_denied_default_kms_key_keeps_the_encryption_verdict(aws_fake):
    aws_fake.client("ec2").enable_ebs_encryption_by_default()
    aws_fake.configure(deny=[{"service": "ec2", "operation": "GetEbsDefaultKmsKeyId"}])
    out = await scan({"ec2_ebs_default_encryption"})
    assert [(f.status, f.details.get("kms_key_id")) for f in out.findings] == [("PASS", None)]
    assert [e.action for e in out.errors] == ["ec2:GetEbsDefaultKmsKeyId"]


def test_fixture_detail_error_marks_one_resource():
    from app.scanners.base import CollectionError

    a = EbsSnapshot(region=REGION, resource_id="snap-a", snapshot_id="snap-a")
    b = EbsSnapshot(region=REGION, resource_id="snap-b", snapshot_id="snap-b")
    error = CollectionError(service="ec2", action="ec2:DescribeSnapshotAttribute", region=REGION,
                            resource_id="snap-a", code="AccessDenied", message="denied")
    results = {r.resource_id: r.status.value for r in evaluate_on("ec2_ebs_snapshot_not_public", a, b, errors=[error])}
    assert results == {"snap-a": "ERROR", "snap-b": "PASS"}
