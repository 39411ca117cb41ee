"""Helpers for the compute and network check tests: scan the fake, read findings, evaluate fixture inventories,
and seed moto with the VPCs, functions and load balancers the tests need."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from app.aws.session import CallerCredentials
from app.scanners.base import COLLECTORS, CollectorContext, Inventory, Resource, ScanContext
from app.scanners.engine import FindingRecord, ScanOutcome
from tests.aws_fixtures import CUSTOMER_ACCOUNT, AwsFake

# Re-exported: the check tests import these from their domain's helpers.
from tests.check_helpers import (  # noqa: F401
    REGION,
    evaluate_on,
    findings_of,
    fixture_inventory,
    only,
    scan,
    status,
    statuses,
)


async def collect(collector_name: str, region: str = REGION) -> Inventory:
    """Run one collector alone against the fake, as the engine does, and return what it gathered."""
    inventory = Inventory(account_id=CUSTOMER_ACCOUNT, regions=[region])
    async with ScanContext(CallerCredentials(), inventory) as ctx:
        collector = COLLECTORS[collector_name]()
        await collector.collect(CollectorContext(ctx, collector, region))
    return inventory


def findings(outcome: ScanOutcome, check_id: str, resource_id: str | None = None) -> list[FindingRecord]:
    return findings_of(outcome, check_id, resource_id=resource_id)


def verdict(check_id: str, resource: Resource) -> str | None:
    """PASS/FAIL/ERROR of one check on one fixture resource; None when the check does not judge it."""
    results = evaluate_on(check_id, resource)
    assert len(results) <= 1, results
    return results[0].status.value if results else None


# --- seeding moto ---------------------------------------------------------------------------------------


def new_vpc(fake: AwsFake, cidr: str = "10.0.0.0/16", region: str = REGION) -> dict[str, Any]:
    """A fresh VPC with one subnet (no public IP on launch) and the ids of its default group and ACL."""
    ec2 = fake.client("ec2", region)
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr.replace("0.0/16", "1.0/24"),
                               AvailabilityZone=f"{region}a")["Subnet"]
    group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                             {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    return {"vpc_id": vpc_id, "subnet_id": subnet["SubnetId"], "default_group_id": group["GroupId"],
            "default_acl_id": acl["NetworkAclId"]}


def security_group(fake: AwsFake, vpc_id: str, name: str, *permissions: dict[str, Any],
                   region: str = REGION) -> str:
    ec2 = fake.client("ec2", region)
    group_id = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=list(permissions))
    return group_id


def tcp(from_port: int, to_port: int | None = None, *, v4: str | None = None, v6: str | None = None,
        protocol: str = "tcp") -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": protocol, "FromPort": from_port,
                                  "ToPort": from_port if to_port is None else to_port}
    if v4:
        permission["IpRanges"] = [{"CidrIp": v4}]
    if v6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": v6}]
    return permission


def lambda_role(fake: AwsFake) -> str:
    iam = fake.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        return iam.get_role(RoleName="lambda-exec")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def lambda_function(fake: AwsFake, name: str, runtime: str = "python3.12", region: str = REGION,
                    **extra: Any) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("handler.py", "def handle(event, context):\n    return event\n")
    answer = fake.client("lambda", region).create_function(
        FunctionName=name, Runtime=runtime, Role=lambda_role(fake), Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()}, **extra)
    return answer["FunctionArn"]


def fake_lists_function_urls(fake: AwsFake) -> bool:
    """moto 5.2 has no ListFunctionUrlConfigs (it answers an HTML 404); the fake may add a handler for it."""
    from botocore.exceptions import ClientError

    try:
        fake.client("lambda").list_function_url_configs(FunctionName="cw-no-such-function")
    except ClientError as exc:
        return exc.response.get("Error", {}).get("Code") != "404"
    return True


def certificate(fake: AwsFake, domain: str = "example.com", region: str = REGION) -> str:
    return fake.client("acm", region).request_certificate(DomainName=domain)["CertificateArn"]
