"""All models, imported here so Alembic and the app see one complete metadata."""

from app.models.api_key import ApiKey
from app.models.audit import AuditEvent
from app.models.aws_account import AccountStatus, AwsAccount
from app.models.base import Base
from app.models.finding_event import FindingDelta, FindingEvent, ScanFinding
from app.models.mute import MuteRule
from app.models.scan import Finding, ScanRun, ScanStatus
from app.models.user import AuthSession, RefreshToken, User
from app.models.workspace import Invitation, Membership, Role, Workspace

__all__ = [
    "AccountStatus", "ApiKey", "AuditEvent", "AuthSession", "AwsAccount", "Base", "Finding", "FindingDelta",
    "FindingEvent", "Invitation", "Membership", "MuteRule", "RefreshToken", "Role", "ScanFinding", "ScanRun",
    "ScanStatus", "User", "Workspace",
]
