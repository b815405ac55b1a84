"""Where a session's media is served, over HTTP.

- `GET /api/v1/media/sessions/{id}/connect` answers "connect here": the base URL and WebSocket base of the
  process that serves the session's media (browsers do not follow redirects on a WebSocket handshake, so they
  ask first).
- With BIDROOM_MEDIA_WORKERS=on, every other media-plane URL of a session (the signaling sockets, the health)
  reaching a process that does not own the session answers 307 to the same URL at the owner: the web tier never
  serves media then, and a worker serves only the sessions assigned to it.
- In a media worker process (`bidroom media-worker`) this module also registers the worker, beats its heartbeat
  and deregisters it at a clean stop.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web
from pydantic import BaseModel, Field

from core.principal import Principal
from evaluation import members
from evaluation.media import recovery, worker
from web.api import Api
from web.keys import SESSIONS, SETTINGS

log = logging.getLogger(__name__)

api = Api("media-workers")


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str
    base_url: str


WORKER_IDENTITY = web.AppKey("media.worker_identity", WorkerIdentity)  # set only in a media worker process
REGISTRATION = web.AppKey("media.worker_registration", worker.WorkerRegistration)


class ConnectOut(BaseModel):
    session_id: str
    worker_id: str | None = Field(description="the media worker serving the session; null: this server itself")
    base_url: str = Field(description="the HTTP base URL of the process serving the session's media")
    ws_url: str = Field(description="the WebSocket base of the session's media: append /places/{place_id}/publish,"
                                    " /watch or /conference")


def _ws(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):]
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):]
    return base


async def _owner(app: web.Application, session_public_id: str) -> worker.Owner:
    settings = app[SETTINGS]
    if not settings.media_workers:
        async with app[SESSIONS]() as session:
            await members.load_session(session, session_public_id)  # 404 session_not_found
        return worker.Owner(session_public_id, None, settings.public_url)
    async with app[SESSIONS]() as session, session.begin():
        return await worker.owner_of(session, session_public_id, dead_after_s=settings.media_worker_dead_after_s)


@api.get(worker.MEDIA_PATH_PREFIX + "{session_id}/connect", response=ConnectOut, errors=(401, 404, 503), devices=True,
         summary="Where to open the session's media WebSockets (the media worker that owns the session)")
async def connect(request: web.Request, who: Principal):
    owner = await _owner(request.app, request.match_info["session_id"])
    return ConnectOut(session_id=owner.session_public_id, worker_id=owner.worker_id, base_url=owner.base_url,
                      ws_url=_ws(owner.base_url) + worker.MEDIA_PATH_PREFIX + owner.session_public_id)


@web.middleware
async def middleware(request: web.Request, handler):
    """With media workers on: a session's media URLs are served only by the worker that owns the session; any
    other process answers 307 to the same URL there."""
    session_public_id = worker.session_of_media_path(request.path)
    if (session_public_id is None or not request.app[SETTINGS].media_workers
            or request.path.endswith("/connect")):
        return await handler(request)
    owner = await _owner(request.app, session_public_id)
    me = request.app.get(WORKER_IDENTITY)
    if me is not None and owner.worker_id == me.worker_id:
        return await handler(request)
    location = owner.base_url.rstrip("/") + str(request.rel_url)
    log.info("media of session %s is served by worker %s: redirecting", session_public_id, owner.worker_id)
    raise web.HTTPTemporaryRedirect(location)


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """In a media worker process: register, beat, and deregister at a clean stop."""
    me = app.get(WORKER_IDENTITY)
    if me is None:
        yield
        return
    settings = app[SETTINGS]
    registration = worker.WorkerRegistration(app[SESSIONS], worker_id=me.worker_id, base_url=me.base_url,
                                             heartbeat_s=settings.media_worker_heartbeat_s,
                                             dead_after_s=settings.media_worker_dead_after_s)
    app[REGISTRATION] = registration
    await registration.start()
    registration.after_beat = _recovering(app, me.worker_id, settings.media_worker_dead_after_s)
    yield
    await registration.stop()


def _recovering(app: web.Application, worker_id: str, dead_after_s: float):
    """After each heartbeat: close or mark lost the open segments of dead workers (recovery.py)."""
    from evaluation.media.routes import MEDIA_HUB

    async def after_beat() -> None:
        hub = app[MEDIA_HUB]
        await recovery.recover(app[SESSIONS], hub.storage, recorder=worker_id, dead_after_s=dead_after_s)
    return after_beat


# what a media worker process mounts: the media plane's signaling and this module (no playback, no scheduler)
WORKER_MODULES = ["evaluation.media.routes", "evaluation.media.worker_routes"]


def worker_app(settings, *, worker_id: str, base_url: str) -> web.Application:
    """The aiohttp app of a media worker: the media plane only, registered as `worker_id` at `base_url`. The
    scheduler does not run here (it would claim jobs whose handlers live in the web tier)."""
    from web.app import create_app
    app = create_app(settings.with_(run_scheduler=False, media_workers=True), modules=WORKER_MODULES)
    app[WORKER_IDENTITY] = WorkerIdentity(worker_id, base_url)
    return app
