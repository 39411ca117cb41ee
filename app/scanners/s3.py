"""S3: the account's Block Public Access settings and every general purpose bucket's protection settings.

Buckets are listed once (ListBuckets is global); each bucket's details are read concurrently in the bucket's
own region. A detail call that fails only makes that bucket's dependent checks ERROR; "not configured"
answers (no policy, no encryption configuration, no Block Public Access...) are data.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.aws.session import PARTITION_STS_REGION
from app.scanners.base import (
    GLOBAL,
    AwsCallFailed,
    Collector,
    CollectorContext,
    Resource,
    register,
)
from app.scanners.resource_policy import load_policy

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PUBLIC_GRANTEES = frozenset({ALL_USERS, AUTHENTICATED_USERS})
ACLS_DISABLED = "BucketOwnerEnforced"


class PublicAccessBlock(BaseModel):
    """The four Block Public Access switches (bucket or account level)."""

    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def from_api(cls, answer: dict[str, Any] | None) -> PublicAccessBlock | None:
        if answer is None:
            return None
        cfg = answer.get("PublicAccessBlockConfiguration") or {}
        return cls(block_public_acls=bool(cfg.get("BlockPublicAcls")),
                   ignore_public_acls=bool(cfg.get("IgnorePublicAcls")),
                   block_public_policy=bool(cfg.get("BlockPublicPolicy")),
                   restrict_public_buckets=bool(cfg.get("RestrictPublicBuckets")))

    def disabled(self) -> list[str]:
        return [name for name, on in self.model_dump().items() if not on]


class AclGrant(BaseModel):
    grantee_type: str               # CanonicalUser | Group | AmazonCustomerByEmail
    grantee: str | None = None      # group URI or canonical user id; e-mail grantees are not kept
    permission: str


class S3AccountPublicAccessBlock(Resource):
    resource_type = "AwsS3AccountPublicAccessBlock"
    configuration: PublicAccessBlock | None = None   # None: never configured for the account


class S3Bucket(Resource):
    resource_type = "AwsS3Bucket"
    name: str
    created: datetime | None = None
    encryption_algorithm: str | None = None          # AES256 | aws:kms | aws:kms:dsse; None: no default encryption
    kms_key_id: str | None = None
    bucket_key_enabled: bool = False
    public_access_block: PublicAccessBlock | None = None
    account_public_access_block: PublicAccessBlock | None = None
    object_ownership: str | None = None               # None: no ownership controls (ACLs enabled, pre-2023 default)
    owner_id: str | None = None
    acl_grants: list[AclGrant] | None = None          # None: ACLs are disabled, so they were not read
    policy: dict[str, Any] | None = None
    versioning: str | None = None                     # Enabled | Suspended | None (never enabled)
    mfa_delete: bool = False
    logging_target: str | None = None
    lifecycle_rules_enabled: int = 0

    @property
    def acls_disabled(self) -> bool:
        return self.object_ownership == ACLS_DISABLED


def bucket_region(location: str | None, partition: str = "aws") -> str:
    """GetBucketLocation's LocationConstraint as a region: empty means us-east-1, "EU" the old eu-west-1 name."""
    if not location:
        return "us-east-1" if partition == "aws" else PARTITION_STS_REGION[partition]
    if location == "EU":
        return "eu-west-1"
    return location


class _BucketGone(Exception):
    """The bucket was deleted while we read it: it is no longer part of the account."""


