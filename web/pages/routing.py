"""Declaring pages once: `Pages.get/post` route a handler that returns a template's context (or a response),
with the signed-in user and role checks of the API (`web.api.require_principal`), and the common context
(language, user, CSRF token, formatting helpers). `page_errors` turns a refusal on a page path into a page in
the reader's language (or a JSON error with a translated message for page scripts)."""
from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from pydantic import ValidationError

from core.errors import DomainError, Unauthorized
from web.api import RequestValidationFailed, json_response, require_principal
from web.keys import REQ_ID, REQ_PRINCIPAL, SETTINGS, db
from web.middleware import is_page_path
from web.pages import i18n
from web.pages.errors import error_message
from web.pages.session import CSRF_KEY, REQ_CSRF, csrf_token

Handler = Callable[..., Awaitable[Any]]


class FormError(DomainError):
    """A refusal shown on the form that caused it: the template is rendered again with the values given."""

    def __init__(self, err: DomainError, template: str, context: dict[str, Any]):
        super().__init__(err.message, code=err.code, details=err.details, keep_changes=err.keep_changes)
        self.status = err.status
        self.cause = err
        self.template = template
        self.context = context


def validated(model, data: dict[str, Any]):
    """A form's values checked by the API's own request model, refused as the API would refuse the body."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RequestValidationFailed("body", err) from err


def form_rows(form, names: tuple[str, ...], count: int, prefix: str = "") -> list[dict[str, str]]:
    """A form's repeated rows (inputs named `prefix + name` once per row: lots, criteria, draw conditions) as dicts
    keyed by `name`, values stripped, padded with empty rows to at least `count` for the page."""
    columns = {n: [str(v).strip() for v in form.getall(prefix + n, [])] for n in names}
    width = max([count, *(len(v) for v in columns.values())])
    return [{n: (columns[n][i] if i < len(columns[n]) else "") for n in names} for i in range(width)]


def as_refusal(err: Exception) -> DomainError:
    """A domain refusal as it is; a body the request model refused as 422 validation_failed."""
    if isinstance(err, RequestValidationFailed):
        bad = DomainError("the request does not match the schema", code="validation_failed")
        bad.status = 422
        return bad
    return err


async def act(request: web.Request, call: Callable[[], Awaitable[Any]], *, template: str,
              context: Callable[[], Awaitable[dict[str, Any]]], then: str) -> web.Response:
    """A form post that runs an API handler: on success see `then`; on a refusal the work is rolled back and
    `template` is shown again, with `context()` read after the rollback, and the refusal's message."""
    try:
        await call()
    except (DomainError, RequestValidationFailed) as err:
        await db(request).rollback()
        raise FormError(as_refusal(err), template, await context()) from err
    return see_other(then)


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def base_context(request: web.Request) -> dict[str, Any]:
    who = request.get(REQ_PRINCIPAL)
    key = request.app[CSRF_KEY]
    return {
        "lang": i18n.current(), "html_lang": i18n.HTML_LANG[i18n.current()],
        "who": who, "user": who.profile if who is not None else None,
        "csrf_token": csrf_token(key, request[REQ_CSRF]) if REQ_CSRF in request else "",
        "path": request.path, "path_qs": request.path_qs, "request_id": request.get(REQ_ID),
        "money": i18n.money, "when": i18n.when,
        "media_workers": request.app[SETTINGS].media_workers,  # pages reach media workers with tickets
    }


def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    ctx = base_context(request)
    ctx.update(context)
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    response.headers["Cache-Control"] = "no-store" if request.get(REQ_PRINCIPAL) else "no-cache"
    response.headers["Content-Language"] = i18n.HTML_LANG[i18n.current()]
    return response


def sign_in_url(request: web.Request) -> str:
    return f"/signin?next={quote(request.path_qs, safe='')}"


class Pages:
    """A RouteTableDef of pages; handlers get `who` (Principal or None) and return a context dict or a response."""

    def __init__(self) -> None:
        self.table = web.RouteTableDef()

    def route(self, method: str, path: str, template: str | None = None, *, auth: bool = False,
              roles: tuple[str, ...] = ()):
        def decorate(handler: Handler) -> Handler:
            async def endpoint(request: web.Request) -> web.StreamResponse:
                who = request.get(REQ_PRINCIPAL)
                if auth or roles:
                    if who is None and method == "GET" and not wants_json(request):
                        raise web.HTTPSeeOther(sign_in_url(request))
                    who = require_principal(request, roles)
                result = await handler(request, who)
                if isinstance(result, web.StreamResponse):
                    return result
                assert template is not None, f"{path}: a page without a template returns a response"
                return render(request, template, result or {})

            endpoint.__name__ = handler.__name__
            self.table.route(method, path)(endpoint)
            return handler
        return decorate

    def get(self, path: str, template: str | None = None, **kw):
        return self.route("GET", path, template, **kw)

    def post(self, path: str, template: str | None = None, **kw):
        return self.route("POST", path, template, **kw)

    def put(self, path: str, template: str | None = None, **kw):
        return self.route("PUT", path, template, **kw)


def see_other(location: str) -> web.Response:
    """A 303 to go to after a form, returned (not raised) so the form's transaction commits."""
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to after a form; anything else (another site, a scheme) goes to the default."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


@web.middleware
async def page_errors(request: web.Request, handler):
    """On page paths: the reader's language for the request, and refusals shown as pages (or translated JSON).

    Sits outside the unit of work, so a refusal has rolled back (or kept, when it says so) before it is shown."""
    if not is_page_path(request.path):
        return await handler(request)
    token = i18n.activate(i18n.negotiate(request.cookies.get(i18n.LANG_COOKIE),
                                         request.headers.get("Accept-Language")))
    try:
        try:
            return await handler(request)
        except web.HTTPException as err:
            if err.status < 400:
                raise
            err_ = DomainError(err.reason, code={404: "not_found", 405: "method_not_allowed",
                                                 413: "payload_too_large"}.get(err.status, "http_error"))
            err_.status = err.status
            return _refusal(request, err_)
        except RequestValidationFailed as err:
            bad = DomainError("the request does not match the schema", code="validation_failed",
                              details={"errors": err.field_errors()})
            bad.status = 422
            return _refusal(request, bad)
        except DomainError as err:
            if isinstance(err, Unauthorized) and request.method == "GET" and not wants_json(request):
                raise web.HTTPSeeOther(sign_in_url(request)) from err
            return _refusal(request, err)
    finally:
        i18n._current.reset(token)


def _refusal(request: web.Request, err: DomainError) -> web.Response:
    message = error_message(err)
    if wants_json(request):
        return json_response({"error": {"code": err.code, "message": message, "details": err.details,
                                        "request_id": request.get(REQ_ID)}}, status=err.status)
    if isinstance(err, FormError):
        return render(request, err.template, {**err.context, "error": message, "error_code": err.code},
                      status=err.status)
    return render(request, "error.html", {"error": message, "error_code": err.code, "status": err.status},
                  status=err.status)
