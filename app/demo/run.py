"""The demo orchestrator: a simulated AWS account, the real API in its own process, the real flow over HTTP.

    fake AWS (moto + app.fakes, own process) <- seeded with boto3 (app.demo.seed)
    API (`cloudwizard serve`, own process, embedded SQLite, in-process jobs) <- driven with httpx:
        sign up -> workspace -> connect the account (External ID) -> deploy the role's CloudFormation
        stack in the simulated account -> verify -> scan (live progress) -> findings -> the scan's exports
        (HTML, JSON, CSV, OCSF, ASFF) -> a mute rule -> ingested GuardDuty/Security Hub findings and the
        organization view

Nothing but the AWS account is simulated: the API, the database, the job runner, the STS AssumeRole with
the External ID, the collectors, the checks and the export writers are the ones a real deployment runs.
Each run signs up a fresh user and workspace, so running the demo again (against the same data folder)
just adds one more.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.demo import seed
from app.reports import SEVERITIES
from app.reports.formats import SEVERITY_STYLE

READY_TIMEOUT_SECONDS = 60
SCAN_TIMEOUT_SECONDS = 600
POLL_SECONDS = 0.2
ACTIVE_SCAN_STATUSES = {"queued", "running"}
STATUSES = ("FAIL", "PASS", "ERROR")   # the order the terminal shows them in
SERVE_PORT = 8000


class DemoError(RuntimeError):
    """A demo step failed; the message says which step and why."""


@dataclass
class DemoOptions:
    data_dir: Path                      # the embedded database and signing key live here
    output_dir: Path | None = None      # reports; default <data_dir>/reports
    serve: bool = False                 # keep the API (and the simulated account) running afterwards
    host: str = "127.0.0.1"
    port: int | None = None             # None: a free port (SERVE_PORT with serve)
    aws_endpoint: str | None = None     # use this running fake instead of starting one


@dataclass
class DemoResult:
    api_url: str
    email: str
    password: str
    workspace: dict[str, Any]
    account: dict[str, Any]
    scan: dict[str, Any]
    findings: list[dict[str, Any]]      # as GET /v1/workspaces/{id}/findings answered them, before the mute
    summary: dict[str, Any]             # those findings counted (what the terminal shows)
    seeded: seed.SeedResult
    exports: dict[str, Path]            # format (html, json, csv, ocsf, asff) -> the scan export downloaded
    mute_rule: dict[str, Any]           # as POST .../mute-rules answered it (matched_findings: how many it muted)
    summary_before_mute: dict[str, Any]  # GET .../findings/summary before and after the mute rule
    summary_after_mute: dict[str, Any]
    organization: dict[str, Any]        # the account's row of GET .../findings/summary/accounts, after the mute
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Processes: the simulated AWS account and the API
# --------------------------------------------------------------------------------------------------

def _parent_death_signal() -> Any:
    """On Linux, a function for the child (between fork and exec) that asks for SIGTERM when the demo dies,
    so that a demo or test run killed hard leaves no server behind on its port."""
    if sys.platform != "linux":
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only makes the call
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_parent_death_signal())


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def simulated_aws(log_path: Path) -> Iterator[str]:
    """Start the AWS fake (moto behind app.fakes.aws) in its own process; yield its endpoint."""
    try:
        import moto  # noqa: F401
    except ImportError as exc:
        raise DemoError("the demo's simulated AWS account needs moto: pip install 'cloudwizard[demo]' "
                        "(or run `make demo`, which installs it)") from exc
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    process = _spawn([sys.executable, "-m", "app.fakes.server", "--host", "127.0.0.1", "--port", "0",
                      "--quiet", "--exit-with-parent"], env, log_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        endpoint = None
        while endpoint is None:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("cwfake ready "):
                    endpoint = line.split()[-1]
            if endpoint is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise DemoError(f"the simulated AWS account did not start:\n{_log_tail(log_path)}")
                time.sleep(0.05)
        yield endpoint
    finally:
        _stop(process)


def aws_environment(endpoint: str, scratch: Path) -> dict[str, str]:
    """AWS settings that make every SDK client talk to the fake with test keys, never to real AWS."""
    return {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": seed.HOME,
        "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true",
        # No profile or shared credentials of the person running the demo may be picked up.
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        # moto answers unimplemented calls with 5xx, which botocore would retry several times.
        "AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard",
    }


def database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'cloudwizard.db').resolve()}"


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(options: DemoOptions) -> int:
    """The API's port: the one asked for (or 8000 with --serve) if it is free, else a free one."""
    port = options.port or (SERVE_PORT if options.serve else free_port(options.host))
    if not _port_is_free(options.host, port):
        raise DemoError(f"port {port} on {options.host} is in use; pick another with --port")
    return port


