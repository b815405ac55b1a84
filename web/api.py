"""Declaring JSON routes once: parsing, auth, pydantic validation, serialisation and the OpenAPI entry."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.errors import (BadRequest, Forbidden, PayloadTooLarge, Unauthorized, Unprocessable,
                         UnsupportedMediaType)
from web.keys import REQ_PRINCIPAL, Principal

Handler = Callable[..., Awaitable[Any]]


class RequestValidationFailed(Exception):
    """Pydantic refused the body or query; mapped to 422 with field paths."""

    def __init__(self, location: str, error: ValidationError):
        super().__init__(str(error))
        self.location = location
        self.error = error

    def field_errors(self) -> list[dict]:
        return [{"path": ".".join([self.location, *map(str, e["loc"])]), "message": e["msg"], "type": e["type"]}
                for e in self.error.errors(include_url=False)]


@dataclass
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a pydantic model, or list[Model] for a JSON array of them
    status: int = 200
    auth: bool = True
    roles: tuple[str, ...] = ()
    content_type: str | None = None  # non-JSON responses (PDF, Atom, ...)
    request_content_type: str | None = None  # non-JSON request bodies (uploads)
    errors: tuple[int, ...] = ()
    devices: bool = False  # venue device accounts (role device) may call it; they are refused every other route


# JSON bodies nest no deeper than this (arrays and objects); real requests nest a handful of levels
MAX_JSON_DEPTH = 32


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as PostgreSQL text, or None: a NUL character, or a lone UTF-16 surrogate
    (which has no UTF-8 form)."""
    if "\x00" in value:
        return "nul_character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_unicode"
    return None


def check_json_value(value: Any, location: str = "body") -> None:
    """Refuse, with 422 and the path of the first offender, a parsed JSON value nested deeper than MAX_JSON_DEPTH
    or holding a string (key or value) that text_problem refuses. Iterative, so depth costs no stack."""
    stack: list[tuple[Any, str, int]] = [(value, location, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise Unprocessable(f"JSON nests deeper than {MAX_JSON_DEPTH} levels", code="json_too_deep",
                                    details={"max_depth": MAX_JSON_DEPTH, "path": path})
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and (problem := text_problem(key)):
                    raise Unprocessable(_TEXT_MESSAGES[problem], code=problem, details={"path": path})
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, str) and (problem := text_problem(item)):
            raise Unprocessable(_TEXT_MESSAGES[problem], code=problem, details={"path": path})


_TEXT_MESSAGES = {"nul_character": "text may not contain the NUL character (U+0000)",
                  "invalid_unicode": "text must be valid Unicode (a lone surrogate has no UTF-8 form)"}


def check_text_params(params: dict[str, str], location: str) -> None:
    """The same text rule for query and path parameters."""
    for name, value in params.items():
        for text in (name, value):
            if problem := text_problem(text):
                raise Unprocessable(_TEXT_MESSAGES[problem], code=problem, details={"path": f"{location}.{name}"})


async def read_json(request: web.Request) -> Any:
    """Read the JSON body with numbers as Decimal; refuse other media types and bad JSON clearly.

    The body is bounded by client_max_size (413); malformed JSON, invalid UTF-8, NaN/Infinity and integers too
    long to convert are 400 `invalid_json`; nesting deeper than MAX_JSON_DEPTH, NUL characters and lone
    surrogates are 422 (check_json_value)."""
    ctype = request.content_type
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"expected application/json, got {ctype}", code="unsupported_media_type")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as err:
        raise PayloadTooLarge("request body exceeds the limit",
                              details={"limit_bytes": request.app._client_max_size}) from err
    if not raw:
        raise BadRequest("request body is empty; JSON expected", code="invalid_json")
    try:
        text = raw.decode("utf-8-sig")  # RFC 8259: UTF-8; a leading BOM is tolerated
    except UnicodeDecodeError as err:
        raise BadRequest(f"the body is not valid UTF-8 (byte {err.start})", code="invalid_json",
                         details={"offset": err.start}) from err
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError as err:
        raise Unprocessable(f"JSON nests deeper than {MAX_JSON_DEPTH} levels", code="json_too_deep",
                            details={"max_depth": MAX_JSON_DEPTH}) from err
    except ValueError as err:  # JSONDecodeError, NaN/Infinity, an integer over the digit limit
        raise BadRequest(f"malformed JSON: {err}", code="invalid_json") from err
    check_json_value(data)
    return data


def to_jsonable(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    if isinstance(result, list):
        return [to_jsonable(r) for r in result]
    return result


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def json_body(data: Any) -> bytes:
    """The UTF-8 JSON bytes of a response, for json_response and for handlers that keep responses."""
    return json.dumps(to_jsonable(data), ensure_ascii=False, default=_json_default).encode()


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=json_body(data), status=status, headers=headers, content_type="application/json",
                        charset="utf-8")


def require_principal(request: web.Request, roles: tuple[str, ...] = ()) -> Principal:
    who = request.get(REQ_PRINCIPAL)
    if who is None:
        raise Unauthorized("authentication required", code="authentication_required")
    if roles and not who.has(*roles):
        raise Forbidden("your role may not do this", code="role_forbidden", details={"needs_one_of": list(roles)})
    return who


DEVICE_ROLE = "device"


def refuse_devices(request: web.Request) -> None:
    """A venue device account (evaluation.media.devices) only publishes its room camera: every route not marked
    `devices=True` refuses it, public ones included."""
    who = request.get(REQ_PRINCIPAL)
    if who is not None and who.has(DEVICE_ROLE):
        raise Forbidden("a venue device account only publishes its site's room cameras", code="device_forbidden")


class Api:
    """A RouteTableDef for one domain that also records OpenAPI metadata."""

    def __init__(self, tag: str):
        self.tag = tag
        self.table = web.RouteTableDef()
        self.specs: list[RouteSpec] = []

    def route(self, method: str, path: str, *, summary: str, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, response: Any = None, status: int = 200,
              auth: bool = True, roles: tuple[str, ...] = (), content_type: str | None = None,
              request_content_type: str | None = None, errors: tuple[int, ...] = (), devices: bool = False):
        def decorate(handler: Handler) -> Handler:
            spec = RouteSpec(method, path, handler, summary, self.tag, body, query, response, status, auth,
                             tuple(roles), content_type, request_content_type, errors, devices)

            async def endpoint(request: web.Request) -> web.StreamResponse:
                kwargs: dict[str, Any] = {}
                if not spec.devices:
                    refuse_devices(request)
                if spec.auth:
                    kwargs["who"] = require_principal(request, spec.roles)
                check_text_params(dict(request.match_info), "path")
                check_text_params(dict(request.query), "query")
                if spec.body is not None:
                    data = await read_json(request)
                    try:
                        kwargs["body"] = spec.body.model_validate(data)
                    except ValidationError as err:
                        raise RequestValidationFailed("body", err) from err
                if spec.query is not None:
                    try:
                        kwargs["query"] = spec.query.model_validate(dict(request.query))
                    except ValidationError as err:
                        raise RequestValidationFailed("query", err) from err
                result = await handler(request, **kwargs)
                if isinstance(result, web.StreamResponse):
                    return result
                if result is None and spec.status == 204:
                    return web.Response(status=204)
                return json_response(result, status=spec.status)

            endpoint.__name__ = handler.__name__
            endpoint.__doc__ = handler.__doc__
            self.table.route(method, path)(endpoint)
            self.specs.append(spec)
            return handler
        return decorate

    def get(self, path: str, **kw):
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw):
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw):
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw):
        return self.route("DELETE", path, **kw)


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::[^}]*)?}", path)
