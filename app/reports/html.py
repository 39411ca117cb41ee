"""A self-contained HTML report of one scan: summary cards, SVG charts, failed findings with remediation.

One file, no network: styles, charts (inline SVG drawn here) and the small filter script are inline. Every
value is HTML-escaped (resource names, tags and messages come from customer accounts), the script reads
only data-* attributes and writes only textContent/hidden, and a Content-Security-Policy allows no script
but ours (by hash), so markup that slipped through could still not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from app.reports import SEVERITIES, SEVERITY_RANK, STATUSES, ScanReport

STATUS_COLOURS = {"PASS": "#2f9e5b", "FAIL": "#d64545", "ERROR": "#e09a1f"}
SEVERITY_COLOURS = {"critical": "#7f1d1d", "high": "#dc2626", "medium": "#ea7a12", "low": "#2563eb",
                    "informational": "#94a3b8"}
FRAMEWORK_NAMES = {
    "cis-aws-3.0": "CIS AWS Foundations Benchmark 3.0",
    "aws-fsbp": "AWS Foundational Security Best Practices",
    "soc2": "SOC 2 (Trust Services Criteria)",
    "iso27001-2022": "ISO/IEC 27001:2022 Annex A",
    "pci-dss-4.0": "PCI DSS 4.0",
    "nist-800-53-r5": "NIST SP 800-53 Rev. 5",
    "hipaa": "HIPAA Security Rule",
}

CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--accent:#1d4ed8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg)}
header{background:#0f172a;color:#f8fafc;padding:20px 32px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#cbd5e1}
main{padding:24px 32px;max-width:1400px;margin:auto}
h2{font-size:18px;margin:32px 0 12px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.card .n{font-size:28px;font-weight:700}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
.chart{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.chart h3{margin:0 0 8px;font-size:14px}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;color:var(--muted);margin-top:6px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
.donut{display:flex;align-items:center;gap:20px}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:600;color:#fff}
.st-PASS{color:#15803d;font-weight:600}.st-FAIL{color:#b91c1c;font-weight:600}.st-ERROR{color:#b45309;font-weight:600}
.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-bottom:12px;background:var(--card);
border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.filters input,.filters select{font:inherit;padding:5px 8px;border:1px solid #cbd5e1;border-radius:6px}
.filters input{min-width:260px}
section.check{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 14px;
padding:12px 16px}
section.check h3{margin:0;font-size:15px}
section.check .meta{color:var(--muted);font-size:12px;margin:2px 0 8px}
.fix{background:#f1f5f9;border-radius:6px;padding:8px 12px;margin:8px 0}
.fix summary{cursor:pointer;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;background:#0f172a;color:#e2e8f0;padding:8px 10px;
border-radius:6px;font-size:12px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.muted{color:var(--muted)}
.bar{height:8px;background:#e2e8f0;border-radius:4px;overflow:hidden;min-width:120px}
.bar>span{display:block;height:100%}
footer{color:var(--muted);font-size:12px;padding:24px 32px}
@media print{.filters{display:none}section.check{break-inside:avoid}}
"""

SCRIPT = """(function(){
var ids=['f-q','f-status','f-severity','f-service','f-region'];
var el={};ids.forEach(function(i){el[i]=document.getElementById(i);});
var bar=document.getElementById('filters');if(!bar)return;bar.hidden=false;
var groups=document.querySelectorAll('section.check');
function apply(){
var q=el['f-q'].value.trim().toLowerCase(),st=el['f-status'].value,sv=el['f-severity'].value,
sc=el['f-service'].value,rg=el['f-region'].value,total=0;
groups.forEach(function(g){
var gOk=(!sv||g.dataset.severity===sv)&&(!sc||g.dataset.service===sc);
var gText=!q||g.dataset.search.indexOf(q)>=0,n=0;
g.querySelectorAll('tbody tr').forEach(function(r){
var ok=gOk&&(!st||r.dataset.status===st)&&(!rg||r.dataset.region===rg)&&(gText||r.dataset.search.indexOf(q)>=0);
r.hidden=!ok;if(ok)n++;});
g.hidden=n===0;total+=n;g.querySelector('.shown').textContent=String(n);});
document.getElementById('f-count').textContent=String(total);}
ids.forEach(function(i){el[i].addEventListener('input',apply);});apply();})();"""