@dataclass
class ApiProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with httpx.Client(base_url=self.base_url, timeout=2) as probe:
            while True:
                if self.process.poll() is not None:
                    raise DemoError(f"the API exited with code {self.process.returncode}:\n"
                                    f"{_log_tail(self.log_path)}")
                try:
                    if probe.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise DemoError(f"the API did not answer on {self.base_url} within {READY_TIMEOUT_SECONDS} s:"
                                    f"\n{_log_tail(self.log_path)}")
                time.sleep(0.1)


@contextmanager
def api_server(options: DemoOptions, aws_env: dict[str, str], log_path: Path) -> Iterator[ApiProcess]:
    """Start `cloudwizard serve` in its own process on the embedded default (the caller waits for it to be
    ready, so its start-up can overlap other work); stop it on exit."""
    from app.fakes.aws import DEFAULT_CALLER_ARN

    port = choose_port(options)
    base = f"http://{f'[{options.host}]' if ':' in options.host else options.host}:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("CW_DATABASE_URL", "CW_REDIS_URL")}
    env.update(aws_env)
    env.update({
        # The embedded default: SQLite file and signing key in the data folder, jobs inside the API process.
        "CW_DATA_DIR": str(options.data_dir.resolve()),
        "CW_PUBLIC_BASE_URL": base,
        # The principal the fake's scanner credentials act as; the customer role will trust exactly it.
        "CW_SCANNER_PRINCIPAL_ARN": DEFAULT_CALLER_ARN,
    })
    process = _spawn([sys.executable, "-m", "app.cli", "serve", "--host", options.host, "--port", str(port)],
                     env, log_path)
    try:
        yield ApiProcess(base, process, log_path)
    finally:
        _stop(process)


# --------------------------------------------------------------------------------------------------
# The API, over HTTP
# --------------------------------------------------------------------------------------------------

def _problem(response: httpx.Response) -> str:
    """What an error answer says (its problem+json detail or title), for a DemoError."""
    try:
        problem = response.json()
        return str(problem.get("detail") or problem.get("title") or response.text)
    except (ValueError, AttributeError):
        return response.text[:500]


class Api:
    """A thin HTTP client that turns any unexpected answer into a DemoError quoting the problem."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=120)
        self.headers: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        if response.status_code != expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {_problem(response)}")
        return response.json()

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.call("GET", path, 200, params={**params, "limit": 200,
                                                       **({"cursor": cursor} if cursor else {})})
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def deploy_role_stack(cloudformation: Any, iam: Any, setup: dict[str, Any]) -> str:
    """What the customer does with our set-up instructions: create the stack from the template, with the
    External ID and scanner principal the API gave; returns the role ARN output."""
    role_name = setup["role_name"]
    try:
        iam.get_role(RoleName=role_name)
        # A role of that name exists (an earlier demo against the same account): as the template's
        # RoleName parameter says, pick another name instead of touching it.
        role_name = f"{role_name}-{setup['stack_name'][-8:]}"
    except iam.exceptions.NoSuchEntityException:
        pass
    cloudformation.create_stack(
        StackName=setup["stack_name"], TemplateBody=setup["template_body"], Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "ExternalId", "ParameterValue": setup["external_id"]},
                    {"ParameterKey": "ScannerPrincipalArn", "ParameterValue": setup["scanner_principal_arn"]},
                    {"ParameterKey": "RoleName", "ParameterValue": role_name}])
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        stack = cloudformation.describe_stacks(StackName=setup["stack_name"])["Stacks"][0]
        if stack["StackStatus"] == "CREATE_COMPLETE":
            break
        if not stack["StackStatus"].endswith("IN_PROGRESS") or time.monotonic() > deadline:
            raise DemoError(f"the role's CloudFormation stack ended {stack['StackStatus']}: "
                            f"{stack.get('StackStatusReason', '')}")
        time.sleep(0.2)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    _complete_moto_stack(iam, role_name, setup["template_body"])
    return outputs["RoleArn"]


def _template_role(template_body: str) -> dict[str, Any]:
    """The role resource's properties from our template (CloudFormation tags kept as {"Fn::X": value})."""
    import yaml

    class TemplateLoader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    TemplateLoader.add_multi_constructor("!", intrinsic)
    resources = yaml.load(template_body, TemplateLoader)["Resources"]  # a SafeLoader: builds no objects
    return next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role")


