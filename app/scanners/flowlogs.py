"""VPC flow logs per region: every VPC with the flow logs attached to it.

The VPC list is read here too (ec2:DescribeVpcs), although the network collector (app/scanners/vpc.py) also
lists VPCs: collectors do not depend on each other, and one cheap call per region is the price of that.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from app.scanners.base import Collector, CollectorContext, Resource, register


class FlowLog(BaseModel):
    flow_log_id: str
    status: str | None = None            # FlowLogStatus: ACTIVE
    traffic_type: str | None = None      # ACCEPT | REJECT | ALL
    destination_type: str | None = None  # cloud-watch-logs | s3 | kinesis-data-firehose
    destination: str | None = None
    deliver_status: str | None = None    # DeliverLogsStatus: SUCCESS | FAILED
    deliver_error: str | None = None


class VpcFlowLogs(Resource):
    """A VPC and the flow logs capturing its traffic."""

    resource_type = "AwsEc2Vpc"
    vpc_id: str
    is_default: bool = False
    cidr_block: str | None = None
    flow_logs: list[FlowLog] = []


@register
class VpcFlowLogCollector(Collector):
    name = "vpc_flow_logs"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeVpcs", "ec2:DescribeFlowLogs"})

    async def collect(self, ctx: CollectorContext) -> None:
        vpcs, flow_logs = await asyncio.gather(
            ctx.collect_all("ec2", "DescribeVpcs", "Vpcs"),
            ctx.collect_all("ec2", "DescribeFlowLogs", "FlowLogs"),
            return_exceptions=True)
        for outcome in (vpcs, flow_logs):
            if isinstance(outcome, BaseException):
                raise outcome
        by_vpc: dict[str, list[FlowLog]] = {}
        for raw in flow_logs:  # type: ignore[union-attr]
            if not str(raw.get("ResourceId", "")).startswith("vpc-"):
                continue  # subnet and interface flow logs do not cover a whole VPC
            by_vpc.setdefault(raw["ResourceId"], []).append(FlowLog(
                flow_log_id=raw.get("FlowLogId", ""), status=raw.get("FlowLogStatus"),
                traffic_type=raw.get("TrafficType"), destination_type=raw.get("LogDestinationType"),
                destination=raw.get("LogDestination") or raw.get("LogGroupName"),
                deliver_status=raw.get("DeliverLogsStatus"), deliver_error=raw.get("DeliverLogsErrorMessage")))
        for vpc in vpcs:  # type: ignore[union-attr]
            vpc_id = vpc["VpcId"]
            ctx.add(VpcFlowLogs(
                region=ctx.region, resource_id=vpc_id, vpc_id=vpc_id,
                arn=f"arn:{ctx.partition}:ec2:{ctx.region}:{vpc.get('OwnerId') or ctx.account_id}:vpc/{vpc_id}",
                is_default=bool(vpc.get("IsDefault")), cidr_block=vpc.get("CidrBlock"),
                tags={t["Key"]: t.get("Value", "") for t in vpc.get("Tags", []) if "Key" in t},
                flow_logs=by_vpc.get(vpc_id, [])))
