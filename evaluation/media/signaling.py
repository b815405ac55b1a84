"""Signaling over one authenticated WebSocket per participant, in JSON messages.

Authentication: the access token in the upgrade request's `Authorization: Bearer` header, or (browsers cannot
set headers on a WebSocket) as the first message `{"type": "auth", "token": "..."}` within AUTH_WAIT_S.

Messages
- server → client: `ready` (publisher, after authorization), `answer` (to a publisher's offer), `offer` (to a
  viewer, with `places`: place id → {label, member, camera, video: mid, audio: mid}), `event` (place video
  lost/restored/fault, muted/unmuted), `stats` (per-place health), `error` ({code, message}).
- client → server: `auth`, `offer` (publisher), `answer` (viewer), `ice` (accepted and ignored: both sides
  gather every candidate before sending their description), `mute` ({place, muted}: the chair), `stats`.
  A publisher may send a later `offer` on the same connection to add a track (answered with an `answer`; the
  recording goes on in a new segment of the same publication). An ICE restart is refused
  (`ice_restart_unsupported`: aiortc restarts no ICE); the client reconnects, which starts a new publication.

Refusals close the socket with a code the client can act on: 4400 bad request, 4401 not authenticated,
4403 forbidden, 4404 not found, 4409 conflict (the session is over, or the member has not checked in);
1001 when the server shuts down. The close reason is the refusal's stable code.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable

from aiohttp import ClientConnectionResetError, WSMsgType, web
from aiortc import RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from core.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from core.principal import Principal
from evaluation.media import grants
from evaluation.media.hub import HubClosed, MediaHub, RenegotiationRefused

log = logging.getLogger(__name__)

AUTH_WAIT_S = 10.0
OFFER_WAIT_S = 30.0
CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_CONFLICT = 4400, 4401, 4403, 4404, 4409
CLOSE_GOING_AWAY, CLOSE_INTERNAL = 1001, 1011

AiortcError = (InternalError, InvalidAccessError, InvalidStateError, OperationError)
ResolveToken = Callable[[str], Awaitable[Principal]]


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def close_code(err: Exception) -> int:
    if isinstance(err, Unauthorized):
        return CLOSE_UNAUTHORIZED
    if isinstance(err, Forbidden):
        return CLOSE_FORBIDDEN
    if isinstance(err, NotFound):
        return CLOSE_NOT_FOUND
    if isinstance(err, Conflict):
        return CLOSE_CONFLICT
    return CLOSE_BAD_REQUEST


async def send(ws: web.WebSocketResponse, message: dict) -> None:
    if not ws.closed:
        await ws.send_str(json.dumps(message, ensure_ascii=False))


async def receive(ws: web.WebSocketResponse, timeout: float | None = None) -> dict | None:
    """The next JSON object from the client; None when the socket closed."""
    msg = await (asyncio.wait_for(ws.receive(), timeout) if timeout else ws.receive())
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        return None
    if msg.type != WSMsgType.TEXT:
        raise ProtocolError("bad_message", "messages are JSON text")
    try:
        data = json.loads(msg.data)
    except json.JSONDecodeError as err:
        raise ProtocolError("bad_message", f"malformed JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("bad_message", "a message is a JSON object with a type")
    return data


async def refuse(ws: web.WebSocketResponse, code: int, reason: str, message: str) -> None:
    try:
        await send(ws, {"type": "error", "code": reason, "message": message})
    except ClientConnectionResetError:
        return  # the participant has gone: nobody to tell
    await ws.close(code=code, message=reason.encode()[:120])


async def authenticate(ws: web.WebSocketResponse, who: Principal | None, resolve: ResolveToken) -> Principal:
    if who is not None:
        return who
    try:
        first = await receive(ws, AUTH_WAIT_S)
    except asyncio.TimeoutError as err:
        raise Unauthorized("send {\"type\": \"auth\", \"token\": ...} first", code="authentication_required") from err
    if first is None:
        raise Unauthorized("authentication required", code="authentication_required")
    if first.get("type") != "auth" or not isinstance(first.get("token"), str) or not first["token"]:
        raise Unauthorized("the first message must be {\"type\": \"auth\", \"token\": ...}",
                           code="authentication_required")
    return await resolve(first["token"])


def _description(message: dict, kind: str) -> RTCSessionDescription:
    sdp = message.get("sdp")
    if not isinstance(sdp, str) or "v=0" not in sdp:
        raise ProtocolError("bad_sdp", f"an {kind} carries the session description in sdp")
    return RTCSessionDescription(sdp=sdp, type=kind)


async def _guarded(ws: web.WebSocketResponse, run: Callable[[], Awaitable[None]]) -> None:
    """Run a participant's protocol; refusals close the socket with their code."""
    try:
        await run()
    except DomainError as err:
        await refuse(ws, close_code(err), err.code, str(err))
    except ProtocolError as err:
        await refuse(ws, CLOSE_BAD_REQUEST, err.code, err.message)
    except asyncio.TimeoutError:
        await refuse(ws, CLOSE_BAD_REQUEST, "timeout", "the expected message did not come in time")
    except HubClosed as err:
        await refuse(ws, CLOSE_GOING_AWAY, "shutting_down", str(err))
    except ClientConnectionResetError:
        # the participant closed its socket (left the page, reconnected) while the server was answering it
        log.info("media signaling: the participant's socket closed during the exchange")
    except Exception:
        log.exception("media signaling failed")
        await refuse(ws, CLOSE_INTERNAL, "internal_error", "internal error")


