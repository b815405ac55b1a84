"""The API reference at /api/v1/docs: swagger-ui-dist from npm, started by an external module (no inline
script), reading /api/v1/openapi.json with every $ref resolved in the browser."""
from __future__ import annotations

from aiohttp import web

from web.pages.routing import Pages

pages = Pages()


@pages.get("/api/v1/docs", "api_docs.html")
async def api_docs(request: web.Request, who):
    return {}
