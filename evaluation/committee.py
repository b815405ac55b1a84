"""The one place where evaluation reaches into the expert pool: who sits on a lot's committee, and how a member
who leaves at check-in is replaced. Every call into expert_pool goes through this module, so that the pool's
internals can move without touching the rest of evaluation.

A member of the committee is an expert whose invitation to a seat of the lot's confirmed draw (the original
draw, status `formed`) is accepted: the seat is filled. Replacement uses the pool's own path: the member's
invitation is closed as declined, with the reason, and the pool's seating offers the seat to the quota's next
backup (or commits a supplementary draw when none is left), exactly as for a decline before the session.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import Conflict, NotFound
from evaluation.models import EvaluationSession, Room, RoomBooking, Site
from evidence import ledger_service as ledger
from expert_pool import confirmations, venue_refs
from expert_pool.draws import DEFAULT_POLICY
from expert_pool.models import Expert, ExpertDraw, ExpertInvitation, ExpertService
from expert_pool.regions import region_matches
from trading.models import Tender


@dataclass(frozen=True)
class SeatedExpert:
    """An expert holding a seat of the lot's committee."""

    invitation_id: int
    expert_id: int          # expert.id
    expert_public_id: str
    user_id: int | None     # the expert's login, None when they have no account
    name: str
    province_code: str
    city_code: str
    id_card_no: str
    quota: str
    seat: int


@dataclass(frozen=True)
class Committee:
    """The lot's confirmed draw: its public id, how many expert seats and tenderer representatives it planned,
    and the experts seated now."""

    draw_public_id: str
    expert_seats: int
    representatives: int
    seated: list[SeatedExpert]


async def confirmed_committee(session: AsyncSession, lot_id: int) -> Committee:
    """The lot's newest original draw that has formed its committee; 409 committee_not_formed otherwise."""
    root = (await session.execute(
        select(ExpertDraw).where(ExpertDraw.lot_id == lot_id, ExpertDraw.parent_id.is_(None),
                                 ExpertDraw.status == "formed").order_by(ExpertDraw.id.desc()).limit(1)
    )).scalar_one_or_none()
    if root is None:
        raise Conflict("the lot has no confirmed expert draw: every seat must be accepted first",
                       code="committee_not_formed")
    rows = (await session.execute(
        select(ExpertInvitation, Expert).join(Expert, Expert.id == ExpertInvitation.expert_id)
        .where(ExpertInvitation.root_draw_id == root.id, ExpertInvitation.status == "accepted")
        .order_by(ExpertInvitation.quota, ExpertInvitation.seat))).all()
    seated = [SeatedExpert(i.id, e.id, e.public_id, e.user_id, e.name, e.province_code, e.city_code, e.id_card_no,
                           i.quota, i.seat) for i, e in rows]
    return Committee(root.public_id, sum(confirmations.seats_of(root).values()), root.representatives, seated)


def expert_in_region(site_region: str, province_code: str, city_code: str) -> bool:
    """Whether a site of `site_region` (a province or a city code) is in the expert's own region."""
    return region_matches(site_region, city_code) or site_region == province_code


async def expert_of_user(session: AsyncSession, user_id: int) -> Expert | None:
    """The pool expert linked to a login, if any."""
    return (await session.execute(select(Expert).where(Expert.user_id == user_id))).scalar_one_or_none()


async def replace_member(session: AsyncSession, *, invitation_id: int, tender: Tender, reason: str,
                         actor: str) -> None:
    """Free the seat of a member who declared a conflict at check-in and call in the next backup.

    The invitation is withdrawn with the reason; the service record written when it was accepted is
    removed (the expert did not serve); then the pool's seating offers the seat to the quota's next backup.
    """
    invitation = (await session.execute(select(ExpertInvitation).where(ExpertInvitation.id == invitation_id)
                                        .with_for_update())).scalar_one()
    root = (await session.execute(select(ExpertDraw).where(ExpertDraw.id == invitation.root_draw_id)
                                  .with_for_update())).scalar_one()
    if invitation.status != "accepted":
        raise Conflict("the seat is not held by this member any more", code="seat_not_held")
    # withdrawn, as the pool's own re-screen at the bid deadline withdraws a conflicting member: the expert is
    # marked unavailable for this draw, so the seat goes to the quota's next backup and never back to them. The
    # draw stays formed: its committee exists, and the session waits for the backup (committee_incomplete)
    invitation.status = "withdrawn"
    invitation.decline_reason = reason
    invitation.replied_at = await db_now(session)
    await session.execute(delete(ExpertService).where(ExpertService.draw_id == root.id,
                                                      ExpertService.expert_id == invitation.expert_id))
    expert_pid = (await session.execute(select(Expert.public_id).where(Expert.id == invitation.expert_id))).scalar_one()
    root.context = {**(root.context or {}),
                    "unavailable": {**confirmations.unavailable(root), expert_pid: reason}}
    await session.flush()
    await ledger.append(session, actor=actor, action="invitation.withdraw",
                        entity=ledger.entity_ref("invitation", invitation.public_id),
                        payload={"draw_id": root.public_id, "expert": expert_pid, "quota": invitation.quota,
                                 "seat": invitation.seat, "reason": reason})
    await confirmations.seat_committee(session, root, tender=tender, policy=DEFAULT_POLICY, actor=actor)


@dataclass(frozen=True)
class ExpertBrief:
    public_id: str
    name: str
    id_card_no: str


async def expert_brief(session: AsyncSession, expert_id: int) -> ExpertBrief:
    """An expert's public id, name and registered ID card number (for check-in; never shown)."""
    expert = await session.get(Expert, expert_id)
    return ExpertBrief(expert.public_id, expert.name, expert.id_card_no)


# ---- the draw's venue: a reference to the session ----------------------------------------------------------------

_ROLE_ZH = {"main": "主场", "sub": "副场"}


async def session_venue(session: AsyncSession, lot_id: int, session_public_id: str) -> str:
    """What a draw naming this session tells the experts: its venues, main venue first. 404 for an unknown
    session, 409 for one of another lot or one that is over."""
    es = (await session.execute(select(EvaluationSession).where(
        EvaluationSession.public_id == session_public_id))).scalar_one_or_none()
    if es is None:
        raise NotFound("no such evaluation session", code="session_not_found",
                       details={"evaluation_session": session_public_id})
    if es.lot_id != lot_id:
        raise Conflict("the evaluation session is for another lot", code="session_of_other_lot",
                       details={"evaluation_session": session_public_id})
    if es.status in ("closed", "aborted"):
        raise Conflict(f"the evaluation session is {es.status}", code="session_not_live",
                       details={"evaluation_session": session_public_id, "status": es.status})
    rows = (await session.execute(
        select(Site.name, Room.name, RoomBooking.venue_role).join(Room, Room.id == RoomBooking.room_id)
        .join(Site, Site.id == Room.site_id)
        .where(RoomBooking.evaluation_session_id == es.id, RoomBooking.status == "confirmed")
        .order_by(RoomBooking.venue_role, Site.id, Room.id))).all()
    text_ = "；".join(f"{site} {room}（{_ROLE_ZH.get(role, role)}）" for site, room, role in rows)
    return (text_ or session_public_id)[:200]


async def refer_draw_to_session(session: AsyncSession, lot_id: int, session_public_id: str, *, actor: str) -> None:
    """The lot's draw, made before the session was scheduled, now refers to it (expert_pool.venue_refs)."""
    await venue_refs.refer_to_session(session, lot_id, session_public_id, actor=actor)


# the pool resolves a draw's session reference through evaluation, without importing it
venue_refs.set_resolver(session_venue)
