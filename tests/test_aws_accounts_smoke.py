"""Smoke: create a connection, deploy the role in moto, verify through the API."""

from tests.aws_fixtures import trust_policy


async def test_connect_happy_path(client, signup, make_workspace, aws_fake):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    r = await client.post(f"/v1/workspaces/{ws['id']}/aws-accounts", json={"name": "prod"}, headers=owner["headers"])
    assert r.status_code == 201, r.text
    acct = r.json()
    ext = acct["external_id"]
    assert acct["status"] == "pending" and acct["setup"]["quick_create_url"].startswith("https://")
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=ext))
    r = await client.post(f"/v1/workspaces/{ws['id']}/aws-accounts/{acct['id']}/verify",
                          json={"role_arn": role_arn}, headers=owner["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    print(body["status"], body["missing_permissions"])
    assert body["status"] in ("connected", "degraded")
