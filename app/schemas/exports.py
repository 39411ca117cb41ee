"""Export documents as the OpenAPI document describes them (the bodies themselves are streamed, not built from
these models): the JSON export of a filtered set or of a scan, and the OCSF and ASFF documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from app.schemas.findings import DeltaCounts, FindingRead, ScanFindingRead


class ExportTool(BaseModel):
    name: str
    version: str


class ExportWorkspace(BaseModel):
    id: uuid.UUID
    name: str


class ExportCounts(BaseModel):
    total: int
    by_status: dict[str, int] = Field(description="PASS, FAIL and ERROR.")
    failed_by_severity: dict[str, int]
    resolved: int = Field(description="How many of them are resolved (only with `include_resolved=true`).")
    muted: int = Field(description="How many of them are muted (only with `muted=include|only`).")


class ExportInfo(BaseModel):
    generated_at: datetime
    workspace: ExportWorkspace
    filters: dict[str, Any] = Field(description="The filters applied (those left unset are not listed).")
    sort: str
    order: str
    counts: ExportCounts = Field(description="Counted when the export started.")
    tool: ExportTool


class FindingsExport(BaseModel):
    """`format=json` of `GET /findings/export`: the findings exactly as `GET /findings` lists them."""

    export: ExportInfo
    findings: list[FindingRead]


class ScanExportCounts(BaseModel):
    total: int
    by_status: dict[str, int]
    failed_by_severity: dict[str, int]


class ScanExportInfo(BaseModel):
    """The scan, laid out as the `cloudwizard scan --format json` "scan" object, with its ids and deltas."""

    id: uuid.UUID
    aws_account_connection_id: uuid.UUID
    account_name: str
    account_id: str | None = Field(description="The AWS account number.")
    partition: str | None
    regions: list[str]
    status: str
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    api_calls: int | None
    api_calls_by_service: dict[str, int]
    throttled: int | None
    errors: list[dict[str, Any]] = Field(description="AWS calls that failed during collection.")
    checks_run: int | None
    collectors_run: int | None
    counts: ScanExportCounts = Field(description="The results listed below, counted.")
    deltas: DeltaCounts = Field(description="What the scan changed; `resolved` findings are not listed below.")
    tool: ExportTool


class ScanExport(BaseModel):
    """`format=json` of a scan's export: each result the scan produced, with the status and delta it gave and
    the finding as it is now."""

    scan: ScanExportInfo
    findings: list[ScanFindingRead]


class OcsfExport(RootModel[list[dict[str, Any]]]):
    """`format=ocsf`: an array of OCSF 1.5 Detection Finding events (class_uid 2004)."""


class AsffExport(BaseModel):
    """`format=asff`: AWS Security Finding Format 2018-10-08 findings, as BatchImportFindings takes them (send
    at most 100 per call)."""

    model_config = ConfigDict(populate_by_name=True)

    findings: list[dict[str, Any]] = Field(alias="Findings")


class FindingsExportDocument(RootModel[FindingsExport | OcsfExport | AsffExport]):
    """The JSON body of a findings export: by `format`, json, ocsf or asff."""


class ScanExportDocument(RootModel[ScanExport | OcsfExport | AsffExport]):
    """The JSON body of a scan export: by `format`, json, ocsf or asff."""
