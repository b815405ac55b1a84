"""Middleware: request id and access log, security headers, error mapping, the transaction, auth, idempotency."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
import uuid

import asyncpg
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.clients import client_address
from core.errors import DomainError, Forbidden, RateLimited, Unauthorized, Unprocessable
from core.settings import Settings
from web.api import RequestValidationFailed, json_response
from web.keys import (METRICS, PG_POOL, READ_SESSIONS, REFUSALS, REQ_ID, REQ_PRINCIPAL, REQ_UOW, SESSIONS, SETTINGS,
                      TOKENS, Principal, UnitOfWork, db)
from web.pages import session as page_session_cookies

log = logging.getLogger(__name__)
access_log = logging.getLogger("bidroom.access")

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                                "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout", 409: "conflict",
              411: "length_required", 413: "payload_too_large", 415: "unsupported_media_type",
              416: "range_not_satisfiable", 429: "rate_limited"}


def error_response(request: web.Request, status: int, code: str, message: str, details: dict | None = None,
                   headers: dict | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details or {},
                      "request_id": request.get(REQ_ID)}}
    return json_response(body, status=status, headers=headers)


def route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context(request: web.Request, handler):
    """Assign a request id, log one JSON access line, count metrics and add security headers."""
    rid = request.headers.get("X-Request-Id", "")
    request[REQ_ID] = rid if 0 < len(rid) <= 64 and rid.isprintable() else uuid.uuid4().hex
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:  # raised by aiohttp itself before our error mapping could see it
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.observe(request.method, route_label(request), status, elapsed)
        access_log.info("request", extra={"request_id": request[REQ_ID], "method": request.method,
                                          "path": request.path, "status": status,
                                          "ms": round(elapsed * 1000, 2)})
    response.headers["X-Request-Id"] = request[REQ_ID]
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if status >= 400 and large_body_unread(request):
        await answer_without_reading(request, response)
    return response


# a refused request's unread body up to this size is drained as usual (the connection stays open for the next
# request); a larger one, or one of unknown length, is never read
DRAIN_REFUSED_BODY_BYTES = 1024 * 1024
# how long the answer to a refused upload has to reach its client before the connection is closed
REFUSED_BODY_GRACE_S = 2.0


def large_body_unread(request: web.Request) -> bool:
    length = request.content_length
    return (request.body_exists and not request.content.is_eof()
            and (length is None or length > DRAIN_REFUSED_BODY_BYTES))


async def answer_without_reading(request: web.Request, response: web.StreamResponse) -> None:
    """Answer a request refused before its large body was read (413 from Content-Length, 429, 401 ...) without
    reading the body.

    aiohttp would otherwise read and discard the rest of the body, for up to its lingering time (10 s), to keep
    the connection alive: a client posting 32 MiB again as soon as it is refused makes the event loop discard
    gigabytes (bench/hostile_load.py). Here the answer is written in full with `Connection: close`, reading the
    socket stops, and the connection is closed after REFUSED_BODY_GRACE_S. A client that reads while it sends
    (aiohttp, curl, browsers) has its 4xx by then; closing any sooner would make the kernel reset the connection
    over the unread data and could destroy the answer on its way."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.pause_reading()
            await asyncio.sleep(REFUSED_BODY_GRACE_S)
    except (ConnectionError, OSError):
        pass  # the client has gone: nothing more to send
    request.protocol.force_close()  # no lingering: the rest of the body is never read


class DatabaseUnreachable(Exception):
    """Connecting to the database failed at the socket (the server is down or restarting)."""


# connection-level failures of asyncpg (outside SQLAlchemy, which wraps them in DBAPIError)
DATABASE_GONE = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.exceptions.OperatorInterventionError,
                 ConnectionRefusedError, ConnectionResetError, DatabaseUnreachable)


def database_unavailable(request: web.Request) -> web.Response:
    return error_response(request, 503, "database_unavailable", "the database did not complete the request; retry",
                          headers={"Retry-After": "1"})


