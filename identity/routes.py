"""HTTP endpoints for registration, sign-in, token refresh, logout, /me and account administration."""
from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web
from sqlalchemy import text

from core import clients
from core import identity_service as svc
from core.errors import RateLimited, Unauthorized
from core.identity_models import Organisation, User
from core.identity_schemas import (ChangePasswordIn, CreatedUserOut, CreateOrganisationIn, CreateUserIn, ListQuery,
                                   LoginIn, OrganisationOut, RefreshIn, RegisterIn, TokenOut, UserOut, UserPage)
from core.scheduler import schedule
from core.totp import TotpVault
from web.api import Api, json_response
from web.keys import REQ_PRINCIPAL, SESSIONS, SETTINGS, TOKENS, Principal, db

api = Api("identity")
REFRESH_COOKIE = "__Host-bidroom_refresh"
TOTP_VAULT = web.AppKey("identity.totp_vault", TotpVault)


THROTTLE_SWEEP = "identity.throttle_sweep"


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """The TOTP vault (secrets at rest sealed under the master secret in the keys directory), and the first
    sweep of old sign-in counters."""
    app[TOTP_VAULT] = TotpVault.for_keys_dir(app[SETTINGS].keys_dir)
    if app[SETTINGS].run_scheduler:
        async with app[SESSIONS]() as session, session.begin():
            await schedule(session, THROTTLE_SWEEP, delay_s=3600, dedupe_key=THROTTLE_SWEEP)
    yield


def register_jobs(app: web.Application, registry) -> None:
    settings = app[SETTINGS]

    async def sweep(session, payload: dict) -> None:
        """Hourly: drop sign-in counters that no longer limit anything; reschedules itself."""
        await svc.sweep_login_throttle(session, window_s=settings.login_window_s,
                                       backoff_max_s=settings.login_account_backoff_max_s)
        await schedule(session, THROTTLE_SWEEP, delay_s=3600, dedupe_key=THROTTLE_SWEEP)
    registry.register(THROTTLE_SWEEP, sweep)


def totp_vault(request: web.Request) -> TotpVault:
    return request.app[TOTP_VAULT]


def _throttle(request: web.Request) -> svc.Throttle:
    s = request.app[SETTINGS]
    return svc.Throttle(s.login_max_failures_account, s.login_max_failures_ip, s.login_window_s,
                        s.login_account_backoff_after, s.login_account_backoff_max_s)


def client_address(request: web.Request) -> str:
    """The client's address: the direct peer, or, when the peer is a trusted proxy, from X-Forwarded-For
    (core.clients.client_address has the rule)."""
    return clients.client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                                  request.app[SETTINGS].trusted_proxies)


async def _reserve(request: web.Request, username: str, client: str) -> None:
    """Count the attempt in a transaction of its own, committed before the password is checked."""
    refused = None
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            await svc.reserve_attempt(session, username=username, client=client, throttle=_throttle(request))
        except RateLimited as err:
            refused = err  # raised after the commit: the refused attempt counts too
    if refused is not None:
        raise refused


def user_out(user: User, org: Organisation | None) -> UserOut:
    return UserOut(public_id=user.public_id, username=user.username, display_name=user.display_name,
                   roles=list(user.roles), is_active=user.is_active, totp_enrolled=user.totp_secret is not None,
                   created_at=user.created_at,
                   organisation=OrganisationOut(public_id=org.public_id, name=org.name, kind=org.kind,
                                                social_credit_code=org.social_credit_code,
                                                region_code=org.region_code) if org else None)


def _token_response(request: web.Request, tokens: svc.IssuedTokens, status: int = 200) -> web.Response:
    response = json_response(TokenOut(access_token=tokens.access_token, expires_in=tokens.expires_in,
                                      refresh_token=tokens.refresh_token), status=status)
    s = request.app[SETTINGS]
    # __Host- cookies must be Secure with Path=/ and no Domain
    response.set_cookie(REFRESH_COOKIE, tokens.refresh_token, httponly=True, secure=True, samesite="Strict",
                        path="/", max_age=s.refresh_token_ttl_s)
    response.headers["Cache-Control"] = "no-store"
    return response


@api.post("/api/v1/auth/register", summary="Register a bidder or intermediary with its organisation",
          body=RegisterIn, response=UserOut, status=201, auth=False, errors=(409, 429))
async def register(request: web.Request, body: RegisterIn):
    """A name that cannot be had answers like any invalid field (see identity_service.UsernameUnavailable); such
    refusals count against the client address like failed sign-ins, so names cannot be probed in bulk."""
    key = f"reg:{client_address(request)}"
    s = request.app[SETTINGS]
    row = (await db(request).execute(text(
        "SELECT failures, EXTRACT(EPOCH FROM (window_started_at + make_interval(secs => :w) - now())) AS left_s "
        "FROM login_throttle WHERE key = :k AND window_started_at > now() - make_interval(secs => :w)"),
        {"k": key, "w": s.login_window_s})).one_or_none()
    if row is not None and row.failures >= s.login_max_failures_ip:
        raise RateLimited("too many refused registrations from this address; wait before trying again",
                          code="registration_throttled", retry_after=max(1, int(row.left_s) + 1))
    try:
        user = await svc.register(db(request), username=body.username, password=body.password,
                                  display_name=body.display_name, role=body.role, org_name=body.organisation.name,
                                  social_credit_code=body.organisation.social_credit_code,
                                  region_code=body.organisation.region_code, email=body.email, phone=body.phone)
    except svc.UsernameUnavailable as refused:
        async with request.app[SESSIONS]() as session, session.begin():
            await session.execute(text(
                "INSERT INTO login_throttle AS t (key, failures, window_started_at) VALUES (:k, 1, now()) "
                "ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN t.window_started_at > now() - "
                "make_interval(secs => :w) THEN t.failures + 1 ELSE 1 END, window_started_at = CASE WHEN "
                "t.window_started_at > now() - make_interval(secs => :w) THEN t.window_started_at ELSE now() END"),
                {"k": key, "w": s.login_window_s})
        raise refused
    return json_response(user_out(user, await svc.organisation_of(db(request), user)), status=201)


