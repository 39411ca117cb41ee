"""The AWS actions CloudWizard calls, and what the customer role template actually grants for each."""

from __future__ import annotations

import fnmatch
import importlib
import json
import pkgutil
import re
import sys
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml

from app.aws.guard import iam_action, is_allowed
from app.aws.readonly import DATA_PLANE_DENY

CFN_DIR = Path(__file__).resolve().parents[2] / "cfn"
ROLE_TEMPLATE_PATH = CFN_DIR / "cloudwizard-role.yaml"
ORGANIZATION_TEMPLATE_PATH = CFN_DIR / "cloudwizard-organization.yaml"
SECURITY_AUDIT_PATH = Path(__file__).resolve().parent / "data" / "security_audit.json"

ROLE_RESOURCE = "ScannerRole"
MANAGEMENT_ROLE_RESOURCE = "ManagementAccountScannerRole"
STACK_SET_RESOURCE = "ScannerRoleStackSet"
INLINE_POLICY_NAME = "CloudWizardReadOnlyExtras"

# STS answers GetCallerIdentity for any valid credentials; no policy (not even an explicit Deny or an SCP)
# can refuse it, so it never needs a grant.
ALWAYS_PERMITTED: frozenset[str] = frozenset({"sts:GetCallerIdentity"})

Decision = Literal["allowed", "denied", "not_granted"]


class Probe(NamedTuple):
    """One cheap call that proves the role can read a service (run when an account is verified)."""

    service: str  # label shown to users
    action: str  # the IAM action the call needs
    client: str  # botocore service name
    operation: str  # botocore operation name
    params: dict[str, Any]
    regional: bool = True


PROBES: tuple[Probe, ...] = (
    Probe("iam", "iam:ListUsers", "iam", "ListUsers", {"MaxItems": 1}, regional=False),
    Probe("s3", "s3:ListAllMyBuckets", "s3", "ListBuckets", {"MaxBuckets": 1}, regional=False),
    Probe("ec2", "ec2:DescribeSecurityGroups", "ec2", "DescribeSecurityGroups", {"MaxResults": 5}),
    Probe("cloudtrail", "cloudtrail:DescribeTrails", "cloudtrail", "DescribeTrails", {}),
    Probe("config", "config:DescribeConfigurationRecorders", "config", "DescribeConfigurationRecorders", {}),
    Probe("guardduty", "guardduty:ListDetectors", "guardduty", "ListDetectors", {"MaxResults": 1}),
    Probe("securityhub", "securityhub:DescribeHub", "securityhub", "DescribeHub", {}),
    Probe("kms", "kms:ListKeys", "kms", "ListKeys", {"Limit": 1}),
    Probe("rds", "rds:DescribeDBInstances", "rds", "DescribeDBInstances", {"MaxRecords": 20}),
    Probe("lambda", "lambda:ListFunctions", "lambda", "ListFunctions", {"MaxItems": 1}),
    Probe("logs", "logs:DescribeMetricFilters", "logs", "DescribeMetricFilters", {"limit": 1}),
    Probe("cloudwatch", "cloudwatch:DescribeAlarms", "cloudwatch", "DescribeAlarms", {"MaxRecords": 1}),
    Probe("elbv2", "elasticloadbalancing:DescribeLoadBalancers", "elbv2", "DescribeLoadBalancers",
          {"PageSize": 1}),
    Probe("cloudfront", "cloudfront:ListDistributions", "cloudfront", "ListDistributions", {"MaxItems": "1"},
          regional=False),
    Probe("efs", "elasticfilesystem:DescribeFileSystems", "efs", "DescribeFileSystems", {"MaxItems": 1}),
    Probe("dynamodb", "dynamodb:ListTables", "dynamodb", "ListTables", {"Limit": 1}),
    Probe("sns", "sns:ListTopics", "sns", "ListTopics", {}),
    Probe("sqs", "sqs:ListQueues", "sqs", "ListQueues", {"MaxResults": 1}),
    Probe("secretsmanager", "secretsmanager:ListSecrets", "secretsmanager", "ListSecrets", {"MaxResults": 1}),
    Probe("accessanalyzer", "access-analyzer:ListAnalyzers", "accessanalyzer", "ListAnalyzers",
          {"maxResults": 1}),
    Probe("redshift", "redshift:DescribeClusters", "redshift", "DescribeClusters", {"MaxRecords": 20}),
    Probe("account", "account:ListRegions", "account", "ListRegions", {"MaxResults": 1}, regional=False),
    Probe("ecr", "ecr:DescribeRepositories", "ecr", "DescribeRepositories", {"maxResults": 1}),
    Probe("eks", "eks:ListClusters", "eks", "ListClusters", {"maxResults": 1}),
    Probe("ecs", "ecs:ListClusters", "ecs", "ListClusters", {"maxResults": 1}),
    Probe("route53", "route53:ListHostedZones", "route53", "ListHostedZones", {"MaxItems": "1"},
          regional=False),
    Probe("ssm", "ssm:DescribeInstanceInformation", "ssm", "DescribeInstanceInformation", {"MaxResults": 5}),
    Probe("autoscaling", "autoscaling:DescribeAutoScalingGroups", "autoscaling", "DescribeAutoScalingGroups",
          {"MaxRecords": 1}),
    Probe("acm", "acm:ListCertificates", "acm", "ListCertificates", {"MaxItems": 1}),
    Probe("wafv2", "wafv2:ListWebACLs", "wafv2", "ListWebACLs", {"Scope": "REGIONAL", "Limit": 1}),
    Probe("apigateway", "apigateway:GET", "apigateway", "GetRestApis", {"limit": 1}),
    Probe("opensearch", "es:ListDomainNames", "opensearch", "ListDomainNames", {}),
    Probe("elasticache", "elasticache:DescribeCacheClusters", "elasticache", "DescribeCacheClusters",
          {"MaxRecords": 20}),
    Probe("backup", "backup:ListBackupVaults", "backup", "ListBackupVaults", {"MaxResults": 1}),
)

