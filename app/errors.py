"""Domain errors carry their HTTP status and a stable problem `type`; one handler renders them.

Every error leaves the service as RFC 9457 `application/problem+json`.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://cloudwizard.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)


class DomainError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.errors = errors

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Invalid credentials"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(DomainError):
    status, slug, title = 410, "gone", "No longer available"


class InvalidInput(DomainError):
    """A request that is well-formed but not acceptable; `errors` names the fields."""

    status, slug, title = 422, "validation-error", "Invalid request"

    @classmethod
    def field(cls, field: str, message: str, *, loc: list[str | int] | None = None) -> InvalidInput:
        loc = loc or ["body", field]
        return cls(message, errors=[{"loc": loc, "field": ".".join(map(str, loc)), "message": message,
                                     "type": "value_error"}])


class RateLimited(DomainError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Too many attempts; try again in {retry_after} seconds.",
                         headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is: body, query, path or header, then the field.")
    field: str = Field(description="`loc` joined with dots, for display.")
    message: str
    type: str = Field(description="Machine-readable error kind.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="Stable URI that identifies the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="Offending fields, for validation errors.")


def problem_response(request: Request, *, status: int, slug: str, title: str, detail: str,
                     errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if not slug.startswith("http") else slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [p if isinstance(p, int | str) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "field": ".".join(map(str, loc)), "message": err.get("msg", "invalid"),
                    "type": err.get("type", "value_error")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(request, status=exc.status, slug=exc.slug, title=exc.title,
                                detail=exc.detail, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0]["field"] + ": " + errors[0]["message"] if errors else "invalid request"
        return problem_response(request, status=422, slug="validation-error", title="Invalid request",
                                detail=first, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(request, status=exc.status_code, slug=slug, title=title, detail=detail,
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        # SQLite (the single-machine default) allows one writer; a write that waited past its busy
        # timeout is back-pressure, not a bug: ask the client to retry.
        if "database is locked" in str(exc.orig):
            return problem_response(request, status=503, slug="database-busy", title="Database busy",
                                    detail="The database is busy with another write; retry shortly.",
                                    headers={"Retry-After": "1"})
        log.exception("database_error", error_type=type(exc.orig).__name__)
        return problem_response(request, status=503, slug="unavailable", title="Service unavailable",
                                detail="The database is unavailable; retry shortly.", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return problem_response(request, status=500, slug="internal-error", title="Internal error",
                                detail="An unexpected error occurred; it has been logged.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json errors for a route."""
    descriptions = {
        400: "Malformed request.", 401: "Missing, invalid or expired credentials.",
        403: "Authenticated but not allowed (role too low, or a user-only operation).",
        404: "No such object in a workspace you belong to.", 409: "Conflicts with the current state.",
        410: "Existed, but was removed under the retention policy.",
        413: "Request body too large.", 422: "Invalid fields; `errors` lists them.",
        429: "Rate limited; see the Retry-After header.", 503: "A dependency is unavailable.",
    }
    return {
        s: {"model": Problem, "description": descriptions.get(s, "Error."),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for s in statuses
    }
