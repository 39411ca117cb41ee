"""The customer role templates: valid CloudFormation, least privilege, and in sync with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

from app.aws import permissions
from app.aws.guard import check_call, is_allowed
from app.aws.permissions import (
    ALWAYS_PERMITTED,
    INLINE_POLICY_NAME,
    ORGANIZATION_TEMPLATE_PATH,
    PROBES,
    REQUIRED_ACTIONS,
    ROLE_TEMPLATE_PATH,
    RolePermissions,
    declare,
    minimal_extras,
    parse_template,
    permission_decision,
    probe_action_mismatches,
    render_organization_template,
    render_role_template,
    role_permissions,
    role_permissions_from,
    template_drift,
)
from app.aws.readonly import DATA_PLANE_DENY
from app.services.aws_accounts import new_external_id
from tests.aws_readonly_helpers import moto_server

TEMPLATES = [ROLE_TEMPLATE_PATH, ORGANIZATION_TEMPLATE_PATH]
SCANNER_ARN = "arn:aws:iam::111111111111:role/CloudWizardScanner"


def _decoded(path: Path) -> dict:
    """Parsed by cfn-lint's own decoder, independently of app.aws.permissions."""
    template, errors = decode(str(path))
    assert not errors, errors
    return template


def _role(template: dict, name: str = "ScannerRole") -> dict:
    return template["Resources"][name]["Properties"]


def _statements(document: dict) -> list[dict]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def _inline(template: dict, effect: str, name: str = "ScannerRole") -> list[str]:
    (policy,) = [p for p in _role(template, name)["Policies"] if p["PolicyName"] == INLINE_POLICY_NAME]
    return [a for st in _statements(policy["PolicyDocument"]) if st["Effect"] == effect for a in _actions(st)]


def _in_iam_catalogue(action: str) -> bool:
    import cfnlint

    catalogue = json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text())
    prefix, name = action.lower().split(":", 1)
    return name in catalogue.get(prefix, {}).get("Actions", {})


def _moto_security_audit() -> dict:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)["SecurityAudit"]["Document"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(path):
    # Informational rules too, and one region per partition the templates accept.
    config = ManualArgs(include_checks=["I"], regions=["us-east-1", "us-gov-west-1", "cn-north-1"])
    matches = lint_file(path, config)
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_our_parser_agrees_with_cfn_lint(path):
    assert parse_template(path.read_text()) == _decoded(path)


def test_trust_policy_allows_only_the_scanner_with_the_external_id():
    role = _role(_decoded(ROLE_TEMPLATE_PATH))
    (statement,) = _statements(role["AssumeRolePolicyDocument"])
    assert statement["Effect"] == "Allow"
    assert _actions(statement) == ["sts:AssumeRole"]
    assert statement["Principal"] == {"AWS": {"Ref": "ScannerPrincipalArn"}}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert not {"NotPrincipal", "NotAction"} & statement.keys()


def test_role_basics():
    template = _decoded(ROLE_TEMPLATE_PATH)
    role = _role(template)
    assert role["MaxSessionDuration"] == 3600
    assert role["ManagedPolicyArns"] == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/SecurityAudit"}]
    assert role["RoleName"] == {"Ref": "RoleName"}
    assert {t["Key"] for t in role["Tags"]} >= {"ManagedBy"}
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["ScannerRole", "Arn"]}
    assert template["Outputs"]["ExternalId"]["Value"] == {"Ref": "ExternalId"}
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = {p for group in interface["ParameterGroups"] for p in group["Parameters"]}
    assert grouped == set(template["Parameters"]) == set(interface["ParameterLabels"])
    # Only the role and nothing that could reach data, compute or the network.
    assert {r["Type"] for r in template["Resources"].values()} == {"AWS::IAM::Role"}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(_decoded(ROLE_TEMPLATE_PATH)["Parameters"][name]["AllowedPattern"])


def test_external_id_parameter_accepts_what_we_generate_and_nothing_weak():
    parameter = _decoded(ROLE_TEMPLATE_PATH)["Parameters"]["ExternalId"]
    assert "NoEcho" not in parameter and "Default" not in parameter
    pattern = _pattern("ExternalId")
    for _ in range(50):
        generated = new_external_id()
        assert pattern.fullmatch(generated)
        assert parameter["MinLength"] <= len(generated) <= parameter["MaxLength"]
    for bad in ["", "cw-", "cw-short", "123456", "cw-" + "a" * 21, "cw-" + "a" * 65,
                "cw-has space-aaaaaaaaaaaaaaa", "xx-" + "a" * 32]:
        assert not pattern.fullmatch(bad), bad
    # The length limits are no looser than the pattern.
    assert parameter["MinLength"] == len("cw-") + 22 and parameter["MaxLength"] == len("cw-") + 64


