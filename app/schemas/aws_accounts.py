"""Schemas for connecting AWS accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.models import AccountStatus
from app.pagination import Page
from app.schemas.base import RequestModel, ResponseModel

# The partitions we can assume roles in (app.aws.session.PARTITION_STS_REGION).
PARTITIONS = ("aws", "aws-us-gov", "aws-cn")


@lru_cache
def known_regions() -> dict[str, str]:
    """Region code -> partition, from botocore's endpoint data (what the SDK we call AWS with knows)."""
    import botocore.session

    session = botocore.session.get_session()
    return {region: partition for partition in PARTITIONS
            for region in session.get_available_regions("ec2", partition)}


def _check_regions(regions: list[str] | None) -> list[str] | None:
    if regions is None:
        return None
    known = known_regions()
    cleaned: list[str] = []
    for r in regions:
        if r not in known:
            # A typo (us-east-3) would otherwise only show up as a failed scan much later.
            raise ValueError(f"{r!r} is not an AWS region code this version knows (like us-east-1)")
        if r not in cleaned:
            cleaned.append(r)
    if not cleaned:
        raise ValueError("give at least one region, or null to scan every enabled region")
    partitions = sorted({known[r] for r in cleaned})
    if len(partitions) > 1:
        # One role lives in one partition; its credentials do not work in the others.
        raise ValueError(f"all regions must be in one AWS partition, not {', '.join(partitions)}")
    return cleaned


class AwsAccountCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100, description="A label for this account, e.g. 'prod'.")
    regions: list[str] | None = Field(
        default=None, max_length=40,
        description="Optional allow-list of regions to scan; null scans every enabled region.")

    _regions = field_validator("regions")(classmethod(lambda cls, v: _check_regions(v)))


class AwsAccountUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    regions: list[str] | None = Field(default=None, max_length=40,
                                      description="Replace the region allow-list; send null to scan all regions.")

    _regions = field_validator("regions")(classmethod(lambda cls, v: _check_regions(v)))


class AwsAccountVerify(RequestModel):
    role_arn: str = Field(min_length=20, max_length=2048,
                          description="ARN of the role the CloudFormation stack created (its `RoleArn` output).",
                          examples=["arn:aws:iam::123456789012:role/CloudWizardScanner"])


class MissingPermission(BaseModel):
    service: str
    action: str = Field(description="The IAM action that was probed, e.g. `cloudtrail:DescribeTrails`.")
    reason: Literal["denied", "error"] = Field(
        description="`denied`: the role lacks the permission; `error`: the probe failed for another reason. "
                    "A service the account does not use (Security Hub not enabled, a service that needs a "
                    "subscription) is not listed: that is not a missing permission.")
    error_code: str | None = None
    message: str | None = None


class ConnectionSetup(BaseModel):
    """Everything the customer needs to create the role; present while the account is pending."""

    external_id: str
    external_id_expires_at: datetime | None
    scanner_principal_arn: str
    role_name: str
    stack_name: str
    template_url: str = Field(description="Where the role template can be downloaded.")
    template_body: str = Field(description="The CloudFormation template itself (YAML).")
    quick_create_url: str = Field(description="Opens the CloudFormation console with every parameter filled in.")
    cli_command: str = Field(description="The same stack, created with the AWS CLI.")


class AwsAccountRead(ResponseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    status: AccountStatus
    status_reason: str | None
    status_changed_at: datetime
    external_id: str = Field(description="Our External ID for this connection (not a secret, but unique to it).")
    external_id_expires_at: datetime | None
    role_arn: str | None
    partition: str | None
    aws_account_id: str | None
    regions: list[str] | None
    missing_permissions: list[MissingPermission]
    last_verified_at: datetime | None
    connected_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AwsAccountWithSetup(AwsAccountRead):
    setup: ConnectionSetup | None = Field(
        default=None, description="Set-up instructions; present while the account is pending.")


class AwsAccountPage(Page[AwsAccountRead]):
    """A page of AWS account connections."""
