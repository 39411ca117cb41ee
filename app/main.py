"""FastAPI application factory: middleware, error handlers, routers and the OpenAPI contract."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app import __version__
from app.api import health
from app.api.router import api_router
from app.config import get_settings
from app.db import dispose_engine
from app.errors import PROBLEM_MEDIA_TYPE, Problem, install_error_handlers
from app.logging import configure_logging
from app.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.redis import close_redis

DESCRIPTION = """
CloudWizard scans AWS accounts through a read-only role that you create with our CloudFormation
template, and keeps normalized findings mapped to compliance frameworks.

**Authentication**: `Authorization: Bearer <token>`, where the token is an access token from
`POST /v1/auth/login` (short-lived; renew with `POST /v1/auth/refresh`) or a workspace API key (`cw_...`).

**Errors** are RFC 9457 `application/problem+json` with a stable `type` URI.

**Lists** use cursor pagination: pass `limit` and the previous page's `next_cursor` as `cursor`.
"""


def _operation_id(route: APIRoute) -> str:
    # Routes are named `<tag>_<verb>`; the name is the operation id the SDKs expose.
    return route.name


@asynccontextmanager
async def lifespan(_app: FastAPI):
    if not get_settings().redis_url:
        # In-process jobs died with the previous process: pick their scans up again.
        from app.tasks.scans import recover_in_process_scans

        await recover_in_process_scans()
    yield
    from app import worker

    await worker.shutdown()
    await close_redis()
    await dispose_engine()


def create_app() -> FastAPI:
    settings = get_settings()
    settings.resolved_jwt_secret()  # refuse to start with a missing or weak key
    configure_logging(settings.log_level, settings.log_json)
    app = FastAPI(
        title="CloudWizard API", version=__version__, description=DESCRIPTION, lifespan=lifespan,
        generate_unique_id_function=_operation_id, openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                         tags=TAGS)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in components["Problem"].pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path_item in schema.get("paths", {}).values():
        for op in path_item.values():
            if not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            if "requestBody" in op and "400" not in responses:
                # Malformed JSON is answered before validation, so every body-taking route can give 400.
                responses["400"] = {"description": "Malformed request body (not valid JSON)."}
            if "requestBody" in op:
                responses.setdefault("413", {"description": "Request body too large."})
            for status, resp in responses.items():
                if status.isdigit() and int(status) >= 400 and op.get("operationId") != "health_ready":
                    resp["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
                    if status == "422":
                        resp["description"] = "Invalid fields; `errors` lists them."
    app.openapi_schema = schema
    return schema


TAGS = [
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "auth", "description": "Sign-up, sign-in, token refresh and sign-out."},
    {"name": "me", "description": "The signed-in user."},
    {"name": "workspaces", "description": "Workspaces: the tenant boundary of all data."},
    {"name": "members", "description": "Workspace members and their roles."},
    {"name": "invitations", "description": "Single-use, expiring invitations to a workspace."},
    {"name": "api_keys", "description": "Workspace API keys for SDKs and automation."},
    {"name": "audit", "description": "The append-only audit log of a workspace."},
    {"name": "aws_accounts", "description": "Connecting AWS accounts through a read-only role with an External ID."},
    {"name": "scans", "description": "Scans of connected AWS accounts, with live progress."},
    {"name": "findings", "description": "Findings across accounts: their lifecycle from scan to scan (new, changed, "
                                        "resolved, reopened), history, summaries and trends."},
    {"name": "mutes", "description": "Mute rules: accepted risk on a finding or a rule over check, account, region, "
                                     "resource pattern or tag, with a reason, an owner and an optional expiry."},
    {"name": "exports", "description": "Findings of a scan or a filtered set as JSON, CSV, OCSF, ASFF or an HTML "
                                       "report, streamed."},
    {"name": "checks", "description": "The catalog of checks the scanner runs, with metadata and compliance mappings."},
    {"name": "frameworks", "description": "Compliance frameworks, their controls, and which checks serve each."},
    {"name": "templates", "description": "The CloudFormation templates customers deploy."},
]
