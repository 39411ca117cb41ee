"""Load balancer checks: encryption in transit (HTTPS redirects, TLS policies), exposure, logging and
request-handling hardening, for Application/Network/Gateway (elbv2) and Classic (elb) load balancers."""

from __future__ import annotations

import re

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.elb import ClassicLoadBalancer, ElbV2Listener, ElbV2LoadBalancer, ListenerRule

LIST = "elasticloadbalancing:DescribeLoadBalancers"
LISTENERS = {LIST, "elasticloadbalancing:DescribeListeners"}
ATTRIBUTES = {LIST, "elasticloadbalancing:DescribeLoadBalancerAttributes"}

# Predefined policies that negotiate TLS 1.2 or newer only, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06 (the
# recommended one), -TLS13-1-2-Res/-Ext1/-Ext2-2021-06, -TLS13-1-3-2021-06, their -FIPS-2023-04 and -PQ-2025-09
# variants, -FS-1-2-2019-08, -FS-1-2-Res-2019-08, -FS-1-2-Res-2020-10, -TLS-1-2-2017-01 and
# -TLS-1-2-Ext-2018-06. Everything else (ELBSecurityPolicy-2016-08, -2015-05, -TLS-1-0-2015-04,
# -TLS-1-1-2017-01, -FS-2018-06, -FS-1-1-2019-08, -TLS13-1-0-*, -TLS13-1-1-*...) still accepts TLS 1.0 or 1.1.
_STRONG_POLICY = re.compile(r"^ELBSecurityPolicy-(?:TLS13-1-[23]|FS-1-2|TLS-1-2)-")
# Protocols a custom Classic negotiation policy must not enable.
WEAK_PROTOCOLS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})
# What AWS applies to a Classic HTTPS/SSL listener created without a negotiation policy.
CLASSIC_DEFAULT_POLICY = "ELBSecurityPolicy-2016-08"
TLS_V2_PROTOCOLS = frozenset({"HTTPS", "TLS"})
DESYNC_OK = frozenset({"defensive", "strictest"})
DESYNC_DEFAULT = "defensive"   # what AWS applies when the mode was never set


def strong_ssl_policy(name: str | None) -> bool:
    return bool(name and _STRONG_POLICY.match(name))


def _lb(lb: ElbV2LoadBalancer | ClassicLoadBalancer) -> str:
    kind = {"application": "Application", "network": "Network", "gateway": "Gateway"}.get(
        getattr(lb, "type", ""), "Classic")
    return f"{kind} Load Balancer {lb.name}"


# --- elbv2 ---------------------------------------------------------------------------------------------


def _rule_secure(rule: ListenerRule) -> bool:
    """A rule of a plain-HTTP listener keeps traffic off HTTP when it redirects to HTTPS or answers itself."""
    for action in rule.actions:
        if action.type == "redirect":
            return (action.redirect_protocol or "").upper() == "HTTPS"
        if action.type == "fixed-response":
            return True
        if action.type == "forward":
            return False
    return False


def _insecure_rules(listener: ElbV2Listener) -> list[str]:
    rules = listener.rules if listener.rules is not None else [
        ListenerRule(priority="default", actions=listener.default_actions)]
    return [r.priority for r in rules if not _rule_secure(r)]


@resource_check("elbv2_alb_http_redirects_to_https", ElbV2LoadBalancer,
                requires=LISTENERS | {"elasticloadbalancing:DescribeRules"})
def elbv2_alb_http_redirects_to_https(lb: ElbV2LoadBalancer) -> Result | None:
    if lb.type != "application":
        return None
    plain = [listener for listener in lb.listeners if listener.protocol == "HTTP"]
    offending = [{"port": listener.port, "rules": bad} for listener in plain if (bad := _insecure_rules(listener))]
    if offending:
        ports = ", ".join(str(o["port"]) for o in offending)
        return failed(lb, f"{_lb(lb)} serves plain-HTTP requests on port(s) {ports} instead of redirecting them to "
                          "HTTPS.", listeners=offending)
    if plain:
        return passed(lb, f"{_lb(lb)} redirects every plain-HTTP request to HTTPS.")
    return passed(lb, f"{_lb(lb)} has no plain-HTTP listener.")


