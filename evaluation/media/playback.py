"""Playback of a session's recordings: its places and their segments, for the supervisors of the tender, and
the byte ranges a `<video>` element asks for.

Recordings show the experts at work; only the tender's supervisors (行政监督部门) replay them
(trading.access.is_supervisor_of, through evaluation.access). A `<video src>` cannot send an Authorization
header, so the segment list hands each supervisor short-lived playback tickets: an HMAC over (user, segment,
expiry) under a key kept in the keys directory. A ticket is only a credential for the user it names; every
request still reloads that user and asks the policy again, so a supervisor who leaves the organisation loses
access at once.

Read-only; never commits.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, DomainError, Forbidden, Gone, NotFound, Unauthorized
from core.identity_models import User
from core.principal import Principal
from core.settings import Settings
from core.storage import Storage
from evaluation import access, members
from evaluation.media.models import MediaSegment
from evaluation.models import EvaluationMember, EvaluationSession, Place, Room, Site
from trading.access import principal_of
from trading.models import Lot, Tender

TICKET_TTL_S = 3600
CHUNK = 256 * 1024

# what a <video> element plays: WebM for VP8/VP9 + Opus, Matroska otherwise (H.264)
CONTENT_TYPES = {".webm": "video/webm", ".mkv": "video/x-matroska"}


class RangeNotSatisfiable(DomainError):
    """A Range header the file cannot answer (RFC 9110 §15.5.17): 416 with `Content-Range: bytes */size`."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int, code: str | None = None):
        super().__init__(message, code=code, details={"size": size})
        self.size = size


def media_storage(settings: Settings) -> Storage:
    """The media store segments are written to and read from: core.storage rooted at <data_dir>/media (the
    recorder's root, evaluation.media.config)."""
    return Storage(settings.data_dir / "media")


def content_type(storage_key: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(storage_key).suffix.lower(), "video/x-matroska")


# ---- access -------------------------------------------------------------------------------------------------

def may_replay(tender: Tender, who: Principal | None) -> bool:
    """Recordings of a session: the supervisors of its tender, nobody else (not its agents, not the experts)."""
    return access.is_supervisor_of(tender, who)


def _refuse(es: EvaluationSession, who: Principal | None) -> None:
    if who is None:
        raise Unauthorized("authentication required", code="authentication_required")
    raise Forbidden("only the tender's supervisors replay its evaluation recordings", code="recording_forbidden",
                    details={"session_id": es.public_id})


async def replay_session(session: AsyncSession, who: Principal | None,
                         session_public_id: str) -> tuple[EvaluationSession, Tender, Lot]:
    """The session if `who` may replay it: 404 session_not_found, 403 recording_forbidden."""
    es, tender, lot = await members.load_session(session, session_public_id)
    if not may_replay(tender, who):
        _refuse(es, who)
    return es, tender, lot


# ---- tickets ------------------------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_ticket(key: bytes, *, user_public_id: str, segment_public_id: str, now: float | None = None,
                ttl_s: int = TICKET_TTL_S) -> str:
    body = _b64(json.dumps({"u": user_public_id, "s": segment_public_id,
                            "exp": int((now if now is not None else time.time()) + ttl_s)},
                           separators=(",", ":")).encode())
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def read_ticket(key: bytes, ticket: str, segment_public_id: str, now: float | None = None) -> str:
    """The user public id a valid ticket for this segment names; 401 playback_ticket_invalid otherwise."""
    body, _, mac = ticket.partition(".")
    try:
        good = hmac.compare_digest(_unb64(mac), hmac.new(key, body.encode(), hashlib.sha256).digest())
        claims = json.loads(_unb64(body)) if good else None
    except (ValueError, UnicodeDecodeError):
        claims = None
    if not isinstance(claims, dict) or claims.get("s") != segment_public_id or not isinstance(claims.get("u"), str):
        raise Unauthorized("the playback ticket is not valid for this segment", code="playback_ticket_invalid")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= (now if now is not None else time.time()):
        raise Unauthorized("the playback ticket has expired; list the segments again", code="playback_ticket_expired")
    return claims["u"]


async def ticket_principal(session: AsyncSession, user_public_id: str) -> Principal:
    """The principal a ticket names, as the account stands now (disabled accounts are refused)."""
    user = (await session.execute(select(User).where(User.public_id == user_public_id))).scalar_one_or_none()
    if user is None or not user.is_active:
        raise Unauthorized("account is disabled or gone", code="account_disabled")
    return principal_of(user)


# ---- listing ------------------------------------------------------------------------------------------------

@dataclass
class PlaceRecording:
    place: Place
    room: Room
    site: Site
    venue_role: str | None
    member: EvaluationMember | None
    segments: list[MediaSegment] = field(default_factory=list)


