"""Request and response bodies for sign-up, sign-in, token refresh and the signed-in user."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field, StringConstraints, field_validator, model_validator

from app.models import Role
from app.schemas.base import RequestModel, ResponseModel

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 256
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

# E-mail addresses are compared and stored in lower case, so Alice@x and alice@x are one account.
Email = Annotated[EmailStr, AfterValidator(str.lower), Field(max_length=320, examples=["alice@example.com"])]
# Passwords are never trimmed: surrounding spaces are part of what the user typed.
RawPassword = Annotated[str, StringConstraints(strip_whitespace=False)]


def _check_display_name(value: str | None) -> str | None:
    if value is not None and _CONTROL_CHARS.search(value):
        raise ValueError("Display names cannot contain control characters.")
    return value


DisplayName = Annotated[str, Field(min_length=1, max_length=200, examples=["Alice Martin"]),
                        AfterValidator(_check_display_name)]


class SignupRequest(RequestModel):
    email: Email
    password: RawPassword = Field(
        description=f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters. A passphrase of a few "
                    "unrelated words is easiest to remember.",
        examples=["correct horse battery staple"],
    )
    display_name: DisplayName | None = None

    @field_validator("password")
    @classmethod
    def _password_length(cls, value: str) -> str:
        if len(value) < PASSWORD_MIN_LENGTH:
            raise ValueError(f"Passwords need at least {PASSWORD_MIN_LENGTH} characters.")
        if len(value) > PASSWORD_MAX_LENGTH:
            raise ValueError(f"Passwords can have at most {PASSWORD_MAX_LENGTH} characters.")
        if not value.strip():
            raise ValueError("Passwords cannot be only spaces.")
        return value

    @model_validator(mode="after")
    def _password_is_not_the_email(self) -> SignupRequest:
        if self.password.strip().lower() == self.email:
            raise ValueError("The password cannot be your e-mail address.")
        return self


class LoginRequest(RequestModel):
    email: Email
    # No minimum here: sign-in must keep working for passwords set under an older policy.
    password: RawPassword = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=200, description="The refresh token from sign-in or "
                               "the previous refresh. Each one works once.")


class UserRead(ResponseModel):
    id: uuid.UUID
    email: str
    display_name: str | None
    created_at: datetime


class TokenRead(ResponseModel):
    access_token: str = Field(description="Send as `Authorization: Bearer <access_token>`.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(description="Exchange at `POST /v1/auth/refresh` for new tokens; works once.")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires.")
    user: UserRead


class WorkspaceMembershipRead(ResponseModel):
    id: uuid.UUID = Field(description="Workspace id.")
    name: str
    role: Role = Field(description="Your role in the workspace.")
    joined_at: datetime


class MeRead(UserRead):
    workspaces: list[WorkspaceMembershipRead] = Field(
        description="The workspaces you belong to, in the order you joined them.")


class MeUpdate(RequestModel):
    display_name: DisplayName | None = Field(default=None, description="Null clears it.")

    @model_validator(mode="after")
    def _something_to_change(self) -> MeUpdate:
        if not self.model_fields_set:
            raise ValueError("Send at least one field to change: display_name.")
        return self