@api.post("/api/v1/auth/login", summary="Sign in; returns an access token and a rotating refresh token",
          body=LoginIn, response=TokenOut, auth=False, errors=(429,))
async def login(request: web.Request, body: LoginIn):
    """Throttled per (account, client), per client and with a per-account backoff: see
    identity_service.reserve_attempt. The attempt is counted before the password is looked at."""
    client = client_address(request)
    await _reserve(request, body.username, client)
    try:
        tokens = await svc.login(db(request), username=body.username, password=body.password, totp=body.totp,
                                 issuer=request.app[TOKENS], refresh_ttl_s=request.app[SETTINGS].refresh_token_ttl_s,
                                 client=client, vault=totp_vault(request))
    except Unauthorized as err:
        await svc.record_login_failure(db(request), username=body.username, throttle=_throttle(request))
        err.keep_changes = True
        raise
    return _token_response(request, tokens)


def _refresh_token_from(request: web.Request, body: RefreshIn) -> str:
    token = body.refresh_token or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthorized("no refresh token in the body or cookie", code="refresh_missing")
    return token


@api.post("/api/v1/auth/refresh", summary="Rotate the refresh token; reuse of an old one ends the session",
          body=RefreshIn, response=TokenOut, auth=False)
async def refresh(request: web.Request, body: RefreshIn):
    token = _refresh_token_from(request, body)
    try:
        tokens = await svc.rotate_refresh(db(request), token, request.app[TOKENS],
                                          refresh_ttl_s=request.app[SETTINGS].refresh_token_ttl_s)
    except svc.RefreshReused as reuse:
        await svc.revoke_family(db(request), reuse.family_id, actor="system", reason="refresh token reused")
        raise Unauthorized("this refresh token was already used; the session has been ended for safety",
                           code="refresh_reused", keep_changes=True) from reuse
    return _token_response(request, tokens)


@api.post("/api/v1/auth/logout", summary="End this session (the refresh token's family)", body=RefreshIn,
          status=204, auth=False)
async def logout(request: web.Request, body: RefreshIn):
    token = body.refresh_token or request.cookies.get(REFRESH_COOKIE)
    if token:
        who = request.get(REQ_PRINCIPAL)
        await svc.logout(db(request), token, actor=who.public_id if who else "system")
    response = web.Response(status=204)
    response.del_cookie(REFRESH_COOKIE, path="/", secure=True, samesite="Strict")
    return response


@api.get("/api/v1/me", summary="The signed-in user", response=UserOut)
async def me(request: web.Request, who: Principal):
    return svc.profile_json(who.profile)


@api.post("/api/v1/me/password", summary="Change your password; your other sessions end", body=ChangePasswordIn,
          status=204, errors=(401, 422))
async def change_password(request: web.Request, who: Principal, body: ChangePasswordIn):
    """The current password is required. Refresh tokens of every other session are revoked; the session whose
    refresh token is sent (body or cookie) stays signed in."""
    keep = await svc.session_family(db(request), body.refresh_token or request.cookies.get(REFRESH_COOKIE),
                                    who.public_id)
    await svc.change_password(db(request), who, current_password=body.current_password,
                              new_password=body.new_password, keep_family=keep)
    return web.Response(status=204)


@api.post("/api/v1/admin/users", summary="Create a staff, expert or supervisor account", body=CreateUserIn,
          response=CreatedUserOut, status=201, roles=("admin",), errors=(404, 409))
async def create_user(request: web.Request, who: Principal, body: CreateUserIn):
    user, uri = await svc.create_user(db(request), actor=who.public_id, username=body.username,
                                      password=body.password, display_name=body.display_name, roles=body.roles,
                                      organisation_public_id=body.organisation_id, email=body.email,
                                      phone=body.phone, vault=totp_vault(request))
    return CreatedUserOut(user=user_out(user, await svc.organisation_of(db(request), user)),
                          totp_provisioning_uri=uri)


@api.get("/api/v1/admin/users", summary="List accounts (keyset pagination)", query=ListQuery, response=UserPage,
         roles=("admin",))
async def list_users(request: web.Request, who: Principal, query: ListQuery):
    rows = await svc.list_users(db(request), after_public_id=query.cursor, limit=query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return UserPage(items=[user_out(u, o) for u, o in rows],
                    next=f"/api/v1/admin/users?cursor={rows[-1][0].public_id}&limit={query.limit}" if more else None)


@api.post("/api/v1/admin/users/{user_id}/revoke-sessions", summary="End every session of a user",
          status=204, roles=("admin",), errors=(404,))
async def revoke_sessions(request: web.Request, who: Principal):
    await svc.kill_sessions(db(request), actor=who.public_id, user_public_id=request.match_info["user_id"])
    return web.Response(status=204)


@api.post("/api/v1/admin/organisations", summary="Register an organisation (tenderer, agency, employer…)",
          body=CreateOrganisationIn, response=OrganisationOut, status=201, roles=("admin",), errors=(409,))
async def create_organisation(request: web.Request, who: Principal, body: CreateOrganisationIn):
    org = await svc.create_organisation(db(request), actor=who.public_id, name=body.name,
                                        social_credit_code=body.social_credit_code, kind=body.kind,
                                        region_code=body.region_code)
    return OrganisationOut(public_id=org.public_id, name=org.name, social_credit_code=org.social_credit_code,
                           kind=org.kind, region_code=org.region_code)
