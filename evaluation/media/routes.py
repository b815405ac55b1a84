"""The media plane's endpoints: a WebSocket per participant (signaling) and the supervisors' per-place health.

The MediaHub lives under the app key MEDIA_HUB, created in `cleanup_ctx` after the database and closed before it:
on shutdown every publication's open segment is closed, then the viewers and the peers.
"""
from __future__ import annotations

import logging
import weakref
from typing import AsyncIterator

from aiohttp import web

from core.errors import Unauthorized
from core.principal import Principal
from evaluation.media import grants, signaling
from evaluation.media.config import MediaConfig
from evaluation.media.hub import MediaHub
from evaluation.media.worker_routes import WORKER_IDENTITY
from web.api import Api
from web.keys import MEDIA_TICKETS, PG_POOL, READ_SESSIONS, SESSIONS, SETTINGS, TOKENS, principal
from web.middleware import PRINCIPAL_SQL

log = logging.getLogger(__name__)

api = Api("media")
MEDIA_HUB = web.AppKey("media_hub", MediaHub)
MEDIA_SOCKETS = web.AppKey("media_sockets", weakref.WeakSet)

BASE = "/api/v1/media/sessions/{session_id}"


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    me = app.get(WORKER_IDENTITY)  # a media worker records under its own id (recovery.py)
    hub = MediaHub(sessions=app[SESSIONS], config=MediaConfig.from_settings(app[SETTINGS]),
                   **({"recorder_id": me.worker_id} if me is not None else {}))
    app[MEDIA_HUB] = hub
    app[MEDIA_SOCKETS] = weakref.WeakSet()
    await hub.start()
    yield
    for ws in list(app[MEDIA_SOCKETS]):
        await ws.close(code=signaling.CLOSE_GOING_AWAY, message=b"server shutting down")
    await hub.close()


def _resolver(app: web.Application):
    async def resolve(token: str) -> Principal:
        """The same checks as web.middleware.authentication, for a token sent as the first message: an access
        token, or a page's media ticket (web.pages.media; another audience, which the API refuses)."""
        try:
            claims = app[TOKENS].verify(token.strip())
        except Unauthorized as err:
            if err.code != "token_wrong_audience":
                raise
            claims = app[MEDIA_TICKETS].verify(token.strip())
        row = await app[PG_POOL].fetchrow(PRINCIPAL_SQL, claims.sub)
        if row is None or not row["is_active"]:
            raise Unauthorized("account is disabled or gone", code="account_disabled")
        revoked = row["sessions_revoked_at"]
        if revoked is not None and claims.iat <= revoked:
            raise Unauthorized("this session was ended; sign in again", code="token_revoked")
        return Principal(row["id"], row["public_id"], row["organisation_id"], frozenset(row["roles"]), row)
    return resolve


async def _socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 20)
    await ws.prepare(request)
    request.app[MEDIA_SOCKETS].add(ws)
    return ws


@api.get(BASE + "/places/{place_id}/publish", auth=False, devices=True,
         summary="WebSocket: publish a place's camera and microphone (the member checked in there), or a room "
         "camera (a device account of the room's site)")
async def publish_socket(request: web.Request) -> web.StreamResponse:
    ws = await _socket(request)
    await signaling.publisher(ws, hub=request.app[MEDIA_HUB], read_sessions=request.app[READ_SESSIONS],
                              who=principal(request), resolve=_resolver(request.app),
                              session_public_id=request.match_info["session_id"],
                              place_public_id=request.match_info["place_id"])
    return ws


@api.get(BASE + "/watch", auth=False, summary="WebSocket: a supervisor of the tender watches every place")
async def watch_socket(request: web.Request) -> web.StreamResponse:
    ws = await _socket(request)
    await signaling.viewer(ws, hub=request.app[MEDIA_HUB], read_sessions=request.app[READ_SESSIONS],
                           write_sessions=request.app[SESSIONS], who=principal(request),
                           resolve=_resolver(request.app), session_public_id=request.match_info["session_id"],
                           conference=False)
    return ws


@api.get(BASE + "/conference", auth=False,
         summary="WebSocket: a checked-in member receives the other members' places (视频会议)")
async def conference_socket(request: web.Request) -> web.StreamResponse:
    ws = await _socket(request)
    await signaling.viewer(ws, hub=request.app[MEDIA_HUB], read_sessions=request.app[READ_SESSIONS],
                           write_sessions=request.app[SESSIONS], who=principal(request),
                           resolve=_resolver(request.app), session_public_id=request.match_info["session_id"],
                           conference=True)
    return ws


@api.get(BASE + "/health", summary="Per-place media health (fps, bitrate, packets lost, last frame): supervisors",
         errors=(401, 403, 404))
async def media_health(request: web.Request, who: Principal) -> dict:
    async with request.app[READ_SESSIONS]() as session:
        grant = await grants.watch_grant(session, who=who, session_public_id=request.match_info["session_id"])
    stats = {row["place"]: row for row in request.app[MEDIA_HUB].stats(grant.session_public_id)}
    return {"session_id": grant.session_public_id,
            "places": [stats.get(p.public_id, {"place": p.public_id, "label": p.label, "publishing": False})
                       | {"member": p.member_public_id, "camera": p.camera} for p in grant.places]}
