"""The check catalog: registered check functions joined with their metadata (YAML data files) and
the compliance frameworks (app/compliance/*.yaml). Adding a framework needs no code."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from app.checks.base import CHECKS, CheckSpec, Severity

METADATA_DIR = Path(__file__).resolve().parent / "metadata"
COMPLIANCE_DIR = Path(__file__).resolve().parent.parent / "compliance"
# libyaml's loader parses the metadata ten times faster than the pure-Python one (~0.12 s at start-up).
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# resilience: backups, replicas, deletion protection; patching: versions, runtimes and other upkeep.
Category = Literal["identity", "encryption", "exposure", "logging", "threat-detection", "resilience", "patching"]
FRAMEWORK_IDS = ("cis-aws-3.0", "aws-fsbp", "soc2", "iso27001-2022", "pci-dss-4.0", "nist-800-53-r5", "hipaa")


class Remediation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=10)
    cli: str | None = None
    cloudformation: str | None = None


class CheckMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9]+(_[a-z0-9]+)+$")
    title: str = Field(min_length=5, max_length=300)
    service: str
    category: Category
    severity: Severity
    resource_type: str
    description: str = Field(min_length=10)
    risk: str = Field(min_length=10)
    remediation: Remediation
    references: list[HttpUrl] = Field(min_length=1)
    compliance: dict[str, list[str]] = Field(min_length=1)


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    section: str | None = None
    automated: bool = True
    note: str | None = Field(default=None, description="Why a control is manual, or how it is covered.")


class Framework(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    version: str
    description: str
    controls: list[Control]

    def control(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)


class CatalogEntry(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    spec: CheckSpec
    meta: CheckMetadata


def load_check_modules() -> None:
    """Import every module of app.checks so that all checks are registered."""
    import app.checks

    for module in pkgutil.iter_modules(app.checks.__path__):
        if module.name not in ("base", "catalog"):
            importlib.import_module(f"app.checks.{module.name}")


@cache
def metadata() -> dict[str, CheckMetadata]:
    out: dict[str, CheckMetadata] = {}
    for path in sorted(METADATA_DIR.glob("*.yaml")):
        for raw in yaml.load(path.read_text(), Loader=YAML_LOADER) or []:
            meta = CheckMetadata.model_validate(raw)
            if meta.id in out:
                raise ValueError(f"check {meta.id} has metadata twice ({path.name})")
            out[meta.id] = meta
    return out


@cache
def frameworks() -> dict[str, Framework]:
    out = {}
    for path in sorted(COMPLIANCE_DIR.glob("*.yaml")):
        fw = Framework.model_validate(yaml.load(path.read_text(), Loader=YAML_LOADER))
        out[fw.id] = fw
    return out


@cache
def catalog() -> dict[str, CatalogEntry]:
    """Every check with its metadata, by id; raises if code and data disagree."""
    load_check_modules()
    meta = metadata()
    missing = sorted(set(CHECKS) - set(meta))
    orphan = sorted(set(meta) - set(CHECKS))
    if missing or orphan:
        raise ValueError(f"checks without metadata: {missing}; metadata without a check: {orphan}")
    return {cid: CatalogEntry(spec=CHECKS[cid], meta=meta[cid]) for cid in sorted(CHECKS)}
