"""CloudFront checks: HTTPS towards viewers and origins, TLS versions, WAF, logging, S3 origin access and
the default root object."""

from __future__ import annotations

import re

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.cloudfront import CloudFrontDistribution

LIST = {"cloudfront:ListDistributions"}
CONFIG = LIST | {"cloudfront:GetDistributionConfig"}
# Viewer security policies that accept TLS 1.2+ with current ciphers: TLSv1.2_2019, TLSv1.2_2021,
# TLSv1.2_2025, TLSv1.3_2025 and later. SSLv3, TLSv1, TLSv1_2016, TLSv1.1_2016 and TLSv1.2_2018 are not.
_TLS12_YEAR = re.compile(r"^TLSv1\.2_(\d{4})$")
DEPRECATED_ORIGIN_PROTOCOLS = frozenset({"SSLv3"})


def strong_viewer_policy(version: str | None) -> bool:
    if not version:
        return False
    if version.startswith("TLSv1.3"):
        return True
    match = _TLS12_YEAR.match(version)
    return bool(match and int(match.group(1)) >= 2019)


def _name(d: CloudFrontDistribution) -> str:
    return f"CloudFront distribution {d.distribution_id} ({d.aliases[0] if d.aliases else d.domain_name})"


@resource_check("cloudfront_distribution_https_only", CloudFrontDistribution, requires=LIST)
def cloudfront_distribution_https_only(d: CloudFrontDistribution) -> Result:
    plain = [b.path_pattern for b in d.behaviors if b.viewer_protocol_policy == "allow-all"]
    if plain:
        return failed(d, f"{_name(d)} serves viewers over plain HTTP (viewer protocol policy allow-all) for "
                         f"path pattern(s) {', '.join(plain)}.", path_patterns=plain)
    return passed(d, f"{_name(d)} redirects or restricts every viewer request to HTTPS.")


@resource_check("cloudfront_distribution_viewer_tls_1_2", CloudFrontDistribution, requires=LIST)
def cloudfront_distribution_viewer_tls_1_2(d: CloudFrontDistribution) -> Result:
    cert = d.viewer_certificate
    if cert.cloudfront_default:
        return failed(d, f"{_name(d)} uses the default *.cloudfront.net certificate, with which CloudFront accepts "
                         "TLS 1.0; a custom certificate is needed to require TLS 1.2.",
                      minimum_protocol_version=cert.minimum_protocol_version)
    if strong_viewer_policy(cert.minimum_protocol_version):
        return passed(d, f"{_name(d)} requires {cert.minimum_protocol_version} or newer from viewers.")
    version = cert.minimum_protocol_version or "an unknown"
    return failed(d, f"{_name(d)} accepts viewers with the {version} security policy; use TLSv1.2_2021 or newer.",
                  minimum_protocol_version=cert.minimum_protocol_version)


@resource_check("cloudfront_distribution_origin_https", CloudFrontDistribution, requires=LIST)
def cloudfront_distribution_origin_https(d: CloudFrontDistribution) -> Result | None:
    custom = [o for o in d.origins if o.kind == "custom"]
    if not custom:
        return None
    allow_all_targets = {b.target_origin_id for b in d.behaviors if b.viewer_protocol_policy == "allow-all"}
    plain = [{"origin": o.id, "policy": o.origin_protocol_policy} for o in custom
             if o.origin_protocol_policy == "http-only"
             or (o.origin_protocol_policy == "match-viewer" and o.id in allow_all_targets)]
    if plain:
        return failed(d, f"{_name(d)} sends requests to custom origin(s) "
                         f"{', '.join(p['origin'] for p in plain)} over plain HTTP.", origins=plain)
    return passed(d, f"{_name(d)} reaches every custom origin over HTTPS.")


@resource_check("cloudfront_distribution_origin_no_sslv3", CloudFrontDistribution, requires=LIST)
def cloudfront_distribution_origin_no_sslv3(d: CloudFrontDistribution) -> Result | None:
    custom = [o for o in d.origins if o.kind == "custom" and o.origin_protocol_policy != "http-only"]
    if not custom:
        return None
    weak = [{"origin": o.id, "protocols": o.ssl_protocols} for o in custom
            if DEPRECATED_ORIGIN_PROTOCOLS & set(o.ssl_protocols)]
    if weak:
        return failed(d, f"{_name(d)} may negotiate SSLv3 with origin(s) {', '.join(w['origin'] for w in weak)}.",
                      origins=weak)
    return passed(d, f"{_name(d)} does not allow SSLv3 towards its custom origins.",
                  origins=[{"origin": o.id, "protocols": o.ssl_protocols} for o in custom])


@resource_check("cloudfront_distribution_waf_enabled", CloudFrontDistribution, requires=LIST)
def cloudfront_distribution_waf_enabled(d: CloudFrontDistribution) -> Result:
    if d.web_acl_id:
        return passed(d, f"{_name(d)} is protected by the AWS WAF web ACL {d.web_acl_id}.")
    return failed(d, f"{_name(d)} is not associated with an AWS WAF web ACL.")


@resource_check("cloudfront_distribution_logging_enabled", CloudFrontDistribution, requires=CONFIG)
def cloudfront_distribution_logging_enabled(d: CloudFrontDistribution) -> Result:
    if d.logging_enabled:
        return passed(d, f"{_name(d)} writes standard access logs to {d.logging_bucket}.")
    return failed(d, f"{_name(d)} does not write standard access logs.")


@resource_check("cloudfront_distribution_default_root_object", CloudFrontDistribution, requires=CONFIG)
def cloudfront_distribution_default_root_object(d: CloudFrontDistribution) -> Result | None:
    origin = d.default_origin
    if origin is None or origin.kind != "s3":
        return None  # a custom origin (an application) answers "/" itself
    if d.default_root_object:
        return passed(d, f"{_name(d)} serves {d.default_root_object} for requests to the root URL.")
    return failed(d, f"{_name(d)} has no default root object: a request for the root URL is passed to the S3 "
                     "origin, which may list or expose the bucket's contents.")


@resource_check("cloudfront_distribution_s3_origin_access_control", CloudFrontDistribution, requires=LIST)
def cloudfront_distribution_s3_origin_access_control(d: CloudFrontDistribution) -> Result | None:
    s3 = [o for o in d.origins if o.kind == "s3"]
    if not s3:
        return None
    missing = [{"origin": o.id, "legacy_identity": o.origin_access_identity} for o in s3
               if not o.origin_access_control_id]
    if missing:
        return failed(d, f"{_name(d)} has S3 origin(s) {', '.join(m['origin'] for m in missing)} without origin "
                         "access control (none, or only a legacy origin access identity).", origins=missing)
    return passed(d, f"{_name(d)} reaches every S3 origin through origin access control.")