@resource_check("elbv2_listener_secure_ssl_policy", ElbV2LoadBalancer, requires=LISTENERS)
def elbv2_listener_secure_ssl_policy(lb: ElbV2LoadBalancer) -> Result | None:
    tls = [listener for listener in lb.listeners if listener.protocol in TLS_V2_PROTOCOLS]
    if not tls:
        return None
    weak = [{"port": listener.port, "protocol": listener.protocol, "ssl_policy": listener.ssl_policy}
            for listener in tls if not strong_ssl_policy(listener.ssl_policy)]
    if weak:
        policies = ", ".join(sorted({str(w["ssl_policy"]) for w in weak}))
        return failed(lb, f"{_lb(lb)} has TLS listener(s) whose security policy ({policies}) still accepts TLS 1.0 "
                          "or 1.1.", listeners=weak)
    return passed(lb, f"{_lb(lb)} negotiates TLS 1.2 or newer on every TLS listener.",
                  policies=sorted({str(listener.ssl_policy) for listener in tls}))


@resource_check("elbv2_load_balancer_internal", ElbV2LoadBalancer, requires={LIST})
def elbv2_load_balancer_internal(lb: ElbV2LoadBalancer) -> Result:
    if lb.scheme == "internet-facing":
        return failed(lb, f"{_lb(lb)} is internet-facing ({lb.dns_name}); confirm it is meant to be public.",
                      dns_name=lb.dns_name)
    return passed(lb, f"{_lb(lb)} is internal.")


@resource_check("elbv2_alb_access_logging_enabled", ElbV2LoadBalancer, requires=ATTRIBUTES)
def elbv2_alb_access_logging_enabled(lb: ElbV2LoadBalancer) -> Result | None:
    if lb.type != "application":
        return None
    if lb.attributes.get("access_logs.s3.enabled", "false").lower() == "true":
        return passed(lb, f"{_lb(lb)} writes access logs to s3://{lb.attributes.get('access_logs.s3.bucket', '')}.")
    return failed(lb, f"{_lb(lb)} does not write access logs.")


@resource_check("elbv2_deletion_protection_enabled", ElbV2LoadBalancer, requires=ATTRIBUTES)
def elbv2_deletion_protection_enabled(lb: ElbV2LoadBalancer) -> Result:
    if lb.attributes.get("deletion_protection.enabled", "false").lower() == "true":
        return passed(lb, f"{_lb(lb)} has deletion protection enabled.")
    return failed(lb, f"{_lb(lb)} can be deleted without first turning off deletion protection.")


@resource_check("elbv2_alb_drop_invalid_header_fields", ElbV2LoadBalancer, requires=ATTRIBUTES)
def elbv2_alb_drop_invalid_header_fields(lb: ElbV2LoadBalancer) -> Result | None:
    if lb.type != "application":
        return None
    if lb.attributes.get("routing.http.drop_invalid_header_fields.enabled", "false").lower() == "true":
        return passed(lb, f"{_lb(lb)} drops HTTP headers with invalid field names.")
    return failed(lb, f"{_lb(lb)} forwards HTTP headers with invalid field names to its targets.")


@resource_check("elbv2_alb_desync_mitigation_mode", ElbV2LoadBalancer, requires=ATTRIBUTES)
def elbv2_alb_desync_mitigation_mode(lb: ElbV2LoadBalancer) -> Result | None:
    if lb.type != "application":
        return None
    mode = lb.attributes.get("routing.http.desync_mitigation_mode", DESYNC_DEFAULT).lower()
    if mode in DESYNC_OK:
        return passed(lb, f"{_lb(lb)} uses the {mode} HTTP desync mitigation mode.")
    return failed(lb, f"{_lb(lb)} uses the {mode} HTTP desync mitigation mode, which lets ambiguous requests "
                      "through (request smuggling).", mode=mode)


