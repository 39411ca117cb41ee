"""Check catalog and compliance frameworks: reference data for any signed-in user or API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.api.deps import CurrentPrincipal
from app.checks.base import Severity
from app.checks.catalog import Category
from app.errors import error_responses
from app.pagination import PageParams, page_params
from app.schemas.checks import CheckPage, CheckRead, FrameworkPage, FrameworkRead
from app.services import catalog as catalog_service

router = APIRouter()

# The catalog is the same for everyone and holds no workspace data, so any principal may read it; it still
# needs one, so that anonymous callers cannot enumerate what the product looks for.
CHECK_ID = Annotated[str, Path(min_length=3, max_length=100, pattern=r"^[a-z0-9_]+$",
                               description="Check id.", examples=["s3_bucket_public_access_block"])]
FRAMEWORK_ID = Annotated[str, Path(min_length=1, max_length=50, description="Framework id.",
                                   examples=["cis-aws-3.0"])]


@router.get(
    "/checks", name="checks_list", tags=["checks"], response_model=CheckPage, summary="List checks",
    description="Every check the scanner runs, with its full metadata and compliance mappings, ordered by id. "
                "Filters combine. The catalog is small and static, so pages are a convenience: pass the "
                "previous `next_cursor` as `cursor` to continue.",
    responses=error_responses(401, 422),
)
async def checks_list(
    _principal: CurrentPrincipal, params: Annotated[PageParams, Depends(page_params)],
    service: Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$",
                                         description="AWS service, e.g. `s3`, `iam`, `ec2`.")] = None,
    category: Annotated[Category | None, Query(description="What the check is about.")] = None,
    severity: Annotated[Severity | None, Query(description="Exact severity.")] = None,
    framework: Annotated[str | None, Query(min_length=1, max_length=50,
                                           description="Only checks mapped to this framework, e.g. "
                                                       "`cis-aws-3.0`.")] = None,
) -> CheckPage:
    items, cursor = catalog_service.list_checks(params, service=service, category=category, severity=severity,
                                                framework=framework)
    return CheckPage(items=items, next_cursor=cursor)


@router.get(
    "/checks/{check_id}", name="checks_get", tags=["checks"], response_model=CheckRead, summary="Get a check",
    description="One check's metadata: what it looks at, why it matters, how to fix it, and the controls of "
                "each framework it serves.",
    responses=error_responses(401, 404, 422),
)
async def checks_get(_principal: CurrentPrincipal, check_id: CHECK_ID) -> CheckRead:
    return catalog_service.get_check(check_id)


@router.get(
    "/frameworks", name="frameworks_list", tags=["frameworks"], response_model=FrameworkPage,
    summary="List compliance frameworks",
    description="The compliance frameworks the checks map to, with how many controls each lists, how many of "
                "those configuration checks can assess (`automated`), and how many are served by at least "
                "one check.",
    responses=error_responses(401, 422),
)
async def frameworks_list(_principal: CurrentPrincipal,
                          params: Annotated[PageParams, Depends(page_params)]) -> FrameworkPage:
    items, cursor = catalog_service.list_frameworks(params)
    return FrameworkPage(items=items, next_cursor=cursor)


@router.get(
    "/frameworks/{framework_id}", name="frameworks_get", tags=["frameworks"], response_model=FrameworkRead,
    summary="Get a compliance framework",
    description="Every control of the framework with the ids of the checks that serve it (empty when none "
                "does), and the coverage counts. Manual controls carry a note on why they need a person.",
    responses=error_responses(401, 404, 422),
)
async def frameworks_get(_principal: CurrentPrincipal, framework_id: FRAMEWORK_ID) -> FrameworkRead:
    return catalog_service.get_framework(framework_id)