def _complete_moto_stack(iam: Any, role_name: str, template_body: str) -> None:
    """Make the role what AWS builds from the template, where moto's CloudFormation falls short: it does not
    attach ManagedPolicyArns, and it stores inline policies as Python reprs instead of JSON (which breaks its
    own GetAccountAuthorizationDetails). The template's own policies are written again with the IAM API."""
    role = _template_role(template_body)
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]}
    for arn in role.get("ManagedPolicyArns", []):
        if isinstance(arn, dict):  # !Sub arn:${AWS::Partition}:iam::aws:policy/NAME
            arn = str(arn.get("Fn::Sub", "")).replace("${AWS::Partition}", "aws")
        if "${" in arn or not arn.startswith("arn:"):
            raise DemoError(f"cannot resolve the template's managed policy {arn!r}")
        if arn not in attached:
            iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    for policy in role.get("Policies", []):
        iam.put_role_policy(RoleName=role_name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))


def fetch_findings(api: Api, workspace_path: str, account_id: str) -> list[dict[str, Any]]:
    """The account's findings, every page (it was scanned once, so they are exactly this scan's results)."""
    return list(api.pages(f"{workspace_path}/findings", account_id=account_id))


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------

def summarize(findings: list[dict[str, Any]], top: int = 10) -> dict[str, Any]:
    """Counts by status, by failed severity, by category and service (per status), and the top failing checks."""
    by_status = Counter(f["status"] for f in findings)
    failed = [f for f in findings if f["status"] == "FAIL"]
    by_severity = Counter(f["severity"] for f in failed)

    def per_status(key: str) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for f in findings:
            out.setdefault(f[key], Counter())[f["status"]] += 1
        return {k: {s: v.get(s, 0) for s in STATUSES} for k, v in sorted(out.items())}

    checks: dict[str, dict[str, Any]] = {}
    for f in failed:
        entry = checks.setdefault(f["check_id"], {"check_id": f["check_id"], "title": f["title"],
                                                  "severity": f["severity"], "category": f["category"],
                                                  "failed": 0})
        entry["failed"] += 1
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    top_failing = sorted(checks.values(), key=lambda c: (rank.get(c["severity"], 99), -c["failed"], c["check_id"]))
    return {
        "total": len(findings),
        "by_status": {s: by_status.get(s, 0) for s in STATUSES},
        "failed_by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "by_category": per_status("category"),
        "by_service": per_status("service"),
        "top_failing_checks": top_failing[:top],
    }


# --------------------------------------------------------------------------------------------------
# Exports and the mute rule
# --------------------------------------------------------------------------------------------------

# The scan export's formats, in the order the demo downloads and lists them: the media type the API must answer
# with, the file extension it names the file with (the demo falls back on demo-<time>.<ext>), and a label.
EXPORT_FORMATS: dict[str, tuple[str, str, str]] = {
    "html": ("text/html", "html", "HTML report"),
    "json": ("application/json", "json", "JSON"),
    "csv": ("text/csv", "csv", "CSV"),
    "ocsf": ("application/json", "ocsf.json", "OCSF 1.5"),
    "asff": ("application/json", "asff.json", "ASFF"),
}
# A name the demo will write in the output folder: no path separators, no leading dot.
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")

