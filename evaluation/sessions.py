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

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.notifier import Notifier
from core.ids import public_id
from core.principal import Principal
from core.scheduler import cancel, schedule
from evaluation import access, committee, members, tender_link
from evaluation.models import EvaluationSession, Room, RoomBooking, Site
from evaluation.rules import (BEFORE_START, FAULT_WAIT_BEFORE_START, FAULT_WAIT_DURING, SessionStatus, VenueSlot,
                              check_all_checked_in, check_committee_complete, check_session_venues, fault_outcome,
                              session_transition)
from evaluation.venues import refused_by
from evidence import ledger_service as ledger
from core.canonical import cj, sha256_hex
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
    # the lot's draw, if it came first, now refers to its session (the draw's venue becomes a reference)
    await committee.refer_draw_to_session(session, lot.id, es.public_id, actor=who.public_id)
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



# ---------------------------------------------------------------------------------------------------------
# Moving a session: check-in, start, suspension and venue faults, the end.

FAULT_JOB = "evaluation.session_fault"


def fault_job_key(es: EvaluationSession) -> str:
    return f"evaluation_session:{es.public_id}:fault"


async def _move(session: AsyncSession, es: EvaluationSession, target: SessionStatus, *, actor: str,
                payload: dict | None = None) -> str:
    previous = es.status
    goal = session_transition(es.status, target, suspended_from=es.suspended_from)
    if goal is SessionStatus.SUSPENDED:
        es.suspended_from = previous
    elif previous == SessionStatus.SUSPENDED:
        es.suspended_from = None
        es.suspend_reason, es.fault_at, es.fault_outcome = None, None, None
    es.status = goal.value
    es.updated_at = func.now()
    await session.flush()
    await ledger.append(session, actor=actor, action=f"evaluation.session.{goal.value}", entity=members.entity(es),
                        payload={"from": previous, "to": goal.value, **(payload or {})})
    log.info("evaluation session %s moved %s -> %s", es.public_id, previous, goal.value)
    return previous


move_session = _move  # for the stages (scoring) that end in a move


async def _committee_state(session: AsyncSession, es: EvaluationSession, lot: Lot) -> list:
    current = await members.members_of(session, es)
    drawn = await committee.confirmed_committee(session, lot.id)
    experts = [m for m in current if m.kind == "expert"]
    check_committee_complete(expert_seats=drawn.expert_seats, experts=len(experts),
                             unplaced=[m.public_id for m in current if m.place_id is None])
    return current


async def open_check_in(session: AsyncSession, *, who: Principal, session_public_id: str) -> SessionView:
    """scheduled → check_in: the committee is complete and every member has a place (409 otherwise)."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_run_session(tender, who):
        raise Forbidden("only the tender's agents run its evaluation session", code="session_forbidden")
    session_transition(es.status, SessionStatus.CHECK_IN, suspended_from=es.suspended_from)
    await _committee_state(session, es, lot)
    await _move(session, es, SessionStatus.CHECK_IN, actor=who.public_id)
    return await _view(session, es, tender, lot)


async def start_session(session: AsyncSession, *, who: Principal, session_public_id: str) -> SessionView:
    """check_in → in_progress once every member has checked in; the tender moves opened → evaluating through
    trading's state mover (评标由招标人依法组建的评标委员会负责, 招标投标法 第37条)."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_run_session(tender, who):
        raise Forbidden("only the tender's agents run its evaluation session", code="session_forbidden")
    session_transition(es.status, SessionStatus.IN_PROGRESS, suspended_from=es.suspended_from)
    current = await _committee_state(session, es, lot)
    check_all_checked_in([m.public_id for m in current if m.status != "checked_in"])
    await tender_link.start_evaluating(session, tender.id, actor=who.public_id, session_public_id=es.public_id)
    es.started_at = await db_now(session)
    await _move(session, es, SessionStatus.IN_PROGRESS, actor=who.public_id,
                payload={"members": [m.public_id for m in current]})
    return await _view(session, es, tender, lot)