def refused_client(request: web.Request) -> str:
    """Who a 429 refuses: the signed-in user, else the client's address (through the trusted proxies)."""
    principal = request.get(REQ_PRINCIPAL)
    if principal is not None:
        return f"user:{principal.user_id}"
    return "addr:" + client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                                    request.app[SETTINGS].trusted_proxies)


async def hold_refusal(request: web.Request, retry_after: int) -> None:
    """Hold a 429 before it is answered, for the price of a sleeping coroutine (no transaction or connection is
    held here: the transaction middleware is inside the error mapping).

    A client's first refusal is held up to `rate_limited_hold_s`, never longer than its Retry-After. A client that
    asks again before its last Retry-After has passed ignored it, and is held `rate_limited_repeat_hold_s`
    whatever the Retry-After: a flood of clients that never wait costs the server one request per client per
    hold, not one per round trip, and a client that waits as told never meets it. Jittered down to half, so that
    refused clients do not come back in step."""
    book = request.app[REFUSALS]
    client, now = refused_client(request), time.monotonic()
    hold = refusal_hold_s(request.app[SETTINGS], ignored=book.ignored(client, now), retry_after=retry_after,
                          jitter=random.uniform(0.5, 1.0))
    book.refused(client, now + hold + retry_after, now)
    await asyncio.sleep(hold)


def refusal_hold_s(settings: Settings, *, ignored: bool, retry_after: int, jitter: float) -> float:
    """How long a 429 is held (see `hold_refusal`); `jitter` is in [0.5, 1]."""
    if ignored:
        return settings.rate_limited_repeat_hold_s * jitter
    return min(settings.rate_limited_hold_s, retry_after) * jitter