async def publisher(ws: web.WebSocketResponse, *, hub: MediaHub, read_sessions, who: Principal | None,
                    resolve: ResolveToken, session_public_id: str, place_public_id: str) -> None:
    async def run() -> None:
        principal = await authenticate(ws, who, resolve)
        async with read_sessions() as session:
            grant = await grants.publish_grant(session, who=principal, session_public_id=session_public_id,
                                               place_public_id=place_public_id)
        await send(ws, {"type": "ready", "role": "publisher", "session": session_public_id,
                        "place": place_public_id})
        while True:
            message = await receive(ws, OFFER_WAIT_S)
            if message is None:
                return
            if message["type"] == "offer":
                break
            if message["type"] != "ice":
                await send(ws, {"type": "error", "code": "offer_expected", "message": "send your offer"})
        try:
            answer, pub = await hub.publish(grant, _description(message, "offer"))
        except (ValueError, AiortcError) as err:  # aiortc refuses descriptions it cannot negotiate
            raise ProtocolError("bad_offer", str(err) or type(err).__name__) from err
        await send(ws, {"type": "answer", "sdp": answer.sdp, "publication": pub.number})
        try:
            await _serve(ws, hub, session_public_id, closed=pub.closed, stats_for=(place_public_id,),
                         renegotiate=pub.renegotiate, publication=pub.number)
        finally:
            await pub.stop()
        if pub.ended_by is not None:  # the session is over
            await refuse(ws, CLOSE_CONFLICT, pub.ended_by, "the session is over: its media plane is closed")
        elif not ws.closed:
            await ws.close(code=1000, message=b"publication ended")
    await _guarded(ws, run)