def test_scanner_principal_parameter_accepts_only_role_arns():
    pattern = _pattern("ScannerPrincipalArn")
    for good in [SCANNER_ARN, "arn:aws-us-gov:iam::111111111111:role/CloudWizardScanner",
                 "arn:aws-cn:iam::111111111111:role/path/to/Scanner",
                 "arn:aws:iam::111111111111:role/a+b=c,d.e@f_g-h"]:
        assert pattern.fullmatch(good), good
    for bad in ["*", "111111111111", "arn:aws:iam::111111111111:root", "arn:aws:iam::111111111111:user/alice",
                "arn:aws:iam::*:role/CloudWizardScanner", "arn:aws:iam::111111111111:role/*",
                "arn:aws:sts::111111111111:assumed-role/CloudWizardScanner/session",
                "arn:aws-iso:iam::111111111111:role/CloudWizardScanner", "arn:aws:iam::11111111111:role/x"]:
        assert not pattern.fullmatch(bad), bad


def test_role_name_parameter():
    parameter = _decoded(ROLE_TEMPLATE_PATH)["Parameters"]["RoleName"]
    assert parameter["Default"] == "CloudWizardScanner"
    pattern = _pattern("RoleName")
    assert pattern.fullmatch("CloudWizardScanner")
    assert not pattern.fullmatch("a" * 65) and not pattern.fullmatch("bad name") and not pattern.fullmatch("")


def test_inline_allow_is_read_only_and_explicit():
    extras = _inline(_decoded(ROLE_TEMPLATE_PATH), "Allow")
    for action in extras:
        assert "*" not in action and "?" not in action, f"{action}: no wildcards in our own grants"
        allowed, reason = is_allowed(action)
        assert allowed, f"{action}: {reason}"


def test_deny_is_exactly_the_data_plane_list():
    template = _decoded(ROLE_TEMPLATE_PATH)
    deny = _inline(template, "Deny")
    assert len(deny) == len(set(deny))
    assert set(deny) == set(DATA_PLANE_DENY)
    (policy,) = _role(template)["Policies"]
    for statement in _statements(policy["PolicyDocument"]):
        assert statement["Resource"] == "*"
        assert not {"Condition", "NotAction", "NotResource"} & statement.keys()


def test_inline_policy_fits_the_iam_size_limit():
    # IAM counts the inline policies of a role without whitespace; the quota is 10,240 characters.
    size = sum(len(re.sub(r"\s", "", json.dumps(p["PolicyDocument"])))
               for p in _role(_decoded(ROLE_TEMPLATE_PATH))["Policies"])
    assert size < 10_240


def test_vendored_security_audit_matches_moto_copy():
    vendored = json.loads(permissions.SECURITY_AUDIT_PATH.read_text())
    assert vendored["PolicyArn"] == "arn:aws:iam::aws:policy/SecurityAudit"
    assert vendored["Document"] == _moto_security_audit(), (
        "AWS changed SecurityAudit: re-vendor app/aws/data/security_audit.json and review the templates")


def _security_audit_grants(action: str) -> bool:
    statements = _statements(_moto_security_audit())
    patterns = [a for st in statements if st["Effect"] == "Allow" for a in _actions(st)]
    return any(re.fullmatch(re.escape(p.lower()).replace(r"\*", ".*").replace(r"\?", "."), action.lower())
               for p in patterns)


def test_extras_are_exactly_the_required_reads_security_audit_lacks():
    extras = set(_inline(_decoded(ROLE_TEMPLATE_PATH), "Allow"))
    wanted = {a for a in REQUIRED_ACTIONS if a not in ALWAYS_PERMITTED and not _security_audit_grants(a)}
    assert extras == wanted
    assert extras == minimal_extras()


def test_every_required_action_is_allowed_and_none_denied():
    required = set(REQUIRED_ACTIONS)
    assert {p.action for p in PROBES} <= required
    assert {"sts:GetCallerIdentity", "iam:GetRole"} <= required
    decisions = {a: permission_decision(a) for a in required}
    assert {a: d for a, d in decisions.items() if d != "allowed"} == {}
    for action in required:
        allowed, reason = is_allowed(action)
        assert allowed, f"{action}: {reason}"
    # Declared names must be IAM actions (s3:GetEncryptionConfiguration), not API names
    # (s3:GetBucketEncryption), which a SecurityAudit wildcard could otherwise appear to grant.
    assert sorted(a for a in required if not _in_iam_catalogue(a)) == []


