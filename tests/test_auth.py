"""Sign-up, sign-in, refresh rotation with reuse detection, sign-out, and access-token checks."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import argon2
import pytest
import structlog.testing
from jose import jwt
from sqlalchemy import select, update

from app.db import session_scope
from app.models import AuthSession, RefreshToken, User
from app.security import create_access_token, token_digest
from tests.auth_helpers import count_sessions, count_users, reset_rate_limits, without_request_specifics
from tests.conftest import PASSWORD, unique_email


@pytest.fixture(autouse=True)
def _fresh_limits():
    reset_rate_limits()


async def _login(client, email, password=PASSWORD, **kw):
    return await client.post("/v1/auth/login", json={"email": email, "password": password}, **kw)


async def _me(client, access_token):
    return await client.get("/v1/me", headers={"Authorization": f"Bearer {access_token}"})


# --- sign-up ------------------------------------------------------------------------------------------


async def test_signup_returns_tokens_and_user(client, settings):
    r = await client.post("/v1/auth/signup", json={"email": "Alice.Martin@Example.COM", "password": PASSWORD,
                                                   "display_name": "  Alice  "},
                          headers={"User-Agent": "pytest-agent/1.0"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["refresh_expires_in"] == settings.refresh_token_ttl_seconds
    assert body["access_token"].startswith("eyJ") and len(body["refresh_token"]) >= 43
    assert body["user"]["email"] == "alice.martin@example.com"
    assert body["user"]["display_name"] == "Alice"
    assert set(body["user"]) == {"id", "email", "display_name", "created_at"}
    async with session_scope() as s:
        user = await s.scalar(select(User).where(User.email == "alice.martin@example.com"))
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        auth_session = (await s.scalars(select(AuthSession).where(AuthSession.user_id == user.id))).one()
        assert auth_session.source_ip == "203.0.113.10" and auth_session.user_agent == "pytest-agent/1.0"
        token = (await s.scalars(select(RefreshToken).where(RefreshToken.session_id == auth_session.id))
                 ).one()
        # Only the digest is stored.
        assert token.token_hash == token_digest(body["refresh_token"])
        assert token.used_at is None
        ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
        assert datetime.now(UTC) + ttl - timedelta(minutes=1) < token.expires_at <= datetime.now(UTC) + ttl
    me = await _me(client, body["access_token"])
    assert me.status_code == 200 and me.json()["email"] == "alice.martin@example.com"


async def test_signup_trims_long_user_agent(client):
    r = await client.post("/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD},
                          headers={"User-Agent": "x" * 1000})
    assert r.status_code == 201
    async with session_scope() as s:
        auth_session = (await s.scalars(select(AuthSession))).one()
        assert auth_session.user_agent == "x" * 300


async def test_duplicate_email_is_409_whatever_the_case(client, signup):
    await signup(email="bob@example.com")
    r = await client.post("/v1/auth/signup", json={"email": "BOB@example.com", "password": PASSWORD + "!"})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/email-taken")
    assert await count_users() == 1 and await count_sessions() == 1


async def test_concurrent_signups_with_one_email_make_one_user(client):
    email = unique_email()
    answers = await asyncio.gather(*[
        client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}) for _ in range(3)
    ])
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409], [r.text for r in answers]
    assert await count_users() == 1


@pytest.mark.parametrize("password, message", [
    ("short pass", "at least 12 characters"),
    ("x" * 257, "at most 256 characters"),
    (" " * 20, "only spaces"),
])
async def test_signup_rejects_bad_passwords_clearly(client, password, message):
    r = await client.post("/v1/auth/signup", json={"email": unique_email(), "password": password})
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"][0]["loc"] == ["body", "password"]
    assert message in body["errors"][0]["message"]
    assert await count_users() == 0


async def test_signup_accepts_password_at_the_bounds_without_trimming(client):
    email = unique_email()
    password = "  " + "p" * 252 + "  "  # 256 characters, spaces included
    r = await client.post("/v1/auth/signup", json={"email": email, "password": password})
    assert r.status_code == 201
    assert (await _login(client, email, password)).status_code == 200
    # The spaces are part of the password.
    assert (await _login(client, email, password.strip())).status_code == 401


async def test_signup_rejects_the_email_as_password(client):
    email = "carol.longname@example.com"
    r = await client.post("/v1/auth/signup", json={"email": email, "password": email.upper()})
    assert r.status_code == 422
    assert "e-mail" in r.json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email", "password": PASSWORD}, "email"),
    ({"email": "a@example.com", "password": PASSWORD, "is_admin": True}, "is_admin"),
    ({"password": PASSWORD}, "email"),
    ({"email": "a@example.com", "password": PASSWORD, "display_name": ""}, "display_name"),
    ({"email": "a@example.com", "password": PASSWORD, "display_name": "bad\nname"}, "display_name"),
])
async def test_signup_invalid_or_unknown_fields_are_422_problems(client, body, field):
    r = await client.post("/v1/auth/signup", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 422 and problem["errors"]
    assert any(e["loc"][-1] == field for e in problem["errors"]), problem
    assert await count_users() == 0


# --- sign-in ------------------------------------------------------------------------------------------


async def test_login_happy_path_opens_a_new_session(client, signup):
    account = await signup()
    r = await _login(client, account["email"].upper())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["email"] == account["email"] and body["token_type"] == "bearer"
    assert body["access_token"] != account["access_token"]
    assert await count_sessions(body["user"]["id"]) == 2
    assert (await _me(client, body["access_token"])).status_code == 200


async def test_wrong_email_and_wrong_password_get_the_same_answer(client, signup, monkeypatch):
    account = await signup()
    # Spy on argon2 itself (not on our code): both paths must run one full verification.
    verified = []
    original = argon2.PasswordHasher.verify

    def counting_verify(self, hash, password):
        verified.append(hash)
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    wrong_password = await _login(client, account["email"], PASSWORD + "x")
    wrong_email = await _login(client, unique_email("nobody"), PASSWORD)
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert wrong_email.json()["type"].endswith("/invalid-credentials")
    assert without_request_specifics(wrong_password.json()) == without_request_specifics(wrong_email.json())
    assert wrong_password.headers["www-authenticate"] == wrong_email.headers["www-authenticate"] == "Bearer"
    assert len(verified) == 2 and all(h.startswith("$argon2id$") for h in verified)
    assert await count_sessions() == 1  # only the sign-up's


async def test_inactive_user_gets_the_same_answer(client, signup):
    account = await signup()
    async with session_scope() as s:
        await s.execute(update(User).values(is_active=False))
    r = await _login(client, account["email"])
    unknown = await _login(client, unique_email())
    assert r.status_code == 401
    assert without_request_specifics(r.json()) == without_request_specifics(unknown.json())
    # Its existing tokens stop working too.
    assert (await _me(client, account["access_token"])).status_code == 401
    r = await client.post("/v1/auth/refresh", json={"refresh_token": account["refresh_token"]})
    assert r.status_code == 401


async def test_login_rehashes_outdated_hashes(client, signup):
    account = await signup()
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    async with session_scope() as s:
        await s.execute(update(User).values(password_hash=weak.hash(PASSWORD)))
    assert (await _login(client, account["email"])).status_code == 200
    async with session_scope() as s:
        new_hash = await s.scalar(select(User.password_hash))
    assert argon2.extract_parameters(new_hash).memory_cost > 8192
    assert not argon2.PasswordHasher().check_needs_rehash(new_hash)
    assert (await _login(client, account["email"])).status_code == 200


async def test_login_unknown_field_is_422(client):
    body = {"email": "a@example.com", "password": "x", "remember": True}
    r = await client.post("/v1/auth/login", json=body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "remember"]


# --- refresh ------------------------------------------------------------------------------------------


async def _refresh(client, token):
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_old_token_is_spent(client, signup):
    account = await signup()
    r = await _refresh(client, account["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refresh_token"] != account["refresh_token"]
    assert body["access_token"] != account["access_token"]
    assert body["user"]["id"] == account["user"]["id"]
    assert (await _me(client, body["access_token"])).status_code == 200
    async with session_scope() as s:
        old = await s.scalar(select(RefreshToken).where(
            RefreshToken.token_hash == token_digest(account["refresh_token"])))
        assert old.used_at is not None
        auth_session = await s.get(AuthSession, old.session_id)
        assert auth_session.last_refreshed_at is not None
    # The successor works, once.
    r2 = await _refresh(client, body["refresh_token"])
    assert r2.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_family(client, signup):
    account = await signup()
    rotated = (await _refresh(client, account["refresh_token"])).json()
    # Another, unrelated sign-in of the same user must survive.
    other = (await _login(client, account["email"])).json()

    r = await _refresh(client, account["refresh_token"])  # the old one, again: theft signal
    assert r.status_code == 401
    assert r.json()["type"].endswith("/invalid-refresh-token")
    # The revocation was committed although the request failed.
    async with session_scope() as s:
        sessions = {a.id: a for a in (await s.scalars(select(AuthSession))).all()}
    revoked = [a for a in sessions.values() if a.revoked_at is not None]
    assert len(revoked) == 1 and revoked[0].revoke_reason == "refresh_token_reuse"
    # The newer refresh token and the access tokens of the family are dead.
    assert (await _refresh(client, rotated["refresh_token"])).status_code == 401
    assert (await _me(client, rotated["access_token"])).status_code == 401
    assert (await _me(client, account["access_token"])).status_code == 401
    # The other sign-in is untouched.
    assert (await _me(client, other["access_token"])).status_code == 200
    assert (await _refresh(client, other["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_at_most_one_through(client, signup):
    account = await signup()
    answers = await asyncio.gather(*[_refresh(client, account["refresh_token"]) for _ in range(4)])
    codes = [r.status_code for r in answers]
    assert codes.count(200) <= 1 and codes.count(401) >= 3, codes
    assert all(c in (200, 401) for c in codes)
    async with session_scope() as s:
        # One successor at most was issued and committed.
        assert len((await s.scalars(select(RefreshToken))).all()) == 1 + codes.count(200)
        auth_session = (await s.scalars(select(AuthSession))).one()
    # The losers presented a spent token, so the family is revoked: nothing issued from it works.
    assert auth_session.revoke_reason == "refresh_token_reuse"
    for r in answers:
        if r.status_code == 200:
            assert (await _refresh(client, r.json()["refresh_token"])).status_code == 401


async def test_expired_refresh_token_is_401_and_revokes_nothing(client, signup):
    account = await signup()
    async with session_scope() as s:
        await s.execute(update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = await _refresh(client, account["refresh_token"])
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-refresh-token")
    assert (await _me(client, account["access_token"])).status_code == 200


@pytest.mark.parametrize("token", ["not-a-token", "x" * 43])
async def test_unknown_refresh_token_is_401(client, token):
    r = await _refresh(client, token)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_refresh_validation(client):
    assert (await client.post("/v1/auth/refresh", json={})).status_code == 422
    r = await client.post("/v1/auth/refresh", json={"refresh_token": "a", "access_token": "b"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "access_token"]


# --- sign-out -----------------------------------------------------------------------------------------


async def test_logout_ends_the_session_at_once(client, signup):
    account = await signup()
    other = (await _login(client, account["email"])).json()
    r = await client.post("/v1/auth/logout", headers=account["headers"])
    assert r.status_code == 204 and r.content == b""
    assert (await _me(client, account["access_token"])).status_code == 401
    assert (await _refresh(client, account["refresh_token"])).status_code == 401
    async with session_scope() as s:
        reasons = sorted(str(a.revoke_reason) for a in (await s.scalars(select(AuthSession))).all())
    assert reasons == ["None", "logout"]
    # A second logout with the dead token is refused; the other sign-in still works.
    assert (await client.post("/v1/auth/logout", headers=account["headers"])).status_code == 401
    assert (await _me(client, other["access_token"])).status_code == 200


async def test_logout_needs_a_token(client):
    r = await client.post("/v1/auth/logout")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


# --- access tokens ------------------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(account: dict, **overrides) -> dict:
    claims = jwt.get_unverified_claims(account["access_token"])
    claims.update(overrides)
    return claims


async def test_tampered_access_tokens_are_401(client, signup, settings):
    account = await signup()
    secret = settings.resolved_jwt_secret()
    claims = _claims(account)
    forged = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong key": jwt.encode(claims, "another-secret-" + "k" * 40, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(account, aud="someone-else"), secret, algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(account, iss="evil"), secret, algorithm="HS256"),
        "other algorithm": jwt.encode(claims, secret, algorithm="HS512"),
        "not an access token": jwt.encode(_claims(account, typ="refresh"), secret, algorithm="HS256"),
        "unknown session": jwt.encode(_claims(account, sid=str(uuid.uuid4())), secret,
                                      algorithm="HS256"),
        "payload edited": ".".join([account["access_token"].split(".")[0],
                                    _b64(_claims(account, sub=str(uuid.uuid4()))),
                                    account["access_token"].split(".")[2]]),
    }
    past = datetime.now(UTC) - timedelta(hours=2)
    forged["expired"], _ = create_access_token(uuid.UUID(account["user"]["id"]),
                                               uuid.UUID(claims["sid"]), now=past)
    for label, token in forged.items():
        r = await _me(client, token)
        assert r.status_code == 401, label
        assert r.headers["content-type"].startswith("application/problem+json"), label
    # The genuine token still works: the checks above failed on the forgery, not on the account.
    assert (await _me(client, account["access_token"])).status_code == 200


async def test_expired_token_is_refused_but_a_fresh_one_for_the_same_session_works(client, signup):
    account = await signup()
    sid = uuid.UUID(jwt.get_unverified_claims(account["access_token"])["sid"])
    user_id = uuid.UUID(account["user"]["id"])
    expired, _ = create_access_token(user_id, sid, now=datetime.now(UTC) - timedelta(hours=1))
    fresh, _ = create_access_token(user_id, sid)
    assert (await _me(client, expired)).status_code == 401
    assert (await _me(client, fresh)).status_code == 200


async def test_tokens_never_reach_the_logs(client, signup):
    # The events as our code emits them, before the redaction processor: secrets must not be there at all.
    with structlog.testing.capture_logs() as events:
        account = await signup()
        rotated = (await _refresh(client, account["refresh_token"])).json()
        await _refresh(client, account["refresh_token"])  # reuse: logged as a warning
        await _login(client, account["email"], PASSWORD + "wrong")
        await client.post("/v1/auth/logout", headers=account["headers"])
    names = {e["event"] for e in events}
    assert {"user_signed_up", "refresh_token_reuse", "login_failed"} <= names, names
    logs = repr(events)
    for secret in (account["access_token"], account["refresh_token"], rotated["refresh_token"],
                   rotated["access_token"], PASSWORD, account["email"]):
        assert secret not in logs
