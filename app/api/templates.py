"""Public download of the CloudFormation templates customers deploy (no secrets in them)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.errors import error_responses
from app.services.aws_accounts import template_body

router = APIRouter(prefix="/templates", tags=["templates"])


@router.get("/{name}", name="templates_get", response_class=PlainTextResponse,
            summary="Download a CloudFormation template",
            description="`cloudwizard-role.yaml`: the read-only role for one account. "
                        "`cloudwizard-organization.yaml`: the same role rolled out to an AWS Organization or OUs "
                        "through a service-managed StackSet. Unauthenticated: CloudFormation fetches it directly.",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "The template (CloudFormation YAML with short-form tags)."},
                       **error_responses(404, 422)})
async def templates_get(name: Literal["cloudwizard-role.yaml", "cloudwizard-organization.yaml"]):
    # text/plain: CloudFormation's !Ref/!GetAtt tags are not plain YAML, so generic YAML clients must not parse it.
    return PlainTextResponse(template_body(name))
