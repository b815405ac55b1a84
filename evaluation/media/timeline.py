"""A session's timeline: its recorded segments per place merged with its audit ledger events, each event
carrying, for every place, where in the recording it happened (segment and offset), so a supervisor can jump to
"expert 3 submitted scores" and see every place at that moment.

The events are the ledger entries about the session (entity `evaluation_session:<id>`): those written by
evaluation.sessions, members, chair, review and sheets, and the media plane's own (segments opened and closed, a
place's video lost and back, mutes, recordings removed at the end of their retention). An event's own place is the place of the member
who acted, or of the member it concerns. Payloads are not repeated here (some stay confidential until scoring
closes); each event carries its seq and entry hash, which the ledger's own routes verify.

Read-only; never commits.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity_models import User
from core.principal import Principal
from evaluation import members
from evaluation.media import playback
from evaluation.media.models import MediaSegment
from evaluation.models import EvaluationMember
from evidence.ledger_models import AuditEntry
from evidence.ledger_service import entity_ref


@dataclass
class Mark:
    """Where one place's recording is at an instant: the segment and the offset into it (seconds)."""

    place_id: str
    segment_id: str
    offset_s: float


@dataclass
class Event:
    entry: AuditEntry
    member_id: str | None  # the member who acted, or whom it concerns
    place_id: str | None  # that member's place
    marks: list[Mark] = field(default_factory=list)


@dataclass
class Timeline:
    places: list[playback.PlaceRecording]
    events: list[Event]


class _PlaceIndex:
    """A place's replayable segments in start order, for finding the one that covers an instant."""

    def __init__(self, place_public_id: str, segments: list[MediaSegment]):
        self.place_id = place_public_id
        self.segments = sorted((s for s in segments if s.ended_at is not None and s.removed_at is None),
                               key=lambda s: s.started_at)
        self.starts = [s.started_at for s in self.segments]

    def mark(self, at: datetime) -> Mark | None:
        i = bisect_right(self.starts, at) - 1
        if i < 0:
            return None
        seg = self.segments[i]
        end = playback.segment_end(seg)
        if end is None or at >= end:
            return None  # between publications: nothing was recorded at that moment
        return Mark(self.place_id, seg.public_id, round((at - seg.started_at).total_seconds(), 3))


def _concerned_member(entry: AuditEntry) -> str | None:
    payload = entry.payload or {}
    member = payload.get("member")
    return member if isinstance(member, str) else None


async def session_events(session: AsyncSession, es_public_id: str) -> list[AuditEntry]:
    """The ledger entries about the session, in ledger order."""
    entity = entity_ref("evaluation_session", es_public_id)
    return list((await session.execute(
        select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.seq))).scalars())


async def timeline(session: AsyncSession, *, who: Principal | None, session_public_id: str) -> Timeline:
    """The session's places with their segments, and its events with their offsets; for the tender's
    supervisors (403 recording_forbidden otherwise, 404 session_not_found)."""
    es, _tender, _lot = await playback.replay_session(session, who, session_public_id)
    places = await playback.place_recordings(session, es)
    indexes = [_PlaceIndex(p.place.public_id, p.segments) for p in places]
    every_member = await members.members_of(session, es, include_withdrawn=True)
    place_of_member = {m.public_id: p.place.public_id for p in places for m in every_member
                       if m.place_id == p.place.id}
    user_ids = {m.user_id for m in every_member if m.user_id is not None}
    member_of_user: dict[str, str] = {}
    if user_ids:
        rows = (await session.execute(select(User.public_id, EvaluationMember.public_id, EvaluationMember.status)
                                      .join(EvaluationMember, EvaluationMember.user_id == User.id)
                                      .where(EvaluationMember.session_id == es.id)
                                      .order_by(EvaluationMember.id))).all()
        for user_public_id, member_public_id, status in rows:
            # a withdrawn member's user may have been seated again: the current membership wins
            if status != "withdrawn" or user_public_id not in member_of_user:
                member_of_user[user_public_id] = member_public_id
    events = []
    for entry in await session_events(session, es.public_id):
        member = member_of_user.get(entry.actor) or _concerned_member(entry)
        place = place_of_member.get(member) if member else None
        if place is None and isinstance((entry.payload or {}).get("place"), str):
            place = entry.payload["place"]  # the media plane names the place itself
        marks = [m for m in (ix.mark(entry.at) for ix in indexes) if m is not None]
        events.append(Event(entry, member, place, marks))
    return Timeline(places, events)
