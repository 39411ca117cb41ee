"""VPC flow log check (CIS AWS Foundations 3.0, 3.7): every VPC has an active flow log that captures at least
rejected traffic and delivers it."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.flowlogs import VpcFlowLogs

CAPTURES_REJECTS = frozenset({"ALL", "REJECT"})


@resource_check("ec2_vpc_flow_logs_enabled", VpcFlowLogs, requires={"ec2:DescribeVpcs", "ec2:DescribeFlowLogs"})
def ec2_vpc_flow_logs_enabled(vpc: VpcFlowLogs) -> Result:
    label = f"VPC {vpc.vpc_id}{' (default)' if vpc.is_default else ''}"
    if not vpc.flow_logs:
        return failed(vpc, f"{label} has no flow log: rejected and accepted connections leave no record.")
    active = [f for f in vpc.flow_logs if (f.status or "ACTIVE").upper() == "ACTIVE"]
    capturing = [f for f in active if (f.traffic_type or "").upper() in CAPTURES_REJECTS]
    delivering = [f for f in capturing if (f.deliver_status or "SUCCESS").upper() != "FAILED"]
    summary = [{"id": f.flow_log_id, "traffic_type": f.traffic_type, "destination_type": f.destination_type,
                "deliver_status": f.deliver_status} for f in vpc.flow_logs]
    if delivering:
        f = delivering[0]
        return passed(vpc, f"{label} has flow log {f.flow_log_id} capturing {f.traffic_type} traffic to "
                           f"{f.destination_type or 'its destination'}.", flow_logs=summary)
    if capturing:
        f = capturing[0]
        return failed(vpc, f"{label} has flow log {f.flow_log_id}, but it fails to deliver: "
                           f"{f.deliver_error or 'DeliverLogsStatus FAILED'}.", flow_logs=summary)
    if active:
        return failed(vpc, f"{label} only logs accepted traffic: rejected connection attempts are not recorded.",
                      flow_logs=summary)
    return failed(vpc, f"{label} has no active flow log.", flow_logs=summary)