async def suspend_session(session: AsyncSession, *, who: Principal, session_public_id: str, reason: str,
                          fault: bool) -> SessionView:
    """Suspend with a reason. A venue fault (fault=true) starts its timer: unresolved 2 h before the start,
    the tenderer decides; 4 h during the evaluation, the session is aborted (PRODUCT.md "Remote cross-site
    sessions")."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_suspend(tender, who, fault=fault):
        raise Forbidden("a supervisor suspends a session; the tender's agents report venue faults",
                        code="session_forbidden")
    reason = reason.strip()
    if not reason:
        raise Unprocessable("a suspension needs a reason", code="reason_required", details={"field": "reason"})
    session_transition(es.status, SessionStatus.SUSPENDED, suspended_from=es.suspended_from)
    now = await db_now(session)
    es.suspend_reason = reason
    payload: dict = {"reason": reason, "fault": fault}
    if fault:
        es.fault_at = now
        wait = FAULT_WAIT_BEFORE_START if SessionStatus(es.status) in BEFORE_START else FAULT_WAIT_DURING
        await schedule(session, FAULT_JOB, due_at=now + wait, payload={"session": es.public_id},
                       dedupe_key=fault_job_key(es))
        payload["fault_timer_due_at"] = (now + wait).isoformat()
    await _move(session, es, SessionStatus.SUSPENDED, actor=who.public_id, payload=payload)
    return await _view(session, es, tender, lot)


async def resume_session(session: AsyncSession, *, who: Principal, session_public_id: str,
                         note: str | None = None) -> SessionView:
    """A supervisor resumes a suspended session where it stopped; a pending fault timer is cancelled."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_resume(tender, who):
        raise Forbidden("only the tender's supervisors resume a session", code="session_forbidden")
    if es.status != SessionStatus.SUSPENDED:
        raise Conflict("the session is not suspended", code="illegal_transition",
                       details={"current": es.status, "target": es.suspended_from})
    await cancel(session, fault_job_key(es))
    await _move(session, es, SessionStatus(es.suspended_from), actor=who.public_id,
                payload={"note": (note or "").strip() or None, "suspend_reason": es.suspend_reason})
    return await _view(session, es, tender, lot)


async def _abort(session: AsyncSession, es: EvaluationSession, tender: Tender, *, actor: str, reason: str,
                 seal: bool) -> None:
    await cancel(session, fault_job_key(es))
    es.ended_reason = reason
    payload: dict = {"reason": reason}
    if seal:
        # the materials as they stand are fixed by their digest in the ledger; nothing more is added to them
        record = await _materials(session, es)
        digest = sha256_hex(cj(record))
        es.materials_sealed_at, es.materials_sha256 = await db_now(session), digest
        await ledger.append(session, actor=actor, action="evaluation.session.materials_sealed",
                            entity=members.entity(es), payload={"sha256": digest, "materials": record})
        payload["materials_sha256"] = digest
    await _move(session, es, SessionStatus.ABORTED, actor=actor, payload=payload)


async def _materials(session: AsyncSession, es: EvaluationSession) -> dict:
    current = await members.members_of(session, es, include_withdrawn=True)
    return {"session": es.public_id, "status": es.status, "suspended_from": es.suspended_from,
            "started_at": es.started_at.isoformat() if es.started_at else None,
            "members": [{"member": m.public_id, "kind": m.kind, "quota": m.quota, "seat": m.seat,
                         "status": m.status, "declaration": m.declaration,
                         "checked_in_at": m.checked_in_at.isoformat() if m.checked_in_at else None}
                        for m in current]}