# What verifying a connection calls besides the probes: who we are, our own role's trust policy (to prove
# it demands the External ID) and the account's regions.
VERIFICATION_ACTIONS: frozenset[str] = frozenset(
    {"sts:GetCallerIdentity", "iam:GetRole", "ec2:DescribeRegions"}
)

_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")
_DECLARED: dict[str, frozenset[str]] = {}


def declare(component: str, actions: Iterable[str]) -> frozenset[str]:
    """Record the IAM actions a component calls; refuses actions the read-only guard would refuse."""
    if not component:
        raise ValueError("component name is required")
    wanted = frozenset(actions)
    if not wanted:
        raise ValueError(f"{component} declares no actions")
    for action in wanted:
        if not _ACTION_RE.match(action):
            raise ValueError(f"{component}: {action!r} is not a concrete IAM action (service:Action)")
        allowed, reason = is_allowed(action)
        if not allowed:
            raise ValueError(f"{component}: {action} is not read-only: {reason}")
    previous = _DECLARED.get(component)
    if previous is not None and previous != wanted:
        raise ValueError(f"{component} already declared a different set of actions")
    _DECLARED[component] = wanted
    return wanted


_scanners_loaded = False


def load_declarations() -> None:
    """Import every collector module so that all declarations (and registered collectors) exist."""
    global _scanners_loaded
    if _scanners_loaded:
        return
    import app.scanners

    for module in pkgutil.iter_modules(app.scanners.__path__):
        importlib.import_module(f"app.scanners.{module.name}")
    _scanners_loaded = True


def actions_by_component() -> dict[str, frozenset[str]]:
    """Every action CloudWizard may call, grouped by the component that calls it."""
    load_declarations()
    from app.scanners.base import COLLECTORS

    groups: dict[str, frozenset[str]] = {
        "verification": VERIFICATION_ACTIONS,
        "probes": frozenset(p.action for p in PROBES),
    }
    groups.update(_DECLARED)
    for name, collector in COLLECTORS.items():
        groups[f"collector:{name}"] = frozenset(collector.actions)
    return groups


def required_actions() -> frozenset[str]:
    return frozenset().union(*actions_by_component().values())


class _RequiredActions(Set[str]):
    """A live view: always reflects the latest declarations."""

    def __contains__(self, action: object) -> bool:
        return action in required_actions()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(required_actions()))

    def __len__(self) -> int:
        return len(required_actions())

    def __repr__(self) -> str:
        return f"REQUIRED_ACTIONS({sorted(required_actions())!r})"


REQUIRED_ACTIONS: Set[str] = _RequiredActions()