# --- Classic --------------------------------------------------------------------------------------------


@resource_check("elb_listener_encrypted", ClassicLoadBalancer, requires={LIST})
def elb_listener_encrypted(lb: ClassicLoadBalancer) -> Result:
    plain = [{"port": listener.port, "protocol": listener.protocol} for listener in lb.listeners
             if listener.protocol not in ("HTTPS", "SSL")]
    if plain:
        ports = ", ".join(f"{p['protocol']}:{p['port']}" for p in plain)
        return failed(lb, f"{_lb(lb)} has unencrypted listener(s): {ports}.", listeners=plain)
    return passed(lb, f"{_lb(lb)} terminates HTTPS or SSL on every listener.")


def _classic_policy_weakness(lb: ClassicLoadBalancer, policy_names: list[str]) -> str | None:
    """Why a listener's negotiation policy is weak, or None when it allows TLS 1.2+ only."""
    policies = [lb.ssl_policies[name] for name in policy_names if name in lb.ssl_policies]
    if not policies:
        return f"no negotiation policy, so AWS applies {CLASSIC_DEFAULT_POLICY}"
    policy = policies[0]
    if policy.reference_policy:
        if strong_ssl_policy(policy.reference_policy):
            return None
        return f"policy {policy.name} is based on {policy.reference_policy}"
    weak = sorted(WEAK_PROTOCOLS & set(policy.enabled_protocols))
    if weak:
        return f"custom policy {policy.name} enables {', '.join(weak)}"
    return None


@resource_check("elb_listener_secure_ssl_policy", ClassicLoadBalancer,
                requires={LIST, "elasticloadbalancing:DescribeLoadBalancerPolicies"})
def elb_listener_secure_ssl_policy(lb: ClassicLoadBalancer) -> Result | None:
    tls = [listener for listener in lb.listeners if listener.protocol in ("HTTPS", "SSL")]
    if not tls:
        return None
    weak = [{"port": listener.port, "reason": reason} for listener in tls
            if (reason := _classic_policy_weakness(lb, listener.policy_names))]
    if weak:
        return failed(lb, f"{_lb(lb)} accepts TLS older than 1.2 on port(s) "
                          f"{', '.join(str(w['port']) for w in weak)}: {weak[0]['reason']}.", listeners=weak)
    return passed(lb, f"{_lb(lb)} negotiates TLS 1.2 or newer on every HTTPS/SSL listener.")


@resource_check("elb_load_balancer_internal", ClassicLoadBalancer, requires={LIST})
def elb_load_balancer_internal(lb: ClassicLoadBalancer) -> Result:
    if lb.scheme == "internet-facing":
        return failed(lb, f"{_lb(lb)} is internet-facing ({lb.dns_name}); confirm it is meant to be public.",
                      dns_name=lb.dns_name)
    return passed(lb, f"{_lb(lb)} is internal.")


@resource_check("elb_access_logging_enabled", ClassicLoadBalancer,
                requires={LIST, "elasticloadbalancing:DescribeLoadBalancerAttributes"})
def elb_access_logging_enabled(lb: ClassicLoadBalancer) -> Result:
    if lb.access_log_enabled:
        return passed(lb, f"{_lb(lb)} writes access logs.")
    return failed(lb, f"{_lb(lb)} does not write access logs.")


@resource_check("elb_desync_mitigation_mode", ClassicLoadBalancer,
                requires={LIST, "elasticloadbalancing:DescribeLoadBalancerAttributes"})
def elb_desync_mitigation_mode(lb: ClassicLoadBalancer) -> Result:
    mode = lb.additional_attributes.get("elb.http.desyncmitigationmode", DESYNC_DEFAULT).lower()
    if mode in DESYNC_OK:
        return passed(lb, f"{_lb(lb)} uses the {mode} HTTP desync mitigation mode.")
    return failed(lb, f"{_lb(lb)} uses the {mode} HTTP desync mitigation mode, which lets ambiguous requests "
                      "through (request smuggling).", mode=mode)
