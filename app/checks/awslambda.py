"""Lambda checks: public function URLs and resource policies, deprecated runtimes, VPC placement."""

from __future__ import annotations

from datetime import date

from app.checks.base import Result, failed, passed, resource_check
from app.checks.resource_policies import public_statements, summarize
from app.scanners.awslambda import LambdaFunction

LIST = {"lambda:ListFunctions"}

# The date Lambda deprecates each runtime (stops security patches), from the AWS Lambda runtimes page
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html); future dates are AWS's published plan.
RUNTIME_DEPRECATION: dict[str, date] = {
    "nodejs": date(2016, 10, 31), "nodejs4.3": date(2020, 3, 5), "nodejs4.3-edge": date(2020, 3, 5),
    "nodejs6.10": date(2019, 8, 12), "nodejs8.10": date(2020, 3, 6), "nodejs10.x": date(2021, 7, 30),
    "nodejs12.x": date(2023, 3, 31), "nodejs14.x": date(2023, 12, 4), "nodejs16.x": date(2024, 6, 12),
    "nodejs18.x": date(2025, 9, 1), "nodejs20.x": date(2026, 4, 30), "nodejs22.x": date(2027, 4, 30),
    "nodejs24.x": date(2028, 4, 30),
    "python2.7": date(2021, 7, 15), "python3.6": date(2022, 7, 18), "python3.7": date(2023, 12, 4),
    "python3.8": date(2024, 10, 14), "python3.9": date(2025, 12, 15), "python3.10": date(2026, 6, 30),
    "python3.11": date(2026, 6, 30), "python3.12": date(2028, 10, 31), "python3.13": date(2029, 6, 30),
    "python3.14": date(2029, 6, 30),
    "java8": date(2024, 1, 8), "java8.al2": date(2026, 6, 30), "java11": date(2026, 6, 30),
    "java17": date(2026, 6, 30), "java21": date(2029, 6, 30), "java25": date(2029, 6, 30),
    "dotnetcore1.0": date(2019, 7, 27), "dotnetcore2.0": date(2019, 5, 30), "dotnetcore2.1": date(2022, 1, 5),
    "dotnetcore3.1": date(2023, 4, 3), "dotnet5.0": date(2022, 5, 10), "dotnet6": date(2024, 12, 20),
    "dotnet7": date(2024, 5, 14), "dotnet8": date(2026, 11, 10), "dotnet10": date(2028, 11, 14),
    "ruby2.5": date(2021, 7, 30), "ruby2.7": date(2023, 12, 7), "ruby3.2": date(2026, 3, 31),
    "ruby3.3": date(2027, 3, 31), "ruby3.4": date(2028, 3, 31),
    "go1.x": date(2024, 1, 8), "provided": date(2024, 1, 8), "provided.al2": date(2026, 6, 30),
    "provided.al2023": date(2029, 6, 30),
}


@resource_check("lambda_function_url_requires_auth", LambdaFunction,
                requires=LIST | {"lambda:ListFunctionUrlConfigs"})
def lambda_function_url_requires_auth(fn: LambdaFunction) -> Result | None:
    if not fn.urls:
        return None
    open_urls = [{"function_arn": u.function_arn, "url": u.url} for u in fn.urls if u.auth_type == "NONE"]
    if open_urls:
        return failed(fn, f"Lambda function {fn.name} has {len(open_urls)} function URL(s) with auth type NONE: "
                          "anyone who knows the URL can invoke it unless the function checks callers itself.",
                      urls=open_urls, public_policy=bool(public_statements(fn.policy)))
    return passed(fn, f"Lambda function {fn.name}'s function URL(s) require IAM authentication.")


@resource_check("lambda_function_not_publicly_accessible", LambdaFunction, requires=LIST | {"lambda:GetPolicy"})
def lambda_function_not_publicly_accessible(fn: LambdaFunction) -> Result:
    public = public_statements(fn.policy)
    if public:
        return failed(fn, f"Lambda function {fn.name}'s resource policy lets anyone invoke or manage it "
                          f"({len(public)} statement(s) with a public principal and no limiting condition).",
                      statements=[summarize(s) for s in public])
    if fn.policy is None:
        return passed(fn, f"Lambda function {fn.name} has no resource policy.")
    return passed(fn, f"Lambda function {fn.name}'s resource policy grants access only to named principals or "
                      "limits it by source.")


@resource_check("lambda_function_supported_runtime", LambdaFunction, requires=LIST)
def lambda_function_supported_runtime(fn: LambdaFunction) -> Result | None:
    if fn.runtime is None:
        return None  # a container image brings its own runtime
    deprecated_on = RUNTIME_DEPRECATION.get(fn.runtime)
    if deprecated_on is None:
        return None  # not in the schedule above (a runtime newer than it): no verdict rather than a guess
    if fn.observed_at.date() >= deprecated_on:
        return failed(fn, f"Lambda function {fn.name} runs on {fn.runtime}, deprecated since {deprecated_on}: it "
                          "no longer receives security patches.", runtime=fn.runtime,
                      deprecated_on=deprecated_on.isoformat())
    return passed(fn, f"Lambda function {fn.name} runs on {fn.runtime}, supported until {deprecated_on}.",
                  runtime=fn.runtime, deprecated_on=deprecated_on.isoformat())


@resource_check("lambda_function_in_vpc", LambdaFunction, requires=LIST)
def lambda_function_in_vpc(fn: LambdaFunction) -> Result:
    if fn.vpc_id:
        return passed(fn, f"Lambda function {fn.name} runs in {fn.vpc_id}.", subnets=fn.subnet_ids)
    return failed(fn, f"Lambda function {fn.name} is not connected to a VPC.")