@web.middleware
async def error_mapping(request: web.Request, handler):
    """The one place domain exceptions become HTTP errors; anything unexpected is a logged 500."""
    try:
        return await handler(request)
    except RateLimited as err:
        if err.status == 429:
            await hold_refusal(request, err.retry_after)
        return error_response(request, err.status, err.code, err.message, err.details,
                              headers={"Retry-After": str(err.retry_after)})
    except DomainError as err:
        return error_response(request, err.status, err.code, err.message, err.details)
    except RequestValidationFailed as err:
        return error_response(request, 422, "validation_failed", "the request does not match the schema",
                              {"errors": err.field_errors()})
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = HTTP_CODES.get(err.status, "http_error")
        message = err.reason if err.status != 404 else f"no route for {request.method} {request.path}"
        headers = {k: v for k, v in err.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
        return error_response(request, err.status, code, message, headers=headers)
    except DBAPIError as err:
        # a database refusal the domain layer did not anticipate, e.g. a lock timeout or a constraint
        if isinstance(err, IntegrityError):
            log.warning("integrity error", exc_info=err)
            return error_response(request, 409, "conflict", "the change conflicts with existing data")
        log.exception("database error", extra={"request_id": request.get(REQ_ID)})
        return database_unavailable(request)
    except DATABASE_GONE:
        # the connection itself failed (the database restarted or is starting up) on a path that talks to asyncpg
        # directly, such as the sign-in lookup; its pool replaces the connection, so a retry can succeed
        log.exception("database connection lost", extra={"request_id": request.get(REQ_ID)})
        return database_unavailable(request)
    except Exception:
        log.exception("unhandled error", extra={"request_id": request.get(REQ_ID)})
        return error_response(request, 500, "internal_error", "internal error; quote the request id")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def transaction(request: web.Request, handler):
    """One session and one transaction per request: the business change and its audit entries commit together.

    Safe methods change nothing, so their session runs in autocommit: the same code path without the BEGIN and
    COMMIT round trips.
    """
    factory = request.app[READ_SESSIONS] if request.method in SAFE_METHODS else request.app[SESSIONS]
    uow = UnitOfWork(factory)
    request[REQ_UOW] = uow
    try:
        response = await handler(request)
    except DomainError as err:
        # a recorded refusal (a counted failed sign-in, a revoked stolen session) commits what it recorded
        await uow.finish(commit=err.keep_changes)
        raise
    except BaseException:
        await uow.finish(commit=False)
        raise
    await uow.finish(commit=True)
    return response


# one lookup per authenticated request: the access checks plus the profile, which many handlers show
PRINCIPAL_SQL = (
    "SELECT u.id, u.public_id, u.organisation_id, u.roles, u.is_active, u.sessions_revoked_at, u.username,"
    " u.display_name, u.totp_secret IS NOT NULL AS totp_enrolled, u.created_at, o.public_id AS org_public_id,"
    " o.name AS org_name, o.social_credit_code AS org_social_credit_code, o.kind AS org_kind,"
    " o.region_code AS org_region_code"
    " FROM app_user u LEFT JOIN organisation o ON o.id = u.organisation_id WHERE u.public_id = $1")


METRICS_PATH = "/metrics"


@web.middleware
async def authentication(request: web.Request, handler):
    """Resolve a Bearer access token to a Principal; a bad token is refused even on public routes."""
    header = request.headers.get("Authorization")
    if header and request.path != METRICS_PATH:  # the scraper's bearer is the metrics token, not a user's
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected 'Authorization: Bearer <token>'", code="authentication_malformed")
        claims = request.app[TOKENS].verify(token.strip())
        try:
            row = await request.app[PG_POOL].fetchrow(PRINCIPAL_SQL, claims.sub)
        except OSError as err:  # no server behind the socket: answered 503 by error_mapping
            raise DatabaseUnreachable(str(err)) from err
        if row is None or not row["is_active"]:
            raise Unauthorized("account is disabled or gone", code="account_disabled")
        # iat has whole-second resolution: a token from the same second as the revocation is refused too
        revoked = row["sessions_revoked_at"]
        if revoked is not None and claims.iat <= revoked:
            raise Unauthorized("this session was ended; sign in again", code="token_revoked")
        request[REQ_PRINCIPAL] = Principal(row["id"], row["public_id"], row["organisation_id"],
                                           frozenset(row["roles"]), row)
    return await handler(request)


# paths that are not pages: the JSON API (bearer tokens only, never cookies), static files, probes
NOT_PAGES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_page_path(path: str) -> bool:
    return not path.startswith(NOT_PAGES) or path == "/api/v1/docs"


@web.middleware
async def page_session(request: web.Request, handler):
    """Pages only: the cookie session resolved to a Principal, and the CSRF check of every unsafe request.

    The token comes in the form field `csrf_token`, the `X-CSRF-Token` header (page scripts), or, for multipart
    uploads streamed by their handler, the `csrf_token` query parameter. A request without a valid one is
    refused with 403 `csrf_failed` before its handler runs. The API never reads these cookies."""
    key = request.app.get(page_session_cookies.CSRF_KEY)
    if key is None or not is_page_path(request.path):
        return await handler(request)
    cookies = page_session_cookies
    csrf_cookie = request.cookies.get(cookies.CSRF_COOKIE, "")
    fresh_csrf = not (16 <= len(csrf_cookie) <= 64)
    if fresh_csrf:
        csrf_cookie = cookies.new_csrf_cookie()
    request[cookies.REQ_CSRF] = csrf_cookie
    session_token = request.cookies.get(cookies.SESSION_COOKIE)
    stale_session = False
    if session_token and request.get(REQ_PRINCIPAL) is None:
        who = await cookies.resolve(request.app[PG_POOL], session_token) if len(session_token) <= 128 else None
        if who is not None:
            request[REQ_PRINCIPAL] = who
            request[cookies.REQ_SESSION_TOKEN] = session_token
        else:
            stale_session = True
    if request.method not in SAFE_METHODS:
        given = request.headers.get(cookies.CSRF_HEADER)
        if given is None and request.content_type == FORM_TYPES[0]:
            given = (await request.post()).get(cookies.CSRF_FIELD)
        if given is None:
            given = request.query.get(cookies.CSRF_FIELD)
        if fresh_csrf or not cookies.csrf_valid(key, csrf_cookie, given if isinstance(given, str) else None):
            raise Forbidden("the form has expired or did not come from this site; reload the page and try again",
                            code="csrf_failed")
    response = await handler(request)
    secure = cookies.secure_cookies(request.app[SETTINGS].public_url)
    if fresh_csrf and request[cookies.REQ_CSRF] == csrf_cookie:
        cookies.set_cookie(response, cookies.CSRF_COOKIE, csrf_cookie, secure=secure)
    if stale_session and cookies.SESSION_COOKIE not in response.cookies:
        response.del_cookie(cookies.SESSION_COOKIE, path="/")
    return response


# Idempotency records are kept this long; a key reused later starts afresh. An hourly job deletes older ones.
IDEMPOTENCY_TTL = "24 hours"
# Sign-in, token and enrolment answers carry credentials (tokens, one-time links, TOTP secrets): they are never
# stored, so never replayed.
NO_REPLAY_PREFIXES = ("/api/v1/auth/", "/api/v1/enrolment")


def _never_replayed(path: str) -> bool:
    return path.startswith(NO_REPLAY_PREFIXES) or "/enrolment" in path


CREDENTIAL_KEYS = (b'"access_token"', b'"refresh_token"', b'"totp_secret"', b'"totp_uri"', b'"provisioning_uri"',
                   b'"token"', b'"password"', b'"secret"')


def _replayable(request: web.Request, response: web.StreamResponse) -> bool:
    """Whether a response may be stored for replay: JSON, not an authentication answer, no credentials in it."""
    if not (isinstance(response, web.Response) and response.content_type == "application/json" and response.body):
        return False
    if _never_replayed(request.path):
        return False
    body = response.body if isinstance(response.body, bytes) else b""
    return not any(k in body for k in CREDENTIAL_KEYS)


async def sweep_idempotency_records(session, payload: dict) -> None:
    """Delete idempotency records older than IDEMPOTENCY_TTL (a scheduled job, rescheduled hourly)."""
    await session.execute(text(
        f"DELETE FROM idempotent_request WHERE created_at < now() - interval '{IDEMPOTENCY_TTL}'"))


@web.middleware
async def idempotency(request: web.Request, handler):
    """Replay the stored response for a repeated POST with the same Idempotency-Key (within IDEMPOTENCY_TTL)."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or _never_replayed(request.path):
        return await handler(request)
    if not (1 <= len(key) <= 128 and key.isprintable()):
        raise Unprocessable("Idempotency-Key must be 1-128 printable characters", code="invalid_idempotency_key")
    who = request.get(REQ_PRINCIPAL)
    owner = who.public_id if who else f"ip:{request.remote}"
    body = await request.read() if request.can_read_body and request.content_type.endswith("json") else b""
    digest = hashlib.sha256(f"{request.method} {request.path_qs}\n".encode() + body).hexdigest()
    session = db(request)
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"),
                          {"k": f"{owner}\n{key}"})
    # an expired record is gone for every purpose: the key starts afresh
    await session.execute(text(
        f"DELETE FROM idempotent_request WHERE owner = :o AND key = :k "
        f"AND created_at < now() - interval '{IDEMPOTENCY_TTL}'"), {"o": owner, "k": key})
    row = (await session.execute(text(
        "SELECT request_sha256, status, body FROM idempotent_request WHERE owner = :o AND key = :k"),
        {"o": owner, "k": key})).one_or_none()
    if row is not None:
        if row.request_sha256 != digest:
            raise Unprocessable("this Idempotency-Key was used for a different request",
                                code="idempotency_key_reused")
        return json_response(row.body, status=row.status, headers={"Idempotent-Replayed": "true"})
    response = await handler(request)
    if _replayable(request, response):
        await session.execute(text(
            "INSERT INTO idempotent_request (owner, key, request_sha256, status, body) "
            "VALUES (:o, :k, :h, :s, CAST(:b AS jsonb))"),
            {"o": owner, "k": key, "h": digest, "s": response.status, "b": response.body.decode()
             if isinstance(response.body, bytes) else json.dumps(response.body)})
    return response
