"""Pytest fixtures for the AWS fake: one server per test session, fresh AWS state and safe AWS env per test.

Test-only credentials and the fake's endpoint are put in the environment so that no client can reach real AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
CUSTOMER_ACCOUNT = "123456789012"   # moto's default account: where plain test keys create resources
OTHER_ACCOUNT = "444455556666"
SCANNER_ARN = "arn:aws:iam::111111111111:role/CloudWizardScanner"   # the fake's default caller
TEST_KEY = "testing"
READY_TIMEOUT_SECONDS = 60


def trust_policy(
    principal: str | dict[str, Any] = SCANNER_ARN,
    external_id: str | None = None,
    *,
    condition: dict[str, Any] | None = None,
    action: str | list[str] = "sts:AssumeRole",
) -> dict[str, Any]:
    """A role trust policy: principal ("*", an ARN, or a full Principal object), optional External ID."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal if isinstance(principal, dict) or principal == "*" else {"AWS": principal},
        "Action": action,
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


class AwsFake:
    """Handle on the running fake: endpoint, control API, and boto3 clients for seeding moto."""

    def __init__(self, endpoint_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.endpoint_url = endpoint_url
        self.process = process
        self.log_path = log_path
        self._http = httpx.Client(base_url=endpoint_url, timeout=30)
        self._clients: dict[tuple[Any, ...], Any] = {}

    def reset(self) -> None:
        """Forget every AWS resource (moto) and every fault, latency and statistic (the fake)."""
        self._http.post("/moto-api/reset").raise_for_status()
        self._http.post("/_cwfake/reset").raise_for_status()

    def configure(self, **config: Any) -> dict[str, Any]:
        r = self._http.post("/_cwfake/config", content=json.dumps(config))
        if r.status_code != 200:
            raise ValueError(r.json().get("error", r.text))
        return r.json()

    def stats(self) -> dict[str, Any]:
        r = self._http.get("/_cwfake/stats")
        r.raise_for_status()
        return r.json()

    def calls(self, key: str) -> int:
        """How many requests for "service:Operation" reached the fake."""
        return self.stats()["calls"].get(key, 0)

    def client(
        self,
        service: str,
        region: str = "us-east-1",
        *,
        account_id: str | None = None,
        credentials: dict[str, str] | None = None,
        parameter_validation: bool = True,
    ) -> Any:
        """A plain boto3 client for arranging state; `account_id` makes moto act in that account.

        parameter_validation=False lets a request that botocore would refuse reach the fake.
        """
        creds = credentials or {"AccessKeyId": TEST_KEY, "SecretAccessKey": TEST_KEY}
        # Building a boto3 client costs ~0.1 s; moto's state lives in the server, so clients can be reused.
        cache_key = (service, region, account_id, creds["AccessKeyId"], creds.get("SessionToken"),
                     parameter_validation)
        if cache_key in self._clients:
            return self._clients[cache_key]
        client = boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds.get("SessionToken"),
            config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                          parameter_validation=parameter_validation),
        )
        if account_id is not None:
            def _in_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account_id

            client.meta.events.register("before-sign.*.*", _in_account)
        self._clients[cache_key] = client
        return client

    def create_role(
        self,
        name: str,
        trust: dict[str, Any],
        *,
        account_id: str | None = None,
        path: str = "/",
        max_session_duration: int = 3600,
    ) -> str:
        """Create a role in moto (default: the customer account) and return its ARN."""
        iam = self.client("iam", account_id=account_id)
        role = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust),
                               MaxSessionDuration=max_session_duration)
        return role["Role"]["Arn"]

    def close(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _start_fake() -> AwsFake:
    log_path = Path(tempfile.mkdtemp(prefix="cw-aws-fake-")) / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.fakes.server", "--host", "127.0.0.1", "--port", "0", "--quiet",
             "--exit-with-parent"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("cwfake ready "):
                fake = AwsFake(line.split()[-1], process, log_path)
                fake._http.get("/_cwfake/health").raise_for_status()
                return fake
        if process.poll() is not None:
            raise RuntimeError(f"AWS fake exited with {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"AWS fake not ready after {READY_TIMEOUT_SECONDS}s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def aws_server() -> Iterator[AwsFake]:
    """The AWS fake (moto behind app.fakes.aws) in its own process for the whole test session."""
    fake = _start_fake()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def aws_fake(aws_server: AwsFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsFake]:
    """A clean fake for one test, and an environment whose AWS chain resolves to test keys and the fake.

    Shared config files, profiles and instance metadata are cut off so that a developer's real
    credentials can never be picked up; retries stay low because moto's 5xx answers are retried.
    """
    aws_server.reset()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_server.endpoint_url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    yield aws_server
