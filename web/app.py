"""The application factory: resources in cleanup_ctx under typed keys, middleware, and every domain's routes."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web
from sqlalchemy import text

from core.db import create_engine, session_factory
from core.keys import load_or_create_ed25519
from core.scheduler import JobRegistry, Scheduler, schedule
from core.settings import Settings
from core.tokens import TokenIssuer
from evidence.ledger_service import LedgerSigner
from web import middleware
from web.api import Api
from web.keys import ENGINE, JOBS, LEDGER_SIGNER, METRICS, SCHEDULER, SERVICES, SESSIONS, SETTINGS, TOKENS
from web.metrics import Metrics
from web.openapi import DOCS_HTML, build_openapi

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def domain_apis() -> list[Api]:
    """Every domain's routes, mounted in one place."""
    from core import identity_routes, notifications
    from evidence import ledger_routes
    return [identity_routes.api, ledger_routes.api, notifications.api]


def register_jobs(app: web.Application, registry: JobRegistry) -> None:
    from evidence.ledger_routes import checkpoint_job
    settings = app[SETTINGS]
    signer = app[LEDGER_SIGNER]

    async def checkpoint(session, payload):
        await checkpoint_job(session, payload, signer=signer, interval_s=settings.checkpoint_interval_s)
    registry.register("ledger.checkpoint", checkpoint)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.database_url:
        raise RuntimeError("settings.database_url must be resolved before create_app (see web.cli)")
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    yield
    await engine.dispose()


async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[TOKENS] = TokenIssuer(load_or_create_ed25519(settings.keys_dir / "access_token_ed25519.pem"),
                              issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                              ttl_s=settings.access_token_ttl_s)
    app[LEDGER_SIGNER] = LedgerSigner(load_or_create_ed25519(settings.keys_dir / "ledger_ed25519.pem"))
    yield


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    registry = JobRegistry()
    app[JOBS] = registry
    register_jobs(app, registry)
    scheduler = Scheduler(app[SESSIONS], registry, poll_s=settings.scheduler_poll_s)
    app[SCHEDULER] = scheduler
    if settings.run_scheduler:
        async with app[SESSIONS]() as session, session.begin():
            await schedule(session, "ledger.checkpoint", delay_s=settings.checkpoint_interval_s,
                           dedupe_key="ledger.checkpoint")
        scheduler.start()
    yield
    await scheduler.stop()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and the schema is migrated."""
    try:
        async with request.app[ENGINE].connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    except Exception as err:  # noqa: BLE001 - readiness reports, it does not raise
        return web.json_response({"status": "unavailable", "reason": type(err).__name__}, status=503)
    return web.json_response({"status": "ready", "schema": version})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application; nothing is connected until the app starts."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[
        middleware.request_context, middleware.error_mapping, middleware.transaction,
        middleware.authentication, middleware.idempotency])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SERVICES] = {}
    app.cleanup_ctx.extend([database_ctx, keys_ctx, scheduler_ctx])

    apis = domain_apis()
    for api in apis:
        app.router.add_routes(api.table)
    spec = build_openapi([s for api in apis for s in api.specs], title="bidroom API", version="1",
                         server_url=settings.public_url)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(spec)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=DOCS_HTML, content_type="text/html")

    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/docs", docs)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", STATIC)
    return app