# The risk the demo accepts, as a team would: the seeded website bucket (docs/DEMO.md) is public on purpose, so
# its public bucket policy is muted for a month, by check and resource pattern; its other findings stay open.
MUTE_DAYS = 30
DEMO_MUTE: dict[str, str] = {
    "check_id": "s3_bucket_policy_not_public",
    "resource_pattern": "arn:aws:s3:::acme-public-assets-*",
    "reason": "acme-public-assets holds the public website's images and scripts: public read (s3:GetObject) is "
              "its purpose and it stores nothing private. Revisit when the site moves behind CloudFront.",
    "owner": "web-team@example.com",
}
SOURCE_LABELS = {"guardduty": "GuardDuty", "securityhub": "Security Hub"}


def attachment_name(disposition: str | None, extension: str) -> str | None:
    """The file name a Content-Disposition header gives, if it is a plain name with the expected extension."""
    match = re.search(r'filename="([^"]*)"', disposition or "")
    name = match.group(1) if match else ""
    return name if _SAFE_FILENAME.fullmatch(name) and name.endswith(f".{extension}") else None


def download_export(api: Api, path: str, fmt: str, folder: Path, fallback_stem: str) -> Path:
    """Stream `GET path?format=fmt` into folder, under the name Content-Disposition gives (else
    <fallback_stem>.<ext>). The answer must be a 200 of the format's media type with a body."""
    media_type, extension, _ = EXPORT_FORMATS[fmt]
    what = f"GET {path}?format={fmt}"
    with api.http.stream("GET", path, params={"format": fmt}, headers=api.headers) as response:
        if response.status_code != 200:
            response.read()
            raise DemoError(f"{what} answered {response.status_code}: {_problem(response)}")
        answered = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if answered != media_type:
            raise DemoError(f"{what} answered content type {answered or '(none)'}, not {media_type}")
        name = attachment_name(response.headers.get("content-disposition"), extension)
        target = folder / (name or f"{fallback_stem}.{extension}")
        partial = target.with_name(f"{target.name}.part")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
            if partial.stat().st_size == 0:
                raise DemoError(f"{what} answered an empty body")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1024:.0f} kB" if size >= 1024 else f"{size} B"


# --------------------------------------------------------------------------------------------------
# Terminal output
# --------------------------------------------------------------------------------------------------

def _done(console: Console, text: str, seconds: float | None = None) -> None:
    took = f" [dim]({seconds:.1f} s)[/]" if seconds is not None else ""
    console.print(f"[green]✓[/] {text}{took}", highlight=False, soft_wrap=True)


