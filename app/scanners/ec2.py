"""EC2 per region: instances (metadata options, public addresses, instance profile, state) and the AMIs the
account owns (public or not). One paginated Describe* call each; user data is never read."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.scanners.base import Collector, CollectorContext, Resource, register

PAGE = {"PageSize": 1000}
# Instances in these states are gone or going; they stay in DescribeInstances for about an hour.
GONE_STATES = frozenset({"terminated", "shutting-down"})
# "User initiated (2019-06-03 13:42:01 GMT)": the only place the API gives the time an instance stopped.
_TRANSITION_TIME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")


class Ec2Instance(Resource):
    resource_type = "AwsEc2Instance"
    instance_id: str
    instance_type: str | None = None
    state: str
    image_id: str | None = None
    vpc_id: str | None = None
    subnet_id: str | None = None
    launch_time: datetime | None = None
    public_ip: str | None = None
    ipv6_addresses: list[str] = []
    iam_instance_profile_arn: str | None = None
    http_tokens: str | None = None          # MetadataOptions.HttpTokens: optional | required
    http_endpoint: str | None = None        # MetadataOptions.HttpEndpoint: enabled | disabled
    http_put_response_hop_limit: int | None = None
    virtualization_type: str | None = None  # hvm | paravirtual
    state_transition_reason: str | None = None
    state_changed_at: datetime | None = None  # when the last state transition happened, if AWS says
    security_group_ids: list[str] = []
    observed_at: datetime                   # when it was read: the reference time for age checks


class Ec2Image(Resource):
    resource_type = "AwsEc2Image"
    image_id: str
    name: str | None = None
    state: str | None = None
    public: bool = False
    creation_date: str | None = None


def state_changed_at(reason: str | None) -> datetime | None:
    match = _TRANSITION_TIME.search(reason or "")
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags") or [] if "Key" in t}


def _instance(ctx: CollectorContext, owner: str, item: dict[str, Any], observed_at: datetime) -> Ec2Instance:
    instance_id = item["InstanceId"]
    metadata = item.get("MetadataOptions") or {}
    ipv6 = [a["Ipv6Address"] for ni in item.get("NetworkInterfaces") or []
            for a in ni.get("Ipv6Addresses") or [] if a.get("Ipv6Address")]
    reason = item.get("StateTransitionReason") or None
    return Ec2Instance(
        region=ctx.region, resource_id=instance_id,
        arn=f"arn:{ctx.partition}:ec2:{ctx.region}:{owner}:instance/{instance_id}", tags=_tags(item),
        instance_id=instance_id, instance_type=item.get("InstanceType"),
        state=(item.get("State") or {}).get("Name", "unknown"), image_id=item.get("ImageId"),
        vpc_id=item.get("VpcId"), subnet_id=item.get("SubnetId"), launch_time=item.get("LaunchTime"),
        public_ip=item.get("PublicIpAddress"), ipv6_addresses=ipv6,
        iam_instance_profile_arn=(item.get("IamInstanceProfile") or {}).get("Arn"),
        http_tokens=metadata.get("HttpTokens"), http_endpoint=metadata.get("HttpEndpoint"),
        http_put_response_hop_limit=metadata.get("HttpPutResponseHopLimit"),
        virtualization_type=item.get("VirtualizationType"), state_transition_reason=reason,
        state_changed_at=state_changed_at(reason),
        security_group_ids=[g["GroupId"] for g in item.get("SecurityGroups") or [] if g.get("GroupId")],
        observed_at=observed_at)


@register
class InstanceCollector(Collector):
    name = "ec2_instances"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeInstances"})

    async def collect(self, ctx: CollectorContext) -> None:
        async for page in ctx.pages("ec2", "DescribeInstances", PaginationConfig=PAGE):
            observed_at = datetime.now(UTC)
            for reservation in page.get("Reservations", []):
                owner = reservation.get("OwnerId") or ctx.account_id
                for item in reservation.get("Instances", []):
                    if (item.get("State") or {}).get("Name") in GONE_STATES:
                        continue
                    ctx.add(_instance(ctx, owner, item, observed_at))


@register
class ImageCollector(Collector):
    name = "ec2_images"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeImages"})

    async def collect(self, ctx: CollectorContext) -> None:
        # Owners=self: only the account's own AMIs (the owner sees its deprecated AMIs too); public AMIs of
        # others are not the account's exposure.
        async for page in ctx.pages("ec2", "DescribeImages", Owners=["self"], PaginationConfig=PAGE):
            for image in page.get("Images", []):
                image_id = image["ImageId"]
                ctx.add(Ec2Image(
                    region=ctx.region, resource_id=image_id,
                    arn=f"arn:{ctx.partition}:ec2:{ctx.region}::image/{image_id}", tags=_tags(image),
                    image_id=image_id, name=image.get("Name"), state=image.get("State"),
                    public=bool(image.get("Public")), creation_date=image.get("CreationDate")))
