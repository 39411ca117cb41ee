"""Password hashing (Argon2id), access JWTs (HS256 only) and digests of opaque tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from jose import JWTError, jwt

from app.config import get_settings

JWT_ALGORITHM = "HS256"  # one explicit algorithm: "none" and key-confusion attacks are refused

_hasher = PasswordHasher()  # argon2-cffi defaults to Argon2id with RFC 9106 low-memory parameters
# Verified when the e-mail is unknown, so a wrong e-mail costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """SHA-256 is right for high-entropy random tokens (unlike passwords): fast lookups by digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def create_access_token(user_id: uuid.UUID, session_id: uuid.UUID, *, now: datetime | None = None) -> tuple[str, int]:
    s = get_settings()
    now = now or datetime.now(UTC)
    ttl = s.access_token_ttl_seconds
    claims = {
        "iss": s.jwt_issuer, "aud": s.jwt_audience, "sub": str(user_id), "sid": str(session_id),
        "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()), "typ": "access",
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, s.resolved_jwt_secret(), algorithm=JWT_ALGORITHM), ttl


def decode_access_token(token: str) -> dict[str, Any] | None:
    """Return the claims of a valid access token, or None; never raises on bad input."""
    s = get_settings()
    try:
        claims = jwt.decode(
            token, s.resolved_jwt_secret(), algorithms=[JWT_ALGORITHM], audience=s.jwt_audience,
            issuer=s.jwt_issuer,
            options={"require_exp": True, "require_iat": True, "require_sub": True, "require_aud": True,
                     "require_iss": True},
        )
    except (JWTError, ValueError, TypeError, AttributeError):
        return None
    if claims.get("typ") != "access" or "sid" not in claims:
        return None
    try:
        uuid.UUID(str(claims["sub"]))
        uuid.UUID(str(claims["sid"]))
    except ValueError:
        return None
    return claims
