"""IAM, Access Analyzer and account contact checks: PASS and FAIL on the moto-backed fake wherever moto can hold
the state, inventory fixtures (collector-shaped) where it cannot, and ERROR when a call fails."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.checks.base import CHECKS
from app.checks.iam import full_admin_statements, restricting_keys, service_wildcard_actions
from app.scanners.account import AccountSecurityContact
from app.scanners.base import GLOBAL, CollectionError
from app.scanners.iam import (
    ROOT_ROW,
    AccessAnalyzerRegion,
    AccessAnalyzerSummary,
    IamGroup,
    IamPasswordPolicy,
    IamRole,
    IamServerCertificate,
    IamUser,
    IamVirtualMfaDevice,
    InlinePolicy,
    credential_report_resources,
    policy_document,
)
from tests.aws_fixtures import CUSTOMER_ACCOUNT, OTHER_ACCOUNT
from tests.iam_helpers import (
    ROOT_ARN,
    ago,
    allow,
    denied,
    findings,
    inventory,
    key,
    only,
    policy,
    report_user,
    results,
    role,
    root,
    scan,
    status_map,
    statuses,
    trust,
)

PASSWORD_CHECKS = (
    "iam_password_policy_minimum_length_14", "iam_password_policy_reuse_prevention_24",
    "iam_password_policy_uppercase", "iam_password_policy_lowercase", "iam_password_policy_number",
    "iam_password_policy_symbol", "iam_password_policy_expires_90_days",
)
ROOT_CHECKS = ("iam_root_no_access_keys", "iam_root_mfa_enabled", "iam_root_hardware_mfa_enabled",
               "iam_root_not_recently_used")
REPORT_USER_CHECKS = (
    "iam_user_console_mfa_enabled", "iam_user_mfa_enabled", "iam_user_no_unused_setup_access_key",
    "iam_user_credentials_unused_45_days", "iam_user_credentials_unused_90_days",
    "iam_user_single_active_access_key", "iam_user_access_keys_rotated_90_days",
)
POLICY_CHECKS = (
    "iam_user_no_direct_policies", "iam_user_no_administrator_access", "iam_customer_attached_policy_no_admin",
    "iam_customer_unattached_policy_no_admin", "iam_inline_policy_no_admin",
    "iam_customer_policy_no_service_wildcard",
)
ROLE_CHECKS = ("iam_role_trust_not_public", "iam_role_cross_account_trust_restricted",
               "iam_role_github_oidc_trust_restricted", "iam_role_unused_90_days")
GITHUB = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def _iam(aws_fake):
    return aws_fake.client("iam")


def _user(iam, name: str, *, console: bool = False, keys: int = 0, mfa: bool = False) -> None:
    iam.create_user(UserName=name)
    if console:
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9-Battery")
    for _ in range(keys):
        iam.create_access_key(UserName=name)
    if mfa:
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-mfa")["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                              AuthenticationCode2="654321")


def _role(iam, name: str, trust_doc: dict, **kwargs) -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_doc), **kwargs)


def _customer_policy(iam, name: str, doc: dict) -> str:
    return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]


def _iam_calls(aws_fake) -> dict[str, int]:
    return {k: v for k, v in aws_fake.stats()["calls"].items() if k.startswith("iam:")}


def test_every_check_has_a_test_here():
    ours = {c for c in CHECKS if c.startswith(("iam_", "accessanalyzer_", "account_"))}
    source = open(__file__).read()
    assert len(ours) >= 30
    assert {c for c in ours if c not in source} == set()


# --------------------------------------------------------------------------------------------------
# Password policy (moto)
# --------------------------------------------------------------------------------------------------

async def test_no_password_policy_fails_every_requirement(aws_fake):
    out = await scan(*PASSWORD_CHECKS)
    assert not out.errors  # NoSuchEntity means "no policy": data, not an error
    for check in PASSWORD_CHECKS:
        finding = findings(out)[check][CUSTOMER_ACCOUNT]
        assert finding.status == "FAIL", check
        assert "no IAM password policy" in finding.message
        assert finding.resource_arn == ROOT_ARN


async def test_strong_password_policy_passes(aws_fake):
    _iam(aws_fake).update_account_password_policy(
        MinimumPasswordLength=14, RequireSymbols=True, RequireNumbers=True, RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True, PasswordReusePrevention=24, MaxPasswordAge=90)
    out = await scan(*PASSWORD_CHECKS)
    assert {c: status_map(out, c)[CUSTOMER_ACCOUNT] for c in PASSWORD_CHECKS} == dict.fromkeys(PASSWORD_CHECKS, "PASS")


async def test_weak_password_policy_fails_what_it_lacks(aws_fake):
    _iam(aws_fake).update_account_password_policy(MinimumPasswordLength=8, RequireNumbers=True,
                                                  PasswordReusePrevention=5, MaxPasswordAge=180)
    out = await scan(*PASSWORD_CHECKS)
    got = {c: status_map(out, c)[CUSTOMER_ACCOUNT] for c in PASSWORD_CHECKS}
    assert got == {
        "iam_password_policy_minimum_length_14": "FAIL", "iam_password_policy_reuse_prevention_24": "FAIL",
        "iam_password_policy_uppercase": "FAIL", "iam_password_policy_lowercase": "FAIL",
        "iam_password_policy_number": "PASS", "iam_password_policy_symbol": "FAIL",
        "iam_password_policy_expires_90_days": "FAIL",
    }
    assert "only 8 characters" in findings(out)["iam_password_policy_minimum_length_14"][CUSTOMER_ACCOUNT].message


@pytest.mark.parametrize(("fields", "check", "status"), [
    ({"minimum_length": 13}, "iam_password_policy_minimum_length_14", "FAIL"),
    ({"minimum_length": 14}, "iam_password_policy_minimum_length_14", "PASS"),
    ({"reuse_prevention": 23}, "iam_password_policy_reuse_prevention_24", "FAIL"),
    ({"reuse_prevention": 24}, "iam_password_policy_reuse_prevention_24", "PASS"),
    ({"expire_passwords": True, "max_age_days": 91}, "iam_password_policy_expires_90_days", "FAIL"),
    ({"expire_passwords": True, "max_age_days": 90}, "iam_password_policy_expires_90_days", "PASS"),
    ({"expire_passwords": False, "max_age_days": None}, "iam_password_policy_expires_90_days", "FAIL"),
])
def test_password_policy_boundaries(fields, check, status):
    pol = IamPasswordPolicy(region=GLOBAL, resource_id=CUSTOMER_ACCOUNT, arn=ROOT_ARN, configured=True, **fields)
    assert only(check, inventory(pol)).status == status


# --------------------------------------------------------------------------------------------------
# Users: the credential report (moto for the present, fixtures for the past)
# --------------------------------------------------------------------------------------------------

async def test_credential_report_user_checks_on_moto(aws_fake):
    iam = _iam(aws_fake)
    _user(iam, "console-nomfa", console=True)
    _user(iam, "console-mfa", console=True, mfa=True)
    _user(iam, "api-only", keys=1)
    _user(iam, "console-key", console=True, keys=1, mfa=True)
    _user(iam, "two-keys", keys=2)
    before = _iam_calls(aws_fake)
    out = await scan(*REPORT_USER_CHECKS)
    after = _iam_calls(aws_fake)
    # One report for every user: moto answers STARTED, then COMPLETE, then the report is read once.
    used = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert used == {"iam:GenerateCredentialReport": 2, "iam:GetCredentialReport": 1}

    assert status_map(out, "iam_user_console_mfa_enabled") == {
        "console-nomfa": "FAIL", "console-mfa": "PASS", "api-only": "PASS", "console-key": "PASS",
        "two-keys": "PASS"}
    assert status_map(out, "iam_user_mfa_enabled") == {
        "console-nomfa": "FAIL", "console-mfa": "PASS", "api-only": "FAIL", "console-key": "PASS",
        "two-keys": "FAIL"}
    assert status_map(out, "iam_user_no_unused_setup_access_key") == {
        "console-nomfa": "PASS", "console-mfa": "PASS", "api-only": "PASS", "console-key": "FAIL",
        "two-keys": "PASS"}
    assert status_map(out, "iam_user_single_active_access_key") == {
        "console-nomfa": "PASS", "console-mfa": "PASS", "api-only": "PASS", "console-key": "PASS",
        "two-keys": "FAIL"}
    # Everything in moto was created a moment ago: nothing is old or unused yet.
    for check in ("iam_user_credentials_unused_45_days", "iam_user_credentials_unused_90_days",
                  "iam_user_access_keys_rotated_90_days"):
        assert set(status_map(out, check).values()) == {"PASS"}, check
    finding = findings(out)["iam_user_console_mfa_enabled"]["console-nomfa"]
    assert finding.resource_arn == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:user/console-nomfa"
    assert finding.resource_type == "AwsIamUser" and finding.region == GLOBAL


async def test_a_credential_report_that_never_finishes_is_an_error_not_a_hang(aws_fake, monkeypatch):
    """AWS answers STARTED/INPROGRESS while it builds the report; past the wait limit the report's checks are
    ERROR (the scan partial) and everything else still evaluates."""
    import app.scanners.iam as iam_scanner

    _user(_iam(aws_fake), "console-nomfa", console=True)
    monkeypatch.setattr(iam_scanner, "REPORT_MAX_WAIT_SECONDS", 0.6)
    monkeypatch.setattr(iam_scanner, "REPORT_POLL_DELAYS", (0.05, 0.1))
    held = aws_fake._http.post("/_cwfake/iam/credential-report",
                               content=json.dumps({"account_id": CUSTOMER_ACCOUNT, "pending": True}))
    assert held.status_code == 200, held.text
    before = _iam_calls(aws_fake)
    out = await scan("iam_user_console_mfa_enabled", "iam_root_mfa_enabled", "iam_password_policy_minimum_length_14")
    polls = _iam_calls(aws_fake).get("iam:GenerateCredentialReport", 0) - before.get("iam:GenerateCredentialReport", 0)
    assert polls >= 3                                  # it kept asking, within the limit
    assert _iam_calls(aws_fake).get("iam:GetCredentialReport", 0) == before.get("iam:GetCredentialReport", 0)
    assert out.status == "partial"
    assert [(e.action, e.code) for e in out.errors] == [("iam:GetCredentialReport", "ReportNotReady")]
    by_check = {f.check_id: f.status for f in out.findings}
    assert by_check["iam_user_console_mfa_enabled"] == "ERROR" and by_check["iam_root_mfa_enabled"] == "ERROR"
    assert by_check["iam_password_policy_minimum_length_14"] in ("PASS", "FAIL")

    # Released, the same scan completes.
    aws_fake._http.post("/_cwfake/iam/credential-report",
                        content=json.dumps({"account_id": CUSTOMER_ACCOUNT, "pending": False})).raise_for_status()
    again = await scan("iam_user_console_mfa_enabled")
    assert again.status == "succeeded"
    assert status_map(again, "iam_user_console_mfa_enabled") == {"console-nomfa": "FAIL"}


def test_unused_credentials_45_and_90_days():
    inv = inventory(
        report_user("fresh", password=True, password_used_days=3, keys=(key(1, created_days=400, used_days=1),)),
        report_user("password-60", password=True, password_used_days=60),
        report_user("key-100", keys=(key(1, created_days=300, used_days=100),)),
        report_user("key-never-used-50", keys=(key(1, created_days=50),)),
        report_user("key-never-used-10", keys=(key(1, created_days=10),)),
        report_user("password-never-used", password=True, password_changed_days=100),
        report_user("inactive-old-key", keys=(key(1, active=False, created_days=900),)),
        report_user("nothing"),
    )
    assert statuses("iam_user_credentials_unused_45_days", inv) == {
        "fresh": "PASS", "password-60": "FAIL", "key-100": "FAIL", "key-never-used-50": "FAIL",
        "key-never-used-10": "PASS", "password-never-used": "FAIL", "inactive-old-key": "PASS", "nothing": "PASS"}
    assert statuses("iam_user_credentials_unused_90_days", inv) == {
        "fresh": "PASS", "password-60": "PASS", "key-100": "FAIL", "key-never-used-50": "PASS",
        "key-never-used-10": "PASS", "password-never-used": "FAIL", "inactive-old-key": "PASS", "nothing": "PASS"}
    stale = next(r for r in results("iam_user_credentials_unused_45_days", inv) if r.resource_id == "key-100")
    assert stale.details["unused_days"] == {"access key 1": 100}


def test_access_key_rotation_and_setup_keys():
    inv = inventory(
        report_user("old-key", keys=(key(1, created_days=91, used_days=1),)),
        report_user("new-key", keys=(key(1, created_days=89, used_days=1),)),
        report_user("old-inactive", keys=(key(1, active=False, created_days=500),)),
        report_user("console-used-key", password=True, password_used_days=1,
                    keys=(key(1, created_days=400, used_days=2),)),
        report_user("console-unused-second-key", password=True, password_used_days=1,
                    keys=(key(1, used_days=2), key(2, created_days=30))),
    )
    assert statuses("iam_user_access_keys_rotated_90_days", inv) == {
        "old-key": "FAIL", "new-key": "PASS", "old-inactive": "PASS", "console-used-key": "FAIL",
        "console-unused-second-key": "PASS"}
    assert statuses("iam_user_no_unused_setup_access_key", inv) == {
        "old-key": "PASS", "new-key": "PASS", "old-inactive": "PASS", "console-used-key": "PASS",
        "console-unused-second-key": "FAIL"}


def test_credential_report_in_the_aws_format_with_a_root_row():
    created = (ago(800)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    used = (ago(5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    header = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
              "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
              "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
              "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
              "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,"
              "cert_2_active,cert_2_last_rotated")
    content = "\n".join([
        header,
        f"{ROOT_ROW},{ROOT_ARN},{created},not_supported,{used},not_supported,not_supported,true,true,{created},"
        "N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        f"dev,arn:aws:iam::{CUSTOMER_ACCOUNT}:user/dev,{created},true,no_information,{created},N/A,false,false,"
        f"N/A,N/A,N/A,N/A,true,{created},{used},us-east-1,s3,false,N/A,false,N/A",
    ]).encode()
    root_account, users = credential_report_resources(content, CUSTOMER_ACCOUNT, ROOT_ARN)
    assert root_account is not None and root_account.mfa_active
    assert [k.slot for k in root_account.active_keys] == [1]
    assert root_account.password_last_used is not None
    (dev,) = users
    assert dev.password_enabled and dev.password_last_used is None  # no_information
    assert [k.slot for k in dev.active_keys] == [2] and dev.access_keys[1].last_used is not None
    inv = inventory(root_account, dev)
    assert only("iam_root_no_access_keys", inv).status == "FAIL"
    assert only("iam_root_not_recently_used", inv).status == "FAIL"
    assert statuses("iam_user_credentials_unused_45_days", inv) == {"dev": "FAIL"}  # password set 800 days ago

    no_root, _ = credential_report_resources(header + "\n", CUSTOMER_ACCOUNT, ROOT_ARN)
    assert no_root is None


# --------------------------------------------------------------------------------------------------
# Root user: moto has no <root_account> row (ERROR there); fixtures for PASS and FAIL
# --------------------------------------------------------------------------------------------------

async def test_root_checks_on_the_fake_root_row_and_users_still_evaluate(aws_fake):
    # moto's report has no <root_account> row; the fake adds one with AWS's defaults (no MFA, no keys, no
    # password). A report without the row is ERROR, never PASS: test_root_checks_never_pass_without_root_data.
    _user(_iam(aws_fake), "dev", console=True)
    out = await scan(*ROOT_CHECKS, "iam_user_console_mfa_enabled")
    root = {check: findings(out)[check][CUSTOMER_ACCOUNT].status for check in ROOT_CHECKS}
    assert root == {"iam_root_no_access_keys": "PASS", "iam_root_mfa_enabled": "FAIL",
                    "iam_root_hardware_mfa_enabled": "FAIL", "iam_root_not_recently_used": "PASS"}
    assert status_map(out, "iam_user_console_mfa_enabled") == {"dev": "FAIL"}
    assert out.status == "succeeded" and out.errors == []


def test_root_checks_never_pass_without_root_data():
    for check in ROOT_CHECKS:
        assert only(check, inventory(report_user("dev"))).status.value == "ERROR", check


def test_root_access_keys():
    assert only("iam_root_no_access_keys", inventory(root())).status.value == "PASS"
    inactive = only("iam_root_no_access_keys", inventory(root(keys=(key(1, active=False),))))
    assert inactive.status.value == "PASS" and "inactive" in inactive.message
    active = only("iam_root_no_access_keys", inventory(root(keys=(key(1, active=False), key(2)))))
    assert active.status.value == "FAIL" and active.details == {"active_key_slots": [2]}
    assert active.resource_type == "AwsAccount" and active.resource_arn == ROOT_ARN


def test_root_mfa():
    assert only("iam_root_mfa_enabled", inventory(root(mfa=True))).status.value == "PASS"
    assert only("iam_root_mfa_enabled", inventory(root(mfa=False))).status.value == "FAIL"


def _device(serial: str, user_arn: str | None) -> IamVirtualMfaDevice:
    return IamVirtualMfaDevice(region=GLOBAL, resource_id=serial, arn=serial, user_arn=user_arn, enabled=ago(1))


def test_root_hardware_mfa():
    check = "iam_root_hardware_mfa_enabled"
    other = _device(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:mfa/dev", f"arn:aws:iam::{CUSTOMER_ACCOUNT}:user/dev")
    assert only(check, inventory(root(), other)).status.value == "PASS"
    assigned = _device(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:mfa/my-phone", ROOT_ARN)
    assert only(check, inventory(root(), assigned)).status.value == "FAIL"
    legacy = _device(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:mfa/root-account-mfa-device", None)
    assert only(check, inventory(root(), legacy)).status.value == "FAIL"
    # A user may name a device like that: its owner decides, not its name.
    named = _device(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:mfa/root-account-mfa-device",
                    f"arn:aws:iam::{CUSTOMER_ACCOUNT}:user/dev")
    assert only(check, inventory(root(), named)).status.value == "PASS"
    no_mfa = only(check, inventory(root(mfa=False)))
    assert no_mfa.status.value == "FAIL" and "no MFA" in no_mfa.message
    # When the device list could not be read, the framework reports ERROR naming the action.
    blind = only(check, inventory(root(), errors=(denied("iam:ListVirtualMFADevices"),)))
    assert blind.status.value == "ERROR" and "iam:ListVirtualMFADevices" in blind.message
    assert only("iam_root_mfa_enabled", inventory(root(), errors=(denied("iam:ListVirtualMFADevices"),))
                ).status.value == "PASS"


def test_root_recent_use():
    check = "iam_root_not_recently_used"
    assert only(check, inventory(root())).status.value == "PASS"
    assert only(check, inventory(root(password_used_days=200))).status.value == "PASS"
    recent = only(check, inventory(root(password_used_days=10)))
    assert recent.status.value == "FAIL" and "10 day(s) ago" in recent.message
    by_key = only(check, inventory(root(password_used_days=300, keys=(key(1, created_days=500, used_days=5),))))
    assert by_key.status.value == "FAIL" and "access key 1" in by_key.message


# --------------------------------------------------------------------------------------------------
# Users, groups and policies (GetAccountAuthorizationDetails on moto)
# --------------------------------------------------------------------------------------------------

async def test_policy_checks_on_moto(aws_fake):
    iam = _iam(aws_fake)
    iam.create_group(GroupName="admins")
    iam.attach_group_policy(GroupName="admins", PolicyArn=ADMIN)
    _user(iam, "grouped")
    iam.add_user_to_group(GroupName="admins", UserName="grouped")
    _user(iam, "direct-admin")
    iam.attach_user_policy(UserName="direct-admin", PolicyArn=ADMIN)
    _user(iam, "inline-admin")
    iam.put_user_policy(UserName="inline-admin", PolicyName="everything", PolicyDocument=json.dumps(
        policy(allow("*"))))
    _user(iam, "custom-admin")
    full_admin = _customer_policy(iam, "full-admin", policy(allow("*", ["arn:aws:s3:::x", "*"])))
    iam.attach_user_policy(UserName="custom-admin", PolicyArn=full_admin)
    _user(iam, "reader")
    s3_read = _customer_policy(iam, "s3-read", policy(allow("s3:GetObject", "arn:aws:s3:::bucket/*")))
    iam.attach_user_policy(UserName="reader", PolicyArn=s3_read)

    _role(iam, "app", trust({"Service": "ec2.amazonaws.com"}))
    iam.put_role_policy(RoleName="app", PolicyName="list", PolicyDocument=json.dumps(policy(allow("s3:ListBucket"))))
    _role(iam, "sneaky", trust({"Service": "ec2.amazonaws.com"}))
    iam.put_role_policy(RoleName="sneaky", PolicyName="all-but-one", PolicyDocument=json.dumps(
        policy({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::x"})))
    not_action_admin = _customer_policy(iam, "notaction-admin", policy(
        {"Effect": "Allow", "NotAction": ["s3:DeleteBucket"], "Resource": "*"}))
    power_user = _customer_policy(iam, "power-user", policy(
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"}))
    for arn in (not_action_admin, power_user):
        iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    _customer_policy(iam, "s3-all", policy(allow("s3:*")))
    _customer_policy(iam, "unattached-admin", policy(allow("*:*"), {"Effect": "Deny", "Action": "iam:*",
                                                                       "Resource": "*"}))

    out = await scan(*POLICY_CHECKS)
    assert not out.errors
    assert status_map(out, "iam_user_no_direct_policies") == {
        "grouped": "PASS", "direct-admin": "FAIL", "inline-admin": "FAIL", "custom-admin": "FAIL", "reader": "FAIL"}
    assert status_map(out, "iam_user_no_administrator_access") == {
        "grouped": "PASS", "direct-admin": "FAIL", "inline-admin": "FAIL", "custom-admin": "FAIL", "reader": "PASS"}
    assert status_map(out, "iam_customer_attached_policy_no_admin") == {
        "full-admin": "FAIL", "s3-read": "PASS", "notaction-admin": "FAIL", "power-user": "PASS"}
    assert status_map(out, "iam_customer_unattached_policy_no_admin") == {
        "s3-all": "PASS", "unattached-admin": "FAIL"}
    assert status_map(out, "iam_inline_policy_no_admin") == {
        "user/inline-admin": "FAIL", "role/app": "PASS", "role/sneaky": "FAIL"}
    assert status_map(out, "iam_customer_policy_no_service_wildcard") == {
        "full-admin": "FAIL", "s3-read": "PASS", "notaction-admin": "PASS", "power-user": "PASS",
        "s3-all": "FAIL", "unattached-admin": "FAIL"}
    direct = findings(out)["iam_user_no_administrator_access"]["direct-admin"]
    assert "AdministratorAccess" in direct.message
    attached = findings(out)["iam_customer_attached_policy_no_admin"]["full-admin"]
    assert attached.resource_arn == full_admin and attached.resource_type == "AwsIamPolicy"
    assert "attached to 1 identity" in attached.message


async def test_support_role_and_cloudshell_absent(aws_fake):
    iam = _iam(aws_fake)
    _user(iam, "helpdesk")  # a user with the support policy is not a support role
    iam.attach_user_policy(UserName="helpdesk", PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")
    out = await scan("iam_support_role_exists", "iam_cloudshell_full_access_restricted")
    assert status_map(out, "iam_support_role_exists") == {CUSTOMER_ACCOUNT: "FAIL"}
    assert status_map(out, "iam_cloudshell_full_access_restricted") == {CUSTOMER_ACCOUNT: "PASS"}


async def test_support_role_and_cloudshell_present(aws_fake):
    iam = _iam(aws_fake)
    _role(iam, "support", trust({"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:root"}))
    iam.attach_role_policy(RoleName="support", PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")
    iam.create_group(GroupName="devs")
    iam.attach_group_policy(GroupName="devs", PolicyArn="arn:aws:iam::aws:policy/AWSCloudShellFullAccess")
    out = await scan("iam_support_role_exists", "iam_cloudshell_full_access_restricted")
    support = findings(out)["iam_support_role_exists"][CUSTOMER_ACCOUNT]
    assert support.status == "PASS" and support.details == {"roles": ["support"]}
    shell = findings(out)["iam_cloudshell_full_access_restricted"][CUSTOMER_ACCOUNT]
    assert shell.status == "FAIL" and shell.details == {"groups": ["devs"]}


def test_inline_findings_of_a_user_and_a_role_with_the_same_name_stay_apart():
    admin = InlinePolicy(name="all", document=policy(allow("*")))
    benign = InlinePolicy(name="list", document=policy(allow("s3:ListBucket")))
    inv = inventory(
        IamUser(region=GLOBAL, resource_id="deploy", arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:user/deploy",
                inline_policies=[benign]),
        IamRole(region=GLOBAL, resource_id="deploy", arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/deploy",
                inline_policies=[admin]),
        IamGroup(region=GLOBAL, resource_id="no-inline", arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:group/no-inline"))
    got = {(r.resource_id, r.resource_type): r.status.value for r in results("iam_inline_policy_no_admin", inv)}
    assert got == {("user/deploy", "AwsIamUser"): "PASS", ("role/deploy", "AwsIamRole"): "FAIL"}


def test_policy_analysis():
    assert full_admin_statements(policy(allow("*"))) == ["statement 1"]
    assert full_admin_statements(policy(allow(["s3:*", "*:*"], Sid="Everything"))) == ["Everything"]
    assert full_admin_statements(policy(allow("*", "arn:aws:s3:::bucket"))) == []
    assert full_admin_statements(policy({"Effect": "Deny", "Action": "*", "Resource": "*"})) == []
    assert full_admin_statements(policy({"Effect": "Allow", "NotAction": "iam:PassRole", "Resource": "*"})) == [
        "statement 1 (NotAction)"]
    assert full_admin_statements(policy({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})) == []
    # A statement given as one object, not a list, is read the same way.
    assert full_admin_statements({"Version": "2012-10-17", "Statement": allow("*")}) == ["statement 1"]
    assert full_admin_statements(None) == []
    assert service_wildcard_actions(policy(allow(["ec2:Describe*", "s3:*", "kms:*"]))) == ["s3:*", "kms:*"]
    assert service_wildcard_actions(policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})) == []


def test_policy_documents_as_strings():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    text = json.dumps(doc)
    from urllib.parse import quote

    assert policy_document(doc) == doc
    assert policy_document(text) == doc
    assert policy_document(quote(text)) == doc
    assert policy_document("not a policy") is None
    assert policy_document(None) is None


# --------------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------------

async def test_role_trust_checks_on_moto(aws_fake):
    iam = _iam(aws_fake)
    org = {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}
    roles = {
        "public": trust({"AWS": "*"}),
        "public-star": trust("*"),
        "public-org": trust({"AWS": "*"}, condition=org),
        "public-wildcard-condition": trust({"AWS": "*"}, condition={"StringLike": {"aws:PrincipalArn": "*"}}),
        "public-ifexists": trust({"AWS": "*"}, condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-abc123"}}),
        "public-external-id": trust({"AWS": "*"}, condition={"StringEquals": {"sts:ExternalId": "abc123"}}),
        "public-fenced": trust({"AWS": "*"}, extra=[{
            "Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole",
            "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}}]),
        "service": trust({"Service": "ec2.amazonaws.com"}),
        "same-account": trust({"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:root"}),
        "cross-open": trust({"AWS": OTHER_ACCOUNT}),
        "cross-role-arn": trust({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:role/deployer"}),
        "cross-external-id": trust({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                                   condition={"StringEquals": {"sts:ExternalId": "cw-7f3a9c"}}),
        "cross-mfa": trust({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                           condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        "cross-mfa-ifexists": trust({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                                    condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}),
        "gh-pinned": trust({"Federated": GITHUB}, action="sts:AssumeRoleWithWebIdentity", condition={
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:my-org/*"}}),
        "gh-audience-only": trust({"Federated": GITHUB}, action="sts:AssumeRoleWithWebIdentity", condition={
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}),
        "gh-any-repo": trust({"Federated": GITHUB}, action="sts:AssumeRoleWithWebIdentity", condition={
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:*"}}),
    }
    for name, doc in roles.items():
        _role(iam, name, doc)
    iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")

    out = await scan(*ROLE_CHECKS)
    assert not out.errors
    slr = "AWSServiceRoleForAutoScaling"
    public = status_map(out, "iam_role_trust_not_public")
    assert {n for n, s in public.items() if s == "FAIL"} == {
        "public", "public-star", "public-wildcard-condition", "public-ifexists", "public-external-id"}
    assert public["public-org"] == public["public-fenced"] == public[slr] == "PASS"
    cross = status_map(out, "iam_role_cross_account_trust_restricted")
    assert {n for n, s in cross.items() if s == "FAIL"} == {"cross-open", "cross-role-arn", "cross-mfa-ifexists"}
    assert cross["cross-external-id"] == cross["cross-mfa"] == cross["same-account"] == cross["public"] == "PASS"
    assert findings(out)["iam_role_cross_account_trust_restricted"]["cross-open"].details["accounts"] == [
        OTHER_ACCOUNT]
    assert status_map(out, "iam_role_github_oidc_trust_restricted") == {
        "gh-pinned": "PASS", "gh-audience-only": "FAIL", "gh-any-repo": "FAIL"}
    # Every role in moto was created now: none is unused for 90 days; service-linked roles are skipped.
    unused = status_map(out, "iam_role_unused_90_days")
    assert slr not in unused and set(unused.values()) == {"PASS"} and len(unused) == len(roles)
    finding = findings(out)["iam_role_trust_not_public"]["public"]
    assert finding.resource_arn == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/public"
    assert finding.resource_type == "AwsIamRole" and finding.severity == "critical"


def test_unused_roles():
    inv = inventory(
        role("used-recently", last_used_days=10),
        role("used-long-ago", last_used_days=200),
        role("never-used-old"),
        role("never-used-new", created_days=5),
        role("AWSServiceRoleForSupport", path="/aws-service-role/support.amazonaws.com/"),
    )
    assert statuses("iam_role_unused_90_days", inv) == {
        "used-recently": "PASS", "used-long-ago": "FAIL", "never-used-old": "FAIL", "never-used-new": "PASS"}


def test_unparseable_trust_policy_is_error_not_a_guess():
    inv = inventory(role("broken", None))
    assert only("iam_role_trust_not_public", inv).status.value == "ERROR"
    assert only("iam_role_cross_account_trust_restricted", inv).status.value == "ERROR"


def test_restricting_condition_rules():
    st = {"Condition": {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ["o-1"]},
                        "StringEquals": {"aws:SourceAccount": "111122223333"}}}
    assert restricting_keys(st, {"aws:PrincipalOrgID", "aws:SourceAccount"}) == ["aws:sourceaccount"]
    assert restricting_keys({"Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}},
                            {"aws:MultiFactorAuthAge"}) == ["aws:multifactorauthage"]
    assert restricting_keys({"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}},
                            {"aws:MultiFactorAuthPresent"}) == []


# --------------------------------------------------------------------------------------------------
# Server certificates, Access Analyzer, account contact
# --------------------------------------------------------------------------------------------------

def _expired_certificate() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now - dt.timedelta(days=35)).sign(private, hashes.SHA256()))
    key_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


async def test_expired_server_certificate_fails_on_moto(aws_fake):
    body, private_key = _expired_certificate()
    _iam(aws_fake).upload_server_certificate(ServerCertificateName="legacy", CertificateBody=body,
                                             PrivateKey=private_key)
    out = await scan("iam_server_certificate_not_expired")
    finding = findings(out)["iam_server_certificate_not_expired"]["legacy"]
    assert finding.status == "FAIL" and "expired on" in finding.message
    assert finding.resource_arn == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:server-certificate/legacy"


def test_server_certificate_validity():
    def cert(name: str, expiration):
        return IamServerCertificate(region=GLOBAL, resource_id=name, name=name, expiration=expiration,
                                    arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:server-certificate/{name}")

    inv = inventory(cert("valid", ago(-30)), cert("expired", ago(1)), cert("unknown", None))
    assert statuses("iam_server_certificate_not_expired", inv) == {
        "valid": "PASS", "expired": "FAIL", "unknown": "ERROR"}


def _analyzers(region: str, *analyzers: tuple[str, str]) -> AccessAnalyzerRegion:
    return AccessAnalyzerRegion(
        region=region, resource_id=f"{CUSTOMER_ACCOUNT}/{region}/access-analyzer",
        analyzers=[AccessAnalyzerSummary(name=f"a{i}", arn=f"arn:aws:access-analyzer:{region}:{CUSTOMER_ACCOUNT}:"
                                         f"analyzer/a{i}", type=t, status=s)
                   for i, (t, s) in enumerate(analyzers)])


def test_access_analyzer_per_region():
    regions = ("us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "eu-central-1")
    inv = inventory(
        _analyzers("us-east-1", ("ACCOUNT", "ACTIVE")),
        _analyzers("eu-west-1", ("ORGANIZATION", "ACTIVE"), ("ACCOUNT_UNUSED_ACCESS", "ACTIVE")),
        _analyzers("ap-south-1", ("ACCOUNT_UNUSED_ACCESS", "ACTIVE")),
        _analyzers("sa-east-1", ("ACCOUNT", "CREATING")),
        errors=(denied("access-analyzer:ListAnalyzers", region="eu-central-1"),),
        regions=regions)
    got = {r.region: r.status.value for r in results("accessanalyzer_enabled", inv)}
    assert got == {"us-east-1": "PASS", "eu-west-1": "PASS", "ap-south-1": "FAIL", "sa-east-1": "FAIL",
                   "eu-central-1": "ERROR"}
    none = only("accessanalyzer_enabled", inventory(_analyzers("us-east-1")))
    assert none.status.value == "FAIL" and "No active IAM Access Analyzer" in none.message


async def test_access_analyzer_on_the_fake(aws_fake):
    aws_fake.client("accessanalyzer", "us-east-1").create_analyzer(analyzerName="external", type="ACCOUNT")
    aws_fake.client("accessanalyzer", "eu-west-1").create_analyzer(analyzerName="unused",
                                                                   type="ACCOUNT_UNUSED_ACCESS")
    out = await scan("accessanalyzer_enabled", regions=("us-east-1", "eu-west-1", "ap-south-1"))
    assert not out.errors
    assert {f.region: f.status for f in out.findings} == {
        "us-east-1": "PASS", "eu-west-1": "FAIL", "ap-south-1": "FAIL"}
    passing = next(f for f in out.findings if f.region == "us-east-1")
    assert passing.details == {
        "analyzers": [f"arn:aws:access-analyzer:us-east-1:{CUSTOMER_ACCOUNT}:analyzer/external"]}
    assert "unused (ACCOUNT_UNUSED_ACCESS, ACTIVE)" in next(f for f in out.findings if f.region == "eu-west-1").message


async def test_access_analyzer_denied_in_one_region_is_error_there_only(aws_fake):
    for region in ("us-east-1", "eu-west-1"):
        aws_fake.client("accessanalyzer", region).create_analyzer(analyzerName="external", type="ACCOUNT")
    aws_fake.configure(deny=[{"service": "accessanalyzer", "operation": "ListAnalyzers", "region": "eu-west-1"}])
    out = await scan("accessanalyzer_enabled", regions=("us-east-1", "eu-west-1"))
    got = {f.region: f for f in out.findings}
    assert got["us-east-1"].status == "PASS"
    assert got["eu-west-1"].status == "ERROR" and "AccessDeniedException" in got["eu-west-1"].message


async def test_security_contact_on_moto(aws_fake):
    out = await scan("account_security_contact_registered")
    assert not out.errors  # ResourceNotFoundException means "no contact"
    assert status_map(out, "account_security_contact_registered") == {CUSTOMER_ACCOUNT: "FAIL"}
    aws_fake.client("account").put_alternate_contact(
        AlternateContactType="SECURITY", EmailAddress="security@example.com", Name="Security team",
        PhoneNumber="+1-555-0100", Title="Security")
    out = await scan("account_security_contact_registered")
    assert status_map(out, "account_security_contact_registered") == {CUSTOMER_ACCOUNT: "PASS"}
    aws_fake.configure(deny=[{"service": "account", "operation": "GetAlternateContact"}])
    out = await scan("account_security_contact_registered")
    assert status_map(out, "account_security_contact_registered") == {CUSTOMER_ACCOUNT: "ERROR"}


def test_security_contact_fixture_fields_hold_no_personal_data():
    assert set(AccountSecurityContact.model_fields) - {"region", "resource_id", "arn", "tags"} == {
        "configured", "has_email", "has_phone"}


# --------------------------------------------------------------------------------------------------
# Errors and cost
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("operation", "broken", "intact"), [
    ("GetAccountAuthorizationDetails",
     ("iam_user_no_direct_policies", "iam_role_trust_not_public", "iam_support_role_exists",
      "iam_inline_policy_no_admin"),
     ("iam_user_console_mfa_enabled", "iam_password_policy_symbol")),
    ("GenerateCredentialReport", ("iam_user_console_mfa_enabled", "iam_root_mfa_enabled"),
     ("iam_user_no_direct_policies", "iam_password_policy_symbol")),
    ("GetCredentialReport", ("iam_user_console_mfa_enabled", "iam_user_single_active_access_key"),
     ("iam_user_no_direct_policies",)),
    ("GetAccountPasswordPolicy", ("iam_password_policy_symbol", "iam_password_policy_minimum_length_14"),
     ("iam_user_console_mfa_enabled", "iam_user_no_direct_policies")),
    ("ListServerCertificates", ("iam_server_certificate_not_expired",), ("iam_user_no_direct_policies",)),
    ("ListVirtualMFADevices", ("iam_root_hardware_mfa_enabled",), ("iam_user_console_mfa_enabled",)),
])
async def test_denied_call_is_error_for_its_checks_only(aws_fake, operation, broken, intact):
    iam = _iam(aws_fake)
    _user(iam, "dev", console=True)
    iam.attach_user_policy(UserName="dev", PolicyArn=ADMIN)
    _role(iam, "app", trust({"Service": "ec2.amazonaws.com"}))
    aws_fake.configure(deny=[{"service": "iam", "operation": operation}])
    out = await scan(*broken, *intact)
    for check in broken:
        statuses_ = {f.status for f in findings(out)[check].values()}
        assert statuses_ == {"ERROR"}, check
        assert any(f"iam:{operation}" in f.message for f in findings(out)[check].values()), check
    for check in intact:
        assert findings(out)[check] and "ERROR" not in {f.status for f in findings(out)[check].values()}, check
    assert any(e.action == f"iam:{operation}" and e.code == "AccessDenied" for e in out.errors)


async def test_iam_scan_cost_does_not_grow_with_identities(aws_fake):
    iam = _iam(aws_fake)
    for i in range(25):
        _user(iam, f"user-{i}", console=i % 2 == 0, keys=i % 3)
        _role(iam, f"role-{i}", trust({"Service": "lambda.amazonaws.com"}))
    iam_checks = [c for c in CHECKS if c.startswith("iam_")]
    before = _iam_calls(aws_fake)
    out = await scan(*iam_checks)
    after = _iam_calls(aws_fake)
    used = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert used == {
        "iam:GenerateCredentialReport": 2, "iam:GetCredentialReport": 1,
        "iam:GetAccountAuthorizationDetails": 4,  # users, groups, roles, customer policies: one page each
        "iam:GetAccountPasswordPolicy": 1, "iam:ListVirtualMFADevices": 1, "iam:ListServerCertificates": 1,
    }
    assert len(findings(out)["iam_user_mfa_enabled"]) == 25
    assert len(findings(out)["iam_role_unused_90_days"]) == 25


def test_root_row_error_is_scoped_to_the_root():
    missing = CollectionError(service="iam", action="iam:GetCredentialReport", region=GLOBAL, resource_id=ROOT_ROW,
                              code="RootRowMissing", message="no root row")
    inv = inventory(report_user("dev", password=True, mfa=True), errors=(missing,))
    assert statuses("iam_user_console_mfa_enabled", inv) == {"dev": "PASS"}
    assert only("iam_root_mfa_enabled", inv).status.value == "ERROR"
