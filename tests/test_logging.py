"""Logs: one JSON object per line carrying the request id, and no credential ever written out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from app.logging import configure_logging
from tests.conftest import PASSWORD, unique_email


@contextmanager
def _logging_to(capsys) -> Iterator[None]:
    """Point the app's real log pipeline at the captured stderr, and put the suite's back after."""
    saved = structlog.get_config()
    configure_logging("DEBUG", json=True)
    try:
        yield
    finally:
        structlog.configure(**saved)


def _records(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be JSON


async def test_request_logs_are_json_with_the_request_id(client, capsys):
    with _logging_to(capsys):
        given = await client.get("/healthz", headers={"X-Request-ID": "req-abc.123"})
        generated = await client.get("/v1/nope")
    records = _records(capsys.readouterr().err)
    requests = [r for r in records if r["event"] == "request"]
    assert [(r["request_id"], r["path"], r["status"]) for r in requests] == [
        ("req-abc.123", "/healthz", 200),
        (generated.headers["x-request-id"], "/v1/nope", 404),
    ]
    assert given.headers["x-request-id"] == "req-abc.123"
    for r in requests:
        assert r["level"] == "info" and r["timestamp"].endswith("Z") and r["method"] == "GET"
        assert isinstance(r["duration_ms"], int | float)


async def test_an_unsafe_request_id_is_replaced(client, capsys):
    with _logging_to(capsys):
        r = await client.get("/healthz", headers={"X-Request-ID": "bad id {\"injected\": true}"})
    [record] = _records(capsys.readouterr().err)
    assert record["request_id"] == r.headers["x-request-id"] != "bad id {\"injected\": true}"


async def test_tokens_and_passwords_never_reach_the_logs(client, capsys):
    email = unique_email("logs")
    with _logging_to(capsys):
        signup = await client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert signup.status_code == 201, signup.text
        tokens = signup.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await client.get("/v1/me", headers=bearer)).status_code == 200
        # Secrets in a query string, a failed login and a refresh: each a place where logs leak.
        await client.get(f"/v1/me?access_token={tokens['access_token']}", headers=bearer)
        wrong = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD + "-wrong"})
        assert wrong.status_code == 401
        refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        bad = await client.post("/v1/auth/login", json={"email": "not-an-email", "password": PASSWORD})
        assert bad.status_code == 422
    captured = capsys.readouterr()
    records = _records(captured.err)
    assert len([r for r in records if r["event"] == "request"]) == 6
    everything = captured.err + captured.out
    secrets = [PASSWORD, tokens["access_token"], tokens["refresh_token"], refreshed.json()["access_token"],
               refreshed.json()["refresh_token"], tokens["access_token"].split(".")[2]]
    for secret in secrets:
        assert secret not in everything


def test_the_redaction_processor_scrubs_secret_fields_and_values(capsys):
    with _logging_to(capsys):
        structlog.get_logger("test").warning(
            "debugging", password="hunter2-pw", api_key="cw_live_0123456789abcdefXYZ",
            headers={"Authorization": "Bearer abc.def.ghi", "Accept": "application/json"},
            note="sent eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl and AKIAABCDEFGHIJKLMNOP",
            items=["cw_abcdefghijklmnopqrstuv"],
        )
    [record] = _records(capsys.readouterr().err)
    text = json.dumps(record)
    for secret in ("hunter2-pw", "cw_live_0123456789abcdefXYZ", "abc.def.ghi", "eyJhbGciOiJIUzI1NiJ9",
                   "AKIAABCDEFGHIJKLMNOP", "cw_abcdefghijklmnopqrstuv"):
        assert secret not in text
    assert record["password"] == "[REDACTED]" and record["headers"]["Authorization"] == "[REDACTED]"
    assert record["headers"]["Accept"] == "application/json"  # only secrets are hidden
    assert record["event"] == "debugging" and record["level"] == "warning"