@register
class S3Collector(Collector):
    name = "s3_buckets"
    service = "s3"
    scope = "global"
    actions = frozenset({
        "s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetAccountPublicAccessBlock",
        "s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock", "s3:GetBucketOwnershipControls",
        "s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:GetBucketVersioning", "s3:GetBucketLogging",
        "s3:GetLifecycleConfiguration",
    })

    async def collect(self, ctx: CollectorContext) -> None:
        account_task = asyncio.create_task(self._account_block(ctx))
        try:
            buckets = await ctx.collect_all("s3", "ListBuckets", "Buckets")
        except AwsCallFailed as exc:
            _make_global(ctx, exc)
            await account_task
            raise
        account_block = await account_task
        await asyncio.gather(*(self._bucket(ctx, b, account_block) for b in buckets))

    async def _account_block(self, ctx: CollectorContext) -> PublicAccessBlock | None:
        try:
            answer = await ctx.call("s3control", "GetPublicAccessBlock", AccountId=ctx.account_id,
                                    ignore_codes={"NoSuchPublicAccessBlockConfiguration"})
        except AwsCallFailed as exc:
            # The account setting shapes every bucket's exposure, wherever the bucket lives.
            _make_global(ctx, exc)
            return None
        block = PublicAccessBlock.from_api(answer)
        # The setting has no ARN of its own: findings name the account.
        ctx.add(S3AccountPublicAccessBlock(region=GLOBAL, resource_id=ctx.account_id, configuration=block))
        return block

    async def _bucket(self, ctx: CollectorContext, listed: dict[str, Any],
                      account_block: PublicAccessBlock | None) -> None:
        name = listed["Name"]
        region = listed.get("BucketRegion")   # newer ListBuckets answers carry it: no GetBucketLocation needed
        if not region:
            try:
                answer = await ctx.call("s3", "GetBucketLocation", Bucket=name, resource_id=name,
                                        ignore_codes={"NoSuchBucket"})
            except AwsCallFailed:
                # Without its region the bucket cannot be read; every check on it reports this error.
                ctx.add(S3Bucket(region=ctx.region, resource_id=name, name=name, arn=_arn(ctx, name),
                                 created=listed.get("CreationDate")))
                return
            if answer is None:
                return
            region = bucket_region(answer.get("LocationConstraint"), ctx.partition)
        bucket = S3Bucket(region=region, resource_id=name, name=name, arn=_arn(ctx, name),
                          created=listed.get("CreationDate"), account_public_access_block=account_block)
        rctx = CollectorContext(ctx.scan, ctx.collector, region)
        outcomes = await asyncio.gather(
            self._encryption(rctx, bucket), self._block(rctx, bucket), self._ownership_and_acl(rctx, bucket),
            self._policy(rctx, bucket), self._versioning(rctx, bucket), self._logging(rctx, bucket),
            self._lifecycle(rctx, bucket), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, _BucketGone):
                raise outcome
        if any(isinstance(o, _BucketGone) for o in outcomes):
            # Deleted while we read it: not an error, and not part of the account any more.
            ctx.scan.inventory.errors[:] = [e for e in ctx.scan.inventory.errors
                                            if not (e.resource_id == name and e.region in (region, GLOBAL))]
            return
        ctx.add(bucket)

    async def _get(self, ctx: CollectorContext, operation: str, bucket: S3Bucket,
                   ignore: frozenset[str] = frozenset()) -> tuple[bool, dict[str, Any] | None]:
        """(True, answer) or (False, None) when the call failed (recorded for this bucket only)."""
        try:
            return True, await ctx.call("s3", operation, Bucket=bucket.name, resource_id=bucket.name,
                                        ignore_codes=ignore)
        except AwsCallFailed as exc:
            if exc.error.code == "NoSuchBucket":
                raise _BucketGone from exc
            return False, None

    async def _encryption(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetBucketEncryption", bucket,
                                     frozenset({"ServerSideEncryptionConfigurationNotFoundError"}))
        if not ok or answer is None:
            return
        for rule in (answer.get("ServerSideEncryptionConfiguration") or {}).get("Rules", []):
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm"):
                bucket.encryption_algorithm = default["SSEAlgorithm"]
                bucket.kms_key_id = default.get("KMSMasterKeyID")
                bucket.bucket_key_enabled = bool(rule.get("BucketKeyEnabled"))
                return

    async def _block(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetPublicAccessBlock", bucket,
                                     frozenset({"NoSuchPublicAccessBlockConfiguration"}))
        if ok:
            bucket.public_access_block = PublicAccessBlock.from_api(answer)

    async def _ownership_and_acl(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetBucketOwnershipControls", bucket,
                                     frozenset({"OwnershipControlsNotFoundError"}))
        if ok and answer is not None:
            rules = (answer.get("OwnershipControls") or {}).get("Rules", [])
            bucket.object_ownership = next((r.get("ObjectOwnership") for r in rules if r.get("ObjectOwnership")),
                                           None)
        if ok and bucket.acls_disabled:
            return  # ACLs no longer grant anything: one call per bucket saved
        ok, answer = await self._get(ctx, "GetBucketAcl", bucket)
        if not ok or answer is None:
            return
        bucket.owner_id = (answer.get("Owner") or {}).get("ID")
        grants = []
        for grant in answer.get("Grants", []):
            grantee = grant.get("Grantee") or {}
            kind = grantee.get("Type", "Unknown")
            grants.append(AclGrant(grantee_type=kind, grantee=grantee.get("URI") or grantee.get("ID"),
                                   permission=grant.get("Permission", "")))
        bucket.acl_grants = grants

    async def _policy(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetBucketPolicy", bucket, frozenset({"NoSuchBucketPolicy"}))
        if ok and answer is not None:
            bucket.policy = load_policy(ctx, answer.get("Policy"), action="s3:GetBucketPolicy",
                                        resource_id=bucket.name)

    async def _versioning(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetBucketVersioning", bucket)
        if ok and answer is not None:
            bucket.versioning = answer.get("Status")
            bucket.mfa_delete = answer.get("MFADelete") == "Enabled"

    async def _logging(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetBucketLogging", bucket)
        if ok and answer is not None:
            bucket.logging_target = (answer.get("LoggingEnabled") or {}).get("TargetBucket")

    async def _lifecycle(self, ctx: CollectorContext, bucket: S3Bucket) -> None:
        ok, answer = await self._get(ctx, "GetBucketLifecycleConfiguration", bucket,
                                     frozenset({"NoSuchLifecycleConfiguration"}))
        if ok and answer is not None:
            bucket.lifecycle_rules_enabled = sum(1 for r in answer.get("Rules", []) if r.get("Status") == "Enabled")


def _arn(ctx: CollectorContext, name: str) -> str:
    return f"arn:{ctx.partition}:s3:::{name}"


def _make_global(ctx: CollectorContext, exc: AwsCallFailed) -> None:
    """Re-file an account-wide failure under GLOBAL: it concerns buckets in every region, not only the region
    the global call happened to be sent to (see the framework note in the S3 report)."""
    errors = ctx.scan.inventory.errors
    if exc.error in errors and exc.error.region != GLOBAL:
        errors[errors.index(exc.error)] = exc.error.model_copy(update={"region": GLOBAL})