def test_permission_decision_follows_iam_evaluation():
    assert permission_decision("ec2:DescribeInstances") == "allowed"  # SecurityAudit ec2:Describe*
    assert permission_decision("account:ListRegions") == "allowed"  # our inline extra
    assert permission_decision("cloudformation:GetTemplate") == "denied"  # SecurityAudit grants, we deny
    assert permission_decision("kms:GenerateDataKeyWithoutPlaintext") == "denied"  # kms:GenerateDataKey*
    assert permission_decision("S3:GETOBJECT") == "denied"  # IAM names are case-insensitive
    assert permission_decision("s3:PutObject") == "not_granted"
    assert permission_decision("iam:CreateUser") == "not_granted"
    assert permission_decision("sts:GetCallerIdentity") == "allowed"
    with pytest.raises(ValueError):
        permission_decision("s3:Get*")


def test_evaluation_with_moto_security_audit_copy():
    # The same answers with the policy as moto ships it, not only with our vendored copy.
    perms = role_permissions()
    with_moto = RolePermissions(perms.managed_policies,
                                tuple(a for st in _statements(_moto_security_audit()) for a in _actions(st)),
                                perms.inline_allow, perms.deny)
    for action in REQUIRED_ACTIONS:
        assert with_moto.decision(action) == "allowed", action
    for action in DATA_PLANE_DENY:
        concrete = action.replace("*", "X").replace("?", "X")
        assert with_moto.decision(concrete) == "denied", action


def test_probes_are_real_cheap_and_read_only():
    assert probe_action_mismatches() == []
    session = botocore.session.get_session()
    validator = ParamValidator()
    labels = [p.service for p in PROBES]
    assert len(labels) == len(set(labels))
    for probe in PROBES:
        model = session.get_service_model(probe.client)
        operation = model.operation_model(probe.operation)
        report = validator.validate(probe.params, operation.input_shape)
        assert not report.has_errors(), f"{probe.service}: {report.generate_report()}"
        assert check_call(model, probe.operation, probe.params) == probe.action
        # Cheap: every probe that can limit its page size does.
        limits = {"MaxItems", "MaxResults", "MaxRecords", "Limit", "limit", "maxResults", "PageSize",
                  "MaxBuckets"}
        members = set(operation.input_shape.members) if operation.input_shape else set()
        if members & limits:
            assert set(probe.params) & limits, f"{probe.service} fetches a full page"


@pytest.fixture
def scratch_component():
    name = "test:scratch"
    yield name
    permissions._DECLARED.pop(name, None)  # the registry is process-wide; leave it as found


def test_declare_refuses_anything_but_concrete_reads(scratch_component):
    for bad in [["s3:GetObject"], ["s3:PutObject"], ["ec2:Describe*"], ["GetObject"], []]:
        with pytest.raises(ValueError):
            declare(scratch_component, bad)
    assert scratch_component not in permissions.actions_by_component()


def test_a_new_declaration_makes_the_template_stale(scratch_component):
    assert template_drift() == []
    assert "macie2:GetMacieSession" not in REQUIRED_ACTIONS
    declare(scratch_component, ["macie2:GetMacieSession", "ec2:DescribeInstances"])
    assert "macie2:GetMacieSession" in REQUIRED_ACTIONS
    with pytest.raises(ValueError):
        declare(scratch_component, ["ec2:DescribeVolumes"])  # a component cannot silently change its list
    # Not in SecurityAudit, so the inline policy must grow; ec2:DescribeInstances is covered already.
    assert minimal_extras() == {"account:ListRegions", "macie2:GetMacieSession"}
    assert permission_decision("macie2:GetMacieSession") == "not_granted"
    drift = template_drift()
    assert any("cloudwizard-role.yaml is out of date" in p for p in drift)
    assert any("macie2:GetMacieSession is not_granted" in p for p in drift)
    rendered = render_role_template(ROLE_TEMPLATE_PATH.read_text())
    assert "macie2:GetMacieSession" in _inline(parse_template(rendered), "Allow")


def test_templates_are_in_sync_with_the_code():
    assert template_drift() == []


