"""Pages everyone uses: the language switch, sign-in and sign-out (the identity sign-in service, TOTP for staff)."""
from __future__ import annotations

from aiohttp import web

from core import identity_service as svc
from core.errors import DomainError, Unauthorized
from identity.routes import _reserve, _throttle, client_address, totp_vault
from web.keys import SETTINGS, TOKENS, db
from web.pages import i18n
from web.pages.routing import FormError, Pages, safe_next, see_other
from web.pages.session import (CSRF_COOKIE, REQ_CSRF, REQ_SESSION_TOKEN, SESSION_COOKIE, new_csrf_cookie,
                               secure_cookies, set_cookie)

pages = Pages()
YEAR_S = 365 * 24 * 3600


@pages.get("/lang/{lang}")
async def switch_language(request: web.Request, who):
    """The language switch: a link (a preference cookie, no account state), back to the page it came from."""
    lang = request.match_info["lang"]
    response = see_other(safe_next(request.query.get("next")))
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, lang, samesite="Strict", path="/", max_age=YEAR_S, httponly=True,
                            secure=secure_cookies(request.app[SETTINGS].public_url))
    return response


@pages.get("/signin", "signin.html")
async def sign_in_form(request: web.Request, who):
    return {"next": safe_next(request.query.get("next"), ""), "username": ""}


def start_session(request: web.Request, response: web.StreamResponse, refresh_token: str) -> None:
    """Set the session cookie and a new CSRF cookie (a token from before sign-in is not carried over)."""
    secure = secure_cookies(request.app[SETTINGS].public_url)
    set_cookie(response, SESSION_COOKIE, refresh_token, secure=secure,
               max_age=request.app[SETTINGS].refresh_token_ttl_s)
    request[REQ_CSRF] = new_csrf_cookie()
    set_cookie(response, CSRF_COOKIE, request[REQ_CSRF], secure=secure)


def landing(roles) -> str:
    for role, page in (("bidder", "/me/bids"), ("expert", "/me/invitations"), ("supervisor", "/supervise"),
                       ("agent", "/manage"), ("admin", "/admin/users")):
        if role in roles:
            return page
    return "/tenders"


@pages.post("/signin")
async def sign_in(request: web.Request, who):
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    totp = str(form.get("totp", "")).strip() or None
    nxt = safe_next(form.get("next"), "")
    context = {"next": nxt, "username": username}
    client = client_address(request)
    try:
        await _reserve(request, username, client)
        try:
            tokens = await svc.login(db(request), username=username, password=password, totp=totp,
                                     issuer=request.app[TOKENS],
                                     refresh_ttl_s=request.app[SETTINGS].refresh_token_ttl_s, client=client,
                                     vault=totp_vault(request))
        except Unauthorized as err:
            await svc.record_login_failure(db(request), username=username, throttle=_throttle(request))
            err.keep_changes = True
            raise
    except DomainError as err:
        raise FormError(err, "signin.html", {**context, "needs_totp": err.code in ("totp_required",
                                                                                  "totp_invalid", "totp_reused")})
    response = see_other(nxt or landing(tokens.user.roles))
    start_session(request, response, tokens.refresh_token)
    return response


@pages.post("/signout")
async def sign_out(request: web.Request, who):
    token = request.get(REQ_SESSION_TOKEN)
    if token and who is not None:
        await svc.logout(db(request), token, actor=who.public_id)
    response = see_other("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
