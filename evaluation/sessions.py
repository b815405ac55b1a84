"""Evaluation session use cases (评标会议): scheduling a lot's session at a main venue (主场) and sub-venues (副场),
each an existing room booking for the lot's tender, and reading it back.

Never commits: every function runs in the caller's transaction and writes its ledger entry there. Check-in,
the chair, review and scoring build on this later; moves between states go through
evaluation.rules.session_transition.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import Conflict, Forbidden, NotFound
from core.ids import public_id
from core.principal import Principal
from evaluation import access
from evaluation.models import EvaluationSession, Room, RoomBooking, Site
from evaluation.rules import VenueSlot, check_session_venues
from evaluation.venues import refused_by
from evidence import ledger_service as ledger
from trading.models import Lot, Tender

log = logging.getLogger(__name__)

LIVE_SESSION_INDEX = "evaluation_session_live_lot_idx"
# a lot's evaluation is scheduled once the tender is out and until its candidates are published; re-evaluation
# after an upheld objection (candidates_published) schedules a new session too
SCHEDULABLE_TENDER_STATES = frozenset({"published", "closed", "opening", "opened", "evaluating",
                                       "candidates_published"})


@dataclass
class Venue:
    """One of a session's venues: the booking, its room and site."""

    booking: RoomBooking
    room: Room
    site: Site


@dataclass
class SessionView:
    session: EvaluationSession
    tender: Tender
    lot: Lot
    main: Venue | None
    subs: list[Venue] = field(default_factory=list)


async def _lot(session: AsyncSession, lot_public_id: str) -> tuple[Lot, Tender]:
    row = (await session.execute(select(Lot, Tender).join(Tender, Tender.id == Lot.tender_id)
                                 .where(Lot.public_id == lot_public_id))).one_or_none()
    if row is None:
        raise NotFound("no such lot", code="lot_not_found", details={"lot_id": lot_public_id})
    return row[0], row[1]


async def _venues(session: AsyncSession, booking_public_ids: Sequence[str]) -> dict[str, Venue]:
    """The bookings named, locked, with their rooms and sites; 404 booking_not_found for any unknown."""
    rows = (await session.execute(
        select(RoomBooking, Room, Site).join(Room, Room.id == RoomBooking.room_id).join(Site, Site.id == Room.site_id)
        .where(RoomBooking.public_id.in_(list(booking_public_ids))).with_for_update(of=RoomBooking))).all()
    found = {b.public_id: Venue(b, r, s) for b, r, s in rows}
    missing = [b for b in booking_public_ids if b not in found]
    if missing:
        raise NotFound("no such booking", code="booking_not_found", details={"booking_id": missing[0]})
    return found


def _check_offered(venue: Venue, tender: Tender, lot: Lot, now: datetime) -> None:
    b = venue.booking
    if b.status != "confirmed":
        raise Conflict("the booking is cancelled", code="booking_not_active", details={"booking_id": b.public_id})
    if b.ends_at <= now:
        raise Conflict("the booking is over", code="booking_over", details={"booking_id": b.public_id})
    if b.tender_id != tender.id or (b.lot_id is not None and b.lot_id != lot.id):
        raise Conflict(f"the booking is not for lot {lot.public_id}", code="booking_for_other_purpose",
                       details={"booking_id": b.public_id, "lot_id": lot.public_id})
    if b.evaluation_session_id is not None:
        raise Conflict("the booking already serves an evaluation session", code="booking_in_session",
                       details={"booking_id": b.public_id})


def _slot(venue: Venue) -> VenueSlot:
    return VenueSlot(venue.booking.public_id, venue.site.public_id, venue.booking.starts_at, venue.booking.ends_at)


