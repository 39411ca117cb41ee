"""Request and response bodies for mute rules: selectors chosen once, the decision (reason, owner, expiry) editable."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from app.pagination import Page
from app.schemas.base import RequestModel, ResponseModel

# Control characters never occur in what is matched, and PostgreSQL refuses NUL in text outright.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_PRINTABLE_OR_EMPTY = r"^[^\x00-\x1f\x7f]*$"
# A reason may run over several lines; other control characters are refused.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"

CheckId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
Region = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=_PRINTABLE)]
# Matched exactly as AWS stores them, so surrounding spaces are kept.
ResourcePattern = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024,
                                                   pattern=_PRINTABLE)]
TagKey = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=128,
                                          pattern=_PRINTABLE)]
TagValue = Annotated[str, StringConstraints(strip_whitespace=False, max_length=256, pattern=_PRINTABLE_OR_EMPTY)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=_TEXT)]
Owner = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_PRINTABLE)]

SELECTOR_FIELDS = ("finding_id", "check_id", "aws_account_id", "region", "resource_pattern", "tag_key", "tag_value")

EXPIRY_HELP = "When the mute ends by itself and the findings it covers show again (with a time zone, in the " \
              "future, at most 3 years ahead). Null: until unmuted."


class MuteRuleState(enum.StrEnum):
    active = "active"
    expired = "expired"
    unmuted = "unmuted"


class MuteRuleStateFilter(enum.StrEnum):
    active = "active"
    ended = "ended"
    all = "all"


class MuteRuleCreate(RequestModel):
    """At least one selector; a finding matches the rule when it matches every selector given."""

    finding_id: uuid.UUID | None = Field(
        default=None, description="Mute this one finding (of this workspace). Stored as the finding's stable uid, "
                                  "so the mute follows it from scan to scan.")
    check_id: CheckId | None = Field(default=None, description="Mute the findings of this check.",
                                     examples=["s3_bucket_versioning_enabled"])
    aws_account_id: uuid.UUID | None = Field(
        default=None, description="Mute the findings of this AWS account connection (of this workspace).")
    region: Region | None = Field(default=None, description="Mute the findings of this region, or `global` for "
                                                            "account-wide resources.", examples=["eu-west-1"])
    resource_pattern: ResourcePattern | None = Field(
        default=None, description="A glob (`*`, `?`, `[seq]`; case-sensitive) matched against the resource id and "
                                  "the resource ARN. A pattern of wildcards alone cannot be the only selector.",
        examples=["arn:aws:s3:::sandbox-*"])
    tag_key: TagKey | None = Field(default=None, description="Mute the findings whose resource has this tag.",
                                   examples=["env"])
    tag_value: TagValue | None = Field(default=None, description="With `tag_key`: only when the tag has this "
                                                                 "value (exactly). Omitted: any value.",
                                       examples=["sandbox"])
    reason: Reason = Field(description="Why the risk is accepted, for whoever reads the audit log later.")
    owner: Owner | None = Field(default=None, description="Who answers for the decision (e.g. an e-mail). "
                                                          "Default: the caller's e-mail, or the API key's label.")
    expires_at: AwareDatetime | None = Field(default=None, description=EXPIRY_HELP)


class MuteRuleUpdate(RequestModel):
    """The decision can be revised; the selectors cannot (make a new rule and unmute this one instead)."""

    reason: Reason | None = Field(default=None, description="A new reason; cannot be null.")
    owner: Owner | None = Field(default=None, description="A new owner; cannot be null.")
    expires_at: AwareDatetime | None = Field(default=None, description=EXPIRY_HELP + " Send null to remove the "
                                                                                      "expiry.")


class MuteRuleRead(ResponseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    finding_id: uuid.UUID | None = Field(description="The finding the rule was made for, as given.")
    finding_uid: str | None = Field(description="That finding's stable uid: what the rule matches.")
    check_id: str | None
    aws_account_id: uuid.UUID | None
    region: str | None
    resource_pattern: str | None
    tag_key: str | None
    tag_value: str | None = Field(description="Null with a `tag_key`: any value of the tag.")
    reason: str
    owner: str
    created_by: str = Field(description="Who made the rule: an e-mail or `api-key:<prefix>`.")
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    ended_at: datetime | None = Field(description="When it stopped muting: unmuted, or its expiry once the "
                                                  "expiry job has recorded it.")
    ended_by: str | None = Field(description="Who unmuted it, or `system` for an expiry.")
    end_reason: Literal["unmuted", "expired"] | None
    state: MuteRuleState = Field(description="`active` while it mutes; `expired` from `expires_at` on (even "
                                             "before the expiry job records it); `unmuted` once deleted.")
    matched_findings: int = Field(
        description="Open findings this rule mutes now. A finding that several rules match is muted by one: a rule "
                    "without expiry first, else the one that expires last, then the oldest.")


class MuteRulePage(Page[MuteRuleRead]):
    """A page of mute rules, newest first."""