async def viewer(ws: web.WebSocketResponse, *, hub: MediaHub, read_sessions, write_sessions, who: Principal | None,
                 resolve: ResolveToken, session_public_id: str, conference: bool) -> None:
    async def run() -> None:
        principal = await authenticate(ws, who, resolve)
        async with read_sessions() as session:
            if conference:
                grant = await grants.conference_grant(session, who=principal, session_public_id=session_public_id)
            else:
                grant = await grants.watch_grant(session, who=principal, session_public_id=session_public_id)
        view = await hub.view(grant)
        try:
            await send(ws, {"type": "offer", "sdp": view.offer.sdp, "role": grant.role, "places": view.places,
                            "chair": grant.is_chair})
            while True:
                message = await receive(ws, OFFER_WAIT_S)
                if message is None:
                    return
                if message["type"] == "answer":
                    break
                if message["type"] != "ice":
                    await send(ws, {"type": "error", "code": "answer_expected", "message": "send your answer"})
            try:
                await view.accept(_description(message, "answer"))
            except (ValueError, AiortcError) as err:
                raise ProtocolError("bad_answer", str(err) or type(err).__name__) from err
            await _serve(ws, hub, session_public_id, closed=view.closed, events=view.events, principal=principal,
                         write_sessions=write_sessions, stats_for=None if grant.role == "supervisor" else (),
                         chair=grant.is_chair)
        finally:
            await view.close()
        if view.ended_by is not None:  # the session is over
            while not view.events.empty():
                await send(ws, view.events.get_nowait())
            await refuse(ws, CLOSE_CONFLICT, view.ended_by, "the session is over: its media plane is closed")
    await _guarded(ws, run)


async def _serve(ws: web.WebSocketResponse, hub: MediaHub, session_public_id: str, *,
                 closed: asyncio.Event | None = None, events: asyncio.Queue | None = None,
                 principal: Principal | None = None, write_sessions=None, stats_for: tuple[str, ...] | None = (),
                 chair: bool = False, renegotiate=None, publication: int | None = None) -> None:
    """After the descriptions are exchanged: answer the client's messages and push the hub's events, until
    either side ends."""
    async def pump_events() -> None:
        if events is None:
            await asyncio.Event().wait()
        while True:
            await send(ws, await events.get())

    async def wait_closed() -> None:
        if closed is not None:
            await closed.wait()
        else:
            await asyncio.Event().wait()

    async def read() -> None:
        while True:
            try:
                message = await receive(ws)
            except ProtocolError as err:
                await send(ws, {"type": "error", "code": err.code, "message": err.message})
                continue
            if message is None:
                return
            kind = message["type"]
            if kind == "ice":
                continue
            if kind == "offer" and renegotiate is not None:  # a publisher adds a track
                try:
                    answer = await renegotiate(_description(message, "offer"))
                except RenegotiationRefused as err:
                    await send(ws, {"type": "error", "code": err.code, "message": str(err)})
                    continue
                except ProtocolError as err:
                    await send(ws, {"type": "error", "code": err.code, "message": err.message})
                    continue
                except (ValueError, *AiortcError) as err:
                    await send(ws, {"type": "error", "code": "bad_offer", "message": str(err) or type(err).__name__})
                    continue
                await send(ws, {"type": "answer", "sdp": answer.sdp, "publication": publication})
                continue
            if kind in ("offer", "answer"):
                await send(ws, {"type": "error", "code": "renegotiation_unsupported",
                                "message": "a viewer's connection is offered by the server once; reconnect"})
                continue
            if kind == "stats":
                places = hub.stats(session_public_id)
                if stats_for is not None:
                    places = [p for p in places if p["place"] in stats_for]
                await send(ws, {"type": "stats", "places": places})
            elif kind == "mute" and chair and write_sessions is not None:
                place, muted = message.get("place"), message.get("muted", True)
                if not isinstance(place, str) or not isinstance(muted, bool):
                    await send(ws, {"type": "error", "code": "bad_message", "message": "mute needs place and muted"})
                    continue
                try:
                    async with write_sessions() as session, session.begin():
                        await grants.set_muted(session, who=principal, session_public_id=session_public_id,
                                               place_public_id=place, muted=muted)
                except DomainError as err:
                    await send(ws, {"type": "error", "code": err.code, "message": str(err)})
                    continue
                hub.set_muted(session_public_id, place, muted, by=principal.public_id)
            elif kind == "mute":
                await send(ws, {"type": "error", "code": "not_chair", "message": "only the chair (组长) mutes"})
            else:
                await send(ws, {"type": "error", "code": "unknown_message", "message": f"unknown type {kind!r}"})

    tasks = [asyncio.create_task(read()), asyncio.create_task(pump_events()), asyncio.create_task(wait_closed())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
