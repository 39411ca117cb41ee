"""Lambda functions per region: runtime, VPC placement, resource policy and function URLs.

ListFunctions carries each function's configuration (never lambda:GetFunction, which hands out a code
download URL). Environment variables arrive in that answer; only their names are kept, never their values.
Each function's policy and URL configurations are read concurrently; "no policy" is data, not an error.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register
from app.scanners.resource_policy import load_policy

PAGE = {"PageSize": 50}    # ListFunctions returns at most 50 per page


class FunctionUrl(BaseModel):
    function_arn: str                  # the function, or the alias ("...:function:name:alias") the URL serves
    url: str | None = None
    auth_type: str                     # AWS_IAM | NONE
    cors_allow_origins: list[str] = []


class LambdaFunction(Resource):
    resource_type = "AwsLambdaFunction"
    name: str
    runtime: str | None = None         # None for container-image functions
    package_type: str = "Zip"
    role: str | None = None
    last_modified: str | None = None
    vpc_id: str | None = None
    subnet_ids: list[str] = []
    environment_variable_names: list[str] = []   # names only: values may be secrets
    policy: dict[str, Any] | None = None         # None: the function has no resource policy
    urls: list[FunctionUrl] = []
    observed_at: datetime              # when it was read: the reference date for runtime deprecation


@register
class LambdaCollector(Collector):
    name = "lambda_functions"
    service = "lambda"
    scope = "regional"
    actions = frozenset({"lambda:ListFunctions", "lambda:GetPolicy", "lambda:ListFunctionUrlConfigs"})

    async def collect(self, ctx: CollectorContext) -> None:
        observed_at = datetime.now(UTC)
        functions = [self._function(ctx, item, observed_at)
                     for item in await ctx.collect_all("lambda", "ListFunctions", "Functions", PaginationConfig=PAGE)]
        await asyncio.gather(*(part for fn in functions for part in (self._policy(ctx, fn), self._urls(ctx, fn))))
        for fn in functions:
            ctx.add(fn)

    def _function(self, ctx: CollectorContext, item: dict[str, Any], observed_at: datetime) -> LambdaFunction:
        name = item["FunctionName"]
        vpc = item.get("VpcConfig") or {}
        variables = (item.get("Environment") or {}).get("Variables") or {}
        return LambdaFunction(
            region=ctx.region, resource_id=name, arn=item.get("FunctionArn") or ctx.arn("lambda", f"function:{name}"),
            name=name, runtime=item.get("Runtime") or None, package_type=item.get("PackageType") or "Zip",
            role=item.get("Role"), last_modified=item.get("LastModified"), vpc_id=vpc.get("VpcId") or None,
            subnet_ids=list(vpc.get("SubnetIds") or []), environment_variable_names=sorted(variables),
            observed_at=observed_at)

    async def _policy(self, ctx: CollectorContext, fn: LambdaFunction) -> None:
        try:
            answer = await ctx.call("lambda", "GetPolicy", FunctionName=fn.name, resource_id=fn.resource_id,
                                    ignore_codes={"ResourceNotFoundException"})
        except AwsCallFailed:
            return
        if answer is not None:
            fn.policy = load_policy(ctx, answer.get("Policy"), action="lambda:GetPolicy", resource_id=fn.resource_id)

    async def _urls(self, ctx: CollectorContext, fn: LambdaFunction) -> None:
        try:
            items = await ctx.collect_all("lambda", "ListFunctionUrlConfigs", "FunctionUrlConfigs",
                                          FunctionName=fn.name, resource_id=fn.resource_id)
        except AwsCallFailed:
            return
        fn.urls = [FunctionUrl(function_arn=u.get("FunctionArn", fn.arn or fn.name), url=u.get("FunctionUrl"),
                               auth_type=u.get("AuthType", ""),
                               cors_allow_origins=list((u.get("Cors") or {}).get("AllowOrigins") or []))
                   for u in items]