def _status_table(title: str, key_label: str, rows: dict[str, dict[str, int]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column(key_label)
    for status, style in (("FAIL", "red"), ("PASS", "green"), ("ERROR", "yellow")):
        table.add_column(status, justify="right", style=style)
    for name, counts in rows.items():
        table.add_row(name, *(str(counts[s]) for s in STATUSES))
    return table


def render_summary(console: Console, scan: dict[str, Any], summary: dict[str, Any]) -> None:
    s = summary["by_status"]
    console.print()
    console.print(f"[bold]Findings:[/] {summary['total']} results — [red]{s['FAIL']} FAIL[/], "
                  f"[green]{s['PASS']} PASS[/], [yellow]{s['ERROR']} ERROR[/]", highlight=False)
    severities = "  ".join(f"[{SEVERITY_STYLE[k]}]{k} {v}[/]" for k, v in summary["failed_by_severity"].items())
    console.print(f"[bold]Failed by severity:[/] {severities}", highlight=False)
    console.print()
    console.print(_status_table("By category", "category", summary["by_category"]))
    console.print()
    console.print(_status_table("By service", "service", summary["by_service"]))
    console.print()
    top = Table(title="Top failing checks", title_justify="left", show_edge=False, pad_edge=False)
    for column, justify in (("severity", "left"), ("check", "left"), ("category", "left"), ("failed", "right")):
        top.add_column(column, justify=justify)
    for c in summary["top_failing_checks"]:
        top.add_row(f"[{SEVERITY_STYLE.get(c['severity'], '')}]{c['severity']}[/]",
                    f"{escape(c['check_id'])}\n[dim]{escape(c['title'])}[/]", c["category"], str(c["failed"]))
    console.print(top)
    if scan.get("collection_errors"):
        console.print(f"\n[yellow]{len(scan['collection_errors'])} AWS call(s) failed[/] (calls the simulated account "
                      "cannot answer); their checks report ERROR, first ones:")
        for e in scan["collection_errors"][:5]:
            console.print(f"  [dim]{escape(e['action'])} in {escape(e['region'])}: {escape(e['code'])}[/]",
                          highlight=False)


def render_ingested(console: Console, findings: list[dict[str, Any]]) -> None:
    """One line: the findings the scan ingested from GuardDuty and Security Hub, per source and status."""
    ingested: dict[str, Counter[str]] = {}
    for f in findings:
        if f["source"] != "cloudwizard":
            ingested.setdefault(f["source"], Counter())[f["status"]] += 1
    if not ingested:
        console.print("[bold]Ingested findings:[/] none from GuardDuty or Security Hub", highlight=False)
        return
    parts = [f"{sum(c.values())} from {SOURCE_LABELS.get(source, source)} ({c['FAIL']} failing)"
             for source, c in sorted(ingested.items())]
    console.print(f"[bold]Ingested findings:[/] {', '.join(parts)} — listed with the checks' results "
                  "(source guardduty / securityhub)", highlight=False, soft_wrap=True)


def render_organization(console: Console, row: dict[str, Any]) -> None:
    """One line: the account's row of the organization view (open, unmuted failures by severity, pass rate)."""
    severities = " ".join(f"[{SEVERITY_STYLE.get(k, '')}]{k} {v}[/]" for k, v in row["failed_by_severity"].items())
    rate = "n/a" if row["pass_rate"] is None else f"{row['pass_rate']:.1%}"
    console.print(f"[bold]Organization view:[/] {escape(row['name'])} ({row['aws_account_number']}) — "
                  f"{row['open']['failed']} open failures: {severities}; pass rate {rate}; {row['muted']} muted "
                  "(GET …/findings/summary/accounts)", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------------
# The demo
# --------------------------------------------------------------------------------------------------

def _boto3_clients(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    cache: dict[tuple[str, str], Any] = {}
    config = Config(retries={"mode": "standard", "total_max_attempts": 2})
    # One session: its loader parses each service model once, which makes every further client cheap.
    session = boto3.session.Session()

    def clients(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = session.client(
                service, region_name=region, endpoint_url=endpoint, aws_access_key_id="testing",
                aws_secret_access_key="testing", config=config)
        return cache[(service, region)]

    return clients


def _scan_with_progress(api: Api, console: Console, scan_path: str, scan: dict[str, Any]) -> dict[str, Any]:
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), TaskProgressColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    deadline = time.monotonic() + SCAN_TIMEOUT_SECONDS
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("Scanning", total=None, detail="queued")
        while True:
            p = scan.get("progress") or {}
            total = p.get("collectors_total") or None
            bar.update(task, total=total, completed=p.get("collectors_done", 0), detail=(
                f"{scan['status']} · {p.get('regions_done', 0)}/{p.get('regions_total', 0)} regions · "
                f"{p.get('services_done', 0)}/{p.get('services_total', 0)} services · {p.get('api_calls', 0)} calls"))
            if scan["status"] not in ACTIVE_SCAN_STATUSES:
                if total:
                    bar.update(task, completed=total)
                return scan
            if time.monotonic() > deadline:
                raise DemoError(f"the scan did not finish within {SCAN_TIMEOUT_SECONDS} s")
            time.sleep(POLL_SECONDS)
            scan = api.call("GET", scan_path, 200)


class _Steps:
    """Which step the demo is in (for error messages) and how long each took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.current = "starting"
        self.seconds: dict[str, float] = {}
        self.started = time.monotonic()
        self._key, self._since = "", self.started

    def begin(self, key: str, label: str) -> None:
        self._key, self.current, self._since = key, label, time.monotonic()

    def done(self, text: str | None = None) -> None:
        self.seconds[self._key] = round(time.monotonic() - self._since, 2)
        if text is not None:
            _done(self.console, text, self.seconds[self._key])


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run the whole demo; raises DemoError naming the step that failed. With options.serve, blocks until
    Ctrl-C (or SIGTERM) after the last step."""
    from alembic.util.exc import CommandError
    from botocore.exceptions import BotoCoreError, ClientError
    from sqlalchemy.exc import SQLAlchemyError

    console = console or Console()
    steps = _Steps(console)
    try:
        return _run(options, console, steps)
    except DemoError:
        raise
    except (BotoCoreError, ClientError, seed.SeedError, httpx.HTTPError, CommandError, SQLAlchemyError,
            OSError) as exc:
        raise DemoError(f"{steps.current} failed: {type(exc).__name__}: {exc}") from exc


def _run(options: DemoOptions, console: Console, steps: _Steps) -> DemoResult:
    # A busy port is refused before anything starts.
    options = replace(options, data_dir=options.data_dir.resolve(), port=choose_port(options))
    output_dir = (options.output_dir or options.data_dir / "reports").resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    logs = options.data_dir / "demo-logs" / stamp

    with ExitStack() as stack:
        steps.begin("aws", "starting the simulated AWS account")
        endpoint = options.aws_endpoint or stack.enter_context(simulated_aws(logs / "aws-fake.log"))
        steps.done(f"Simulated AWS account (moto behind CloudWizard's fake) at {endpoint}")

        steps.begin("migrate", "migrating the database")
        from app.migrate import upgrade

        options.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade("head", database_url(options.data_dir))
        steps.done(f"Database {options.data_dir / 'cloudwizard.db'} migrated")

        # The API starts in its own process while the account is seeded.
        steps.begin("api_start", "starting the API")
        scratch = logs / "aws-home"
        scratch.mkdir(parents=True, exist_ok=True)
        server = stack.enter_context(api_server(options, aws_environment(endpoint, scratch), logs / "api.log"))
        steps.done()

        steps.begin("seed", "seeding the simulated account")
        clients = _boto3_clients(endpoint)
        seeded = seed.seed_account(clients)
        steps.done(f"Seeded account {seeded.account_id} in {', '.join(seed.REGIONS)} with "
                   f"{len(seed.EXPECTATIONS)} documented good and bad configurations (docs/DEMO.md)")

        steps.begin("api", "starting the API")
        server.wait_until_ready()
        api = Api(server.base_url)
        stack.callback(api.close)
        steps.done(f"API on {server.base_url} (embedded SQLite, in-process jobs; log: {server.log_path})")

        steps.begin("signup", "signing up")
        email = f"demo-{secrets.token_hex(4)}@example.com"
        password = secrets.token_urlsafe(18)
        tokens = api.call("POST", "/v1/auth/signup", 201,
                          json={"email": email, "password": password, "display_name": "Demo user"})
        api.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        workspace = api.call("POST", "/v1/workspaces", 201, json={"name": "Acme Corp (demo)"})
        ws = f"/v1/workspaces/{workspace['id']}"
        steps.done(f"Signed up {email} and created workspace “{workspace['name']}”")

        steps.begin("connect", "connecting the account")
        account = api.call("POST", f"{ws}/aws-accounts", 201,
                           json={"name": "acme-production", "regions": list(seed.REGIONS)})
        setup = account["setup"]
        role_arn = deploy_role_stack(clients("cloudformation", seed.HOME), clients("iam", seed.HOME), setup)
        steps.done(f"Connection created with External ID {setup['external_id']}; deployed stack "
                   f"{setup['stack_name']} from the API's template → {role_arn}")

        steps.begin("verify", "verifying the role")
        account = api.call("POST", f"{ws}/aws-accounts/{account['id']}/verify", 200, json={"role_arn": role_arn})
        attempts = [e["details"] for e in api.pages(f"{ws}/audit-events", action="aws.assume_role")]
        refused = sum(1 for d in attempts if d.get("outcome") == "denied")
        accepted = sum(1 for d in attempts if d.get("outcome") == "success")
        failed_probes = ", ".join(f"{m['action']} ({m['reason']})" for m in account.get("missing_permissions") or [])
        steps.done(f"Verified: AssumeRole with the External ID succeeded ({accepted}), without it or with a wrong "
                   f"one refused ({refused}) → account {account['aws_account_id']} is [bold]{account['status']}[/]"
                   + (f"; probes the simulated account cannot answer: {failed_probes}" if failed_probes else ""))

        steps.begin("scan", "scanning")
        scan_base = f"{ws}/aws-accounts/{account['id']}/scans"
        scan = api.call("POST", scan_base, 202)
        scan = _scan_with_progress(api, console, f"{scan_base}/{scan['id']}", scan)
        if scan["status"] not in ("succeeded", "partial"):
            raise DemoError(f"the scan ended {scan['status']}: {scan.get('error')} (API log: {server.log_path})")
        progress = scan.get("progress") or {}
        steps.done(f"Scan {scan['status']}: {progress.get('collectors_total', 0)} collector runs in "
                   f"{len(scan['regions'])} regions, {progress.get('api_calls', 0)} AWS API calls")

        steps.begin("findings", "reading the findings")
        findings = fetch_findings(api, ws, account["id"])
        summary = summarize(findings)
        render_summary(console, scan, summary)
        steps.done()

        console.print()
        steps.begin("exports", "downloading the scan's exports")
        export_path = f"{scan_base}/{scan['id']}/export"
        exports = {fmt: download_export(api, export_path, fmt, output_dir, f"demo-{stamp}") for fmt in EXPORT_FORMATS}
        steps.done(f"Downloaded the scan's export (GET …/scans/{{id}}/export) in {len(exports)} formats: "
                   + ", ".join(f"{EXPORT_FORMATS[fmt][2]} {_size(path)}" for fmt, path in exports.items()))

        steps.begin("mute", "muting an accepted risk")
        before = api.call("GET", f"{ws}/findings/summary", 200)
        expires = datetime.now(UTC) + timedelta(days=MUTE_DAYS)
        rule = api.call("POST", f"{ws}/mute-rules", 201, json={**DEMO_MUTE, "expires_at": expires.isoformat()})
        after = api.call("GET", f"{ws}/findings/summary", 200)
        muted = rule["matched_findings"]
        steps.done(f"Muted an accepted risk (POST …/mute-rules): {muted} finding{'' if muted == 1 else 's'} muted")
        for label, text in (
                ("what", f"{rule['check_id']} on resources matching {rule['resource_pattern']}"),
                ("why", rule["reason"]),
                ("owner", f"{rule['owner']}, expires {expires:%Y-%m-%d} ({MUTE_DAYS} days)"),
                ("effect", f"open failures {before['open']['failed']} → {after['open']['failed']}, "
                           f"{after['muted']} muted (GET …/findings/summary)")):
            console.print(f"  [dim]{label:<6}[/] {escape(text)}", highlight=False, soft_wrap=True)

        steps.begin("organization", "reading the organization view")
        postures = api.call("GET", f"{ws}/findings/summary/accounts", 200)["items"]
        organization = next((p for p in postures if p["aws_account_id"] == account["id"]), None)
        if organization is None:
            raise DemoError(f"GET {ws}/findings/summary/accounts does not list account {account['id']}")
        steps.done()
        console.print()
        render_ingested(console, findings)
        render_organization(console, organization)
        steps.seconds["total"] = round(time.monotonic() - steps.started, 2)

        console.print()
        console.print("[bold]The scan's exports:[/]", highlight=False)
        width = max(len(label) for _, _, label in EXPORT_FORMATS.values())
        for fmt, path in exports.items():
            console.print(f"  {EXPORT_FORMATS[fmt][2]:<{width}}  {path}", highlight=False, soft_wrap=True)
        console.print(f"[dim]Demo finished in {steps.seconds['total']:.1f} s.[/]")
        result = DemoResult(api_url=server.base_url, email=email, password=password, workspace=workspace,
                            account=account, scan=scan, findings=findings, summary=summary, seeded=seeded,
                            exports=exports, mute_rule=rule, summary_before_mute=before, summary_after_mute=after,
                            organization=organization, seconds=steps.seconds)
        if options.serve:
            _serve_until_interrupted(console, result)
        return result


def _serve_until_interrupted(console: Console, result: DemoResult) -> None:
    console.print()
    console.print(f"[bold]The API keeps running:[/] {result.api_url}/docs — sign in with "
                  f"[bold]{result.email}[/] / [bold]{result.password}[/] (POST /v1/auth/login, then "
                  f"“Authorize” with the access token). Workspace id {result.workspace['id']}. "
                  "Press Ctrl-C to stop.", highlight=False, soft_wrap=True)

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    # A service manager's SIGTERM stops the demo as cleanly as Ctrl-C (the servers are stopped on the way out).
    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("Stopping.")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
