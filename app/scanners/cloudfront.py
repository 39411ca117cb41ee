"""CloudFront distributions (global): viewer and origin protocols, TLS settings, WAF, logging, root object.

ListDistributions carries everything but the logging configuration and the default root object, which
GetDistributionConfig adds per distribution (concurrently). Distributions are account-wide, so they and the
errors about them are filed under the GLOBAL region.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from app.scanners.base import GLOBAL, AwsCallFailed, Collector, CollectorContext, Resource, register

PAGE = {"PageSize": "100"}   # MaxItems: a string in this API; 100 is its maximum


class CacheBehavior(BaseModel):
    path_pattern: str                  # "*" for the default cache behavior
    target_origin_id: str
    viewer_protocol_policy: str        # allow-all | redirect-to-https | https-only


class DistributionOrigin(BaseModel):
    id: str
    domain_name: str
    kind: str                          # s3 (S3 REST endpoint through S3OriginConfig) | custom
    origin_protocol_policy: str | None = None   # custom origins: http-only | match-viewer | https-only
    ssl_protocols: list[str] = []      # custom origins: SSLv3 | TLSv1 | TLSv1.1 | TLSv1.2
    origin_access_identity: str | None = None   # S3 origins: legacy OAI
    origin_access_control_id: str | None = None


class ViewerCertificate(BaseModel):
    cloudfront_default: bool = False   # *.cloudfront.net certificate: CloudFront then accepts TLSv1
    minimum_protocol_version: str | None = None
    ssl_support_method: str | None = None
    certificate_source: str | None = None


class CloudFrontDistribution(Resource):
    resource_type = "AwsCloudFrontDistribution"
    distribution_id: str
    domain_name: str | None = None
    enabled: bool = True
    aliases: list[str] = []
    behaviors: list[CacheBehavior] = []          # the default behavior first
    origins: list[DistributionOrigin] = []
    viewer_certificate: ViewerCertificate = ViewerCertificate()
    web_acl_id: str | None = None
    # From GetDistributionConfig; None when it could not be read (the dependent checks then report ERROR).
    logging_enabled: bool | None = None
    logging_bucket: str | None = None
    default_root_object: str | None = None

    @property
    def default_origin(self) -> DistributionOrigin | None:
        if not self.behaviors:
            return None
        return next((o for o in self.origins if o.id == self.behaviors[0].target_origin_id), None)


def _items(container: dict[str, Any] | None) -> list[Any]:
    return (container or {}).get("Items") or []


def _behavior(item: dict[str, Any], path: str) -> CacheBehavior:
    return CacheBehavior(path_pattern=item.get("PathPattern", path), target_origin_id=item.get("TargetOriginId", ""),
                         viewer_protocol_policy=item.get("ViewerProtocolPolicy", ""))


def _origin(item: dict[str, Any]) -> DistributionOrigin:
    custom = item.get("CustomOriginConfig")
    s3 = item.get("S3OriginConfig")
    return DistributionOrigin(
        id=item.get("Id", ""), domain_name=item.get("DomainName", ""), kind="custom" if custom else "s3",
        origin_protocol_policy=(custom or {}).get("OriginProtocolPolicy"),
        ssl_protocols=list(_items((custom or {}).get("OriginSslProtocols"))),
        origin_access_identity=(s3 or {}).get("OriginAccessIdentity") or None,
        origin_access_control_id=item.get("OriginAccessControlId") or None)


def distribution_from_summary(summary: dict[str, Any], *, region: str = GLOBAL) -> CloudFrontDistribution:
    cert = summary.get("ViewerCertificate") or {}
    behaviors = [_behavior(summary.get("DefaultCacheBehavior") or {}, "*")]
    behaviors += [_behavior(b, "") for b in _items(summary.get("CacheBehaviors"))]
    return CloudFrontDistribution(
        region=region, resource_id=summary["Id"], arn=summary.get("ARN"), distribution_id=summary["Id"],
        domain_name=summary.get("DomainName"), enabled=bool(summary.get("Enabled", True)),
        aliases=list(_items(summary.get("Aliases"))), behaviors=behaviors,
        origins=[_origin(o) for o in _items(summary.get("Origins"))],
        viewer_certificate=ViewerCertificate(
            cloudfront_default=bool(cert.get("CloudFrontDefaultCertificate")),
            minimum_protocol_version=cert.get("MinimumProtocolVersion"),
            ssl_support_method=cert.get("SSLSupportMethod"), certificate_source=cert.get("CertificateSource")),
        web_acl_id=summary.get("WebACLId") or None)


@register
class CloudFrontCollector(Collector):
    name = "cloudfront_distributions"
    service = "cloudfront"
    scope = "global"
    actions = frozenset({"cloudfront:ListDistributions", "cloudfront:GetDistributionConfig"})

    async def collect(self, ctx: CollectorContext) -> None:
        summaries: list[dict[str, Any]] = []
        try:
            async for page in ctx.pages("cloudfront", "ListDistributions", PaginationConfig=PAGE):
                summaries.extend(_items(page.get("DistributionList")))
        except AwsCallFailed as exc:
            _file_globally(ctx, exc)
            raise
        distributions = [distribution_from_summary(s) for s in summaries]
        await asyncio.gather(*(self._config(ctx, d) for d in distributions))
        for distribution in distributions:
            ctx.add(distribution)

    async def _config(self, ctx: CollectorContext, distribution: CloudFrontDistribution) -> None:
        try:
            answer = await ctx.call("cloudfront", "GetDistributionConfig", Id=distribution.distribution_id,
                                    resource_id=distribution.resource_id) or {}
        except AwsCallFailed as exc:
            _file_globally(ctx, exc)
            return
        config = answer.get("DistributionConfig") or {}
        logging = config.get("Logging") or {}
        distribution.logging_enabled = bool(logging.get("Enabled"))
        distribution.logging_bucket = logging.get("Bucket") or None
        distribution.default_root_object = config.get("DefaultRootObject") or None


def _file_globally(ctx: CollectorContext, exc: AwsCallFailed) -> None:
    """Re-file a failure under GLOBAL: it is about account-wide distributions, not about the region the call
    happened to be sent to (which may not even be among the scanned regions)."""
    errors = ctx.scan.inventory.errors
    if exc.error in errors and exc.error.region != GLOBAL:
        errors[errors.index(exc.error)] = exc.error.model_copy(update={"region": GLOBAL})
