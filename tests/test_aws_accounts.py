"""AWS account connections through the API: creating one (External ID, set-up instructions, regions), the
templates it links to, renaming, regenerating, disconnecting, who may do what, and the generated SDK."""

from __future__ import annotations

import importlib
import re
import shlex
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from sqlalchemy import update

from app.aws.permissions import ORGANIZATION_TEMPLATE_PATH, ROLE_TEMPLATE_PATH, load_template
from app.db import session_scope
from app.errors import PROBLEM_MEDIA_TYPE
from app.models import AwsAccount, Role
from tests.aws_accounts_helpers import accounts_url, audit_events, create_account, verify
from tests.aws_fixtures import trust_policy
from tests.test_openapi import CLIENT_PACKAGE, _operations, sdk, spec  # noqa: F401 - the SDK fixtures
from tests.ws_helpers import add_member, make_user

ROLE_TEMPLATE = ROLE_TEMPLATE_PATH.read_text()
EXTERNAL_ID_PARAMETER = load_template(ROLE_TEMPLATE_PATH)["Parameters"]["ExternalId"]
EXTERNAL_ID_PATTERN = re.compile(EXTERNAL_ID_PARAMETER["AllowedPattern"])
# CloudFormation's rule for stack names.
STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


@pytest.fixture
async def owner(signup):
    return await signup()


@pytest.fixture
async def ws(owner, make_workspace):
    return await make_workspace(owner["headers"])


# --- create ----------------------------------------------------------------------------------------


async def test_create_answers_a_pending_connection_with_a_server_generated_external_id(client, owner, ws, settings):
    before = datetime.now(UTC)
    acct = await create_account(client, ws["id"], owner["headers"], name="prod")
    ext = acct["external_id"]

    assert acct["status"] == "pending" and acct["name"] == "prod" and acct["workspace_id"] == ws["id"]
    assert EXTERNAL_ID_PATTERN.fullmatch(ext), ext
    assert EXTERNAL_ID_PARAMETER["MinLength"] <= len(ext) <= EXTERNAL_ID_PARAMETER["MaxLength"]
    assert (len(ext) - len("cw-")) * 6 >= 128, "base64url characters carry 6 random bits each"
    assert acct["role_arn"] is None and acct["aws_account_id"] is None and acct["connected_at"] is None
    assert acct["missing_permissions"] == [] and acct["regions"] is None
    expires = datetime.fromisoformat(acct["external_id_expires_at"])
    ttl = timedelta(seconds=settings.external_id_ttl_seconds)
    assert before + ttl - timedelta(seconds=5) <= expires <= datetime.now(UTC) + ttl

    [event] = await audit_events(client, ws["id"], owner["headers"], "aws_account.created")
    assert event["target_id"] == acct["id"] and event["details"] == {"name": "prod"}


async def test_external_ids_are_unique_across_accounts_and_workspaces(client, owner, ws, make_workspace):
    other = await make_workspace(owner["headers"], "Other")
    ids = [(await create_account(client, w["id"], owner["headers"], name=f"a{i}"))["external_id"]
           for i in range(12) for w in (ws, other)]
    assert len(set(ids)) == len(ids)
    assert all(EXTERNAL_ID_PATTERN.fullmatch(i) for i in ids)