def e(value: Any) -> str:
    """Escape for element content and quoted attribute values alike."""
    return html.escape("" if value is None else str(value), quote=True)


def _safe_url(url: Any) -> str | None:
    text = str(url or "")
    return text if urlsplit(text).scheme in ("http", "https") else None


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


# --------------------------------------------------------------------------------------------------
# Charts (inline SVG)
# --------------------------------------------------------------------------------------------------

def donut(segments: list[tuple[str, int, str]], centre: str, caption: str) -> str:
    """A ring of segments (label, value, colour) drawn with stroke dashes on a circle of circumference 100."""
    total = sum(v for _, v, _ in segments)
    r = 100 / (2 * math.pi)
    parts = [f'<svg viewBox="0 0 42 42" width="150" height="150" role="img" aria-label="{e(caption)}">',
             f'<circle cx="21" cy="21" r="{r:.4f}" fill="none" stroke="#e2e8f0" stroke-width="6"/>']
    offset = 25.0   # start at twelve o'clock
    for label, value, colour in segments:
        if not value or not total:
            continue
        share = 100 * value / total
        parts.append(f'<circle cx="21" cy="21" r="{r:.4f}" fill="none" stroke="{colour}" stroke-width="6" '
                     f'stroke-dasharray="{share:.3f} {100 - share:.3f}" stroke-dashoffset="{offset:.3f}">'
                     f'<title>{e(label)}: {value}</title></circle>')
        offset = (offset - share) % 100
    parts.append(f'<text x="21" y="22.5" text-anchor="middle" font-size="7" font-weight="700" '
                 f'fill="#0f172a">{e(centre)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i class="sw" style="background:{colour}"></i>{e(label)} {value}</span>'
                     for label, value, colour in segments)
    return f'<div class="donut">{"".join(parts)}<div class="legend" style="flex-direction:column">{legend}</div></div>'


def stacked_bars(rows: list[tuple[str, dict[str, int]]], caption: str, label_w: int = 150) -> str:
    """Horizontal bars per label, split into PASS/FAIL/ERROR, scaled to the largest row; a label longer than
    `label_w` allows is cut (the whole label is the tooltip)."""
    if not rows:
        return '<p class="muted">No findings.</p>'
    bar_w, row_h, right = 330, 22, 90
    max_chars = max(int((label_w - 10) / 6.8), 8)
    biggest = max(sum(c.values()) for _, c in rows) or 1
    height = row_h * len(rows) + 4
    width = label_w + bar_w + right
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{e(caption)}" style="max-width:{width * 1.3:.0f}px">']
    for i, (label, counts) in enumerate(rows):
        y = i * row_h + 2
        shown = label if len(label) <= max_chars else label[:max_chars - 1] + "…"
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12" fill="#334155">'
                   f'<title>{e(label)}</title>{e(shown)}</text>')
        x = float(label_w)
        for status in STATUSES:
            n = counts.get(status, 0)
            if not n:
                continue
            w = bar_w * n / biggest
            out.append(f'<rect x="{x:.2f}" y="{y + 3}" width="{max(w, 1):.2f}" height="{row_h - 8}" '
                       f'fill="{STATUS_COLOURS[status]}"><title>{e(label)}: {n} {status}</title></rect>')
            x += w
        out.append(f'<text x="{x + 5:.2f}" y="{y + 14}" font-size="11" fill="#64748b">'
                   f'{counts.get("FAIL", 0)}/{sum(counts.values())}</text>')
    out.append("</svg>")
    legend = "".join(f'<span><i class="sw" style="background:{STATUS_COLOURS[s]}"></i>{s}</span>' for s in STATUSES)
    return "".join(out) + f'<div class="legend">{legend}<span>numbers: failed/total</span></div>'


