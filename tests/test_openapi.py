"""The OpenAPI document is a contract: naming, documented errors, security, and a generated
Python SDK that works against the running app."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from app.errors import PROBLEM_MEDIA_TYPE
from tests.conftest import PASSWORD, unique_email

METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Operations anyone may call. Adding one here is a security decision: say why in the route.
# (templates_get: CloudFormation downloads the role template itself; it holds no secret.)
SIGN_IN_OPERATIONS = {"auth_signup", "auth_login", "auth_refresh"}
PUBLIC_OPERATIONS = {"health_live", "health_ready", "templates_get", *SIGN_IN_OPERATIONS}
CLIENT_PACKAGE = "cloudwizard_client"


@pytest.fixture(scope="module")
def spec(app) -> dict:
    return app.openapi()


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in spec["paths"].items()
            for method, op in item.items() if method in METHODS]


def _ids(spec: dict) -> list[str]:
    return [op["operationId"] for _, _, op in _operations(spec)]


def test_openapi_version_is_3_1(spec):
    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]


def test_operation_ids_are_unique_and_named_tag_verb(spec):
    ids = _ids(spec)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    declared_tags = {t["name"] for t in spec.get("tags", [])}
    for method, path, op in _operations(spec):
        tags = op.get("tags", [])
        assert len(tags) == 1, f"{method.upper()} {path} must have exactly one tag, has {tags}"
        (tag,) = tags
        assert tag in declared_tags, f"tag {tag!r} of {op['operationId']} is not described in TAGS"
        assert re.fullmatch(rf"{re.escape(tag)}_[a-z][a-z0-9_]*", op["operationId"]), (
            f"{method.upper()} {path}: operationId {op['operationId']!r} is not `{tag}_<verb>`")


def test_every_operation_has_a_summary_or_description(spec):
    missing = [op["operationId"] for _, _, op in _operations(spec)
               if not (op.get("summary") or "").strip() and not (op.get("description") or "").strip()]
    assert missing == []


def test_schema_names_are_plain_identifiers(spec):
    # Generic models otherwise surface as `Page_ApiKeyRead_` in every generated SDK.
    odd = [name for name in spec["components"]["schemas"] if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name)]
    assert odd == [], "name these models (e.g. `class ApiKeyPage(Page[ApiKeyRead])`)"


def test_errors_are_documented_as_problem_json(spec):
    for _, _, op in _operations(spec):
        for status, response in op["responses"].items():
            if not status.isdigit() or int(status) < 400 or op["operationId"] == "health_ready":
                continue
            assert response.get("content") == {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}, (
                f"{op['operationId']} {status}")
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


def test_the_bearer_scheme_guards_every_non_public_operation(spec):
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    ids = set(_ids(spec))
    assert SIGN_IN_OPERATIONS <= ids, f"sign-in operations gone or renamed: {SIGN_IN_OPERATIONS - ids}"
    for _, _, op in _operations(spec):
        op_id = op["operationId"]
        if op_id in PUBLIC_OPERATIONS:
            assert not op.get("security"), f"{op_id} is public but declares security"
            continue
        assert op.get("security") == [{"bearer": []}], f"{op_id} must require the bearer scheme"
        assert "401" in op["responses"], f"{op_id} must document 401"


def test_operations_taking_input_document_422(spec):
    for _, _, op in _operations(spec):
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], f"{op['operationId']} takes input but does not document 422"


def test_success_responses_have_a_schema(spec):
    for _, _, op in _operations(spec):
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert successes, f"{op['operationId']} documents no success response"
        for status, response in successes.items():
            if status == "204":
                assert not response.get("content"), f"{op['operationId']} 204 must have no body"
                continue
            content = response.get("content", {})
            assert content and all(media.get("schema") for media in content.values()), (
                f"{op['operationId']} {status} has no response schema (response_model)")


FORGED_CREDENTIALS = [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer cw_" + "x" * 40},
                     {"Authorization": "Basic dXNlcjpwYXNz"}]


def _concrete_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


async def test_secured_operations_refuse_anonymous_and_forged_requests(client, spec):
    for method, path, op in _operations(spec):
        if op["operationId"] in PUBLIC_OPERATIONS:
            continue
        url = _concrete_path(path)
        body = {"json": {}} if op.get("requestBody") else {}
        for headers in FORGED_CREDENTIALS:
            r = await client.request(method.upper(), url, headers=headers, **body)
            assert r.status_code == 401, f"{op['operationId']} with {headers}: {r.status_code}"
            assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
            assert r.headers["www-authenticate"].lower().startswith("bearer")


# --- the generated SDK -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk(spec, tmp_path_factory):
    """Generate a client with openapi-python-client (warnings are errors) and import it."""
    import json

    root = tmp_path_factory.mktemp("sdk")
    document = root / "openapi.json"
    document.write_text(json.dumps(spec))
    config = root / "config.yaml"
    config.write_text(f"package_name_override: {CLIENT_PACKAGE}\npost_hooks: []\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [str(generator), "generate", "--path", str(document), "--output-path", str(root / CLIENT_PACKAGE),
         "--meta", "none", "--config", str(config), "--fail-on-warning"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"client generation failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == CLIENT_PACKAGE or m.startswith(CLIENT_PACKAGE + ".")]:
            del sys.modules[name]


async def test_generated_client_signs_up_and_manages_workspaces(sdk, app, spec):
    tags = {op["operationId"]: op["tags"][0] for _, _, op in _operations(spec)}

    def operation(op_id: str):
        return importlib.import_module(f"{CLIENT_PACKAGE}.api.{tags[op_id]}.{op_id}")

    models = importlib.import_module(f"{CLIENT_PACKAGE}.models")
    transport = {"transport": httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))}
    base_url = "http://testserver"
    email = unique_email("sdk")

    anonymous = sdk.Client(base_url=base_url, raise_on_unexpected_status=True, httpx_args=transport)
    signed_up = await operation("auth_signup").asyncio_detailed(
        client=anonymous, body=models.SignupRequest(email=email, password=PASSWORD, display_name="SDK User"))
    assert signed_up.status_code == 201, signed_up.content
    assert isinstance(signed_up.parsed, models.TokenRead)

    logged_in = await operation("auth_login").asyncio(client=anonymous,
                                              body=models.LoginRequest(email=email, password=PASSWORD))
    assert isinstance(logged_in, models.TokenRead), logged_in
    wrong = await operation("auth_login").asyncio(client=anonymous,
                                          body=models.LoginRequest(email=email, password="not the password"))
    assert isinstance(wrong, models.Problem) and wrong.status == 401

    # The SDK's own token handling (not a hand-made header) authenticates these calls.
    signed_in = sdk.AuthenticatedClient(base_url=base_url, token=logged_in.access_token,
                                        raise_on_unexpected_status=True, httpx_args=transport)
    profile = await operation("me_get").asyncio(client=signed_in)
    assert isinstance(profile, models.MeRead), profile
    assert profile.email == email

    created = await operation("workspaces_create").asyncio_detailed(
        client=signed_in, body=models.WorkspaceCreate(name="SDK Workspace"))
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, models.WorkspaceRead) and created.parsed.name == "SDK Workspace"

    page = await operation("workspaces_list").asyncio(client=signed_in, limit=10)
    assert isinstance(page, models.WorkspacePage), page
    assert [w.id for w in page.items] == [created.parsed.id]

    invalid = await operation("workspaces_create").asyncio(client=signed_in,
                                                           body=models.WorkspaceCreate(name=""))
    assert isinstance(invalid, models.Problem) and invalid.status == 422
    assert invalid.errors and invalid.errors[0].loc[-1] == "name"

    stranger = sdk.AuthenticatedClient(base_url=base_url, token="not-a-token",
                                       raise_on_unexpected_status=True, httpx_args=transport)
    refused = await operation("me_get").asyncio(client=stranger)
    assert isinstance(refused, models.Problem) and refused.status == 401
    for c in (anonymous, signed_in, stranger):
        await c.get_async_httpx_client().aclose()
