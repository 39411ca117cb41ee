"""Handlers for calls moto 5.2 lacks or gets wrong that a normal scan makes (tests and the demo only).

- iam GetCredentialReport: moto's report has no <root_account> row; real accounts always have one.
  The row added here has AWS's defaults for an account whose root has no MFA and no access keys.
- lambda ListFunctionUrlConfigs: not implemented (moto answers an HTML 404).
- ec2 DescribeSnapshots with RestorableByUserIds: moto ignores the filter and lists every snapshot.
- ssm DescribeInstanceInformation: not implemented (HTTP 500); the fake's accounts manage no instances.
- iam GenerateCredentialReport: moto's, unless an account's report is held "in progress" through
      POST /_cwfake/iam/credential-report {"account_id": "...", "pending": true}
  which makes it answer STARTED/INPROGRESS (as AWS does for a large account) until released with false.
"""

from __future__ import annotations

import base64
import csv
import io
import time
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from app.fakes.aws import (
    CONTROL_HANDLERS,
    RESET_HOOKS,
    FakeCall,
    ec2_response,
    error_response,
    handler,
    json_response,
    query_response,
)

_ROOT_DEFAULTS = {
    "password_enabled": "not_supported", "password_last_used": "N/A", "password_last_changed": "not_supported",
    "password_next_rotation": "not_supported", "mfa_active": "false", "access_key_1_active": "false",
    "access_key_1_last_rotated": "N/A", "access_key_1_last_used_date": "N/A",
    "access_key_1_last_used_region": "N/A", "access_key_1_last_used_service": "N/A",
    "access_key_2_active": "false", "access_key_2_last_rotated": "N/A", "access_key_2_last_used_date": "N/A",
    "access_key_2_last_used_region": "N/A", "access_key_2_last_used_service": "N/A", "cert_1_active": "false",
    "cert_1_last_rotated": "N/A", "cert_2_active": "false", "cert_2_last_rotated": "N/A",
}


# Accounts whose credential report never finishes generating.
_pending_reports: set[str] = set()
RESET_HOOKS.append(_pending_reports.clear)


def _hold_credential_report(body: Any) -> tuple[Any, int]:
    if not isinstance(body, dict) or set(body) - {"account_id", "pending"}:
        raise ValueError('expected {"account_id": "...", "pending": true|false}')
    account, pending = body.get("account_id"), body.get("pending")
    if not isinstance(account, str) or not account.isdigit() or len(account) != 12 or not isinstance(pending, bool):
        raise ValueError("account_id must be a 12-digit account id and pending a boolean")
    (_pending_reports.add if pending else _pending_reports.discard)(account)
    return {"account_id": account, "pending": pending}, 200


CONTROL_HANDLERS[("POST", "iam/credential-report")] = _hold_credential_report


@handler("iam", "GenerateCredentialReport")
def _generate_credential_report(call: FakeCall) -> Response | None:
    if call.account_id not in _pending_reports:
        return None   # moto's own answer
    return query_response(call, "<State>INPROGRESS</State><Description>Report generation in progress.</Description>")


@handler("iam", "GetCredentialReport")
def _get_credential_report(call: FakeCall) -> Response:
    from moto.iam.exceptions import ReportNotPresentException
    from moto.iam.models import iam_backends

    partition = call.caller.partition if call.caller else "aws"
    try:
        text = iam_backends[call.account_id][partition].get_credential_report()
    except ReportNotPresentException:
        return error_response(call, "ReportNotPresent", "Credential report not present", 410)
    if isinstance(text, bytes):
        text = text.decode()
    header, _, rows = text.partition("\n")
    if "<root_account>" in rows:
        body = text
    else:
        columns = header.split(",")
        root = {"user": "<root_account>", "arn": f"arn:{partition}:iam::{call.account_id}:root",
                "user_creation_time": "2020-01-01T00:00:00+00:00", **_ROOT_DEFAULTS}
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow([root.get(c, "N/A") for c in columns])
        body = header + "\n" + out.getvalue() + rows
    content = base64.b64encode(body.encode()).decode()
    return query_response(call, f"<Content>{content}</Content><ReportFormat>text/csv</ReportFormat>"
                                f"<GeneratedTime>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
                                "</GeneratedTime>")


@handler("lambda", "ListFunctionUrlConfigs")
def _list_function_url_configs(call: FakeCall) -> Response:
    """moto 5.2 keeps one URL configuration per function (no alias URLs) and has no list call."""
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.awslambda.models import lambda_backends

    name = unquote(call.path.rstrip("/").split("/")[-2])   # /2021-10-31/functions/{name}/urls
    try:
        function = lambda_backends[call.account_id][call.region].get_function(name)
    except UnknownFunctionException:
        return error_response(call, "ResourceNotFoundException", f"Function not found: {name}", 404)
    configs = [function.url_config.to_dict()] if getattr(function, "url_config", None) else []
    return json_response(call, {"FunctionUrlConfigs": configs})


@handler("ec2", "DescribeSnapshots")
def _describe_snapshots_restorable_by(call: FakeCall) -> Response | None:
    """Answer the RestorableByUserIds form of the call; every other form goes to moto (None)."""
    restorable = [v for k, v in call.params.items() if k.startswith("RestorableBy.")]
    if not restorable:
        return None
    from moto.ec2.models import ec2_backends

    owners = {call.account_id if v == "self" else v for k, v in call.params.items() if k.startswith("Owner.")}
    items = []
    for snap in ec2_backends[call.account_id][call.region].snapshots.values():
        if owners and snap.owner_id not in owners:
            continue
        if not (("all" in restorable and "all" in snap.create_volume_permission_groups)
                or set(restorable) & set(snap.create_volume_permission_userids)):
            continue
        kms = f"<kmsKeyId>{escape(snap.kms_key_id)}</kmsKeyId>" if snap.kms_key_id else ""
        items.append(
            f"<item><snapshotId>{snap.id}</snapshotId><volumeId>{snap.volume.id}</volumeId>"
            f"<status>{snap.status}</status><startTime>{snap.start_time:%Y-%m-%dT%H:%M:%S.000Z}</startTime>"
            f"<progress>100%</progress><ownerId>{snap.owner_id}</ownerId><volumeSize>{snap.volume.size}"
            f"</volumeSize><description>{escape(snap.description or '')}</description>"
            f"<encrypted>{'true' if snap.encrypted else 'false'}</encrypted>{kms}<tagSet/></item>")
    return ec2_response(call, f"<snapshotSet>{''.join(items)}</snapshotSet>")


@handler("ssm", "DescribeInstanceInformation")
def _describe_instance_information(call: FakeCall) -> Response:
    max_results = call.params.get("MaxResults")
    if max_results is not None and (not isinstance(max_results, int) or isinstance(max_results, bool)
                                    or not 5 <= max_results <= 50):
        return error_response(call, "ValidationException",
                              f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                              "satisfy constraint: Member must have value between 5 and 50", 400)
    return json_response(call, {"InstanceInformationList": []})
