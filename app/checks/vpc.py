"""Network exposure checks (EC2 API, service label ec2): security groups, network ACLs and subnets.

"The world" is a CIDR of prefix length 0 (0.0.0.0/0, ::/0). Prefix lists and security-group references are
never the world: what they contain is the customer's choice and not visible in the group. Ports are checked
for TCP and UDP; protocol "-1" (all traffic) covers every port of every protocol.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.vpc import NetworkAcl, NetworkAclEntry, SecurityGroup, SecurityGroupRule, Subnet

SG = {"ec2:DescribeSecurityGroups"}
ACL = {"ec2:DescribeNetworkAcls"}

# CIS AWS Foundations 5.1-5.3: remote server administration (SSH, RDP).
ADMIN_PORTS = (22, 3389)
# Services that should never face the internet (Security Hub EC2.19's list plus common data stores).
# 22 and 3389 are left to the admin-port checks so one open rule is not reported twice for the same reason.
HIGH_RISK_PORTS: dict[int, str] = {
    20: "FTP data", 21: "FTP", 23: "Telnet", 25: "SMTP", 110: "POP3", 135: "MS RPC", 143: "IMAP",
    445: "SMB/CIFS", 1433: "SQL Server", 1434: "SQL Server browser", 2375: "Docker API", 2376: "Docker API (TLS)",
    3000: "development web servers", 3306: "MySQL", 4333: "mSQL", 5000: "development web servers",
    5432: "PostgreSQL", 5500: "VNC", 5601: "Kibana", 5984: "CouchDB", 6379: "Redis", 8080: "HTTP proxy/admin",
    8088: "Hadoop YARN", 8888: "HTTP alt/Jupyter", 9042: "Cassandra", 9200: "Elasticsearch",
    9300: "Elasticsearch cluster", 11211: "Memcached", 27017: "MongoDB", 27018: "MongoDB",
}
# What Security Hub EC2.18 accepts open to the world by default.
AUTHORIZED_WORLD_PORTS = frozenset({80, 443})
PORT_PROTOCOLS = ("tcp", "udp")
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "-1": "-1", "all": "-1"}


def _protocol(value: str) -> str:
    return _PROTOCOL_NUMBERS.get(value.lower(), value.lower())


def is_world(cidr: str | None) -> bool:
    if not cidr:
        return False
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _ports(rule: SecurityGroupRule) -> tuple[int, int] | None:
    """The TCP/UDP port range a rule opens; None when it opens no ports (ICMP, other IP protocols)."""
    protocol = _protocol(rule.protocol)
    if protocol == "-1":
        return (0, 65535)
    if protocol not in PORT_PROTOCOLS:
        return None
    if rule.from_port is None or rule.to_port is None or rule.from_port < 0:
        return (0, 65535)
    return (rule.from_port, rule.to_port)


def _all_ports(rule: SecurityGroupRule) -> bool:
    # Port 0 is not usable for TCP or UDP, so 1-65535 is "every port" as much as 0-65535 is.
    span = _ports(rule)
    return span is not None and span[0] <= 1 and span[1] >= 65535


def _world_sources(rule: SecurityGroupRule, families: Iterable[int]) -> list[str]:
    wanted = set(families)
    out = []
    if 4 in wanted:
        out += [c for c in rule.ipv4_ranges if is_world(c)]
    if 6 in wanted:
        out += [c for c in rule.ipv6_ranges if is_world(c)]
    return out


def _describe(rule: SecurityGroupRule, source: str) -> dict[str, Any]:
    ports = _ports(rule)
    protocol = _protocol(rule.protocol)
    return {"protocol": "all" if protocol == "-1" else protocol, "source": source,
            "ports": None if ports is None else (str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}")}


def world_rules(group: SecurityGroup, families: Iterable[int] = (4, 6)) -> Iterator[tuple[SecurityGroupRule, str]]:
    """Every (ingress rule, world CIDR) pair of the group."""
    families = tuple(families)
    for rule in group.ingress:
        for source in _world_sources(rule, families):
            yield rule, source


def _open_ports(group: SecurityGroup, ports: Iterable[int], families: Iterable[int]) -> list[dict[str, Any]]:
    wanted = tuple(ports)
    out = []
    for rule, source in world_rules(group, families):
        span = _ports(rule)
        if span is None:
            continue
        hit = sorted(p for p in wanted if span[0] <= p <= span[1])
        if hit:
            out.append({**_describe(rule, source), "exposed_ports": hit})
    return out


def _admin_ports(group: SecurityGroup, family: int, label: str) -> Result:
    open_rules = _open_ports(group, ADMIN_PORTS, (family,))
    if open_rules:
        ports = sorted({p for r in open_rules for p in r["exposed_ports"]})
        return failed(group, f"Security group {group.group_id} ({group.group_name}) allows ingress from {label} to "
                             f"remote administration port(s) {', '.join(map(str, ports))}.", rules=open_rules)
    return passed(group, f"Security group {group.group_id} ({group.group_name}) allows no ingress from {label} to "
                         "ports 22 or 3389.")


@resource_check("ec2_securitygroup_ingress_ipv4_admin_ports", SecurityGroup, requires=SG)
def ec2_securitygroup_ingress_ipv4_admin_ports(group: SecurityGroup) -> Result:
    return _admin_ports(group, 4, "0.0.0.0/0")


@resource_check("ec2_securitygroup_ingress_ipv6_admin_ports", SecurityGroup, requires=SG)
def ec2_securitygroup_ingress_ipv6_admin_ports(group: SecurityGroup) -> Result:
    return _admin_ports(group, 6, "::/0")


@resource_check("ec2_securitygroup_ingress_high_risk_ports", SecurityGroup, requires=SG)
def ec2_securitygroup_ingress_high_risk_ports(group: SecurityGroup) -> Result:
    open_rules = _open_ports(group, HIGH_RISK_PORTS, (4, 6))
    if open_rules:
        ports = sorted({p for r in open_rules for p in r["exposed_ports"]})
        names = ", ".join(f"{p} ({HIGH_RISK_PORTS[p]})" for p in ports[:6])
        if len(ports) > 6:
            names += f" and {len(ports) - 6} more"
        return failed(group, f"Security group {group.group_id} ({group.group_name}) allows ingress from the internet "
                             f"to high-risk port(s): {names}.", rules=open_rules)
    return passed(group, f"Security group {group.group_id} ({group.group_name}) opens no high-risk database, file "
                         "sharing or administration port to the internet.")


@resource_check("ec2_securitygroup_ingress_all_traffic", SecurityGroup, requires=SG)
def ec2_securitygroup_ingress_all_traffic(group: SecurityGroup) -> Result:
    wide = [_describe(rule, source) for rule, source in world_rules(group) if _all_ports(rule)]
    if wide:
        return failed(group, f"Security group {group.group_id} ({group.group_name}) allows every port from the "
                             "internet.", rules=wide)
    return passed(group, f"Security group {group.group_id} ({group.group_name}) does not open all ports to the "
                         "internet.")


@resource_check("ec2_securitygroup_ingress_unauthorized_ports", SecurityGroup, requires=SG)
def ec2_securitygroup_ingress_unauthorized_ports(group: SecurityGroup) -> Result:
    offending = []
    for rule, source in world_rules(group):
        span = _ports(rule)
        if span is None:
            continue
        authorized = sum(1 for p in AUTHORIZED_WORLD_PORTS if span[0] <= p <= span[1])
        if span[1] - span[0] + 1 > authorized:
            offending.append(_describe(rule, source))
    if offending:
        return failed(group, f"Security group {group.group_id} ({group.group_name}) allows internet ingress to TCP/UDP "
                             "ports other than 80 and 443.", rules=offending)
    return passed(group, f"Security group {group.group_id} ({group.group_name}) allows internet ingress only to "
                         "ports 80 and 443, if at all.")


@resource_check("ec2_securitygroup_default_restricts_all_traffic", SecurityGroup, requires=SG)
def ec2_securitygroup_default_restricts_all_traffic(group: SecurityGroup) -> Result | None:
    if not group.is_default:
        return None
    if group.ingress or group.egress:
        return failed(group, f"The default security group {group.group_id} of {group.vpc_id or 'its VPC'} has "
                             f"{len(group.ingress)} inbound and {len(group.egress)} outbound rule(s); it should "
                             "have none.", inbound_rules=len(group.ingress), outbound_rules=len(group.egress))
    return passed(group, f"The default security group {group.group_id} of {group.vpc_id or 'its VPC'} has no "
                         "inbound or outbound rules.")


def _acl_covers(entry: NetworkAclEntry, protocol: str, port: int) -> bool:
    entry_protocol = _protocol(entry.protocol)
    if entry_protocol == "-1":
        return True
    if entry_protocol != protocol:
        return False
    if entry.port_from is None or entry.port_to is None:
        return True
    return entry.port_from <= port <= entry.port_to


def acl_world_allows(acl: NetworkAcl, family: int, protocol: str, port: int) -> NetworkAclEntry | None:
    """The inbound allow rule through which anyone on the internet reaches `port`, or None.

    Rules apply in rule-number order, first match wins. A world allow only counts when the deny rules
    before it do not together cover the whole address space; allows from narrower ranges are not "the world".
    """
    everything = ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")
    denied: list[Any] = []
    for entry in sorted((e for e in acl.entries if not e.egress), key=lambda e: e.rule_number):
        cidr = entry.cidr if family == 4 else entry.ipv6_cidr
        if not cidr or not _acl_covers(entry, protocol, port):
            continue
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if entry.action == "deny":
            denied.append(network)
            if list(ipaddress.collapse_addresses(denied)) == [everything]:
                return None
        elif entry.action == "allow" and network.prefixlen == 0:
            return entry
    return None


@resource_check("ec2_networkacl_ingress_admin_ports", NetworkAcl, requires=ACL)
def ec2_networkacl_ingress_admin_ports(acl: NetworkAcl) -> Result:
    exposed = []
    for family, source in ((4, "0.0.0.0/0"), (6, "::/0")):
        for protocol in PORT_PROTOCOLS:
            for port in ADMIN_PORTS:
                entry = acl_world_allows(acl, family, protocol, port)
                if entry is not None:
                    exposed.append({"source": source, "protocol": protocol, "port": port,
                                    "rule_number": entry.rule_number})
    if exposed:
        ports = sorted({e["port"] for e in exposed})
        return failed(acl, f"Network ACL {acl.acl_id} allows inbound traffic from the internet to remote "
                           f"administration port(s) {', '.join(map(str, ports))}.", exposures=exposed,
                      subnets=acl.subnet_ids)
    return passed(acl, f"Network ACL {acl.acl_id} denies inbound internet traffic to ports 22 and 3389.")


@resource_check("ec2_networkacl_unused", NetworkAcl, requires=ACL)
def ec2_networkacl_unused(acl: NetworkAcl) -> Result | None:
    if acl.is_default:
        return None  # a VPC's default ACL cannot be deleted; it takes every subnet without its own ACL
    if acl.subnet_ids:
        return passed(acl, f"Network ACL {acl.acl_id} is associated with {len(acl.subnet_ids)} subnet(s).")
    return failed(acl, f"Network ACL {acl.acl_id} is not associated with any subnet.")


@resource_check("ec2_subnet_no_auto_public_ip", Subnet, requires={"ec2:DescribeSubnets"})
def ec2_subnet_no_auto_public_ip(subnet: Subnet) -> Result:
    if subnet.map_public_ip_on_launch:
        kind = "default subnet" if subnet.default_for_az else "subnet"
        return failed(subnet, f"The {kind} {subnet.subnet_id} gives every instance launched in it a public IPv4 "
                              "address.")
    return passed(subnet, f"Subnet {subnet.subnet_id} does not assign public IPv4 addresses automatically.")
