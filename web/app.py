"""The application factory: resources in cleanup_ctx under typed keys, middleware, and every domain's routes."""
from __future__ import annotations

import functools
import gc
import hmac
import ipaddress
import logging
from pathlib import Path
from typing import AsyncIterator

from types import ModuleType

import asyncpg
from aiohttp import web
from sqlalchemy import text

from core import domains, passwords
from core.db import asyncpg_dsn, create_engine, server_settings, session_factory
from core.keys import load_or_create_ed25519
from core.migrate import script_heads
from core.ratelimit import RefusalBook
from core.scheduler import JobRegistry, Scheduler, schedule
from core.settings import Settings
from core.tokens import TokenIssuer
from evidence.ledger_service import LedgerSigner
from web import middleware
from web.keys import (ENGINE, JOBS, LEDGER_SIGNER, MEDIA_TICKET_AUDIENCE, MEDIA_TICKET_TTL_S, MEDIA_TICKETS,
                      METRICS, PG_POOL, READ_SESSIONS, REFUSALS, SCHEDULER, SCHEMA_HEADS, SESSIONS, SETTINGS,
                      TOKENS)
from web.metrics import Metrics
from web.openapi import build_openapi
from web.pages import routing as page_routing, setup as setup_pages

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


MODULES = web.AppKey("route_module_names", tuple)  # the domain route modules this app mounts


def route_modules(names: list[str] | tuple[str, ...] | None = None) -> list[ModuleType]:
    return domains.load(list(names) if names is not None else domains.ROUTE_MODULES)


