"""Sign-up, sign-in, token refresh and sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app import ratelimit
from app.api.deps import CurrentPrincipal, CurrentUser, SessionDep, client_ip
from app.errors import Forbidden, error_responses
from app.schemas.auth import LoginRequest, RefreshRequest, SignupRequest, TokenRead, UserRead
from app.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_read(tokens: auth_service.IssuedTokens) -> TokenRead:
    return TokenRead(access_token=tokens.access_token, expires_in=tokens.expires_in,
                     refresh_token=tokens.refresh_token, refresh_expires_in=tokens.refresh_expires_in,
                     user=UserRead.model_validate(tokens.user))


@router.post(
    "/signup", name="auth_signup", status_code=status.HTTP_201_CREATED, response_model=TokenRead,
    summary="Create an account",
    description="Creates a user and signs them in. E-mail addresses are case-insensitive; passwords need "
                "12 to 256 characters. Limited per client address and per e-mail address (429 with "
                "Retry-After).",
    responses=error_responses(400, 409, 422, 429),
)
async def auth_signup(body: SignupRequest, request: Request, session: SessionDep) -> TokenRead:
    ip = client_ip(request)
    await ratelimit.enforce("signup", address=ip, email=body.email)
    tokens = await auth_service.signup(session, email=body.email, password=body.password,
                                       display_name=body.display_name, source_ip=ip,
                                       user_agent=request.headers.get("user-agent"))
    return _token_read(tokens)


@router.post(
    "/login", name="auth_login", response_model=TokenRead, summary="Sign in",
    description="Exchanges an e-mail and password for an access token and a refresh token. A wrong e-mail "
                "and a wrong password get the same answer. Limited per client address and per e-mail "
                "address (429 with Retry-After); a successful sign-in clears the e-mail's count.",
    responses=error_responses(400, 401, 422, 429),
)
async def auth_login(body: LoginRequest, request: Request, session: SessionDep) -> TokenRead:
    ip = client_ip(request)
    await ratelimit.enforce("login", address=ip, email=body.email)
    tokens = await auth_service.login(session, email=body.email, password=body.password, source_ip=ip,
                                      user_agent=request.headers.get("user-agent"))
    await ratelimit.forget_email("login", body.email)
    return _token_read(tokens)


@router.post(
    "/refresh", name="auth_refresh", response_model=TokenRead, summary="Renew tokens",
    description="Spends a refresh token and returns a new access token and a new refresh token. Each refresh "
                "token works once: presenting a spent one again ends the whole sign-in (every token "
                "issued from it), since it means the token was copied.",
    responses=error_responses(400, 401, 422),
)
async def auth_refresh(body: RefreshRequest, session: SessionDep) -> TokenRead:
    return _token_read(await auth_service.refresh(session, refresh_token=body.refresh_token))


@router.post(
    "/logout", name="auth_logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
    response_model=None,
    summary="Sign out",
    description="Ends the sign-in that issued this access token: the access token stops working at once and "
                "its refresh tokens can no longer be used. Other sign-ins of the same user are not affected.",
    responses=error_responses(401, 403),
)
async def auth_logout(_user: CurrentUser, principal: CurrentPrincipal, session: SessionDep) -> Response:
    if principal.session_id is None:  # CurrentUser admits only access tokens, which always carry one
        raise Forbidden("Only a signed-in user can sign out.")
    await auth_service.logout(session, session_id=principal.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