@pytest.mark.parametrize("body", [
    {"name": "prod", "external_id": "cw-" + "a" * 30},
    {"name": "prod", "externalId": "cw-" + "a" * 30},
    {"name": "prod", "status": "connected"},
])
async def test_a_client_cannot_choose_the_external_id_or_state(client, owner, ws, body):
    r = await client.post(accounts_url(ws["id"]), json=body, headers=owner["headers"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    [error] = r.json()["errors"]
    assert error["field"] == f"body.{next(k for k in body if k != 'name')}"
    assert error["type"] == "extra_forbidden"
    listed = await client.get(accounts_url(ws["id"]), headers=owner["headers"])
    assert listed.json()["items"] == []


async def test_setup_has_the_template_the_quick_create_link_and_the_cli_command(client, owner, ws, settings):
    acct = await create_account(client, ws["id"], owner["headers"])
    setup, ext = acct["setup"], acct["external_id"]
    template_url = f"{settings.public_base_url.rstrip('/')}/v1/templates/cloudwizard-role.yaml"

    assert setup["external_id"] == ext
    assert setup["external_id_expires_at"] == acct["external_id_expires_at"]
    assert setup["scanner_principal_arn"] == settings.scanner_principal_arn
    assert setup["template_url"] == template_url
    assert setup["template_body"] == ROLE_TEMPLATE
    assert STACK_NAME.fullmatch(setup["stack_name"]) and uuid.UUID(acct["id"]).hex in setup["stack_name"]

    link = urlsplit(setup["quick_create_url"])
    region = settings.quick_create_region
    assert (link.scheme, link.netloc, link.path) == ("https", f"{region}.console.aws.amazon.com",
                                                     "/cloudformation/home")
    assert parse_qs(link.query) == {"region": [region]}
    route, _, query = link.fragment.partition("?")
    assert route == "/stacks/quickcreate"
    assert parse_qs(query, strict_parsing=True) == {
        "templateURL": [template_url],
        "stackName": [setup["stack_name"]],
        "param_ExternalId": [ext],
        "param_ScannerPrincipalArn": [settings.scanner_principal_arn],
        "param_RoleName": [setup["role_name"]],
    }
    # Every value is percent-encoded (":" and "/" too), or the console would cut the fragment apart.
    for key, value in (("templateURL", template_url), ("param_ScannerPrincipalArn", settings.scanner_principal_arn)):
        assert f"{key}={quote(value, safe='')}" in query
    assert "://" not in query

    words = shlex.split(setup["cli_command"])
    split = words.index("&&")
    assert words[:split] == ["curl", "-fsSL", "-o", "cloudwizard-role.yaml", template_url]
    aws = words[split + 1:]
    assert aws[:3] == ["aws", "cloudformation", "create-stack"]
    assert aws[aws.index("--stack-name") + 1] == setup["stack_name"]
    assert aws[aws.index("--region") + 1] == region
    assert aws[aws.index("--template-body") + 1] == "file://cloudwizard-role.yaml"
    assert aws[aws.index("--capabilities") + 1] == "CAPABILITY_NAMED_IAM"
    assert aws[aws.index("--parameters") + 1:] == [
        f"ParameterKey=ExternalId,ParameterValue={ext}",
        f"ParameterKey=ScannerPrincipalArn,ParameterValue={settings.scanner_principal_arn}",
        f"ParameterKey=RoleName,ParameterValue={setup['role_name']}",
    ]

    # The same instructions come back on GET while the connection is pending.
    got = await client.get(accounts_url(ws["id"], acct["id"]), headers=owner["headers"])
    assert got.status_code == 200 and got.json()["setup"] == setup


async def test_a_configured_s3_template_url_is_used_in_the_links(client, owner, ws, settings, monkeypatch):
    s3_url = "https://cloudwizard-templates.s3.amazonaws.com/v1/cloudwizard-role.yaml"
    monkeypatch.setattr(settings, "role_template_url", s3_url)
    setup = (await create_account(client, ws["id"], owner["headers"]))["setup"]
    assert setup["template_url"] == s3_url
    query = urlsplit(setup["quick_create_url"]).fragment.partition("?")[2]
    assert parse_qs(query)["templateURL"] == [s3_url]
    assert s3_url in shlex.split(setup["cli_command"])


@pytest.mark.parametrize("regions, stored", [
    (None, None),
    (["eu-west-1"], ["eu-west-1"]),
    (["us-east-1", "eu-central-1", "us-east-1"], ["us-east-1", "eu-central-1"]),
    (["us-gov-west-1", "us-gov-east-1"], ["us-gov-west-1", "us-gov-east-1"]),
    (["cn-north-1"], ["cn-north-1"]),
    ([" us-west-2\n"], ["us-west-2"]),  # requests strip surrounding whitespace
])
async def test_regions_allow_list_is_kept(client, owner, ws, regions, stored):
    acct = await create_account(client, ws["id"], owner["headers"], regions=regions)
    assert acct["regions"] == stored


@pytest.mark.parametrize("regions, message", [
    ([], "at least one region"),
    (["us-east-3"], "'us-east-3' is not an AWS region"),
    (["US-EAST-1"], "is not an AWS region"),
    (["mars-north-1"], "is not an AWS region"),
    (["us-east-1", "cn-north-1"], "one AWS partition"),
    (["us-east-1"] * 41, "at most 40"),
    ("us-east-1", "valid list"),
    ([1], "valid string"),
])
async def test_regions_outside_the_allow_list_are_refused(client, owner, ws, regions, message):
    r = await client.post(accounts_url(ws["id"]), json={"name": "prod", "regions": regions},
                          headers=owner["headers"])
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors[0]["field"].startswith("body.regions"), errors
    assert message in errors[0]["message"], errors
    listed = await client.get(accounts_url(ws["id"]), headers=owner["headers"])
    assert listed.json()["items"] == []


@pytest.mark.parametrize("name", ["", "x" * 101])
async def test_name_is_required_and_bounded(client, owner, ws, name):
    r = await client.post(accounts_url(ws["id"]), json={"name": name}, headers=owner["headers"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.name"


# --- templates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ROLE_TEMPLATE_PATH, ORGANIZATION_TEMPLATE_PATH])
async def test_templates_are_served_to_anyone(client, path):
    r = await client.get(f"/v1/templates/{path.name}")
    assert r.status_code == 200
    assert r.text == path.read_text()
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("name", ["nope.yaml", "cloudwizard-role.yml", "..%2Fpyproject.toml", "%2Fetc%2Fpasswd"])
async def test_an_unknown_template_is_a_problem(client, name):
    r = await client.get(f"/v1/templates/{name}")
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert "[tool" not in r.text and "root:" not in r.text


# --- update, regenerate, disconnect, list ------------------------------------------------------------


async def test_update_renames_and_replaces_regions_and_is_audited(client, owner, ws):
    acct = await create_account(client, ws["id"], owner["headers"], regions=["eu-west-1"])
    url = accounts_url(ws["id"], acct["id"])
    r = await client.patch(url, json={"name": "production", "regions": ["us-east-1", "us-west-2"]},
                           headers=owner["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "production" and r.json()["regions"] == ["us-east-1", "us-west-2"]
    r = await client.patch(url, json={"regions": None}, headers=owner["headers"])
    assert r.json()["regions"] is None and r.json()["name"] == "production"
    r = await client.patch(url, json={"regions": ["nowhere-1"]}, headers=owner["headers"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.regions"
    r = await client.patch(url, json={"external_id": "cw-" + "b" * 30}, headers=owner["headers"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.external_id"
    assert (await client.get(url, headers=owner["headers"])).json()["external_id"] == acct["external_id"]

    events = await audit_events(client, ws["id"], owner["headers"], "aws_account.updated")
    assert [e["details"] for e in events] == [
        {"before": {"name": "prod", "regions": ["eu-west-1"]},
         "after": {"name": "production", "regions": ["us-east-1", "us-west-2"]}},
        {"before": {"regions": ["us-east-1", "us-west-2"]}, "after": {"regions": None}},
    ]


async def test_regenerate_gives_a_pending_connection_a_new_id_and_expiry(client, owner, ws):
    acct = await create_account(client, ws["id"], owner["headers"])
    async with session_scope() as session:  # an ID that has already expired
        await session.execute(update(AwsAccount).where(AwsAccount.id == uuid.UUID(acct["id"]))
                              .values(external_id_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    r = await client.post(accounts_url(ws["id"], acct["id"], "external-id"), headers=owner["headers"])
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["external_id"] != acct["external_id"] and EXTERNAL_ID_PATTERN.fullmatch(fresh["external_id"])
    assert datetime.fromisoformat(fresh["external_id_expires_at"]) > datetime.now(UTC) + timedelta(hours=1)
    assert fresh["setup"]["external_id"] == fresh["external_id"]
    assert fresh["external_id"] in fresh["setup"]["quick_create_url"]
    [event] = await audit_events(client, ws["id"], owner["headers"], "aws_account.external_id_regenerated")
    assert event["target_id"] == acct["id"]
    assert acct["external_id"] not in str(event) and fresh["external_id"] not in str(event)


async def test_disconnect_keeps_the_row_and_ends_the_connection(client, owner, ws):
    acct = await create_account(client, ws["id"], owner["headers"])
    url = accounts_url(ws["id"], acct["id"])
    r = await client.post(f"{url}/disconnect", headers=owner["headers"])
    assert r.status_code == 200, r.text
    gone = r.json()
    assert gone["status"] == "disconnected" and gone["external_id_expires_at"] is None
    assert gone["status_reason"] and "setup" not in gone
    got = (await client.get(url, headers=owner["headers"])).json()
    assert got["status"] == "disconnected" and got["setup"] is None

    again = await client.post(f"{url}/disconnect", headers=owner["headers"])
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    regenerate = await client.post(f"{url}/external-id", headers=owner["headers"])
    assert regenerate.status_code == 409
    refused = await verify(client, ws["id"], acct["id"], owner["headers"],
                           "arn:aws:iam::123456789012:role/CloudWizardScanner")
    assert refused.status_code == 409 and "disconnected" in refused.json()["detail"]
    [event] = await audit_events(client, ws["id"], owner["headers"], "aws_account.disconnected")
    assert event["details"] == {"previous_status": "pending"}


async def test_list_filters_pages_and_stays_in_its_workspace(client, owner, ws, make_workspace):
    made = [await create_account(client, ws["id"], owner["headers"], name=f"acct-{i}") for i in range(5)]
    await client.post(accounts_url(ws["id"], made[1]["id"], "disconnect"), headers=owner["headers"])

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(accounts_url(ws["id"]), params=params, headers=owner["headers"])).json()
        seen.extend(page["items"])
        if not (cursor := page["next_cursor"]):
            break
    assert [a["id"] for a in seen] == [a["id"] for a in made]
    assert all("setup" not in a for a in seen)

    pending = (await client.get(accounts_url(ws["id"]), params={"status": "pending"},
                                headers=owner["headers"])).json()["items"]
    assert [a["name"] for a in pending] == ["acct-0", "acct-2", "acct-3", "acct-4"]
    bad = await client.get(accounts_url(ws["id"]), params={"status": "sleeping"}, headers=owner["headers"])
    assert bad.status_code == 422

    other = await make_workspace(owner["headers"], "Other")
    assert (await client.get(accounts_url(other["id"]), headers=owner["headers"])).json()["items"] == []
    r = await client.get(accounts_url(other["id"], made[0]["id"]), headers=owner["headers"])
    assert r.status_code == 404
    r = await client.post(accounts_url(other["id"], made[0]["id"], "disconnect"), headers=owner["headers"])
    assert r.status_code == 404


# --- who may do what -------------------------------------------------------------------------------------


WRITES = [
    ("post", "", {"name": "x"}),
    ("patch", "{id}", {"name": "renamed"}),
    ("post", "{id}/external-id", None),
    ("post", "{id}/verify", {"role_arn": "arn:aws:iam::123456789012:role/CloudWizardScanner"}),
    ("post", "{id}/disconnect", None),
]


@pytest.mark.parametrize("role", [Role.viewer, Role.member])
async def test_viewers_and_members_can_read_but_not_change(client, owner, ws, role, aws_fake):
    acct = await create_account(client, ws["id"], owner["headers"])
    user = await make_user()
    await add_member(ws["id"], user, role)

    listed = await client.get(accounts_url(ws["id"]), headers=user.headers)
    assert listed.status_code == 200 and [a["id"] for a in listed.json()["items"]] == [acct["id"]]
    got = await client.get(accounts_url(ws["id"], acct["id"]), headers=user.headers)
    assert got.status_code == 200 and got.json()["external_id"] == acct["external_id"]

    for method, path, body in WRITES:
        url = accounts_url(ws["id"], path.format(id=acct["id"])) if path else accounts_url(ws["id"])
        r = await client.request(method.upper(), url, headers=user.headers,
                                 **({"json": body} if body is not None else {}))
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert aws_fake.stats()["total"] == 0, "a refused verify must not reach AWS"
    after = (await client.get(accounts_url(ws["id"], acct["id"]), headers=owner["headers"])).json()
    assert after == got.json() | {"setup": after["setup"]}
    assert after["name"] == "prod" and after["status"] == "pending"


async def test_admins_can_change_and_strangers_see_nothing(client, owner, ws):
    admin, stranger = await make_user(), await make_user()
    await add_member(ws["id"], admin, Role.admin)
    acct = await create_account(client, ws["id"], admin.headers)
    r = await client.patch(accounts_url(ws["id"], acct["id"]), json={"name": "by admin"}, headers=admin.headers)
    assert r.status_code == 200
    r = await client.post(accounts_url(ws["id"], acct["id"], "external-id"), headers=admin.headers)
    assert r.status_code == 200
    for method, path, body in [("get", "", None), ("get", "{id}", None), *WRITES]:
        url = accounts_url(ws["id"], path.format(id=acct["id"])) if path else accounts_url(ws["id"])
        r = await client.request(method.upper(), url, headers=stranger.headers,
                                 **({"json": body} if body is not None else {}))
        assert r.status_code == 404, (method, path, r.status_code)
    r = await client.post(accounts_url(ws["id"], acct["id"], "disconnect"), headers=admin.headers)
    assert r.status_code == 200


# --- the generated SDK -------------------------------------------------------------------------------


async def test_the_generated_client_drives_the_whole_flow(sdk, spec, app, aws_fake):  # noqa: F811
    tags = {op["operationId"]: op["tags"][0] for _, _, op in _operations(spec)}

    def operation(op_id: str):
        return importlib.import_module(f"{CLIENT_PACKAGE}.api.{tags[op_id]}.{op_id}")

    models = importlib.import_module(f"{CLIENT_PACKAGE}.models")
    transport = {"transport": httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))}
    base_url = "http://testserver"
    anonymous = sdk.Client(base_url=base_url, raise_on_unexpected_status=True, httpx_args=transport)
    tokens = await operation("auth_signup").asyncio(
        client=anonymous, body=models.SignupRequest(email=f"sdk-{uuid.uuid4().hex[:8]}@example.com",
                                                    password="correct horse battery staple"))
    signed_in = sdk.AuthenticatedClient(base_url=base_url, token=tokens.access_token,
                                        raise_on_unexpected_status=True, httpx_args=transport)
    workspace = await operation("workspaces_create").asyncio(client=signed_in,
                                                             body=models.WorkspaceCreate(name="SDK"))

    created = await operation("aws_accounts_create").asyncio_detailed(
        workspace.id, client=signed_in, body=models.AwsAccountCreate(name="prod"))
    assert created.status_code == 201, created.content
    account = created.parsed
    assert isinstance(account, models.AwsAccountWithSetup) and account.status.value == "pending"

    # Open the quick-create link's template the way the console does: by its URL, no credentials.
    link = urlsplit(account.setup.quick_create_url)
    template_url = parse_qs(link.fragment.partition("?")[2])["templateURL"][0]
    name = urlsplit(template_url).path.removeprefix("/v1/templates/")
    template = await operation("templates_get").asyncio_detailed(client=anonymous, name=name)
    assert template.status_code == 200 and template.content.decode() == ROLE_TEMPLATE

    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=account.external_id))
    bad = await operation("aws_accounts_verify").asyncio(
        workspace.id, account.id, client=signed_in, body=models.AwsAccountVerify(role_arn=role_arn + "/"))
    assert isinstance(bad, models.Problem) and bad.status == 422
    assert bad.errors[0].field == "body.role_arn"

    verified = await operation("aws_accounts_verify").asyncio(
        workspace.id, account.id, client=signed_in, body=models.AwsAccountVerify(role_arn=role_arn))
    assert isinstance(verified, models.AwsAccountWithSetup), verified
    assert verified.status.value == "connected" and verified.aws_account_id == "123456789012"
    assert not any(m.reason.value == "denied" for m in verified.missing_permissions)

    page = await operation("aws_accounts_list").asyncio(workspace.id, client=signed_in)
    assert [a.id for a in page.items] == [account.id]

    gone = await operation("aws_accounts_disconnect").asyncio(workspace.id, account.id, client=signed_in)
    assert isinstance(gone, models.AwsAccountRead) and gone.status.value == "disconnected"
    refused = await operation("aws_accounts_verify").asyncio(
        workspace.id, account.id, client=signed_in, body=models.AwsAccountVerify(role_arn=role_arn))
    assert isinstance(refused, models.Problem) and refused.status == 409
    for c in (anonymous, signed_in):
        await c.get_async_httpx_client().aclose()