def _by(findings: Iterable[dict[str, Any]], key: str) -> list[tuple[str, dict[str, int]]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for f in findings:
        counts[str(f[key])][f["status"]] += 1
    return sorted(((k, dict(v)) for k, v in counts.items()),
                  key=lambda kv: (-kv[1].get("FAIL", 0), -sum(kv[1].values()), kv[0]))


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------

def _severity_badge(severity: str) -> str:
    return (f'<span class="badge" style="background:{SEVERITY_COLOURS.get(severity, "#64748b")}">'
            f"{e(severity)}</span>")


def _cards(report: ScanReport) -> str:
    scan, counts = report.scan, report.scan["counts"]
    by_status = counts["by_status"]
    evaluated = by_status["PASS"] + by_status["FAIL"]
    rate = f"{100 * by_status['PASS'] / evaluated:.0f}%" if evaluated else "–"
    cards = [
        (rate, "pass rate", None),
        (by_status["FAIL"], "failed", STATUS_COLOURS["FAIL"]),
        (counts["failed_by_severity"]["critical"] + counts["failed_by_severity"]["high"],
         "critical + high failed", SEVERITY_COLOURS["critical"]),
        (by_status["PASS"], "passed", STATUS_COLOURS["PASS"]),
        (by_status["ERROR"], "not evaluated (error)", STATUS_COLOURS["ERROR"]),
        (scan["checks_run"], "checks run", None),
        (len(scan["regions"]), "regions", None),
        (scan["api_calls"], "AWS API calls", None),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="n"{_colour(c)}>{e(n)}</div><div class="l">{e(label)}</div></div>'
        for n, label, c in cards) + "</div>"


def _colour(colour: str | None) -> str:
    return f' style="color:{colour}"' if colour else ""


def _charts(report: ScanReport) -> str:
    failed = report.scan["counts"]["failed_by_severity"]
    sev = donut([(s, failed[s], SEVERITY_COLOURS[s]) for s in SEVERITIES], str(sum(failed.values())),
                "Failed findings by severity")
    charts = [("Failed findings by severity", sev)]
    for title, key in (("Findings by category", "category"), ("Findings by service", "service"),
                       ("Findings by region", "region")):
        charts.append((title, stacked_bars(_by(report.findings, key), title)))
    return '<div class="charts">' + "".join(
        f'<div class="chart"><h3>{e(t)}</h3>{body}</div>' for t, body in charts) + "</div>"


def _compliance(report: ScanReport) -> str:
    controls: dict[str, dict[str, set[str]]] = defaultdict(lambda: {s: set() for s in STATUSES})
    for f in report.findings:
        for fw, ids in f["compliance"].items():
            for ctl in ids:
                controls[fw][f["status"]].add(ctl)
    if not controls:
        return ""
    rows = []
    for fw in sorted(controls):
        by = controls[fw]
        touched = by["PASS"] | by["FAIL"] | by["ERROR"]
        failing = by["FAIL"]
        unknown = by["ERROR"] - failing
        clean = touched - failing - unknown
        share = 100 * len(clean) / len(touched) if touched else 0
        rows.append(
            f"<tr><td>{e(FRAMEWORK_NAMES.get(fw, fw))}<div class=\"muted mono\">{e(fw)}</div></td>"
            f'<td class="num">{len(touched)}</td><td class="num">{len(clean)}</td>'
            f'<td class="num">{len(failing)}</td><td class="num">{len(unknown)}</td>'
            f'<td><div class="bar"><span style="width:{share:.1f}%;background:{STATUS_COLOURS["PASS"]}"></span>'
            f'</div></td><td class="mono">{e(", ".join(sorted(failing)[:40]))}'
            f'{" …" if len(failing) > 40 else ""}</td></tr>')
    return ("<h2>Compliance</h2><p class=\"muted\">Controls covered by the checks that ran: a control passes "
            "when every finding of its checks passed.</p><table><thead><tr><th>Framework</th>"
            '<th class="num">Controls checked</th><th class="num">Passing</th><th class="num">Failing</th>'
            '<th class="num">Not evaluated</th><th>Passing share</th><th>Failing controls</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _check_overview(report: ScanReport) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    first: dict[str, dict[str, Any]] = {}
    for f in report.findings:
        counts[f["check_id"]][f["status"]] += 1
        first.setdefault(f["check_id"], f)
    order = sorted(counts, key=lambda c: (-counts[c]["FAIL"], -SEVERITY_RANK.get(first[c]["severity"], 0), c))
    rows = "".join(
        f'<tr><td>{_severity_badge(first[c]["severity"])}</td><td>{e(first[c]["title"])}'
        f'<div class="muted mono">{e(c)}</div></td><td>{e(first[c]["service"])}</td>'
        f'<td class="num">{counts[c]["PASS"]}</td><td class="num st-FAIL">{counts[c]["FAIL"] or ""}</td>'
        f'<td class="num st-ERROR">{counts[c]["ERROR"] or ""}</td></tr>' for c in order)
    return ("<h2>Checks</h2><table><thead><tr><th>Severity</th><th>Check</th><th>Service</th>"
            '<th class="num">Passed</th><th class="num">Failed</th><th class="num">Errors</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _options(values: Iterable[str], everything: str, selected: str | None = None) -> str:
    return f'<option value="">{e(everything)}</option>' + "".join(
        f'<option value="{e(v)}"{" selected" if v == selected else ""}>{e(v)}</option>' for v in values)


def _remediation(meta: dict[str, Any]) -> str:
    fix = meta.get("remediation") or {}
    if not fix and not meta:
        return ""
    parts = []
    if meta.get("risk"):
        parts.append(f"<p><b>Risk.</b> {e(meta['risk'])}</p>")
    if fix.get("text"):
        parts.append(f"<p><b>Fix.</b> {e(fix['text'])}</p>")
    if fix.get("cli"):
        parts.append(f"<p><b>AWS CLI</b></p><pre>{e(fix['cli'])}</pre>")
    if fix.get("cloudformation"):
        parts.append(f"<p><b>CloudFormation</b></p><pre>{e(fix['cloudformation'])}</pre>")
    links = [(u, _safe_url(u)) for u in meta.get("references") or []]
    if links:
        parts.append("<p><b>References</b></p><ul>" + "".join(
            f'<li><a href="{e(href)}" rel="noopener noreferrer" target="_blank">{e(u)}</a></li>' if href
            else f"<li>{e(u)}</li>" for u, href in links) + "</ul>")
    return f'<details class="fix"><summary>How to fix</summary>{"".join(parts)}</details>' if parts else ""


def _findings(report: ScanReport) -> str:
    open_rows = [f for f in report.findings if f["status"] != "PASS"]
    if not open_rows:
        return "<h2>Failed findings</h2><p>Nothing failed and nothing was left unevaluated.</p>"
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in open_rows:
        groups[f["check_id"]].append(f)
    order = sorted(groups, key=lambda c: (-SEVERITY_RANK.get(groups[c][0]["severity"], 0),
                                          -sum(f["status"] == "FAIL" for f in groups[c]), c))
    present_sev = [s for s in SEVERITIES if any(groups[c][0]["severity"] == s for c in groups)]
    filters = (
        '<div class="filters" id="filters" hidden>'
        '<input id="f-q" type="search" placeholder="Search resource, message, check…" aria-label="Search">'
        f'<select id="f-status" aria-label="Status">{_options(["FAIL", "ERROR"], "FAIL and ERROR")}</select>'
        f'<select id="f-severity" aria-label="Severity">{_options(present_sev, "every severity")}</select>'
        f'<select id="f-service" aria-label="Service">'
        f'{_options(sorted({f["service"] for f in open_rows}), "every service")}</select>'
        f'<select id="f-region" aria-label="Region">'
        f'{_options(sorted({f["region"] for f in open_rows}), "every region")}</select>'
        '<span class="muted"><b id="f-count"></b> findings shown</span></div>'
    )
    sections = []
    for check_id in order:
        rows = groups[check_id]
        head = rows[0]
        meta = report.checks.get(check_id, {})
        n_fail = sum(f["status"] == "FAIL" for f in rows)
        n_err = len(rows) - n_fail
        body = "".join(
            f'<tr data-status="{e(f["status"])}" data-region="{e(f["region"])}" '
            f'data-search="{e(" ".join(str(f[k] or "") for k in ("resource_id", "resource_arn", "message")).lower())}">'
            f'<td class="st-{e(f["status"])}">{e(f["status"])}</td><td>{e(f["region"])}</td>'
            f'<td><div class="mono">{e(f["resource_id"])}</div>'
            f'<div class="muted mono">{e(f["resource_arn"] or "")}</div></td><td>{e(f["message"])}</td></tr>'
            for f in sorted(rows, key=lambda f: (f["status"] != "FAIL", f["region"], f["resource_id"])))
        sections.append(
            f'<section class="check" id="check-{e(check_id)}" data-severity="{e(head["severity"])}" '
            f'data-service="{e(head["service"])}" data-search="{e((check_id + " " + head["title"]).lower())}">'
            f'<h3>{_severity_badge(head["severity"])} {e(head["title"])}</h3>'
            f'<div class="meta"><span class="mono">{e(check_id)}</span> · {e(head["service"])} · '
            f'{e(head["category"])} · {n_fail} failed, {n_err} not evaluated · '
            f'<span class="shown">{len(rows)}</span> shown</div>'
            f'{_remediation(meta)}'
            f'<table><thead><tr><th>Status</th><th>Region</th><th>Resource</th><th>Message</th></tr></thead>'
            f"<tbody>{body}</tbody></table></section>")
    return "<h2>Failed findings</h2>" + filters + "".join(sections)


def _errors(report: ScanReport) -> str:
    errors = report.scan["errors"]
    if not errors:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{e(x["action"])}</td><td>{e(x["region"])}</td>'
        f'<td class="mono">{e(x.get("resource_id") or "")}</td><td class="mono">{e(x["code"])}</td>'
        f"<td>{e(x['message'])}</td></tr>" for x in errors)
    return (f"<h2>Collection errors ({len(errors)})</h2><p class=\"muted\">AWS calls that failed; the checks "
            "that needed their data report ERROR instead of guessing.</p><table><thead><tr><th>Action</th>"
            "<th>Region</th><th>Resource</th><th>Code</th><th>Message</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def render_html(report: ScanReport, *, title: str | None = None) -> str:
    """The whole report as one HTML document (UTF-8)."""
    scan = report.scan
    heading = title or f"CloudWizard security report — AWS account {scan['account_id']}"
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; script-src '{_script_hash(SCRIPT)}'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    regions = ", ".join(scan["regions"]) or "none"
    subtitle = (f"Partition {scan['partition']} · scan {scan['status']} · started {scan['started_at']} · "
                f"{scan['duration_seconds']} s · regions: {regions}")
    tool = scan.get("tool") or {}
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{e(heading)}</title><style>{CSS}</style></head><body>'
        f"<header><h1>{e(heading)}</h1><p>{e(subtitle)}</p></header><main>"
        f"{_cards(report)}<h2>Overview</h2>{_charts(report)}{_findings(report)}{_compliance(report)}"
        f"{_check_overview(report)}{_errors(report)}</main>"
        f"<footer>Generated by {e(tool.get('name', 'cloudwizard'))} {e(tool.get('version', ''))} at "
        f"{e(scan['finished_at'])}. Read-only scan; this file makes no network requests.</footer>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


# --------------------------------------------------------------------------------------------------
# Exports: a findings table written row by row, after charts drawn from counts computed beforehand
# --------------------------------------------------------------------------------------------------

EXPORT_CSS = """
.note{background:#fffbeb;border:1px solid #fcd34d;border-radius:8px;padding:10px 14px;margin:0 0 12px}
table.findings{table-layout:fixed}
table.findings td{font-size:13px;overflow-wrap:anywhere}
table.findings td.nw{white-space:nowrap}
table.findings td .mono{word-break:normal;overflow-wrap:anywhere}
.pill{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 6px;font-size:11px;
color:var(--muted);margin-left:4px}
.filters-desc{font-size:13px;color:#cbd5e1;margin-top:4px}
"""

EXPORT_SCRIPT = """(function(){
var bar=document.getElementById('t-filters');if(!bar)return;bar.hidden=false;
var q=document.getElementById('t-q'),st=document.getElementById('t-status'),sv=document.getElementById('t-severity');
var rows=Array.prototype.slice.call(document.querySelectorAll('table.findings tbody tr'));
var text=rows.map(function(r){return r.textContent.toLowerCase();});
function apply(){var t=q.value.trim().toLowerCase(),s=st.value,v=sv.value,n=0;
rows.forEach(function(r,i){var ok=(!s||r.dataset.status===s)&&(!v||r.dataset.severity===v)&&(!t||text[i].indexOf(t)>=0);
r.hidden=!ok;if(ok)n++;});document.getElementById('t-count').textContent=String(n);}
[q,st,sv].forEach(function(x){x.addEventListener('input',apply);});apply();})();"""


def content_security_policy(script: str = EXPORT_SCRIPT) -> str:
    """No network, no script but `script` (by hash): for the page's meta tag and the HTTP header alike."""
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src '{_script_hash(script)}'; "
            "img-src data:; base-uri 'none'; form-action 'none'")


def trend_chart(points: list[tuple[str, str, dict[str, int], dict[str, int]]], caption: str) -> str:
    """Columns per scan, oldest left: (when, account, counts by status, deltas), PASS/ERROR/FAIL stacked."""
    if not points:
        return '<p class="muted">No finished scans yet.</p>'
    width, pad, top, plot_h = 520, 16, 18, 150
    slot = (width - 2 * pad) / max(len(points), 6)
    col_w = min(34.0, slot * 0.6)
    first = (width - slot * len(points)) / 2   # a few scans sit in the middle, not against the left edge
    height = top + plot_h + 44
    biggest = max(sum(c.values()) for _, _, c, _ in points) or 1
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{e(caption)}" '
           f'style="max-width:{width * 1.3:.0f}px">',
           f'<line x1="{pad}" y1="{top + plot_h}" x2="{width - pad}" y2="{top + plot_h}" stroke="#cbd5e1"/>']
    for i, (when, account, counts, deltas) in enumerate(points):
        centre = first + slot * (i + 0.5)
        x = centre - col_w / 2
        y = float(top + plot_h)
        tip = (f"{when} · {account}: {counts.get('PASS', 0)} passed, {counts.get('FAIL', 0)} failed, "
               f"{counts.get('ERROR', 0)} errors; {deltas.get('new', 0)} new, {deltas.get('resolved', 0)} resolved")
        for status in ("PASS", "ERROR", "FAIL"):
            n = counts.get(status, 0)
            if not n:
                continue
            h = plot_h * n / biggest
            y -= h
            out.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{col_w:.2f}" height="{max(h, 1):.2f}" '
                       f'fill="{STATUS_COLOURS[status]}"><title>{e(tip)}</title></rect>')
        out.append(f'<text x="{centre:.2f}" y="{y - 4:.2f}" text-anchor="middle" font-size="10" '
                   f'fill="{STATUS_COLOURS["FAIL"]}">{counts.get("FAIL", 0)}<title>{e(tip)}</title></text>')
        day, _, clock = when.partition(" ")
        small = slot < 60   # many scans: month-day only
        out.append(f'<text x="{centre:.2f}" y="{top + plot_h + 13}" text-anchor="middle" font-size="10" '
                   f'fill="#334155">{e(day[5:] if small else day)}<title>{e(tip)}</title></text>'
                   f'<text x="{centre:.2f}" y="{top + plot_h + 25}" text-anchor="middle" font-size="9" '
                   f'fill="#64748b">{e(clock)}</text>'
                   f'<text x="{centre:.2f}" y="{top + plot_h + 38}" text-anchor="middle" font-size="9" '
                   f'fill="#64748b">+{deltas.get("new", 0)}/−{deltas.get("resolved", 0)}</text>')
    out.append("</svg>")
    legend = "".join(f'<span><i class="sw" style="background:{STATUS_COLOURS[s]}"></i>{s}</span>' for s in STATUSES)
    return "".join(out) + (f'<div class="legend">{legend}<span>above: failed · below: when, and new/resolved '
                           "by the scan</span></div>")