# --- CloudFormation templates ---------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _cfn_tag(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def parse_template(text: str) -> dict[str, Any]:
    """Parse CloudFormation YAML, short-form tags included."""
    return yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects


def load_template(path: Path | str) -> dict[str, Any]:
    return parse_template(Path(path).read_text())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolve_partition(value: Any) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        value = value["Fn::Sub"].replace("${AWS::Partition}", "aws")
    if not isinstance(value, str):
        raise ValueError(f"cannot evaluate managed policy ARN {value!r}")
    return value


@lru_cache
def security_audit() -> dict[str, Any]:
    """The vendored AWS managed SecurityAudit policy (see its Source and DefaultVersionId)."""
    return json.loads(SECURITY_AUDIT_PATH.read_text())


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = _as_list(document["Statement"])
    for st in statements:
        unsupported = {"NotAction", "NotResource", "NotPrincipal", "Condition"} & st.keys()
        if unsupported:
            # Evaluating these needs request context; an over-approximation here would be a wrong answer.
            raise ValueError(f"statement {st.get('Sid')!r} uses {sorted(unsupported)}; cannot evaluate")
    return statements


def _matches(action: str, patterns: Iterable[str]) -> bool:
    lowered = action.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


@dataclass(frozen=True)
class RolePermissions:
    """The identity policies of the template's role: what it allows and what it explicitly denies."""

    managed_policies: tuple[str, ...]
    managed_allow: tuple[str, ...]
    inline_allow: tuple[str, ...]
    deny: tuple[str, ...]

    def decision(self, action: str) -> Decision:
        """IAM evaluation for one concrete action: explicit Deny wins, then any Allow, else implicit deny."""
        if "*" in action or "?" in action or ":" not in action:
            raise ValueError(f"give one concrete IAM action, not {action!r}")
        if action in ALWAYS_PERMITTED:
            return "allowed"
        if _matches(action, self.deny):
            return "denied"
        if _matches(action, self.managed_allow) or _matches(action, self.inline_allow):
            return "allowed"
        return "not_granted"

    def managed_grants(self, action: str) -> bool:
        return _matches(action, self.managed_allow)


def role_permissions_from(template: dict[str, Any], resource: str = ROLE_RESOURCE) -> RolePermissions:
    props = template["Resources"][resource]["Properties"]
    managed_allow: list[str] = []
    arns = [_resolve_partition(a) for a in props.get("ManagedPolicyArns", [])]
    for arn in arns:
        if arn != "arn:aws:iam::aws:policy/SecurityAudit":
            raise ValueError(f"no vendored copy of {arn}; cannot evaluate it")
        for st in _statements(security_audit()["Document"]):
            if st["Effect"] == "Allow":
                managed_allow.extend(_as_list(st["Action"]))
    inline_allow: list[str] = []
    deny: list[str] = []
    for policy in props.get("Policies", []):
        for st in _statements(policy["PolicyDocument"]):
            (inline_allow if st["Effect"] == "Allow" else deny).extend(_as_list(st["Action"]))
    return RolePermissions(tuple(arns), tuple(managed_allow), tuple(inline_allow), tuple(deny))


@lru_cache
def role_permissions() -> RolePermissions:
    """What cfn/cloudwizard-role.yaml grants, read from the file customers deploy."""
    return role_permissions_from(load_template(ROLE_TEMPLATE_PATH))


def permission_decision(action: str, permissions: RolePermissions | None = None) -> Decision:
    """"allowed", "denied" (explicit Deny in the role) or "not_granted" (no Allow) for one IAM action."""
    return (permissions or role_permissions()).decision(action)


def minimal_extras(permissions: RolePermissions | None = None) -> frozenset[str]:
    """The reads the inline policy must add: required actions SecurityAudit does not already grant."""
    permissions = permissions or role_permissions()
    return frozenset(
        a for a in required_actions() if a not in ALWAYS_PERMITTED and not permissions.managed_grants(a)
    )


ALLOW_SID = "ReadsNotInSecurityAudit"
DENY_SID = "DenyCustomerDataAndSecrets"


