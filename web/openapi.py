"""OpenAPI 3.1 document generated from the declared routes and their pydantic models."""
from __future__ import annotations

import re
import typing
from typing import Iterable

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.api import RouteSpec, path_params

REF = "#/components/schemas/{model}"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "description": "stable machine-readable code"},
        "message": {"type": "string"},
        "details": {"type": "object"},
        "request_id": {"type": "string"}}}},
}


# Statuses any operation can answer, whatever its handler does: 400 malformed input (bad JSON, a bad Range),
# 401 a bearer token that is malformed, expired or revoked (refused even on public routes), 422 a body, query or
# Idempotency-Key that fails validation, 503 the database did not complete the request (web.middleware).
ALWAYS = frozenset({400, 401, 422, 503})
ERROR_DESCRIPTIONS = {
    400: "Malformed request", 401: "Not signed in, or the bearer token is invalid, expired or revoked",
    403: "Signed in, but not allowed", 404: "Not found", 409: "Conflicts with the current state",
    410: "Gone", 413: "Body too large", 415: "Unsupported media type", 422: "Validation failed",
    429: "Too many requests; see Retry-After", 503: "Temporarily unavailable; retry later",
    507: "Insufficient storage"}
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def error_statuses(s: RouteSpec) -> set[int]:
    """Every error status an operation can answer: its own (`errors=`) plus what the middleware and the route
    declaration imply, so that no answer is undocumented."""
    codes = set(s.errors) | ALWAYS
    if s.auth:
        codes.add(403)  # a role outside `roles=`, or an object-level refusal
    if path_params(s.path):
        codes.add(404)  # the named object does not exist (or is hidden)
    if s.method.upper() not in SAFE:
        codes.add(409)  # a write that collides with existing data (unique keys, concurrent changes)
    if s.body is not None or s.request_content_type:
        codes |= {413, 415}  # body over the size limit; a media type other than the documented one
    return codes


def response_model(response) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model of a declared response and whether the route answers a JSON array of it
    (`response=list[Model]`)."""
    if response is not None and typing.get_origin(response) is list:
        return typing.get_args(response)[0], True
    return response, False


def build_openapi(specs: Iterable[RouteSpec], *, title: str, version: str, server_url: str) -> dict:
    specs = list(specs)
    models: list[tuple[type[BaseModel], str]] = []
    for s in specs:
        for model, mode in ((s.body, "validation"), (s.query, "validation"),
                            (response_model(s.response)[0], "serialization")):
            if model is not None and (model, mode) not in models:
                models.append((model, mode))
    key_map, defs = models_json_schema(models, ref_template=REF) if models else ({}, {})
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA

    paths: dict[str, dict] = {}
    for s in specs:
        oa_path = re.sub(r"{(\w+)(?::[^}]*)?}", r"{\1}", s.path)
        op: dict = {"summary": s.summary, "tags": [s.tag],
                    "operationId": f"{s.tag}_{s.handler.__name__}",
                    "responses": {}}
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in path_params(s.path)]
        if s.query is not None:
            qschema = key_map[(s.query, "validation")]
            target = schemas[qschema["$ref"].rsplit("/", 1)[-1]]
            required = set(target.get("required", []))
            for name, prop in target.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if params:
            op["parameters"] = params
        if s.body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": key_map[(s.body, "validation")]}}}
        elif s.request_content_type:
            op["requestBody"] = {"required": True, "content": {
                s.request_content_type: {"schema": {"type": "string", "format": "binary"}}}}
        model, is_list = response_model(s.response)
        if model is not None:
            schema = key_map[(model, "serialization")]
            content = {"application/json": {"schema": {"type": "array", "items": schema} if is_list else schema}}
        elif s.content_type:
            content = {s.content_type: {"schema": {"type": "string", "format": "binary"}}}
        else:
            content = None
        ok: dict = {"description": "OK" if s.status != 201 else "Created"}
        if content and s.status != 204:
            ok["content"] = content
        op["responses"][str(s.status)] = ok
        if s.auth:
            op["security"] = [{"bearer": []}]
            if s.roles:  # the roles that may call it; others are refused 403 role_forbidden before anything else
                op["x-roles"] = list(s.roles)
        for code in sorted(error_statuses(s)):
            op["responses"][str(code)] = {"description": ERROR_DESCRIPTIONS.get(code, "Error"), "content": {
                "application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
        paths.setdefault(oa_path, {})[s.method.lower()] = op

    add_links(paths, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "bidroom: public-resource trading and remote cross-site bid evaluation."},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _properties(schema: dict, schemas: dict) -> set[str]:
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return set(schema.get("properties", {}))


def add_links(paths: dict, schemas: dict) -> None:
    """OpenAPI links from each creating operation (a 201 answering a JSON object) to every operation whose
    path parameters the created object's properties all name: POST /tenders answers `code`, which fills
    /tenders/{code}/...; POST /sites answers `site_id` for /sites/{site_id}. Clients and stateful fuzzers
    follow them."""
    consumers = []
    for path, methods in paths.items():
        names = path_params(path)
        if names:
            for method, op in methods.items():
                consumers.append((names, op["operationId"]))
    for path, methods in paths.items():
        for method, op in methods.items():
            if method not in ("post", "put"):
                continue
            for status, answer in op["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if status != "201" or schema is None:
                    continue
                props = _properties(schema, schemas)
                links = {target: {"operationId": target,
                                  "parameters": {f"path.{n}": f"$response.body#/{n}" for n in names}}
                         for names, target in consumers if target != op["operationId"] and set(names) <= props}
                if links:
                    answer["links"] = dict(sorted(links.items()))

