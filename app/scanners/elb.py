"""Load balancers per region: Application/Network/Gateway (elbv2) and Classic (elb).

The list calls carry scheme and listeners (Classic); the per-load-balancer details (elbv2 listeners and
attributes, the rules of plain-HTTP ALB listeners, Classic attributes and TLS negotiation policies) are read
concurrently. A failed detail call only makes that load balancer's dependent checks ERROR.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

V2_PAGE = {"PageSize": 400}          # the largest page DescribeLoadBalancers/DescribeListeners accept
CLASSIC_TLS_PROTOCOLS = frozenset({"HTTPS", "SSL"})


class ListenerAction(BaseModel):
    type: str                          # forward | redirect | fixed-response | authenticate-* ...
    redirect_protocol: str | None = None   # for redirects: HTTPS, HTTP or "#{protocol}" (keep the request's)


class ListenerRule(BaseModel):
    priority: str                      # a number, or "default"
    actions: list[ListenerAction] = []


class ElbV2Listener(BaseModel):
    arn: str
    port: int | None = None
    protocol: str | None = None        # HTTP | HTTPS | TCP | TLS | UDP | TCP_UDP | GENEVE
    ssl_policy: str | None = None
    default_actions: list[ListenerAction] = []
    rules: list[ListenerRule] | None = None   # read for plain-HTTP listeners of ALBs only


class ElbV2LoadBalancer(Resource):
    resource_type = "AwsElbv2LoadBalancer"
    name: str
    type: str                          # application | network | gateway
    scheme: str | None = None          # internet-facing | internal
    dns_name: str | None = None
    vpc_id: str | None = None
    listeners: list[ElbV2Listener] = []
    attributes: dict[str, str] = {}


class ClassicListener(BaseModel):
    protocol: str                      # HTTP | HTTPS | TCP | SSL
    port: int
    instance_protocol: str | None = None
    instance_port: int | None = None
    certificate_id: str | None = None
    policy_names: list[str] = []


class ClassicSslPolicy(BaseModel):
    """An SSLNegotiationPolicyType policy: a predefined reference, or the protocols it enables itself."""

    name: str
    reference_policy: str | None = None        # "Reference-Security-Policy", e.g. ELBSecurityPolicy-TLS-1-2-2017-01
    enabled_protocols: list[str] = []          # Protocol-* attributes set to true (SSLv3, TLSv1, TLSv1.2...)


class ClassicLoadBalancer(Resource):
    resource_type = "AwsElbLoadBalancer"
    name: str
    scheme: str | None = None
    dns_name: str | None = None
    vpc_id: str | None = None
    listeners: list[ClassicListener] = []
    ssl_policies: dict[str, ClassicSslPolicy] = {}   # by name; read when a listener is HTTPS/SSL
    access_log_enabled: bool = False
    connection_draining_enabled: bool = False
    cross_zone_enabled: bool = False
    additional_attributes: dict[str, str] = {}      # e.g. elb.http.desyncmitigationmode


def _actions(items: list[dict[str, Any]] | None) -> list[ListenerAction]:
    return [ListenerAction(type=a.get("Type", ""), redirect_protocol=(a.get("RedirectConfig") or {}).get("Protocol"))
            for a in items or []]


@register
class ElbV2Collector(Collector):
    name = "elbv2_load_balancers"
    service = "elb"
    scope = "regional"
    actions = frozenset({
        "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeLoadBalancerAttributes",
    })

    async def collect(self, ctx: CollectorContext) -> None:
        listed = await ctx.collect_all("elbv2", "DescribeLoadBalancers", "LoadBalancers", PaginationConfig=V2_PAGE)
        for lb in await asyncio.gather(*(self._load_balancer(ctx, item) for item in listed)):
            ctx.add(lb)

    async def _load_balancer(self, ctx: CollectorContext, item: dict[str, Any]) -> ElbV2LoadBalancer:
        arn = item["LoadBalancerArn"]
        # "app/my-alb/50dc6c495c0c9188": unique in the region, unlike the bare name (a Classic load balancer
        # may share it), so a detail failure is never charged to the wrong load balancer.
        rid = arn.split(":loadbalancer/", 1)[-1]
        lb = ElbV2LoadBalancer(region=ctx.region, resource_id=rid, arn=arn, name=item.get("LoadBalancerName", rid),
                               type=item.get("Type", "application"), scheme=item.get("Scheme"),
                               dns_name=item.get("DNSName"), vpc_id=item.get("VpcId"))
        await asyncio.gather(self._listeners(ctx, lb), self._attributes(ctx, lb))
        return lb

    async def _listeners(self, ctx: CollectorContext, lb: ElbV2LoadBalancer) -> None:
        try:
            items = await ctx.collect_all("elbv2", "DescribeListeners", "Listeners", LoadBalancerArn=lb.arn,
                                          resource_id=lb.resource_id, PaginationConfig=V2_PAGE)
        except AwsCallFailed:
            return
        lb.listeners = [ElbV2Listener(arn=item["ListenerArn"], port=item.get("Port"), protocol=item.get("Protocol"),
                                      ssl_policy=item.get("SslPolicy"),
                                      default_actions=_actions(item.get("DefaultActions")))
                        for item in items]
        if lb.type == "application":
            # Only a plain-HTTP listener's rules decide whether every request is sent on to HTTPS.
            await asyncio.gather(*(self._rules(ctx, lb, listener) for listener in lb.listeners
                                   if listener.protocol == "HTTP"))

    async def _rules(self, ctx: CollectorContext, lb: ElbV2LoadBalancer, listener: ElbV2Listener) -> None:
        try:
            items = await ctx.collect_all("elbv2", "DescribeRules", "Rules", ListenerArn=listener.arn,
                                          resource_id=lb.resource_id, PaginationConfig=V2_PAGE)
        except AwsCallFailed:
            return
        listener.rules = [ListenerRule(priority=str(r.get("Priority", "")), actions=_actions(r.get("Actions")))
                          for r in items]

    async def _attributes(self, ctx: CollectorContext, lb: ElbV2LoadBalancer) -> None:
        try:
            answer = await ctx.call("elbv2", "DescribeLoadBalancerAttributes", LoadBalancerArn=lb.arn,
                                    resource_id=lb.resource_id) or {}
        except AwsCallFailed:
            return
        lb.attributes = {a["Key"]: str(a.get("Value", "")) for a in answer.get("Attributes") or [] if "Key" in a}


@register
class ClassicElbCollector(Collector):
    name = "elb_load_balancers"
    service = "elb"
    scope = "regional"
    actions = frozenset({
        "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeLoadBalancerPolicies",
    })

    async def collect(self, ctx: CollectorContext) -> None:
        listed = await ctx.collect_all("elb", "DescribeLoadBalancers", "LoadBalancerDescriptions",
                                       PaginationConfig=V2_PAGE)
        for lb in await asyncio.gather(*(self._load_balancer(ctx, item) for item in listed)):
            ctx.add(lb)

    async def _load_balancer(self, ctx: CollectorContext, item: dict[str, Any]) -> ClassicLoadBalancer:
        name = item["LoadBalancerName"]
        listeners = []
        for description in item.get("ListenerDescriptions") or []:
            listener = description.get("Listener") or {}
            listeners.append(ClassicListener(
                protocol=str(listener.get("Protocol", "")).upper(), port=int(listener.get("LoadBalancerPort", 0)),
                instance_protocol=listener.get("InstanceProtocol"), instance_port=listener.get("InstancePort"),
                certificate_id=listener.get("SSLCertificateId"), policy_names=description.get("PolicyNames") or []))
        lb = ClassicLoadBalancer(
            region=ctx.region, resource_id=name,
            arn=f"arn:{ctx.partition}:elasticloadbalancing:{ctx.region}:{ctx.account_id}:loadbalancer/{name}",
            name=name, scheme=item.get("Scheme"), dns_name=item.get("DNSName"), vpc_id=item.get("VPCId"),
            listeners=listeners)
        calls = [self._attributes(ctx, lb)]
        if any(listener.protocol in CLASSIC_TLS_PROTOCOLS for listener in listeners):
            calls.append(self._policies(ctx, lb))
        await asyncio.gather(*calls)
        return lb

    async def _attributes(self, ctx: CollectorContext, lb: ClassicLoadBalancer) -> None:
        try:
            answer = await ctx.call("elb", "DescribeLoadBalancerAttributes", LoadBalancerName=lb.name,
                                    resource_id=lb.resource_id) or {}
        except AwsCallFailed:
            return
        attributes = answer.get("LoadBalancerAttributes") or {}
        lb.access_log_enabled = bool((attributes.get("AccessLog") or {}).get("Enabled"))
        lb.connection_draining_enabled = bool((attributes.get("ConnectionDraining") or {}).get("Enabled"))
        lb.cross_zone_enabled = bool((attributes.get("CrossZoneLoadBalancing") or {}).get("Enabled"))
        lb.additional_attributes = {a["Key"]: str(a.get("Value", ""))
                                    for a in attributes.get("AdditionalAttributes") or [] if "Key" in a}

    async def _policies(self, ctx: CollectorContext, lb: ClassicLoadBalancer) -> None:
        try:
            answer = await ctx.call("elb", "DescribeLoadBalancerPolicies", LoadBalancerName=lb.name,
                                    resource_id=lb.resource_id) or {}
        except AwsCallFailed:
            return
        for policy in answer.get("PolicyDescriptions") or []:
            if policy.get("PolicyTypeName") != "SSLNegotiationPolicyType":
                continue
            attributes = {a.get("AttributeName", ""): str(a.get("AttributeValue", ""))
                          for a in policy.get("PolicyAttributeDescriptions") or []}
            lb.ssl_policies[policy["PolicyName"]] = ClassicSslPolicy(
                name=policy["PolicyName"], reference_policy=attributes.get("Reference-Security-Policy") or None,
                enabled_protocols=sorted(k.removeprefix("Protocol-") for k, v in attributes.items()
                                         if k.startswith("Protocol-") and v.lower() == "true"))
