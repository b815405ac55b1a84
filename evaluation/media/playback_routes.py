"""HTTP endpoints of playback: a session's recordings by place, a segment's bytes with range support (what a
`<video>` element needs to play and seek), the session timeline, and the scheduled retention sweep. Thin: the
playback, timeline and retention modules decide."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, AsyncIterator

from aiohttp import web
from pydantic import BaseModel, Field

from core.scheduler import schedule
from core.settings import ensure_secret_file
from evaluation.media import playback, retention, timeline
from web.api import Api, json_response
from web.keys import REQ_ID, SETTINGS, Principal, db, principal

log = logging.getLogger(__name__)

api = Api("media-playback")
TICKET_KEY = web.AppKey("media.playback_ticket_key", bytes)


# ---- shapes -------------------------------------------------------------------------------------------------

class SegmentOut(BaseModel):
    segment_id: str
    publication: int = Field(description="1 for the publisher's first connection, +1 per reconnect")
    seq: int = Field(description="1, 2, ... within a publication")
    status: str = Field(description="open (being recorded), closed (plays), removed (retention ended), lost "
                                    "(its recorder stopped before the file was stored)")
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    video_frames: int | None
    audio_frames: int | None
    size_bytes: int | None
    sha256: str | None
    content_type: str
    url: str | None = Field(description="the file, for a <video> element: carries a playback ticket for the "
                                        "caller, valid one hour; null unless closed")


class PlaceOut(BaseModel):
    place_id: str
    label: str
    room_id: str
    site_id: str
    site_name: str
    venue_role: str | None
    camera_position: bool
    member_id: str | None
    member_kind: str | None
    segments: list[SegmentOut]


class RecordingsOut(BaseModel):
    session_id: str
    places: list[PlaceOut]


class MarkOut(BaseModel):
    place_id: str
    segment_id: str
    offset_s: float = Field(description="seconds into the segment at the event")


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    entry_hash: str
    member_id: str | None = Field(description="the member who acted, or whom the event concerns")
    place_id: str | None = Field(description="that member's place: where to look first")
    marks: list[MarkOut] = Field(description="every place recording at that moment, and where")


class TimelineOut(BaseModel):
    session_id: str
    places: list[PlaceOut]
    events: list[EventOut]


def _segment_out(request: web.Request, seg, who: Principal) -> SegmentOut:
    status = playback.segment_status(seg)
    url = None
    if status == "closed":
        ticket = playback.make_ticket(request.app[TICKET_KEY], user_public_id=who.public_id,
                                      segment_public_id=seg.public_id)
        url = f"/api/v1/media/segments/{seg.public_id}?ticket={ticket}"
    return SegmentOut(segment_id=seg.public_id, publication=seg.publication, seq=seg.seq, status=status,
                      started_at=seg.started_at, ended_at=seg.ended_at, duration_ms=seg.duration_ms,
                      video_frames=seg.video_frames, audio_frames=seg.audio_frames, size_bytes=seg.size_bytes,
                      sha256=seg.sha256, content_type=playback.content_type(seg.storage_key), url=url)


def _places_out(request: web.Request, places: list[playback.PlaceRecording], who: Principal) -> list[PlaceOut]:
    return [PlaceOut(place_id=p.place.public_id, label=p.place.label, room_id=p.room.public_id,
                     site_id=p.site.public_id, site_name=p.site.name, venue_role=p.venue_role,
                     camera_position=p.place.camera_position,
                     member_id=p.member.public_id if p.member else None,
                     member_kind=p.member.kind if p.member else None,
                     segments=[_segment_out(request, s, who) for s in p.segments]) for p in places]


# ---- routes -------------------------------------------------------------------------------------------------

@api.get("/api/v1/evaluation-sessions/{session_id}/recordings",
         summary="A session's places and their recorded segments (supervisors of the tender)",
         response=RecordingsOut, errors=(403, 404))
async def recordings(request: web.Request, who: Principal):
    es, _, _ = await playback.replay_session(db(request), who, request.match_info["session_id"])
    places = await playback.place_recordings(db(request), es)
    return RecordingsOut(session_id=es.public_id, places=_places_out(request, places, who))


@api.get("/api/v1/evaluation-sessions/{session_id}/timeline",
         summary="The session's segments merged with its audit events, each event with its offsets into the "
                 "recordings (supervisors of the tender)", response=TimelineOut, errors=(403, 404))
async def session_timeline(request: web.Request, who: Principal):
    line = await timeline.timeline(db(request), who=who, session_public_id=request.match_info["session_id"])
    events = [EventOut(seq=e.entry.seq, at=e.entry.at, actor=e.entry.actor, action=e.entry.action,
                       entry_hash=e.entry.entry_hash, member_id=e.member_id, place_id=e.place_id,
                       marks=[MarkOut(place_id=m.place_id, segment_id=m.segment_id, offset_s=m.offset_s)
                              for m in e.marks]) for e in line.events]
    return TimelineOut(session_id=request.match_info["session_id"], places=_places_out(request, line.places, who),
                       events=events)


@api.get("/api/v1/media/segments/{segment_id}",
         summary="A closed segment's file (WebM/Matroska) with HTTP range support; Bearer token or the playback "
                 "ticket of the recordings list", auth=False, content_type="video/webm",
         errors=(401, 403, 404, 409, 410, 416))
async def segment_file(request: web.Request):
    segment_id = request.match_info["segment_id"]
    session = db(request)
    who = principal(request)
    ticket = request.query.get("ticket")
    if who is None and ticket:
        user_public_id = playback.read_ticket(request.app[TICKET_KEY], ticket, segment_id)
        who = await playback.ticket_principal(session, user_public_id)
    seg, _es = await playback.segment_for_replay(session, who, segment_id)
    storage = playback.media_storage(request.app[SETTINGS])
    playback.check_playable(seg, storage)
    path = storage.path(seg.storage_key)
    size = seg.size_bytes if seg.size_bytes is not None else path.stat().st_size
    try:
        wanted = playback.parse_range(request.headers.get("Range"), size)
    except playback.RangeNotSatisfiable as err:
        body = {"error": {"code": err.code, "message": err.message, "details": err.details,
                          "request_id": request.get(REQ_ID)}}
        return json_response(body, status=416, headers={"Content-Range": f"bytes */{size}",
                                                        "Accept-Ranges": "bytes"})
    await session.close()  # the rows are read: no connection is held while the bytes stream
    first, last = wanted if wanted is not None else (0, size - 1)
    headers = {"Accept-Ranges": "bytes", "Content-Type": playback.content_type(seg.storage_key),
               "Content-Length": str(last - first + 1), "Cache-Control": "private, no-store",
               "Content-Disposition": f'inline; filename="{seg.public_id}{path.suffix}"'}
    if seg.sha256:
        headers["ETag"] = f'"{seg.sha256}"'
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    await response.prepare(request)
    offset = first
    while offset <= last:
        chunk = await asyncio.to_thread(playback.read_chunk, path, offset, min(playback.CHUNK, last - offset + 1))
        if not chunk:
            break  # the file is shorter than its row says: stop rather than pad
        await response.write(chunk)
        offset += len(chunk)
    await response.write_eof()
    return response


# ---- resources and jobs -------------------------------------------------------------------------------------

async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """The playback ticket key, and the first retention sweep on the scheduler."""
    settings = app[SETTINGS]
    app[TICKET_KEY] = ensure_secret_file(settings.keys_dir / "media_playback.secret")
    if settings.run_scheduler:
        from web.keys import SESSIONS
        async with app[SESSIONS]() as session, session.begin():
            await schedule(session, retention.SWEEP_JOB, delay_s=60, dedupe_key=retention.SWEEP_JOB)
    yield


def register_jobs(app: web.Application, registry: Any) -> None:
    """The daily retention sweep of recordings; it runs again at once while a backlog remains."""

    async def sweep(session, payload: dict) -> None:
        settings = app[SETTINGS]
        outcome = await retention.sweep(session, playback.media_storage(settings),
                                        retention_s=settings.media_retention_s)
        await schedule(session, retention.SWEEP_JOB, delay_s=0 if outcome.more else settings.media_retention_sweep_s,
                       dedupe_key=retention.SWEEP_JOB)
    registry.register(retention.SWEEP_JOB, sweep)