def _replace_action_list(text: str, sid: str, actions: Iterable[str]) -> str:
    """Rewrite the Action list of the statement `sid` (block-style YAML list) with `actions`."""
    lines = text.splitlines(keepends=True)
    sid_at = next(i for i, line in enumerate(lines) if line.strip() == f"- Sid: {sid}")
    action_at = next(i for i in range(sid_at + 1, len(lines)) if lines[i].strip() == "Action:")
    item_indent = " " * (len(lines[action_at]) - len(lines[action_at].lstrip()) + 2)
    end = action_at + 1
    while end < len(lines) and lines[end].startswith(item_indent + "- "):
        end += 1
    items = [f"{item_indent}- {action}\n" for action in actions]
    return "".join(lines[: action_at + 1] + items + lines[end:])


def _block(lines: list[str], start: int) -> int:
    """End (exclusive) of the YAML block whose key line is lines[start], trailing blank lines excluded."""
    def depth(line: str) -> int:
        return len(line) - len(line.lstrip())

    end = start + 1
    while end < len(lines) and (not lines[end].strip() or depth(lines[end]) > depth(lines[start])):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def render_role_template(role_text: str) -> str:
    """The role template with its inline Allow and Deny lists generated from this code."""
    extras = minimal_extras(role_permissions_from(parse_template(role_text)))
    text = _replace_action_list(role_text, ALLOW_SID, sorted(extras))
    return _replace_action_list(text, DENY_SID, DATA_PLANE_DENY)


def render_organization_template(organization_text: str, role_text: str) -> str:
    """The organization template with the role template embedded verbatim (StackSet TemplateBody) and
    its management-account role copied from the role template's ScannerRole."""
    role_lines = role_text.splitlines(keepends=True)
    role_at = role_lines.index(f"  {ROLE_RESOURCE}:\n")
    role_block = role_lines[role_at: _block(role_lines, role_at)]
    management_block = [f"  {MANAGEMENT_ROLE_RESOURCE}:\n", role_block[1],
                        "    Condition: CreateManagementAccountRole\n", *role_block[2:]]
    if role_block[1].strip() != "Type: AWS::IAM::Role":
        raise ValueError(f"{ROLE_RESOURCE} must start with its Type line")

    lines = organization_text.splitlines(keepends=True)
    at = lines.index(f"  {MANAGEMENT_ROLE_RESOURCE}:\n")
    lines[at: _block(lines, at)] = management_block

    at = next(i for i, line in enumerate(lines) if line.strip() == "TemplateBody: |")
    indent = " " * (len(lines[at]) - len(lines[at].lstrip()) + 2)
    body = [indent + line if line.strip() else "\n" for line in role_lines]
    lines[at + 1: _block(lines, at)] = body
    return "".join(lines)


def render_templates() -> dict[Path, str]:
    """What both files in cfn/ must contain, given the current code and the hand-written parts."""
    role = render_role_template(ROLE_TEMPLATE_PATH.read_text())
    organization = render_organization_template(ORGANIZATION_TEMPLATE_PATH.read_text(), role)
    return {ROLE_TEMPLATE_PATH: role, ORGANIZATION_TEMPLATE_PATH: organization}


def template_drift() -> list[str]:
    """Every way the templates in cfn/ disagree with this code; empty when they are in sync."""
    problems: list[str] = []
    for path, wanted in render_templates().items():
        if path.read_text() != wanted:
            problems.append(f"{path.name} is out of date: run `python -m app.aws.permissions sync`")
    perms = role_permissions()
    for action in sorted(perms.inline_allow):
        allowed, reason = is_allowed(action)
        if not allowed:
            problems.append(f"{INLINE_POLICY_NAME} allows {action}, which is not read-only: {reason}")
    for action in sorted(required_actions()):
        decision = perms.decision(action)
        if decision != "allowed":
            problems.append(f"required action {action} is {decision} by the role template")
    return problems


def probe_action_mismatches() -> list[str]:
    """Probes whose declared action is not the action botocore's operation really needs."""
    import botocore.session

    session = botocore.session.get_session()
    out = []
    for probe in PROBES:
        actual = iam_action(session.get_service_model(probe.client), probe.operation)
        if actual != probe.action:
            out.append(f"{probe.service}: {probe.client}.{probe.operation} needs {actual}, "
                       f"not {probe.action}")
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m app.aws.permissions [sync]`: report drift; `sync` first regenerates the generated parts."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["sync"]:
        for path, text in render_templates().items():
            path.write_text(text)
        role_permissions.cache_clear()
    elif args:
        print("usage: python -m app.aws.permissions [sync]", file=sys.stderr)
        return 2
    problems = template_drift() + probe_action_mismatches()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
