"""OpenAPI 3.1 document generated from the declared routes and their pydantic models."""
from __future__ import annotations

import re
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


def build_openapi(specs: Iterable[RouteSpec], *, title: str, version: str, server_url: str) -> dict:
    specs = list(specs)
    models: list[tuple[type[BaseModel], str]] = []
    for s in specs:
        for model, mode in ((s.body, "validation"), (s.query, "validation"), (s.response, "serialization")):
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
        if s.response is not None:
            content = {"application/json": {"schema": key_map[(s.response, "serialization")]}}
        elif s.content_type:
            content = {s.content_type: {"schema": {"type": "string", "format": "binary"}}}
        else:
            content = None
        ok: dict = {"description": "OK" if s.status != 201 else "Created"}
        if content and s.status != 204:
            ok["content"] = content
        op["responses"][str(s.status)] = ok
        error_codes = set(s.errors) | {400, 422}
        if s.auth:
            op["security"] = [{"bearer": []}]
            error_codes |= {401, 403}
        for code in sorted(error_codes):
            op["responses"][str(code)] = {"description": "Error", "content": {
                "application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
        paths.setdefault(oa_path, {})[s.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "bidroom: public-resource trading and remote cross-site bid evaluation."},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }

