"""The committee of an evaluation session: forming it from the lot's confirmed draw and the tenderer's
representatives, placing each member at a place (席位) of the session's rooms, and check-in.

Never commits: every function runs in the caller's transaction and writes its ledger entry there. Everything
from the expert pool comes through evaluation.committee; everything from trading through evaluation.tender_link.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.identity_models import User
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.ids import public_id
from core.principal import Principal
from evaluation import access, committee, tender_link
from evaluation.models import EvaluationMember, EvaluationSession, Place, Room, RoomBooking, Site
from evaluation.rules import (SessionStatus as SS, check_declared_bidders, check_identity, check_place_region,
                              check_representatives)
from evidence import ledger_service as ledger
from trading.models import Lot, Tender

log = logging.getLogger(__name__)

# the committee may change (members, places) until the evaluation starts
FORMING_STATES = frozenset({SS.SCHEDULED, SS.CHECK_IN})


@dataclass
class PlaceAt:
    place: Place
    room: Room
    site: Site
    venue_role: str


@dataclass
class MemberView:
    member: EvaluationMember
    place: PlaceAt | None
    name: str | None = None
    expert_public_id: str | None = None
    user_public_id: str | None = None


@dataclass
class CommitteeView:
    session: EvaluationSession
    tender: Tender
    lot: Lot
    draw_id: str | None
    members: list[MemberView] = field(default_factory=list)


def entity(es: EvaluationSession) -> str:
    return ledger.entity_ref("evaluation_session", es.public_id)


async def load_session(session: AsyncSession, session_public_id: str, *,
                       lock: bool = False) -> tuple[EvaluationSession, Tender, Lot]:
    """A session with its tender and lot (the session row locked when asked); 404 session_not_found."""
    query = (select(EvaluationSession, Tender, Lot).join(Tender, Tender.id == EvaluationSession.tender_id)
             .join(Lot, Lot.id == EvaluationSession.lot_id).where(EvaluationSession.public_id == session_public_id))
    if lock:
        query = query.with_for_update(of=EvaluationSession).execution_options(populate_existing=True)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound("no such evaluation session", code="session_not_found",
                       details={"session_id": session_public_id})
    return row[0], row[1], row[2]


def _check_runner(tender: Tender, who: Principal) -> None:
    if not access.may_run_session(tender, who):
        raise Forbidden("only the tender's agents run its evaluation session", code="session_forbidden",
                        details={"tender": tender.code})


def _check_forming(es: EvaluationSession) -> None:
    if es.status not in FORMING_STATES:
        raise Conflict(f"the session is {es.status}: its committee can no longer change", code="committee_closed",
                       details={"status": es.status})


async def session_places(session: AsyncSession, es: EvaluationSession) -> list[PlaceAt]:
    """The active places of the session's rooms, main venue first, then by site and label."""
    rows = (await session.execute(
        select(Place, Room, Site, RoomBooking.venue_role).join(Room, Room.id == Place.room_id)
        .join(Site, Site.id == Room.site_id).join(RoomBooking, RoomBooking.room_id == Room.id)
        .where(RoomBooking.evaluation_session_id == es.id, RoomBooking.status == "confirmed",
               Place.status == "active")
        .order_by(RoomBooking.venue_role, Site.id, Place.label))).all()
    return [PlaceAt(p, r, s, role) for p, r, s, role in rows]


async def members_of(session: AsyncSession, es: EvaluationSession, *,
                     include_withdrawn: bool = False) -> list[EvaluationMember]:
    query = select(EvaluationMember).where(EvaluationMember.session_id == es.id)
    if not include_withdrawn:
        query = query.where(EvaluationMember.status != "withdrawn")
    return list((await session.execute(query.order_by(EvaluationMember.kind, EvaluationMember.quota,
                                                      EvaluationMember.seat, EvaluationMember.id))).scalars())


def _fits(member: EvaluationMember, at: PlaceAt) -> bool:
    if member.kind == "representative":
        return at.venue_role == "main"  # the tenderer's representatives sit at the main venue (主场)
    return committee.expert_in_region(at.site.region_code, member.region_code[:2] + "0000", member.region_code)


async def form_committee(session: AsyncSession, *, who: Principal, session_public_id: str,
                         representatives: Sequence[str] = ()) -> CommitteeView:
    """Bring the session's committee up to date with the lot's confirmed draw: every seated expert becomes a
    member (a replacement who accepted since joins), the named tenderer representatives are added, and every
    member without a place gets the first free place of their own region. Idempotent."""
    es, tender, lot = await load_session(session, session_public_id, lock=True)
    _check_runner(tender, who)
    _check_forming(es)
    drawn = await committee.confirmed_committee(session, lot.id)
    current = await members_of(session, es)
    reps_now = [m for m in current if m.kind == "representative"]
    new_reps = []
    for user_public_id in dict.fromkeys(representatives):
        user = await tender_link.user_by_public_id(session, user_public_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found", details={"user_id": user_public_id})
        if user.organisation_id != tender.tenderer_id:
            raise Unprocessable("a tenderer representative (招标人代表) is one of the tenderer's own staff",
                                code="not_tenderer_staff", details={"user_id": user_public_id})
        if any(m.user_id == user.id for m in current):
            continue
        new_reps.append(user)
    check_representatives(experts=drawn.expert_seats, representatives=len(reps_now) + len(new_reps),
                          planned=drawn.representatives)
    seated_ids = {m.invitation_id for m in current if m.kind == "expert"}
    added: list[EvaluationMember] = []
    for seat in drawn.seated:
        if seat.invitation_id in seated_ids:
            continue
        added.append(EvaluationMember(public_id=public_id("EM", 8), session_id=es.id, kind="expert",
                                      expert_id=seat.expert_id, invitation_id=seat.invitation_id,
                                      user_id=seat.user_id, quota=seat.quota, seat=seat.seat,
                                      region_code=seat.city_code, status="seated"))
    for user in new_reps:
        added.append(EvaluationMember(public_id=public_id("EM", 8), session_id=es.id, kind="representative",
                                      user_id=user.id, status="seated"))
    session.add_all(added)
    await session.flush()
    members = current + added
    places = await session_places(session, es)
    taken = {m.place_id for m in members if m.place_id is not None}
    placed: dict[str, str] = {}
    for member in members:
        if member.place_id is not None:
            continue
        free = next((at for at in places if at.place.id not in taken and _fits(member, at)), None)
        if free is not None:
            member.place_id = free.place.id
            taken.add(free.place.id)
            placed[member.public_id] = free.place.public_id
    await session.flush()
    if added or placed:
        await ledger.append(session, actor=who.public_id, action="evaluation.committee.form", entity=entity(es),
                            payload={"draw_id": drawn.draw_public_id,
                                     "added": [{"member": m.public_id, "kind": m.kind, "quota": m.quota,
                                                "seat": m.seat} for m in added],
                                     "placed": placed})
    return await committee_view(session, who=who, session_public_id=es.public_id, loaded=(es, tender, lot))


async def assign_place(session: AsyncSession, *, who: Principal, session_public_id: str, member_public_id: str,
                       place_public_id: str) -> CommitteeView:
    """The agent chooses a member's place: a place of one of the session's rooms, at a site of the expert's own
    region (422 place_region_mismatch), not taken by another member (409 place_taken)."""
    es, tender, lot = await load_session(session, session_public_id, lock=True)
    _check_runner(tender, who)
    _check_forming(es)
    members = await members_of(session, es)
    member = next((m for m in members if m.public_id == member_public_id), None)
    if member is None:
        raise NotFound("no such member of this session", code="member_not_found",
                       details={"member_id": member_public_id})
    if member.status == "checked_in":
        raise Conflict("a member who has checked in keeps their place", code="member_checked_in",
                       details={"member_id": member_public_id})
    at = next((p for p in await session_places(session, es) if p.place.public_id == place_public_id), None)
    if at is None:
        raise Unprocessable("the place is not in one of the session's rooms", code="place_not_in_session",
                            details={"place_id": place_public_id})
    if member.kind == "expert":
        check_place_region(in_region=_fits(member, at), place_id=place_public_id, site_region=at.site.region_code,
                           expert_region=member.region_code)
    holder = next((m for m in members if m.place_id == at.place.id and m.id != member.id), None)
    if holder is not None:
        raise Conflict("another member sits at this place", code="place_taken",
                       details={"place_id": place_public_id, "member_id": holder.public_id})
    previous = member.place_id
    member.place_id = at.place.id
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.member.place", entity=entity(es),
                        payload={"member": member.public_id, "place": place_public_id, "site": at.site.public_id,
                                 "replaced_place_pk": previous})
    return await committee_view(session, who=who, session_public_id=es.public_id, loaded=(es, tender, lot))


async def committee_view(session: AsyncSession, *, who: Principal, session_public_id: str,
                         loaded: tuple[EvaluationSession, Tender, Lot] | None = None,
                         include_withdrawn: bool = True) -> CommitteeView:
    """The committee with places and check-ins; experts' names only to the tender's supervisors (and after the
    award), as for the draw itself."""
    es, tender, lot = loaded or await load_session(session, session_public_id)
    if not access.may_see_session(tender, who):
        raise Forbidden("only the tender's agents and supervisors follow its evaluation", code="session_forbidden",
                        details={"session_id": es.public_id})
    names = access.may_see_member_identities(tender, who)
    places = {p.place.id: p for p in await session_places(session, es)}
    views = []
    for m in await members_of(session, es, include_withdrawn=include_withdrawn):
        view = MemberView(m, places.get(m.place_id))
        if m.kind == "expert":
            expert = await committee.expert_brief(session, m.expert_id)
            view.expert_public_id = expert.public_id if names else None
            view.name = expert.name if names else None
        else:
            user = await session.get(User, m.user_id)
            view.user_public_id, view.name = user.public_id, user.display_name
        views.append(view)
    drawn = None
    try:
        drawn = (await committee.confirmed_committee(session, lot.id)).draw_public_id
    except Conflict:
        pass
    return CommitteeView(es, tender, lot, drawn, views)


# ---------------------------------------------------------------------------------------------------------
# Check-in.

async def _my_membership(session: AsyncSession, es: EvaluationSession, who: Principal) -> EvaluationMember:
    member = (await session.execute(
        select(EvaluationMember).where(EvaluationMember.session_id == es.id, EvaluationMember.user_id == who.user_id,
                                       EvaluationMember.status != "withdrawn")
        .with_for_update())).scalar_one_or_none()
    if member is None:
        raise Forbidden("only members of the committee act in this session", code="not_a_member",
                        details={"session_id": es.public_id})
    return member


async def declaration_form(session: AsyncSession, *, who: Principal,
                           session_public_id: str) -> list[tender_link.Bidder]:
    """The bidders a member declares against (回避声明): the lot's opened bids, shown from check-in on."""
    es, tender, lot = await load_session(session, session_public_id)
    await _my_membership(session, es, who)
    if es.status == SS.SCHEDULED:
        raise Conflict("check-in has not started", code="check_in_not_open", details={"status": es.status})
    return await tender_link.opened_bidders(session, lot.id)


async def check_in(session: AsyncSession, *, who: Principal, session_public_id: str, id_card_last4: str | None,
                   commitment: bool, conflicts: Sequence[str], note: str | None) -> MemberView:
    """A member checks in at their place: confirms identity (experts: the last four characters of the ID card),
    signs the integrity commitment (承诺书) and the avoidance declaration (回避声明) over the lot's bidders.

    A member who declares a conflict with a bidder must withdraw (招标投标法 第37条: 与投标人有利害关系的人不得进入
    评标委员会; 实施条例 第46条 the member shall withdraw): they leave the committee, and the next backup of their
    quota is called in through the expert pool's replacement path.
    """
    es, tender, lot = await load_session(session, session_public_id, lock=True)
    member = await _my_membership(session, es, who)
    if es.status != SS.CHECK_IN:
        raise Conflict(f"the session is {es.status}: check-in is not open", code="check_in_not_open",
                       details={"status": es.status})
    if member.status == "checked_in":
        raise Conflict("you have already checked in", code="already_checked_in")
    if member.place_id is None:
        raise Conflict("you have no place yet", code="member_unplaced")
    if not commitment:
        raise Unprocessable("the integrity commitment (承诺书) must be signed to sit on the committee",
                            code="commitment_required")
    if member.kind == "expert":
        expert = await committee.expert_brief(session, member.expert_id)
        check_identity(expert.id_card_no, id_card_last4 or "")
    bidders = await tender_link.opened_bidders(session, lot.id)
    declared = list(dict.fromkeys(conflicts))
    check_declared_bidders(declared, [b.organisation_public_id for b in bidders])
    now = await db_now(session)
    member.declaration = {"bidders": [b.organisation_public_id for b in bidders], "conflicts": declared,
                          "note": (note or "").strip() or None, "commitment": True, "signed_at": now.isoformat()}
    if declared:
        member.status, member.withdrawn_at = "withdrawn", now
        member.withdrawn_reason = "declared a conflict with " + ", ".join(declared)
        await session.flush()
        await ledger.append(session, actor=who.public_id, action="evaluation.member.withdraw", entity=entity(es),
                            payload={"member": member.public_id, "conflicts": declared,
                                     "statute": "招标投标法 第37条; 招标投标法实施条例 第46条"})
        if member.kind == "expert":
            await committee.replace_member(session, invitation_id=member.invitation_id, tender=tender,
                                           reason=f"回避: {member.withdrawn_reason}", actor=who.public_id)
    else:
        member.status, member.checked_in_at = "checked_in", now
        await session.flush()
        await ledger.append(session, actor=who.public_id, action="evaluation.member.check_in", entity=entity(es),
                            payload={"member": member.public_id, "bidders": member.declaration["bidders"],
                                     "commitment": True})
    places = {p.place.id: p for p in await session_places(session, es)}
    return MemberView(member, places.get(member.place_id))
