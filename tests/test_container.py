"""The Dockerfile and docker-compose.yml (no Docker engine here: they are parsed and checked against
the CLI and the settings they rely on)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
import yaml

from app.cli import cli
from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _stages(lines: list[str]) -> list[list[str]]:
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_compose_has_the_services_in_the_right_order(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    assert services["postgres"]["healthcheck"]["test"] and services["redis"]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["restart"] == "no"


def test_compose_commands_exist_in_the_cli(compose):
    commands = typer.main.get_command(cli).commands
    expected = {"migrate": "migrate", "api": "serve", "worker": "worker"}
    for name, sub in expected.items():
        command = compose["services"][name]["command"]
        assert command[:2] == ["cloudwizard", sub], name
        assert sub in commands
    assert compose["services"]["api"]["command"][2:4] == ["--host", "0.0.0.0"]


def test_compose_requires_a_signing_key_and_configures_real_services(compose):
    known = {f"CW_{name.upper()}" for name in Settings.model_fields}
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"] == "."
        env = service["environment"]
        assert set(env) <= known, f"unknown settings: {set(env) - known}"
        assert re.fullmatch(r"\$\{CW_JWT_SECRET:\?[^}]+\}", env["CW_JWT_SECRET"]), "the key must be required"
        assert env["CW_ENV"] == "production"
        database_url = env["CW_DATABASE_URL"]
        assert database_url.startswith("postgresql+asyncpg://") and "@postgres:" in database_url
        assert env["CW_REDIS_URL"].startswith("redis://redis:")


def test_compose_publishes_only_the_api_on_loopback(compose):
    for name, service in compose["services"].items():
        ports = service.get("ports", [])
        if name == "api":
            assert ports == ["127.0.0.1:8000:8000"]
        else:
            assert ports == [], f"{name} must not be published"


def test_dockerfile_builds_in_stages_and_runs_unprivileged(dockerfile):
    stages = _stages(dockerfile)
    assert len(stages) >= 2, "builder and runtime stages"
    builder, runtime = stages[0], stages[-1]
    assert any(line.startswith("ARG PYTHON_IMAGE=python:3.11-slim") for line in dockerfile)
    assert runtime[0].startswith("FROM ${PYTHON_IMAGE}")
    # The builder installs the package into the venv that the runtime stage copies.
    assert any("pip install" in line and "-e ." in line for line in builder)
    assert any(line.startswith("COPY --from=builder /opt/venv") for line in runtime)
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert not any(line.upper().startswith("RUN ") for line in runtime[runtime.index(f"USER {users[-1]}"):])


def test_dockerfile_ships_what_migrate_needs(dockerfile):
    copies = " ".join(line for line in dockerfile if line.upper().startswith("COPY "))
    for needed in ("alembic.ini", "migrations", "app", "pyproject.toml"):
        assert needed in copies
        assert (ROOT / needed).exists()


def test_dockerfile_serves_on_all_interfaces_with_a_health_check(dockerfile):
    cmd = next(line for line in reversed(dockerfile) if line.startswith("CMD "))
    argv = yaml.safe_load(cmd[4:])  # a JSON array is YAML
    assert argv[:4] == ["cloudwizard", "serve", "--host", "0.0.0.0"]
    health = next(line for line in dockerfile if line.startswith("HEALTHCHECK "))
    assert "/healthz" in health and "--interval" in health
    assert any(line.startswith("EXPOSE 8000") for line in dockerfile)


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".cloudwizard", "*.db", ".env"} <= ignored
    # ...but not what the image is built from.
    assert not ignored & {"app", "migrations", "alembic.ini", "pyproject.toml", "README.md"}


def test_compose_commands_are_exec_form(compose):
    # No shell in between to mangle arguments or swallow signals.
    for name in APP_SERVICES:
        assert isinstance(compose["services"][name]["command"], list), name