async def schedule_session(session: AsyncSession, *, who: Principal, lot_public_id: str, main_booking: str,
                           sub_bookings: Sequence[str] = ()) -> SessionView:
    """Schedule the lot's evaluation session at its venues; 409 session_exists while another is live."""
    lot, tender = await _lot(session, lot_public_id)
    if not access.may_schedule_session(tender, who):
        raise Forbidden("only the tender's agents schedule its evaluation", code="session_forbidden",
                        details={"tender": tender.code})
    if tender.status not in SCHEDULABLE_TENDER_STATES:
        raise Conflict(f"tender {tender.code} is {tender.status}: no evaluation can be scheduled",
                       code="tender_not_evaluable", details={"tender": tender.code, "status": tender.status})
    offered = await _venues(session, [main_booking, *sub_bookings])
    main, subs = offered[main_booking], [offered[b] for b in sub_bookings]
    now = await db_now(session)
    for venue in (main, *subs):
        _check_offered(venue, tender, lot, now)
    check_session_venues(_slot(main), [_slot(v) for v in subs])

    es = EvaluationSession(public_id=public_id("ES", 8), tender_id=tender.id, lot_id=lot.id, status="scheduled",
                           created_by_id=who.user_id)
    try:
        async with session.begin_nested():
            session.add(es)
            await session.flush()
    except IntegrityError as err:
        if refused_by(err) != LIVE_SESSION_INDEX:
            raise
        raise Conflict(f"lot {lot.public_id} already has a live evaluation session", code="session_exists",
                       details={"lot_id": lot.public_id}) from err
    main.booking.evaluation_session_id, main.booking.venue_role = es.id, "main"
    for venue in subs:
        venue.booking.evaluation_session_id, venue.booking.venue_role = es.id, "sub"
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.session.schedule",
                        entity=ledger.entity_ref("evaluation_session", es.public_id),
                        payload={"tender": tender.code, "lot": lot.public_id, "main": _venue_record(main),
                                 "subs": [_venue_record(v) for v in subs]})
    log.info("evaluation session %s scheduled for lot %s", es.public_id, lot.public_id)
    return SessionView(es, tender, lot, main, subs)


def _venue_record(venue: Venue) -> dict:
    return {"booking": venue.booking.public_id, "site": venue.site.public_id, "room": venue.room.public_id,
            "starts_at": venue.booking.starts_at.isoformat(), "ends_at": venue.booking.ends_at.isoformat()}


async def _view(session: AsyncSession, es: EvaluationSession, tender: Tender, lot: Lot) -> SessionView:
    rows = (await session.execute(
        select(RoomBooking, Room, Site).join(Room, Room.id == RoomBooking.room_id).join(Site, Site.id == Room.site_id)
        .where(RoomBooking.evaluation_session_id == es.id).order_by(RoomBooking.id))).all()
    venues = [(Venue(b, r, s)) for b, r, s in rows]
    main = next((v for v in venues if v.booking.venue_role == "main"), None)
    return SessionView(es, tender, lot, main, [v for v in venues if v.booking.venue_role == "sub"])


async def get_session(session: AsyncSession, *, who: Principal, session_public_id: str) -> SessionView:
    """A session with its venues, for those who run or supervise its tender; 404 otherwise-unknown ids."""
    row = (await session.execute(
        select(EvaluationSession, Tender, Lot).join(Tender, Tender.id == EvaluationSession.tender_id)
        .join(Lot, Lot.id == EvaluationSession.lot_id).where(EvaluationSession.public_id == session_public_id)
    )).one_or_none()
    if row is None:
        raise NotFound("no such evaluation session", code="session_not_found",
                       details={"session_id": session_public_id})
    es, tender, lot = row
    if not access.may_see_session(tender, who):
        raise Forbidden("only the tender's agents and supervisors follow its evaluation", code="session_forbidden",
                        details={"session_id": es.public_id})
    return await _view(session, es, tender, lot)


async def lot_sessions(session: AsyncSession, *, who: Principal, lot_public_id: str) -> list[SessionView]:
    """A lot's sessions, the newest first, for those who run or supervise its tender."""
    lot, tender = await _lot(session, lot_public_id)
    if not access.may_see_session(tender, who):
        raise Forbidden("only the tender's agents and supervisors follow its evaluation", code="session_forbidden",
                        details={"lot_id": lot.public_id})
    rows = (await session.execute(select(EvaluationSession).where(EvaluationSession.lot_id == lot.id)
                                  .order_by(EvaluationSession.id.desc()))).scalars()
    return [await _view(session, es, tender, lot) for es in rows]

