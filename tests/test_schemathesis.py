"""Property-based contract test: Schemathesis generates valid and invalid requests for every operation
of the OpenAPI document; no answer may be a 5xx or differ from what the document promises.

Requests are signed in as a real user who owns a real workspace, so workspace routes are reached past
their authorization. Hypothesis runs in a thread while each request is sent on the suite's event loop,
where the app's database connections live (Schemathesis' own ASGI transport would start a fresh loop
and run the app's lifespan for every call)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import media_types
from schemathesis.core.deserialization import deserialize_yaml

from app.main import create_app
from app.ratelimit import memory_limiter

SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Bounded so that the whole module stays well under two minutes on two cores; raise locally to dig deeper.
POSITIVE_EXAMPLES = int(os.environ.get("CW_SCHEMATHESIS_EXAMPLES", "12"))
NEGATIVE_EXAMPLES = max(1, POSITIVE_EXAMPLES // 2)
BASE_URL = "http://testserver"


# Replaces the built-in YAML deserializer (registered under each of these names).
@schemathesis.deserializer(*media_types.YAML_MEDIA_TYPES)
def _yaml_or_text(ctx, response) -> Any:
    """A YAML body documented as `type: string` is text to validate as such (CloudFormation templates
    use `!GetAtt`-style tags that no generic YAML loader constructs); any other YAML body is parsed."""
    status = str(response.status_code)
    documented = ctx.operation.definition.raw.get("responses", {}).get(status, {})
    media_type = (response.headers.get("content-type") or ["application/yaml"])[0].split(";")[0].strip()
    schema = documented.get("content", {}).get(media_type, {}).get("schema", {})
    text = response.content.decode(response.encoding or "utf-8")
    return text if schema.get("type") == "string" else deserialize_yaml(text)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Generated sign-ups and sign-ins would otherwise use up the in-process allowance of later tests.
    memory_limiter().clear()
    yield
    memory_limiter().clear()


async def _send(client: httpx.AsyncClient, kwargs: dict[str, Any]) -> httpx.Response:
    extra: dict[str, Any] = {}
    if "json" in kwargs:
        extra["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        extra["content"] = kwargs["data"]
    headers = dict(kwargs.get("headers") or {})
    if kwargs.get("cookies"):
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    return await client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params") or None,
                                headers=headers, **extra)


def _has_input(operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody") or definition.get("security"))


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
async def test_operation_honours_the_contract(operation, client, signup, make_workspace):
    owner = await signup()
    workspace = await make_workspace(owner["headers"])
    me = (await client.get("/v1/me", headers=owner["headers"])).json()
    # Real ids for path parameters, so generated requests get past "not found" into the handlers.
    known_ids = {"workspace_id": workspace["id"], "user_id": me["id"]}
    loop = asyncio.get_running_loop()
    positive_statuses: list[int] = []

    def call(case) -> None:
        if case.path_parameters and case.meta and case.meta.generation.mode == GenerationMode.POSITIVE:
            for name, value in known_ids.items():
                if name in case.path_parameters:
                    case.path_parameters[name] = value
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=owner["headers"])
        response = asyncio.run_coroutine_threadsafe(_send(client, kwargs), loop).result(timeout=60)
        if case.meta and case.meta.generation.mode == GenerationMode.POSITIVE:
            positive_statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=kwargs["headers"])

    def explore(mode: GenerationMode, examples: int) -> None:
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            call(case)

        run()

    await asyncio.to_thread(explore, GenerationMode.POSITIVE, POSITIVE_EXAMPLES)
    if operation.definition.raw.get("security"):
        # The user's credentials must actually work, or this only ever tested the 401 path.
        assert positive_statuses and set(positive_statuses) != {401}, positive_statuses
    if _has_input(operation):
        await asyncio.to_thread(explore, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