def severity_donut(failed_by_severity: dict[str, int]) -> str:
    return donut([(s, failed_by_severity.get(s, 0), SEVERITY_COLOURS[s]) for s in SEVERITIES],
                 str(sum(failed_by_severity.values())), "Failed findings by severity")


def check_table(checks: list[tuple[str, dict[str, Any], dict[str, int]]]) -> str:
    """One row per check: (check id, metadata with at least title/severity/service, counts by status), with
    how to fix the failing ones."""
    if not checks:
        return ""
    rows = "".join(
        f'<tr><td>{_severity_badge(meta.get("severity") or "")}</td><td>{e(meta.get("title") or cid)}'
        f'<div class="muted mono">{e(cid)}</div>{_remediation(meta) if counts.get("FAIL") else ""}</td>'
        f'<td>{e(meta.get("service") or "")}</td><td class="num">{counts.get("PASS", 0)}</td>'
        f'<td class="num st-FAIL">{counts.get("FAIL", 0) or ""}</td>'
        f'<td class="num st-ERROR">{counts.get("ERROR", 0) or ""}</td></tr>' for cid, meta, counts in checks)
    return ("<h2>Checks</h2><p class=\"muted\">Most failures first; open “How to fix” for the remediation."
            "</p><table><thead><tr><th>Severity</th><th>Check</th><th>Service</th><th class=\"num\">Passed</th>"
            '<th class="num">Failed</th><th class="num">Errors</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def export_page_start(*, heading: str, subtitle: str, filters: str, cards: list[tuple[Any, str, str | None]],
                      charts: list[tuple[str, str]], checks: str, total: int, shown: int,
                      delta_label: str, status: str | None = None) -> str:
    """Everything before the findings table's rows: head, cards, charts, checks, the table's head. `status`
    preselects the table's status filter (it applies once the page's script runs; every row is in the file)."""
    csp = content_security_policy()
    card_html = '<div class="cards">' + "".join(
        f'<div class="card"><div class="n"{_colour(c)}>{e(n)}</div><div class="l">{e(label)}</div></div>'
        for n, label, c in cards) + "</div>"
    chart_html = '<div class="charts">' + "".join(
        f'<div class="chart"><h3>{e(t)}</h3>{body}</div>' for t, body in charts) + "</div>"
    note = ""
    if shown < total:
        note = (f'<p class="note"><b>This table lists the first {shown:,} of {total:,} findings</b>, in the '
                "export's order. The counts and charts above cover all of them; export CSV or JSON for the full "
                "list.</p>")
    table_filters = (
        '<div class="filters" id="t-filters" hidden>'
        '<input id="t-q" type="search" placeholder="Search resource, message, check, account…" aria-label="Search">'
        f'<select id="t-status" aria-label="Status">{_options(STATUSES, "every status", status)}</select>'
        f'<select id="t-severity" aria-label="Severity">{_options(SEVERITIES, "every severity")}</select>'
        '<span class="muted"><b id="t-count"></b> findings shown</span></div>')
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{e(heading)}</title>'
        f"<style>{CSS}{EXPORT_CSS}</style></head><body>"
        f"<header><h1>{e(heading)}</h1><p>{e(subtitle)}</p>"
        f'{f"<p class=filters-desc>{e(filters)}</p>" if filters else ""}</header><main>'
        f"{card_html}<h2>Overview</h2>{chart_html}{checks}"
        f"<h2>Findings ({total:,})</h2>{note}{table_filters}"
        '<table class="findings"><colgroup><col style="width:100px"><col style="width:66px"><col style="width:16%">'
        '<col style="width:9%"><col style="width:96px"><col style="width:19%"><col><col style="width:72px">'
        '<col style="width:140px"></colgroup><thead><tr><th>Severity</th><th>Status</th><th>Check</th>'
        f"<th>Account</th><th>Region</th><th>Resource</th><th>Message</th><th>{e(delta_label)}</th>"
        "<th>Last seen (UTC)</th></tr></thead><tbody>"
    )


