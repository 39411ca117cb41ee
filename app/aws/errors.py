"""Typed errors of AWS access: a bad role ARN, a refused AssumeRole, any other failed call."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# Codes that mean "slow down", across protocols (botocore retries these too).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown", "RequestThrottled",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "EC2ThrottledException",
})
ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
    "AuthorizationError", "AuthorizationErrorException", "Forbidden", "ForbiddenException", "NotAuthorized",
})


class AwsError(Exception):
    """Base of every error raised by app.aws."""


class InvalidRoleArn(AwsError, ValueError):
    """A string that is not the ARN of an IAM role; the message says exactly what is wrong."""

    def __init__(self, arn: Any, reason: str) -> None:
        super().__init__(f"invalid IAM role ARN: {reason}")
        self.arn = arn
        self.reason = reason


class InvalidAssumeRoleInput(AwsError, ValueError):
    """A session name, External ID or duration AWS would reject; `field` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class SessionNotStarted(AwsError, RuntimeError):
    """A client was asked of an AssumedRole before `await start()` succeeded."""


class AwsCallError(AwsError):
    """An AWS call that failed: the service's error code and message, or a transport failure."""

    def __init__(
        self,
        *,
        service: str,
        operation: str,
        code: str,
        message: str,
        request_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(f"{service}:{operation} failed: {code}: {message}")
        self.service = service
        self.operation = operation
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status

    @property
    def is_throttling(self) -> bool:
        return self.code in THROTTLING_CODES

    @property
    def is_access_denied(self) -> bool:
        return self.code in ACCESS_DENIED_CODES

    @classmethod
    def from_exception(cls, exc: BaseException, *, service: str, operation: str) -> AwsCallError:
        """From botocore's ClientError (service answered an error) or BotoCoreError (no usable answer)."""
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            return cls(
                service=service,
                operation=exc.operation_name or operation,
                code=str(error.get("Code") or "Unknown"),
                message=str(error.get("Message") or ""),
                request_id=meta.get("RequestId"),
                http_status=meta.get("HTTPStatusCode"),
            )
        if isinstance(exc, BotoCoreError):
            return cls(service=service, operation=operation, code=type(exc).__name__, message=str(exc))
        return cls(service=service, operation=operation, code=type(exc).__name__, message=str(exc))


class AssumeRoleDenied(AwsCallError):
    """STS refused AssumeRole with AccessDenied: the role is gone, no longer trusts us, or wants another
    External ID. Callers mark the account's connection revoked."""

    def __init__(self, *, role_arn: str, message: str, request_id: str | None = None,
                 http_status: int | None = 403, code: str = "AccessDenied") -> None:
        super().__init__(service="sts", operation="AssumeRole", code=code, message=message,
                         request_id=request_id, http_status=http_status)
        self.role_arn = role_arn
