"""VPC networking per region: security groups, network ACLs, subnets and the VPCs themselves.

Each is one paginated Describe* call per region (large pages, no per-resource calls): the list answers carry
every rule, entry and flag the checks read. Rules are kept as AWS states them (protocol names or numbers,
port ranges, CIDRs, prefix lists); deciding what is open to the internet is the checks' job.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.scanners.base import Collector, CollectorContext, Resource, register

PAGE = {"PageSize": 1000}   # the largest page these EC2 Describe* calls accept


class SecurityGroupRule(BaseModel):
    """One IpPermission: a protocol and port range opened to CIDRs, prefix lists and other groups."""

    protocol: str                    # "-1" (all), "tcp", "udp", "icmp", "icmpv6" or an IP protocol number
    from_port: int | None = None     # None with protocol -1; -1 for "all ICMP types"
    to_port: int | None = None
    ipv4_ranges: list[str] = []
    ipv6_ranges: list[str] = []
    prefix_list_ids: list[str] = []
    group_ids: list[str] = []

    @classmethod
    def from_api(cls, permission: dict[str, Any]) -> SecurityGroupRule:
        return cls(
            protocol=str(permission.get("IpProtocol", "-1")).lower(),
            from_port=permission.get("FromPort"), to_port=permission.get("ToPort"),
            ipv4_ranges=[r["CidrIp"] for r in permission.get("IpRanges") or [] if r.get("CidrIp")],
            ipv6_ranges=[r["CidrIpv6"] for r in permission.get("Ipv6Ranges") or [] if r.get("CidrIpv6")],
            prefix_list_ids=[p["PrefixListId"] for p in permission.get("PrefixListIds") or []
                             if p.get("PrefixListId")],
            group_ids=[g["GroupId"] for g in permission.get("UserIdGroupPairs") or [] if g.get("GroupId")],
        )


class SecurityGroup(Resource):
    resource_type = "AwsEc2SecurityGroup"
    group_id: str
    group_name: str
    vpc_id: str | None = None
    owner_id: str | None = None
    ingress: list[SecurityGroupRule] = []
    egress: list[SecurityGroupRule] = []

    @property
    def is_default(self) -> bool:
        # Every VPC has exactly one group named "default"; it cannot be renamed, and no other group may
        # take the name.
        return self.group_name == "default"


class NetworkAclEntry(BaseModel):
    rule_number: int
    egress: bool
    protocol: str                    # "-1" (all) or an IP protocol number: "6" tcp, "17" udp, "1" icmp, "58" icmpv6
    action: str                      # allow | deny
    cidr: str | None = None          # IPv4 CidrBlock
    ipv6_cidr: str | None = None
    port_from: int | None = None     # None: no PortRange (every port, or a protocol without ports)
    port_to: int | None = None

    @classmethod
    def from_api(cls, entry: dict[str, Any]) -> NetworkAclEntry:
        ports = entry.get("PortRange") or {}
        return cls(rule_number=int(entry["RuleNumber"]), egress=bool(entry.get("Egress")),
                   protocol=str(entry.get("Protocol", "-1")).lower(), action=str(entry.get("RuleAction", "")).lower(),
                   cidr=entry.get("CidrBlock"), ipv6_cidr=entry.get("Ipv6CidrBlock"),
                   port_from=ports.get("From"), port_to=ports.get("To"))


class NetworkAcl(Resource):
    resource_type = "AwsEc2NetworkAcl"
    acl_id: str
    vpc_id: str | None = None
    is_default: bool = False
    entries: list[NetworkAclEntry] = []
    subnet_ids: list[str] = []       # the subnets it is associated with


class Subnet(Resource):
    resource_type = "AwsEc2Subnet"
    subnet_id: str
    vpc_id: str | None = None
    cidr_block: str | None = None
    availability_zone: str | None = None
    map_public_ip_on_launch: bool = False
    default_for_az: bool = False


class Vpc(Resource):
    """A VPC of the region (also read by other areas' checks, e.g. flow logs: resource_id is the VPC id)."""

    resource_type = "AwsEc2Vpc"
    vpc_id: str
    is_default: bool = False
    state: str | None = None
    owner_id: str | None = None      # another account's id for a VPC shared with this one through RAM
    cidr_blocks: list[str] = []
    ipv6_cidr_blocks: list[str] = []


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags") or [] if "Key" in t}


@register
class SecurityGroupCollector(Collector):
    name = "ec2_security_groups"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeSecurityGroups"})

    async def collect(self, ctx: CollectorContext) -> None:
        async for page in ctx.pages("ec2", "DescribeSecurityGroups", PaginationConfig=PAGE):
            for group in page.get("SecurityGroups", []):
                group_id = group["GroupId"]
                owner = group.get("OwnerId") or ctx.account_id
                ctx.add(SecurityGroup(
                    region=ctx.region, resource_id=group_id,
                    arn=group.get("SecurityGroupArn") or _arn(ctx, owner, f"security-group/{group_id}"),
                    tags=_tags(group), group_id=group_id, group_name=group.get("GroupName", ""),
                    vpc_id=group.get("VpcId"), owner_id=owner,
                    ingress=[SecurityGroupRule.from_api(p) for p in group.get("IpPermissions") or []],
                    egress=[SecurityGroupRule.from_api(p) for p in group.get("IpPermissionsEgress") or []]))


@register
class NetworkAclCollector(Collector):
    name = "ec2_network_acls"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeNetworkAcls"})

    async def collect(self, ctx: CollectorContext) -> None:
        async for page in ctx.pages("ec2", "DescribeNetworkAcls", PaginationConfig=PAGE):
            for acl in page.get("NetworkAcls", []):
                acl_id = acl["NetworkAclId"]
                owner = acl.get("OwnerId") or ctx.account_id
                ctx.add(NetworkAcl(
                    region=ctx.region, resource_id=acl_id, arn=_arn(ctx, owner, f"network-acl/{acl_id}"),
                    tags=_tags(acl), acl_id=acl_id, vpc_id=acl.get("VpcId"), is_default=bool(acl.get("IsDefault")),
                    entries=[NetworkAclEntry.from_api(e) for e in acl.get("Entries") or []],
                    subnet_ids=[a["SubnetId"] for a in acl.get("Associations") or [] if a.get("SubnetId")]))


@register
class SubnetCollector(Collector):
    name = "ec2_subnets"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeSubnets"})

    async def collect(self, ctx: CollectorContext) -> None:
        async for page in ctx.pages("ec2", "DescribeSubnets", PaginationConfig=PAGE):
            for subnet in page.get("Subnets", []):
                subnet_id = subnet["SubnetId"]
                owner = subnet.get("OwnerId") or ctx.account_id
                ctx.add(Subnet(
                    region=ctx.region, resource_id=subnet_id,
                    arn=subnet.get("SubnetArn") or _arn(ctx, owner, f"subnet/{subnet_id}"), tags=_tags(subnet),
                    subnet_id=subnet_id, vpc_id=subnet.get("VpcId"), cidr_block=subnet.get("CidrBlock"),
                    availability_zone=subnet.get("AvailabilityZone"),
                    map_public_ip_on_launch=bool(subnet.get("MapPublicIpOnLaunch")),
                    default_for_az=bool(subnet.get("DefaultForAz"))))


@register
class VpcCollector(Collector):
    name = "ec2_vpcs"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeVpcs"})

    async def collect(self, ctx: CollectorContext) -> None:
        async for page in ctx.pages("ec2", "DescribeVpcs", PaginationConfig=PAGE):
            for vpc in page.get("Vpcs", []):
                vpc_id = vpc["VpcId"]
                owner = vpc.get("OwnerId") or ctx.account_id
                ipv4 = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet") or []
                        if a.get("CidrBlock") and (a.get("CidrBlockState") or {}).get("State", "associated")
                        == "associated"]
                ipv6 = [a["Ipv6CidrBlock"] for a in vpc.get("Ipv6CidrBlockAssociationSet") or []
                        if a.get("Ipv6CidrBlock") and (a.get("Ipv6CidrBlockState") or {}).get("State", "associated")
                        == "associated"]
                ctx.add(Vpc(
                    region=ctx.region, resource_id=vpc_id, arn=_arn(ctx, owner, f"vpc/{vpc_id}"), tags=_tags(vpc),
                    vpc_id=vpc_id, is_default=bool(vpc.get("IsDefault")), state=vpc.get("State"), owner_id=owner,
                    cidr_blocks=ipv4 or ([vpc["CidrBlock"]] if vpc.get("CidrBlock") else []),
                    ipv6_cidr_blocks=ipv6))


def _arn(ctx: CollectorContext, owner: str, resource: str) -> str:
    return f"arn:{ctx.partition}:ec2:{ctx.region}:{owner}:{resource}"