def export_row(row: dict[str, Any]) -> str:
    """One findings-table row: severity, status (with resolved/muted marks), check, account, region, resource,
    message, delta, last seen; every value escaped."""
    marks = "".join(f'<span class="pill">{label}</span>' for label, on in
                    (("resolved", row.get("resolved")), ("muted", row.get("muted"))) if on)
    return (
        f'<tr data-status="{e(row["status"])}" data-severity="{e(row["severity"])}">'
        f'<td class="nw">{_severity_badge(row["severity"])}</td>'
        f'<td class="st-{e(row["status"])}">{e(row["status"])}{marks}</td>'
        f'<td>{e(row["title"])}<div class="muted mono">{e(row["check_id"])}</div></td>'
        f'<td>{e(row["account"])}</td><td>{e(row["region"])}</td>'
        f'<td><div class="mono">{e(row["resource_id"])}</div>'
        f'<div class="muted mono">{e(row.get("resource_arn") or "")}</div></td>'
        f'<td>{e(row["message"])}</td><td>{e(row.get("delta") or "")}</td>'
        f'<td class="mono nw">{e(row.get("last_seen") or "")}</td></tr>'
    )


def export_page_end(*, shown: int, total: int, footer: str) -> str:
    empty = '<tr><td colspan="9" class="muted">No findings match.</td></tr>' if total == 0 else ""
    note = "" if shown >= total else (f'<p class="note">{total - shown:,} more findings are not listed here; '
                                      "export CSV or JSON for the full list.</p>")
    return (f"{empty}</tbody></table>{note}</main><footer>{e(footer)}</footer>"
            f"<script>{EXPORT_SCRIPT}</script></body></html>\n")
