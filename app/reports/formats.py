"""Report writers for JSON, CSV, OCSF (Detection Finding) and a terminal table.

OCSF mapping (schema 1.5, class Detection Finding 2004, category Findings 2, activity Create):

    CloudWizard      status_code  status_id         status      unmapped.compliance_status
    PASS             "PASS"       4 Resolved        "Resolved"  1 Pass
    FAIL             "FAIL"       1 New             "New"       3 Fail
    ERROR            "ERROR"      0 Unknown         "Unknown"   2 Warning ("no result: missing information")

A PASS is a posture check whose condition holds: nothing is left to act on, hence Resolved. An ERROR is a
check we could not evaluate (the AWS call it needs failed), so its workflow status is Unknown; the
message (`status_detail`) names the failed action and error. Severity maps informational..critical to
severity_id 1..5. Detection Finding has no `compliance` attribute, so the framework -> control ids map
travels in `unmapped.compliance`, next to the check's service and category.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from app.reports import FINDING_FIELDS, SEVERITY_RANK, ScanReport

FORMATS = ("table", "json", "csv", "ocsf", "html")
OCSF_VERSION = "1.5.0"
OCSF_CLASS_UID = 2004          # Detection Finding
OCSF_CATEGORY_UID = 2          # Findings
OCSF_ACTIVITY_CREATE = 1
OCSF_SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
OCSF_STATUS = {"PASS": (4, "Resolved"), "FAIL": (1, "New"), "ERROR": (0, "Unknown")}
OCSF_COMPLIANCE_STATUS = {"PASS": (1, "Pass"), "FAIL": (3, "Fail"), "ERROR": (2, "Warning")}
OCSF_AWS_ACCOUNT_TYPE_ID = 10
# A spreadsheet runs a cell that starts with one of these as a formula; resource names come from customers.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------

def to_json(report: ScanReport) -> str:
    """{"scan": {...}, "findings": [...]}, keys in a fixed order, findings sorted: diffable between runs."""
    buffer = io.StringIO()
    write_json(report, buffer)
    return buffer.getvalue()


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)


def write_array(items: Iterable[Any], stream: TextIO, depth: int) -> None:
    """A JSON array one item at a time, laid out exactly as json.dumps(indent=2) would at this depth.

    json.dumps of the whole report holds millions of small strings at once (a 15k-finding report peaks
    near 100 MB); one item at a time stays small. JSON strings never hold a raw newline, so re-indenting
    an item is a plain replace.
    """
    pad = "  " * (depth + 1)
    first = True
    for item in items:
        stream.write(("[\n" if first else ",\n") + pad + dumps(item).replace("\n", "\n" + pad))
        first = False
    stream.write("[]" if first else "\n" + "  " * depth + "]")


def write_json(report: ScanReport, stream: TextIO) -> None:
    stream.write('{\n  "scan": ' + dumps(report.scan).replace("\n", "\n  ") + ',\n  "findings": ')
    write_array(report.findings, stream, 1)
    stream.write("\n}\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------

def flatten_compliance(compliance: dict[str, list[str]]) -> str:
    """{"cis-aws-3.0": ["2.2.1"], "aws-fsbp": ["EC2.7"]} -> "aws-fsbp:EC2.7;cis-aws-3.0:2.2.1"."""
    return ";".join(f"{fw}:{ctl}" for fw in sorted(compliance) for ctl in compliance[fw])


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text: one starting like a formula gets a leading apostrophe, also
    behind leading spaces (some spreadsheets trim them before evaluating)."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


_cell = csv_cell


def write_csv_rows(stream: TextIO, rows: Iterable[Iterable[Any]]) -> None:
    """Rows of defused cells (csv_cell), lines ending in "\n". A row with a carriage return in a cell is written
    fully quoted: the writer quotes only cells holding characters of its line terminator, and a bare CR would
    otherwise end the line for a reader."""
    plain = csv.writer(stream, lineterminator="\n")
    quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [csv_cell(v) for v in row]
        (quoted if any("\r" in c for c in cells) else plain).writerow(cells)


def write_csv(report: ScanReport, stream: TextIO) -> None:
    """One row per finding, FINDING_FIELDS as columns; a cell that a spreadsheet would run as a formula
    gets a leading apostrophe (OWASP's CSV-injection advice)."""
    write_csv_rows(stream, [FINDING_FIELDS])
    write_csv_rows(stream, ([flatten_compliance(f["compliance"]) if key == "compliance" else f[key]
                             for key in FINDING_FIELDS] for f in report.findings))


def to_csv(report: ScanReport) -> str:
    buffer = io.StringIO()
    write_csv(report, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# OCSF
# --------------------------------------------------------------------------------------------------

def epoch_ms(moment: str | datetime | None) -> int:
    if not moment:
        return 0
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:   # SQLite gives naive datetimes back; everything we store is UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


_epoch_ms = epoch_ms


def ocsf_finding(report: ScanReport, finding: dict[str, Any]) -> dict[str, Any]:
    """One finding of a scan report as an OCSF Detection Finding event (a plain dict, JSON-ready)."""
    scan = report.scan
    return ocsf_event(finding, report.checks.get(finding["check_id"], {}), partition=scan["partition"],
                      tool=scan["tool"], time_ms=_epoch_ms(scan["finished_at"]))


# A stored finding's lifecycle overrides the status its result maps to: resolved (no longer produced), or
# muted (accepted risk: OCSF's Suppressed, "reviewed, determined to be benign ... and is now suppressed").
OCSF_STATE_STATUS = {"resolved": (4, "Resolved"), "muted": (3, "Suppressed")}


def ocsf_event(finding: dict[str, Any], meta: dict[str, Any], *, partition: str | None, tool: dict[str, str],
               time_ms: int, first_seen_ms: int | None = None, state: str | None = None,
               unmapped: dict[str, Any] | None = None) -> dict[str, Any]:
    """A finding (FINDING_FIELDS + details) as an OCSF Detection Finding event.

    `time_ms` is when it was observed (a scan's end, or a stored finding's last sighting); with `first_seen_ms`
    the finding_info also carries first/last seen times. `state` "resolved" or "muted" sets the status as
    OCSF_STATE_STATUS says; `unmapped` adds keys to `unmapped`.
    """
    status_id, status = OCSF_STATE_STATUS.get(state or "", OCSF_STATUS[finding["status"]])
    compliance_status_id, compliance_status = OCSF_COMPLIANCE_STATUS[finding["status"]]
    severity_id = OCSF_SEVERITY_ID.get(finding["severity"], 0)
    resource: dict[str, Any] = {
        "uid": finding["resource_arn"] or finding["resource_id"],
        "name": finding["resource_id"],
        "type": finding["resource_type"],
        "region": finding["region"],
        "cloud_partition": partition,
        "group": {"name": finding["service"]},
    }
    if finding["details"]:
        resource["data"] = {"details": finding["details"]}
    finding_info: dict[str, Any] = {
        "uid": finding["uid"],
        "title": finding["title"],
        "desc": meta.get("description") or finding["title"],
        "types": [finding["category"]],
        "created_time": time_ms if first_seen_ms is None else first_seen_ms,
    }
    if first_seen_ms is not None:
        finding_info.update(first_seen_time=first_seen_ms, last_seen_time=time_ms)
    event: dict[str, Any] = {
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "CloudWizard", "vendor_name": "CloudWizard", "uid": tool["name"],
                        "version": tool["version"]},
            "event_code": finding["check_id"],
            "profiles": ["cloud"],
            "tenant_uid": finding["account_id"],
        },
        "activity_id": OCSF_ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": OCSF_CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": OCSF_CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": OCSF_CLASS_UID * 100 + OCSF_ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "time": time_ms,
        "severity_id": severity_id,
        "severity": finding["severity"].capitalize() if severity_id else "Unknown",
        "status_id": status_id,
        "status": status,
        "status_code": finding["status"],
        "status_detail": finding["message"],
        "message": finding["message"],
        "finding_info": finding_info,
        "resources": [resource],
        "cloud": {
            "provider": "aws",
            "region": finding["region"],
            "account": {"uid": finding["account_id"], "name": finding["account_id"],
                        "type_id": OCSF_AWS_ACCOUNT_TYPE_ID, "type": "AWS Account"},
        },
        "unmapped": {
            "check_id": finding["check_id"],
            "service": finding["service"],
            "category": finding["category"],
            "compliance": finding["compliance"],
            "compliance_status_id": compliance_status_id,
            "compliance_status": compliance_status,
            **(unmapped or {}),
        },
    }
    if meta.get("risk"):
        event["risk_details"] = meta["risk"]
    remediation = meta.get("remediation") or {}
    if remediation.get("text"):
        event["remediation"] = {"desc": remediation["text"],
                                "references": [str(u) for u in meta.get("references", [])]}
    return event


