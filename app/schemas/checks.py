"""Response bodies for the check catalog and the compliance frameworks (read-only reference data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.checks.base import Severity
from app.checks.catalog import Category
from app.pagination import Page


class RemediationRead(BaseModel):
    text: str = Field(description="What to change, in words.")
    cli: str | None = Field(description="An AWS CLI command that applies the fix, where one exists.")
    cloudformation: str | None = Field(description="How to express the fix in CloudFormation, where it applies.")


class CheckRead(BaseModel):
    id: str = Field(description="`<service>_<resource>_<property>`; also the `check_id` of findings.",
                    examples=["s3_bucket_public_access_block"])
    title: str
    service: str = Field(examples=["s3"])
    category: Category
    severity: Severity
    resource_type: str = Field(description="AWS Security Hub (ASFF) resource type of the resources it judges.",
                               examples=["AwsS3Bucket"])
    kind: Literal["resource", "regional", "account"] = Field(
        description="`resource`: one result per resource; `regional`: per scanned region; `account`: once per "
                    "account.")
    description: str
    risk: str = Field(description="What can go wrong when the check fails.")
    remediation: RemediationRead
    references: list[str] = Field(description="Documentation URLs.")
    compliance: dict[str, list[str]] = Field(
        description="Framework id -> the control ids of that framework the check serves.",
        examples=[{"cis-aws-3.0": ["2.1.4"], "aws-fsbp": ["S3.8"]}])
    required_actions: list[str] = Field(description="The read-only IAM actions whose data the check reads.")


class CheckPage(Page[CheckRead]):
    pass


class FrameworkSummary(BaseModel):
    id: str = Field(examples=["cis-aws-3.0"])
    name: str
    version: str
    description: str
    control_count: int = Field(description="Controls listed in the framework.")
    automated_count: int = Field(description="Controls that configuration checks can assess (for CIS: the "
                                             "recommendations the benchmark marks Automated).")
    covered_count: int = Field(description="Controls served by at least one check.")
    automated_covered_count: int = Field(description="Automated controls served by at least one check.")


class FrameworkPage(Page[FrameworkSummary]):
    pass


class ControlRead(BaseModel):
    id: str = Field(examples=["1.4"])
    title: str
    section: str | None
    automated: bool
    note: str | None = Field(description="Why a control is manual, or how it is covered.")
    check_ids: list[str] = Field(description="The checks that serve this control; empty when none does.")


class FrameworkRead(FrameworkSummary):
    controls: list[ControlRead]