async def abort_session(session: AsyncSession, *, who: Principal, session_public_id: str,
                        reason: str) -> SessionView:
    """End a session that cannot go on (终止); the lot needs a new session. Its materials are sealed when the
    evaluation had started."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_abort(tender, who):
        raise Forbidden("only the tender's supervisors and agents end its session", code="session_forbidden")
    reason = reason.strip()
    if not reason:
        raise Unprocessable("ending a session needs a reason", code="reason_required", details={"field": "reason"})
    session_transition(es.status, SessionStatus.ABORTED, suspended_from=es.suspended_from)
    await _abort(session, es, tender, actor=who.public_id, reason=reason, seal=es.started_at is not None)
    return await _view(session, es, tender, lot)


async def decide_after_fault(session: AsyncSession, *, who: Principal, session_public_id: str, go_on: bool,
                             reason: str) -> SessionView:
    """After a fault before the start stayed unresolved for 2 h, the tenderer decides: go on (the session
    resumes where it stopped) or not (it ends and a new session is scheduled)."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_decide_after_fault(tender, who):
        raise Forbidden("the tenderer decides after a venue fault", code="session_forbidden")
    if es.status != SessionStatus.SUSPENDED or es.fault_outcome != "tenderer_decides":
        raise Conflict("no decision is waiting for the tenderer", code="no_decision_pending",
                       details={"status": es.status, "fault_outcome": es.fault_outcome})
    reason = reason.strip()
    if not reason:
        raise Unprocessable("the decision needs a reason", code="reason_required", details={"field": "reason"})
    await ledger.append(session, actor=who.public_id, action="evaluation.session.fault_decision",
                        entity=members.entity(es), payload={"go_on": go_on, "reason": reason})
    if go_on:
        await _move(session, es, SessionStatus(es.suspended_from), actor=who.public_id,
                    payload={"decided_by_tenderer": True, "reason": reason})
    else:
        await _abort(session, es, tender, actor=who.public_id, reason=reason, seal=False)
    return await _view(session, es, tender, lot)


async def fault_timer(session: AsyncSession, session_public_id: str, *, notifier: Notifier) -> str | None:
    """The scheduler's fault timer: what an unresolved venue fault leads to, judged by the database clock.

    - before the start, 2 h: the tenderer is notified and decides (the session waits, fault_outcome set);
    - during the evaluation, 4 h: the materials are sealed, the session aborted, and a new committee requested
      of the tender's agent (the new draw is theirs to make, with this reason on record).
    Returns the outcome, or None when the fault was resolved meanwhile.
    """
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if es.status != SessionStatus.SUSPENDED or es.fault_at is None or es.fault_outcome is not None:
        return None
    now = await db_now(session)
    outcome = fault_outcome(es.suspended_from, now - es.fault_at)
    if outcome is None:
        wait = FAULT_WAIT_BEFORE_START if SessionStatus(es.suspended_from) in BEFORE_START else FAULT_WAIT_DURING
        await schedule(session, FAULT_JOB, due_at=es.fault_at + wait, payload={"session": es.public_id},
                       dedupe_key=fault_job_key(es))
        return None
    if outcome == "tenderer_decides":
        es.fault_outcome = outcome
        await session.flush()
        await ledger.append(session, actor=ledger.SYSTEM, action="evaluation.session.fault_unresolved",
                            entity=members.entity(es), payload={"outcome": outcome, "fault_at": es.fault_at.isoformat(),
                                                               "reason": es.suspend_reason})
        for user_id in {*await tender_link.tenderer_user_ids(session, tender), tender.created_by_id}:
            await notifier.notify(
                session, user_id=user_id, kind="evaluation.fault_decision", title="评标场地故障 Venue fault",
                body=(f"评标会议 {es.public_id}（{lot.public_id}）开始前的故障 2 小时未排除，请招标人决定是否继续。"
                      f" The fault before session {es.public_id} is unresolved after 2 h: the tenderer decides."),
                data={"session_id": es.public_id, "lot_id": lot.public_id})
        return outcome
    reason = f"venue fault unresolved for 4 h during the evaluation: {es.suspend_reason}"
    await _abort(session, es, tender, actor=ledger.SYSTEM, reason=reason, seal=True)
    await ledger.append(session, actor=ledger.SYSTEM, action="evaluation.committee.renewal_requested",
                        entity=members.entity(es), payload={"lot": lot.public_id, "reason": reason})
    await notifier.notify(
        session, user_id=tender.created_by_id, kind="evaluation.new_committee", title="重新组建评标委员会 New committee",
        body=(f"评标会议 {es.public_id} 因故障 4 小时未排除已终止，材料已封存，请为 {lot.public_id} 重新抽取专家。"
              f" Session {es.public_id} was aborted; request a new draw for lot {lot.public_id}."),
        data={"session_id": es.public_id, "lot_id": lot.public_id, "reason": reason})
    return "abort"