def write_ocsf(report: ScanReport, stream: TextIO) -> None:
    """A JSON array of Detection Finding events, one per finding."""
    write_array((ocsf_finding(report, f) for f in report.findings), stream, 0)
    stream.write("\n")


def to_ocsf(report: ScanReport) -> str:
    buffer = io.StringIO()
    write_ocsf(report, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Terminal table
# --------------------------------------------------------------------------------------------------

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan",
                  "informational": "dim"}
STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "ERROR": "yellow"}


def render_table(report: ScanReport, console: Any) -> None:
    """A summary and the FAIL and ERROR findings, most severe first, printed on a rich Console."""
    from rich.markup import escape
    from rich.table import Table

    scan, counts = report.scan, report.scan["counts"]
    by_status = counts["by_status"]
    console.print(
        f"[bold]Account {escape(scan['account_id'])}[/] ({escape(scan['partition'])}), "
        f"{len(scan['regions'])} regions, {scan['checks_run']} checks, scan {escape(scan['status'])} "
        f"in {scan['duration_seconds']:.1f} s with {scan['api_calls']} API calls",
        highlight=False, soft_wrap=True)
    line = (f"[green]{by_status['PASS']} passed[/], [red]{by_status['FAIL']} failed[/], "
            f"[yellow]{by_status['ERROR']} could not be evaluated[/]")
    worst = [f"{n} {s}" for s, n in counts["failed_by_severity"].items() if n]
    if worst:
        line += " (failed: " + ", ".join(worst) + ")"
    console.print(line, highlight=False, soft_wrap=True)
    rows = [f for f in report.findings if f["status"] != "PASS"]
    if not rows:
        return
    rows.sort(key=lambda f: (f["status"] != "FAIL", -SEVERITY_RANK.get(f["severity"], 0), f["check_id"],
                             f["region"], f["resource_id"]))
    table = Table(show_lines=False, header_style="bold", expand=False)
    for name in ("Status", "Severity", "Check", "Region", "Resource", "Message"):
        table.add_column(name, overflow="fold")
    for f in rows:
        table.add_row(
            f"[{STATUS_STYLE[f['status']]}]{f['status']}[/]",
            f"[{SEVERITY_STYLE.get(f['severity'], '')}]{escape(f['severity'])}[/]",
            escape(f["check_id"]), escape(f["region"]), escape(f["resource_id"]), escape(f["message"]),
        )
    console.print(table)
    if scan["errors"]:
        console.print(f"[yellow]{len(scan['errors'])} AWS calls failed during collection[/] "
                      "(the ERROR findings above name them).", highlight=False)


def write(report: ScanReport, fmt: str, stream: TextIO) -> None:
    """Write the report in one of FORMATS (the table without colours) to a text stream."""
    if fmt == "json":
        write_json(report, stream)
    elif fmt == "csv":
        write_csv(report, stream)
    elif fmt == "ocsf":
        write_ocsf(report, stream)
    elif fmt == "html":
        from app.reports.html import render_html

        stream.write(render_html(report))
    elif fmt == "table":
        from rich.console import Console

        render_table(report, Console(file=stream, width=200, color_system=None, force_terminal=False))
    else:
        raise ValueError(f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})")


def render(report: ScanReport, fmt: str) -> str:
    """The report as text in one of FORMATS."""
    buffer = io.StringIO()
    write(report, fmt, buffer)
    return buffer.getvalue()
