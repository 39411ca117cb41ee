"""Exports of findings as JSON, CSV, OCSF, ASFF or a self-contained HTML report, streamed.

`GET /findings/export` (a filtered set, findings_list's filters) is declared in app/api/findings.py, before
`/findings/{finding_id}` which would otherwise take "export" for an id; its response is built here.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, WorkspaceContext, WorkspaceViewer
from app.errors import error_responses
from app.reports.html import content_security_policy
from app.schemas.exports import ScanExportDocument
from app.services import audit
from app.services import exports as service
from app.services.exports import ExportFormat

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["exports"])

AccountIdPath = Annotated[uuid.UUID, Path(description="AWS account connection id.")]
ScanIdPath = Annotated[uuid.UUID, Path(description="Scan id.")]
FormatQuery = Annotated[ExportFormat, Query(
    alias="format", description="`json`, `csv`, `ocsf` (OCSF 1.5 Detection Finding events), `asff` (AWS Security "
                                "Finding Format, for Security Hub's BatchImportFindings) or `html` (a self-contained "
                                "report with charts; its table stops at 20,000 rows, the counts and charts cover "
                                "everything).")]
FORMATS_HELP = (" The body is streamed, so a large set starts at once and uses little memory; a failure half-way "
                "breaks the transfer rather than ending the file early. `Content-Disposition` names the file.")


def export_responses(model: type) -> dict[int | str, dict[str, Any]]:
    """The 200's media types (JSON for json/ocsf/asff, CSV, HTML) and the problem+json errors."""
    text = {"schema": {"type": "string"}}
    return {
        200: {"model": model, "description": "The export, streamed.",
              "content": {"text/csv": text, "text/html": text},
              "headers": {"Content-Disposition": {"description": "`attachment; filename=\"...\"`",
                                                  "schema": {"type": "string"}}}},
        **error_responses(401, 404, 422),
    }


def export_response(source: Any, fmt: ExportFormat) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{service.filename(source, fmt)}"',
               "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
               "X-Accel-Buffering": "no"}   # proxies pass pieces on as they come
    if fmt == ExportFormat.html:
        headers["Content-Security-Policy"] = content_security_policy()
    return StreamingResponse(service.stream(source, fmt), media_type=service.MEDIA_TYPES[fmt], headers=headers)


async def record_export(session: AsyncSession, ctx: WorkspaceContext, fmt: ExportFormat, *, target_type: str,
                        target_id: Any, details: dict[str, Any]) -> None:
    # Recorded when the export starts: how many rows it wrote is known only once the body is sent.
    await audit.record(session, workspace_id=ctx.id, actor=ctx.principal, action="findings.exported",
                       target_type=target_type, target_id=target_id, details={"format": fmt.value, **details})


@router.get("/aws-accounts/{account_id}/scans/{scan_id}/export", name="exports_scan", response_model=None,
            summary="Export a scan's results",
            description="The results the scan produced (each with the status and delta that scan gave it, and the "
                        "finding as it is now), most severe first, with the scan's summary: the JSON `scan` object, "
                        "the HTML report's cards and charts. Findings the scan resolved are counted in "
                        "`scan.deltas.resolved` but not listed (see `GET .../scans/{scan_id}/findings?delta=resolved`)."
                        + FORMATS_HELP,
            responses={**export_responses(ScanExportDocument), **error_responses(410)})
async def exports_scan(account_id: AccountIdPath, scan_id: ScanIdPath, ctx: WorkspaceViewer, session: SessionDep,
                       fmt: FormatQuery = ExportFormat.json):
    source = await service.scan_source(session, ctx.id, account_id, scan_id)
    await record_export(session, ctx, fmt, target_type="scan", target_id=scan_id,
                        details={"aws_account_connection_id": str(account_id)})
    return export_response(source, fmt)