def segment_status(seg: MediaSegment) -> str:
    if seg.removed_at is not None:
        return "removed"
    if seg.ended_at is None:
        return "open"
    return "lost" if seg.sha256 is None else "closed"


def segment_end(seg: MediaSegment) -> datetime | None:
    """Where a segment's media ends on the wall clock: its start plus its muxed duration (or its close)."""
    from datetime import timedelta
    if seg.duration_ms is not None:
        return seg.started_at + timedelta(milliseconds=seg.duration_ms)
    return seg.ended_at


async def session_segments(session: AsyncSession, es: EvaluationSession) -> list[MediaSegment]:
    return list((await session.execute(
        select(MediaSegment).where(MediaSegment.session_id == es.id)
        .order_by(MediaSegment.place_id, MediaSegment.started_at, MediaSegment.publication, MediaSegment.seq)
    )).scalars())


async def place_recordings(session: AsyncSession, es: EvaluationSession) -> list[PlaceRecording]:
    """Every place of the session's rooms (and any other place that recorded in it), each with its member and
    its segments in time order: the main venue first, then by site and label."""
    segments = await session_segments(session, es)
    listed = {at.place.id: PlaceRecording(at.place, at.room, at.site, at.venue_role, None)
              for at in await members.session_places(session, es)}
    missing = {s.place_id for s in segments} - set(listed)
    if missing:  # a place retired since it recorded
        for place, room, site in (await session.execute(
                select(Place, Room, Site).join(Room, Room.id == Place.room_id).join(Site, Site.id == Room.site_id)
                .where(Place.id.in_(missing)).order_by(Site.id, Place.label))).all():
            listed[place.id] = PlaceRecording(place, room, site, None, None)
    for m in await members.members_of(session, es):
        if m.place_id in listed:
            listed[m.place_id].member = m
    for seg in segments:
        listed[seg.place_id].segments.append(seg)
    return list(listed.values())


async def segment_for_replay(session: AsyncSession, who: Principal | None,
                             segment_public_id: str) -> tuple[MediaSegment, EvaluationSession]:
    """A segment `who` may replay: 404 segment_not_found, 403 recording_forbidden."""
    row = (await session.execute(
        select(MediaSegment, EvaluationSession, Tender).join(EvaluationSession,
                                                             EvaluationSession.id == MediaSegment.session_id)
        .join(Tender, Tender.id == EvaluationSession.tender_id).where(MediaSegment.public_id == segment_public_id)
    )).one_or_none()
    if row is None:
        raise NotFound("no such recording segment", code="segment_not_found",
                       details={"segment_id": segment_public_id})
    seg, es, tender = row
    if not may_replay(tender, who):
        _refuse(es, who)
    return seg, es


def check_playable(seg: MediaSegment, storage: Storage) -> None:
    """Only closed segments play: an open one is still being written (409), a removed one is gone (410)."""
    if seg.removed_at is not None:
        raise Gone("the segment was removed at the end of its retention period", code="segment_removed",
                   details={"segment_id": seg.public_id, "removed_at": seg.removed_at.isoformat()})
    if seg.ended_at is None:
        raise Conflict("the segment is still being recorded", code="segment_open",
                       details={"segment_id": seg.public_id})
    if seg.sha256 is None:
        raise Gone("the segment was lost: its recorder stopped before its file was stored", code="segment_lost",
                   details={"segment_id": seg.public_id})
    if not storage.exists(seg.storage_key):
        raise Gone("the segment's file is missing from the store", code="segment_file_missing",
                   details={"segment_id": seg.public_id})


# ---- ranges -------------------------------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range [first, last] a Range header asks of a file of `size` bytes, or None for the
    whole file. One range only (what media elements send); anything else is refused with 416."""
    if header is None:
        return None
    if "," in header:
        raise RangeNotSatisfiable("only one byte range per request is served", size=size,
                                  code="range_multiple_unsupported")
    match = _RANGE.match(header)
    if match is None or not (match.group(1) or match.group(2)):
        raise RangeNotSatisfiable(f"malformed Range header {header!r}; expected bytes=first-last", size=size,
                                  code="range_invalid")
    first_s, last_s = match.groups()
    if not first_s:  # the last n bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable("an empty suffix range", size=size)
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and int(last_s) < first:
        raise RangeNotSatisfiable("the range ends before it starts", size=size, code="range_invalid")
    if first >= size:
        raise RangeNotSatisfiable(f"the range starts at {first}, past the end of a {size}-byte file", size=size)
    return first, min(last, size - 1)


def read_chunk(path, offset: int, length: int) -> bytes:
    """Blocking read of one chunk (run it in a thread)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)