def test_editing_either_side_alone_is_detected():
    role_text = ROLE_TEMPLATE_PATH.read_text()
    dropped = role_text.replace("                  - secretsmanager:GetSecretValue\n", "", 1)
    assert dropped != role_text
    assert render_role_template(dropped) == role_text
    item = "                  - {}\n"
    widened = role_text.replace(item.format("account:ListRegions"),
                                item.format("account:ListRegions") + item.format("s3:ListBucket"), 1)
    assert widened != role_text
    assert render_role_template(widened) == role_text
    # A Deny entry that is not in DATA_PLANE_DENY is dropped as well, not kept silently.
    extra_deny = role_text.replace("                  - s3:GetObject\n",
                                   "                  - s3:GetObject\n                  - s3:ListBucket\n", 1)
    assert render_role_template(extra_deny) == role_text
    organization_text = ORGANIZATION_TEMPLATE_PATH.read_text()
    assert render_organization_template(organization_text, dropped) != organization_text


def test_organization_template_deploys_the_same_role_everywhere():
    organization = _decoded(ORGANIZATION_TEMPLATE_PATH)
    stack_set = organization["Resources"]["ScannerRoleStackSet"]
    assert stack_set["Type"] == "AWS::CloudFormation::StackSet"
    props = stack_set["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"]["Enabled"] is True
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    preferences = props["OperationPreferences"]
    assert preferences["FailureTolerancePercentage"] == {"Ref": "FailureTolerancePercentage"}
    assert preferences["MaxConcurrentPercentage"] == {"Ref": "MaxConcurrentPercentage"}
    (group,) = props["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}}
    # IAM is global: one region, or every extra region would fail on the existing role name.
    assert group["Regions"] == [{"Ref": "AWS::Region"}]
    assert organization["Parameters"]["OrganizationalUnitIds"]["Type"] == "CommaDelimitedList"

    # The member accounts get cloudwizard-role.yaml itself, with every one of its parameters passed through.
    assert props["TemplateBody"] == ROLE_TEMPLATE_PATH.read_text()
    role = _decoded(ROLE_TEMPLATE_PATH)
    assert {p["ParameterKey"]: p["ParameterValue"] for p in props["Parameters"]} == {
        name: {"Ref": name} for name in role["Parameters"]}
    for name, spec in role["Parameters"].items():
        assert organization["Parameters"][name] == spec | {"Description": organization["Parameters"][name]
                                                           ["Description"]}, name

    # StackSets skip the management account; the same role is created there as a plain resource.
    management = organization["Resources"]["ManagementAccountScannerRole"]
    assert management["Condition"] == "CreateManagementAccountRole"
    assert management["Properties"] == _role(role)
    assert "management account" in organization["Description"]
    assert organization["Outputs"]["ManagementAccountRoleArn"]["Condition"] == "CreateManagementAccountRole"


def test_role_template_deploys_on_moto_with_parameters_wired():
    """Deploy the real template (moto's CloudFormation) and read the role back through IAM."""
    external_id = new_external_id()
    with moto_server() as endpoint:
        kwargs = {"region_name": "us-east-1", "endpoint_url": endpoint, "aws_access_key_id": "testing",
                  "aws_secret_access_key": "testing"}
        cloudformation = boto3.client("cloudformation", **kwargs)
        cloudformation.create_stack(
            StackName="CloudWizard", TemplateBody=ROLE_TEMPLATE_PATH.read_text(),
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=[{"ParameterKey": "ExternalId", "ParameterValue": external_id},
                        {"ParameterKey": "ScannerPrincipalArn", "ParameterValue": SCANNER_ARN}])
        stack = cloudformation.describe_stacks(StackName="CloudWizard")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert outputs["RoleArn"].endswith(":role/CloudWizardScanner")
        assert outputs["ExternalId"] == external_id
        iam = boto3.client("iam", **kwargs)
        role = iam.get_role(RoleName="CloudWizardScanner")["Role"]
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"AWS": SCANNER_ARN}
        assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}
        assert role["MaxSessionDuration"] == 3600
        assert iam.list_role_policies(RoleName="CloudWizardScanner")["PolicyNames"] == [INLINE_POLICY_NAME]
        # moto 5.2 drops ManagedPolicyArns of template roles; the SecurityAudit attachment is checked
        # statically in test_role_basics.


def test_role_permissions_refuses_what_it_cannot_evaluate():
    template = parse_template(ROLE_TEMPLATE_PATH.read_text())
    role = _role(template)
    role["ManagedPolicyArns"] = [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess"}]
    with pytest.raises(ValueError):
        role_permissions_from(template)
    template = parse_template(ROLE_TEMPLATE_PATH.read_text())
    _role(template)["Policies"][0]["PolicyDocument"]["Statement"][0]["Condition"] = {"Bool": {"x": "y"}}
    with pytest.raises(ValueError):
        role_permissions_from(template)
