"""Scan reports: one format-neutral view of a finished scan (summary + findings + check metadata).

The writers in app.reports.formats (json, csv, ocsf, table) and app.reports.html read only this view, so
the terminal scan and an export of a stored scan render the same way: build a ScanReport from a
ScanOutcome with `report_from_outcome`, or from stored rows with `ScanReport.build`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.scanners.engine import FindingRecord, ScanOutcome

STATUSES = ("PASS", "FAIL", "ERROR")
SEVERITIES = ("critical", "high", "medium", "low", "informational")   # most severe first
SEVERITY_RANK = {s: len(SEVERITIES) - i for i, s in enumerate(SEVERITIES)}   # critical=5 ... informational=1
# The finding fields every format carries, in this order (the CSV columns, the JSON keys).
FINDING_FIELDS = (
    "uid", "check_id", "title", "status", "severity", "service", "category", "region", "account_id",
    "resource_type", "resource_id", "resource_arn", "message", "source", "compliance",
)
# The keys of the JSON "scan" object, in this order.
SCAN_FIELDS = (
    "account_id", "partition", "regions", "status", "started_at", "finished_at", "duration_seconds",
    "api_calls", "api_calls_by_service", "throttled", "errors", "checks_run", "collectors_run", "counts",
    "tool",
)


def iso(moment: datetime | str | None) -> str | None:
    """UTC timestamps as `2025-01-31T12:00:00.123Z` (stored rows may hand us strings already)."""
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is None:   # SQLite gives naive datetimes back; everything we store is UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finding_sort_key(finding: Mapping[str, Any]) -> tuple[str, str, str, str]:
    # Stable across runs: collectors finish in any order, but the same account gives the same file.
    return (finding["check_id"], finding["region"], finding["resource_id"], finding["uid"])


def count_findings(findings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    by_status: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for f in findings:
        by_status[f["status"]] += 1
        if f["status"] == "FAIL":
            failed[f["severity"]] += 1
    return {
        "total": sum(by_status.values()),
        "by_status": {s: by_status.get(s, 0) for s in STATUSES},
        "failed_by_severity": {s: failed.get(s, 0) for s in SEVERITIES},
    }


def _tool() -> dict[str, str]:
    from app import __version__

    return {"name": "cloudwizard", "version": __version__}


def scan_summary(scan: Mapping[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """The JSON "scan" object (SCAN_FIELDS, in order) from a scan's fields, with `counts` as count_findings
    gives them: timestamps in UTC, regions and errors sorted, the tool filled in."""
    summary = {key: scan.get(key) for key in SCAN_FIELDS}
    summary["started_at"], summary["finished_at"] = iso(summary["started_at"]), iso(summary["finished_at"])
    summary["regions"] = sorted(summary["regions"] or [])
    summary["errors"] = sorted((dict(e) for e in (summary["errors"] or [])),
                               key=lambda e: (e["region"], e["action"], e.get("resource_id") or ""))
    summary["api_calls_by_service"] = dict(sorted((summary["api_calls_by_service"] or {}).items()))
    summary["counts"] = counts
    summary["tool"] = summary["tool"] or _tool()
    return summary


@dataclass
class ScanReport:
    """`scan` is the JSON format's "scan" object; `findings` are plain dicts with FINDING_FIELDS (and
    `details`); `checks` holds the catalog metadata (title, description, risk, remediation, references,
    severity...) of the checks the findings name, by check id, for the formats that explain findings."""

    scan: dict[str, Any]
    findings: list[dict[str, Any]]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, scan: Mapping[str, Any], findings: Iterable[Mapping[str, Any] | FindingRecord],
              checks: Mapping[str, Any] | None = None) -> ScanReport:
        """Normalise a scan summary and its findings: findings sorted, counts computed, metadata attached.

        `checks` maps check id -> metadata (a CheckMetadata or its dict); None reads the installed catalog's
        metadata files. A finding whose check is unknown (removed since the scan) still renders.
        """
        rows = sorted((finding_dict(f) for f in findings), key=finding_sort_key)
        summary = scan_summary(scan, count_findings(rows))
        if checks is None:
            from app.checks.catalog import metadata

            checks = metadata()
        wanted = {f["check_id"] for f in rows}
        meta = {cid: meta_dict(m) for cid, m in checks.items() if cid in wanted}
        return cls(scan=summary, findings=rows, checks=meta)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["status"] == "FAIL"]

    def failing_at_or_above(self, severity: str) -> list[dict[str, Any]]:
        """FAIL findings whose severity is `severity` or worse (what --fail-on counts). GuardDuty's sample findings
        (made by CreateSampleFindings to try the service out) describe nothing that happened: they never count."""
        floor = SEVERITY_RANK[severity]
        return [f for f in self.failed if SEVERITY_RANK.get(f["severity"], 0) >= floor
                and not (f.get("details") or {}).get("sample")]

    def as_json(self) -> dict[str, Any]:
        return {"scan": self.scan, "findings": self.findings}


def finding_dict(finding: Mapping[str, Any] | FindingRecord) -> dict[str, Any]:
    """A finding as every format reads it: FINDING_FIELDS, then `details`."""
    # Attribute by attribute, not dataclasses.asdict: that deep-copies every value, and costs seconds on
    # a large account's findings.
    get = finding.get if isinstance(finding, Mapping) else lambda key, default=None: getattr(finding, key, default)
    out = {key: get(key) for key in FINDING_FIELDS}
    out["compliance"] = {fw: list(ids) for fw, ids in sorted((out["compliance"] or {}).items())}
    out["details"] = dict(get("details") or {})
    return out


def meta_dict(meta: Any) -> dict[str, Any]:
    return meta.model_dump(mode="json") if hasattr(meta, "model_dump") else dict(meta)


def report_from_outcome(outcome: ScanOutcome, checks: Mapping[str, Any] | None = None) -> ScanReport:
    """The report of a scan the engine just ran."""
    stats = outcome.stats
    scan = {
        "account_id": outcome.account_id,
        "partition": outcome.partition,
        "regions": outcome.regions,
        "status": outcome.status,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "duration_seconds": round((outcome.finished_at - outcome.started_at).total_seconds(), 3),
        "api_calls": stats.api_calls,
        "api_calls_by_service": dict(stats.calls_by_service),
        "throttled": stats.throttled,
        "errors": [e.model_dump() for e in outcome.errors],
        "checks_run": outcome.checks_run,
        "collectors_run": outcome.collectors_run,
    }
    return ScanReport.build(scan, outcome.findings, checks)