def register_jobs(app: web.Application, registry: JobRegistry) -> None:
    """Each domain registers its job handlers; the handlers close over the app's resources."""
    for module in route_modules(app.get(MODULES)):
        hook = getattr(module, "register_jobs", None)
        if hook is not None:
            hook(app, registry)

    async def sweep_idempotency(session, payload: dict) -> None:
        await middleware.sweep_idempotency_records(session, payload)
        await schedule(session, "idempotency.sweep", delay_s=3600, dedupe_key="idempotency.sweep")
    registry.register("idempotency.sweep", sweep_idempotency)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.database_url:
        raise RuntimeError("settings.database_url must be resolved before create_app (see web.cli)")
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[READ_SESSIONS] = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    app[PG_POOL] = await asyncpg.create_pool(**asyncpg_dsn(settings.database_url), min_size=1,
                                             max_size=max(2, settings.db_pool_size // 2),
                                             server_settings=server_settings())
    yield
    await app[PG_POOL].close()
    await engine.dispose()


async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    token_key = load_or_create_ed25519(settings.keys_dir / "access_token_ed25519.pem")
    app[TOKENS] = TokenIssuer(token_key, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                              ttl_s=settings.access_token_ttl_s)
    app[MEDIA_TICKETS] = TokenIssuer(token_key, issuer=settings.jwt_issuer,
                                     audience=settings.jwt_audience + MEDIA_TICKET_AUDIENCE, ttl_s=MEDIA_TICKET_TTL_S)
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
            await schedule(session, "idempotency.sweep", delay_s=3600, dedupe_key="idempotency.sweep")
        scheduler.start()
    yield
    await scheduler.stop()


async def healthz(request: web.Request) -> web.Response:
    body = {"status": "ok"}
    if not request.app[SETTINGS].statutory_periods:
        body["statutory_periods"] = "off"  # BIDROOM_STATUTORY_PERIODS=off: never hidden from a health check
    if passwords.weakened():
        body["password_hash"] = passwords.PROFILE  # BIDROOM_PASSWORD_HASH=test: likewise
    return web.json_response(body)


async def _warn_statutory_periods_off(app: web.Application) -> None:
    log.warning("BIDROOM_STATUTORY_PERIODS=off: the statutory period minimums (招标投标法 第24条, 实施条例 第54条) "
                "are not enforced; records issued say so. Tests and the demo only.")


async def _warn_weak_password_hashing(app: web.Application) -> None:
    log.warning("%s=%s: passwords are hashed at Argon2id's minimum cost. Test runs only.", passwords.PROFILE_ENV,
                passwords.PROFILE)


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and the schema is migrated."""
    try:
        async with request.app[ENGINE].connect() as conn:
            versions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    except Exception as err:  # noqa: BLE001 - readiness reports, it does not raise
        return web.json_response({"status": "unavailable", "reason": type(err).__name__}, status=503)
    expected = request.app[SCHEMA_HEADS]
    if versions != expected:
        return web.json_response({"status": "schema_out_of_date", "schema": sorted(versions),
                                  "expected": sorted(expected)}, status=503)
    return web.json_response({"status": "ready", "schema": sorted(versions)})


def _may_scrape(request: web.Request) -> bool:
    """With BIDROOM_METRICS_TOKEN set, the bearer token; without it, only a peer on loopback (not a proxied one)."""
    token = request.app[SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer or request.headers.get("X-Forwarded-For"):
        return False
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics, for the operator's scraper only: strangers get the same 404 as any unknown path."""
    if not _may_scrape(request):
        raise web.HTTPNotFound()
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


@functools.cache
def openapi_document(names: tuple[str, ...], server_url: str) -> dict:
    """The OpenAPI document of these route modules: a function of the code alone, so it is built once per process
    (about 0.2 s of pydantic schema generation) and shared, read only, by every app built from the same modules."""
    specs = [s for m in route_modules(names) for s in m.api.specs]
    return build_openapi(specs, title="bidroom API", version="1", server_url=server_url)


def create_app(settings: Settings, modules: list[str] | None = None) -> web.Application:
    """Build the aiohttp application; nothing is connected until the app starts.

    `modules` names the domain route modules to mount (default: every one of core.domains; a media worker
    mounts only the media plane's). A module's `middleware`, if any, runs innermost, after authentication."""
    names = tuple(modules if modules is not None else domains.ROUTE_MODULES)
    loaded = route_modules(names)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[
        middleware.request_context, middleware.error_mapping, page_routing.page_errors, middleware.transaction,
        middleware.authentication, middleware.page_session, middleware.idempotency,
        *(m.middleware for m in loaded if hasattr(m, "middleware"))])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[REFUSALS] = RefusalBook()
    app[SCHEMA_HEADS] = frozenset(script_heads())
    app[MODULES] = names
    modules = loaded
    app.cleanup_ctx.extend([database_ctx, keys_ctx])
    # domain resources (PKI, storage, media workers ...) start after keys and before the scheduler
    app.cleanup_ctx.extend(m.cleanup_ctx for m in modules if hasattr(m, "cleanup_ctx"))
    app.cleanup_ctx.append(scheduler_ctx)
    if not settings.statutory_periods:
        app.on_startup.append(_warn_statutory_periods_off)
    if passwords.weakened():
        app.on_startup.append(_warn_weak_password_hashing)

    apis = [m.api for m in modules]
    for api in apis:
        app.router.add_routes(api.table)
    spec = openapi_document(names, settings.public_url)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(spec)

    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    setup_pages(app, settings)  # the pages, /api/v1/docs and /static/vendor (before /static, which is a prefix)
    app.router.add_static("/static", STATIC)
    return app


async def _freeze_startup_heap(app: web.Application) -> None:
    """Move every object alive once the app has started (modules, schemas, resources) out of the collector's way.

    Without this a full collection walks them all, which showed as 100-200 ms pauses on about one expert draw
    in ten (bench/draw_latency.py). The thresholds make young collections rarer; each is still bounded."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def serving_app(settings: Settings) -> web.Application:
    """The app as a long-running server runs it (`bidroom serve`, benchmarks): create_app plus process tuning.

    Tests use create_app alone: a frozen heap is never collected, which suits one server process, not a test
    session that builds hundreds of apps."""
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_heap)
    return app
