"""The cookie session of the pages and its CSRF token.

A page session is a refresh-token family issued by the identity sign-in service (`identity_service.login`):
the cookie holds that family's opaque token (HttpOnly, SameSite=Strict, Secure behind https), which is never
rotated by pages and is revoked by sign-out, by an admin ending the user's sessions, or by its expiry. Each page
request resolves it to the same `Principal` as a bearer token, with the same `is_active` and "sessions revoked
at" checks, so pages and the API share one access policy.

CSRF: every visitor has a random `bidroom_csrf` cookie (HttpOnly, SameSite=Strict); the token put in each form
(and sent by page scripts as `X-CSRF-Token`) is an HMAC of it under a server key kept in the keys directory.
Every unsafe request to a page path must carry it."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from aiohttp import web

from core.principal import Principal
from core.settings import write_private_file
from core.tokens import refresh_token_hash

SESSION_COOKIE = "bidroom_session"
CSRF_COOKIE = "bidroom_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_KEY = web.AppKey("pages.csrf_key", bytes)
# set by the middleware when it made a new CSRF cookie for this request
REQ_CSRF = web.RequestKey("pages.csrf_cookie", str)
REQ_NEW_CSRF = web.RequestKey("pages.new_csrf", bool)
REQ_SESSION_TOKEN = web.RequestKey("pages.session_token", str)

# the same columns as web.middleware.PRINCIPAL_SQL, found through a live page session's refresh token
PAGE_PRINCIPAL_SQL = (
    "SELECT u.id, u.public_id, u.organisation_id, u.roles, u.is_active, u.sessions_revoked_at, u.username,"
    " u.display_name, u.totp_secret IS NOT NULL AS totp_enrolled, u.created_at, o.public_id AS org_public_id,"
    " o.name AS org_name, o.social_credit_code AS org_social_credit_code, o.kind AS org_kind,"
    " o.region_code AS org_region_code"
    " FROM refresh_token r JOIN app_user u ON u.id = r.user_id"
    " LEFT JOIN organisation o ON o.id = u.organisation_id"
    " WHERE r.token_hash = $1 AND r.revoked_at IS NULL AND r.rotated_at IS NULL AND r.expires_at > now()"
    " AND u.is_active AND (u.sessions_revoked_at IS NULL OR u.sessions_revoked_at < r.created_at)")


def load_csrf_key(keys_dir: Path) -> bytes:
    path = keys_dir / "pages_csrf.key"
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    write_private_file(path, key)
    return key


def csrf_token(key: bytes, cookie_value: str) -> str:
    return hmac.new(key, b"bidroom-csrf\n" + cookie_value.encode(), hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, cookie_value: str | None, given: str | None) -> bool:
    if not cookie_value or not given:
        return False
    return hmac.compare_digest(csrf_token(key, cookie_value), given)


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def secure_cookies(public_url: str) -> bool:
    return public_url.startswith("https://")


def set_cookie(response: web.StreamResponse, name: str, value: str, *, secure: bool, max_age: int | None = None
               ) -> None:
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=secure, path="/", max_age=max_age)


async def resolve(pool, token: str) -> Principal | None:
    row = await pool.fetchrow(PAGE_PRINCIPAL_SQL, refresh_token_hash(token))
    if row is None:
        return None
    return Principal(row["id"], row["public_id"], row["organisation_id"], frozenset(row["roles"]), row)
