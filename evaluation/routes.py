"""HTTP endpoints of evaluation: venue management (统一场地管理) — sites, rooms, places and room bookings — and
evaluation sessions at a main venue and sub-venues. Thin: the services decide and the access policy says who
sees a booking's purpose; these shape the JSON."""
from __future__ import annotations

import logging

from aiohttp import web

from core.principal import Principal
from evaluation import access
from evaluation import chair as chairs
from evaluation import members
from evaluation import supervision
from evaluation import sheets as sheet_svc
from evaluation import review as reviews
from evaluation import sessions
from evaluation.demo import seed_demo  # noqa: F401  (the demo hook, found by name)
from evaluation import venues as svc
from evaluation.models import Place
from evaluation.schemas import (MemberProgressOut, SupervisionOut, FlagsOut, JustifyIn, ReturnSheetIn, ScoringClosedOut, SheetIn, SheetOut, BallotOut, BallotsIn, RequirementsIn, ReviewOut, BidderOut, ChairOut, EntropyIn, VoteIn, BookingIn, BookingOut, BookingQuery, CancelIn, CheckInIn, CommitteeIn,
                                CommitteeOut, FaultDecisionIn, MemberOut, MemberPlaceOut, PlaceAssignIn, PlaceIn,
                                PlaceOut, PlacePatch, ReasonIn, ResumeIn, RoomIn, RoomOut, RoomPatch, SessionIn,
                                SessionOut, SiteIn, SiteOut, SitePatch, SiteQuery, SuspendIn, VenueOut)
from expert_pool.regions import region_name
from web.api import Api
from core.notifications import InAppNotifier
from web.keys import RECORDS, db

log = logging.getLogger(__name__)

api = Api("evaluation")
ADMIN = ("admin",)


def _place_out(place: Place, room_public_id: str) -> PlaceOut:
    return PlaceOut(place_id=place.public_id, room_id=room_public_id, label=place.label,
                    camera_position=place.camera_position, status=place.status)


def _room_out(tree: svc.RoomTree, site_public_id: str) -> RoomOut:
    room = tree.room
    return RoomOut(room_id=room.public_id, site_id=site_public_id, name=room.name, capacity=room.capacity,
                   status=room.status, places=[_place_out(p, room.public_id) for p in tree.places])


def _site_out(tree: svc.SiteTree) -> SiteOut:
    site = tree.site
    return SiteOut(site_id=site.public_id, name=site.name, region_code=site.region_code,
                   region_name=region_name(site.region_code), address=site.address, status=site.status,
                   rooms=[_room_out(r, site.public_id) for r in tree.rooms], created_at=site.created_at,
                   retired_at=site.retired_at)


def _booking_out(view: svc.BookingView, who: Principal) -> BookingOut:
    b = view.booking
    visible = access.may_see_purpose(view.tender, who)
    purpose = dict(tender=view.tender.code if view.tender else None, lot=view.lot.public_id if view.lot else None,
                   label=b.label, booked_by=view.booked_by, cancel_reason=b.cancel_reason,
                   session_id=view.session_id, venue_role=b.venue_role) if visible else {}
    return BookingOut(booking_id=b.public_id, room_id=view.room.public_id, site_id=view.site.public_id,
                      starts_at=b.starts_at, ends_at=b.ends_at, status=b.status, purpose_visible=visible,
                      created_at=b.created_at, cancelled_at=b.cancelled_at, **purpose)


async def _site_tree(request: web.Request, site_public_id: str, *, include_retired: bool = False) -> SiteOut:
    site = await svc.get_site(db(request), site_public_id)
    return _site_out((await svc.site_trees(db(request), [site], include_retired=include_retired))[0])


# ---- sites ----------------------------------------------------------------------------------------------------

@api.post("/api/v1/sites", summary="Add a trading centre (交易中心) as an evaluation site", body=SiteIn,
          response=SiteOut, status=201, roles=ADMIN, errors=(403, 409, 422))
async def create_site(request: web.Request, who: Principal, body: SiteIn):
    site = await svc.create_site(db(request), who=who, name=body.name, region_code=body.region_code,
                                 address=body.address)
    return _site_out(svc.SiteTree(site))


@api.get("/api/v1/sites", summary="Evaluation sites with their rooms and places (席位)", query=SiteQuery,
         response=list[SiteOut], errors=(422,))
async def list_sites(request: web.Request, who: Principal, query: SiteQuery):
    trees = await svc.list_sites(db(request), region_code=query.region_code, include_retired=query.include_retired)
    return [_site_out(t) for t in trees]


@api.get("/api/v1/sites/{site_id}", summary="One site with its rooms and places", response=SiteOut, errors=(404,))
async def get_site(request: web.Request, who: Principal):
    return await _site_tree(request, request.match_info["site_id"], include_retired=True)


@api.patch("/api/v1/sites/{site_id}", summary="Rename a site or change its region or address", body=SitePatch,
           response=SiteOut, roles=ADMIN, errors=(403, 404, 409, 422))
async def update_site(request: web.Request, who: Principal, body: SitePatch):
    site = await svc.update_site(db(request), who=who, site_public_id=request.match_info["site_id"],
                                 values=body.model_dump(exclude_unset=True, exclude_none=True))
    return await _site_tree(request, site.public_id)


@api.post("/api/v1/sites/{site_id}/retire", summary="Retire a site with its rooms and places (none booked ahead)",
          response=SiteOut, roles=ADMIN, errors=(403, 404, 409))
async def retire_site(request: web.Request, who: Principal):
    site = await svc.retire_site(db(request), who=who, site_public_id=request.match_info["site_id"])
    return await _site_tree(request, site.public_id, include_retired=True)


# ---- rooms ----------------------------------------------------------------------------------------------------

@api.post("/api/v1/sites/{site_id}/rooms", summary="Add an evaluation room (评标室) to a site", body=RoomIn,
          response=RoomOut, status=201, roles=ADMIN, errors=(403, 404, 409, 422))
async def create_room(request: web.Request, who: Principal, body: RoomIn):
    site_id = request.match_info["site_id"]
    room = await svc.create_room(db(request), who=who, site_public_id=site_id, name=body.name,
                                 capacity=body.capacity)
    return _room_out(svc.RoomTree(room), site_id)


@api.get("/api/v1/rooms/{room_id}", summary="One room with its places", response=RoomOut, errors=(404,))
async def get_room(request: web.Request, who: Principal):
    room, site = await svc.get_room(db(request), request.match_info["room_id"])
    return _room_out(await svc.room_tree(db(request), room), site.public_id)


@api.patch("/api/v1/rooms/{room_id}", summary="Rename a room or change its capacity", body=RoomPatch,
           response=RoomOut, roles=ADMIN, errors=(403, 404, 409, 422))
async def update_room(request: web.Request, who: Principal, body: RoomPatch):
    room = await svc.update_room(db(request), who=who, room_public_id=request.match_info["room_id"],
                                 values=body.model_dump(exclude_unset=True, exclude_none=True))
    room, site = await svc.get_room(db(request), room.public_id)
    return _room_out(await svc.room_tree(db(request), room), site.public_id)


@api.post("/api/v1/rooms/{room_id}/retire", summary="Retire a room and its places (none booked ahead)",
          response=RoomOut, roles=ADMIN, errors=(403, 404, 409))
async def retire_room(request: web.Request, who: Principal):
    room = await svc.retire_room(db(request), who=who, room_public_id=request.match_info["room_id"])
    room, site = await svc.get_room(db(request), room.public_id)
    return _room_out(svc.RoomTree(room), site.public_id)


# ---- places ---------------------------------------------------------------------------------------------------

@api.post("/api/v1/rooms/{room_id}/places", summary="Add a place (席位) to a room", body=PlaceIn,
          response=PlaceOut, status=201, roles=ADMIN, errors=(403, 404, 409, 422))
async def create_place(request: web.Request, who: Principal, body: PlaceIn):
    room_id = request.match_info["room_id"]
    place = await svc.create_place(db(request), who=who, room_public_id=room_id, label=body.label,
                                   camera_position=body.camera_position)
    return _place_out(place, room_id)


@api.patch("/api/v1/places/{place_id}", summary="Relabel a place or mark it as the room's camera position",
           body=PlacePatch, response=PlaceOut, roles=ADMIN, errors=(403, 404, 409, 422))
async def update_place(request: web.Request, who: Principal, body: PlacePatch):
    place = await svc.update_place(db(request), who=who, place_public_id=request.match_info["place_id"],
                                   values=body.model_dump(exclude_unset=True, exclude_none=True))
    _, room, _ = await svc.get_place(db(request), place.public_id)
    return _place_out(place, room.public_id)


@api.post("/api/v1/places/{place_id}/retire", summary="Retire a place", response=PlaceOut, roles=ADMIN,
          errors=(403, 404, 409))
async def retire_place(request: web.Request, who: Principal):
    place = await svc.retire_place(db(request), who=who, place_public_id=request.match_info["place_id"])
    _, room, _ = await svc.get_place(db(request), place.public_id)
    return _place_out(place, room.public_id)


# ---- bookings -------------------------------------------------------------------------------------------------

@api.post("/api/v1/rooms/{room_id}/bookings",
          summary="Book a room for a time range; an overlapping booking is refused with 409 room_booked",
          body=BookingIn, response=BookingOut, status=201, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def book_room(request: web.Request, who: Principal, body: BookingIn):
    view = await svc.book_room(db(request), who=who, room_public_id=request.match_info["room_id"],
                               starts_at=body.starts_at, ends_at=body.ends_at, label=body.label,
                               tender_code=body.tender, lot_public_id=body.lot)
    return _booking_out(view, who)


@api.get("/api/v1/rooms/{room_id}/bookings",
         summary="A room's bookings in a window (default: those not yet over); purposes only to those concerned",
         query=BookingQuery, response=list[BookingOut], errors=(404, 422))
async def room_bookings(request: web.Request, who: Principal, query: BookingQuery):
    views = await svc.room_bookings(db(request), request.match_info["room_id"], start=query.start, end=query.end,
                                    include_cancelled=query.include_cancelled)
    return [_booking_out(v, who) for v in views]


@api.get("/api/v1/bookings/{booking_id}", summary="One room booking", response=BookingOut, errors=(404,))
async def get_booking(request: web.Request, who: Principal):
    return _booking_out(await svc.get_booking(db(request), request.match_info["booking_id"]), who)


@api.post("/api/v1/bookings/{booking_id}/cancel", summary="Cancel a booking; the room is free again for that time",
          body=CancelIn, response=BookingOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def cancel_booking(request: web.Request, who: Principal, body: CancelIn):
    view = await svc.cancel_booking(db(request), who=who, booking_public_id=request.match_info["booking_id"],
                                    reason=body.reason)
    return _booking_out(view, who)


# ---- evaluation sessions --------------------------------------------------------------------------------------

def _venue_out(venue: sessions.Venue) -> VenueOut:
    b = venue.booking
    return VenueOut(booking_id=b.public_id, venue_role=b.venue_role, site_id=venue.site.public_id,
                    site_name=venue.site.name, region_code=venue.site.region_code, room_id=venue.room.public_id,
                    room_name=venue.room.name, starts_at=b.starts_at, ends_at=b.ends_at)


def _session_out(view: sessions.SessionView) -> SessionOut:
    es = view.session
    return SessionOut(session_id=es.public_id, tender=view.tender.code, lot_id=view.lot.public_id, status=es.status,
                      suspended_from=es.suspended_from, main_venue=_venue_out(view.main) if view.main else None,
                      sub_venues=[_venue_out(v) for v in view.subs], created_at=es.created_at,
                      started_at=es.started_at, suspend_reason=es.suspend_reason, fault_at=es.fault_at,
                      fault_outcome=es.fault_outcome, ended_reason=es.ended_reason,
                      materials_sha256=es.materials_sha256)


@api.post("/api/v1/lots/{lot_id}/evaluation-sessions",
          summary="Schedule a lot's evaluation session (评标会议) at a main venue (主场) and sub-venues (副场)",
          body=SessionIn, response=SessionOut, status=201, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def schedule_session(request: web.Request, who: Principal, body: SessionIn):
    view = await sessions.schedule_session(db(request), who=who, lot_public_id=request.match_info["lot_id"],
                                           main_booking=body.main_booking, sub_bookings=body.sub_bookings)
    return _session_out(view)


@api.get("/api/v1/lots/{lot_id}/evaluation-sessions", summary="A lot's evaluation sessions, the newest first",
         response=list[SessionOut], errors=(403, 404))
async def lot_sessions(request: web.Request, who: Principal):
    views = await sessions.lot_sessions(db(request), who=who, lot_public_id=request.match_info["lot_id"])
    return [_session_out(v) for v in views]


@api.get("/api/v1/evaluation-sessions/{session_id}", summary="One evaluation session with its venues",
         response=SessionOut, errors=(403, 404))
async def get_session(request: web.Request, who: Principal):
    return _session_out(await sessions.get_session(db(request), who=who,
                                                   session_public_id=request.match_info["session_id"]))


def register_jobs(app: web.Application, registry) -> None:
    """The venue fault timer: 2 h before the start (the tenderer decides), 4 h during the evaluation (abort)."""
    notifier = InAppNotifier()

    async def session_fault(session, payload: dict) -> None:
        await sessions.fault_timer(session, payload["session"], notifier=notifier)

    registry.register(sessions.FAULT_JOB, session_fault)


# ---- the committee --------------------------------------------------------------------------------------------

def _member_out(view: members.MemberView) -> MemberOut:
    m, at = view.member, view.place
    place = MemberPlaceOut(place_id=at.place.public_id, label=at.place.label, room_id=at.room.public_id,
                           site_id=at.site.public_id, site_name=at.site.name, region_code=at.site.region_code,
                           venue_role=at.venue_role) if at else None
    return MemberOut(member_id=m.public_id, kind=m.kind, quota=m.quota, seat=m.seat, region_code=m.region_code,
                     status=m.status, place=place, checked_in_at=m.checked_in_at,
                     withdrawn_reason=m.withdrawn_reason, expert_id=view.expert_public_id,
                     user_id=view.user_public_id, name=view.name)


def _committee_out(view: members.CommitteeView) -> CommitteeOut:
    return CommitteeOut(session_id=view.session.public_id, status=view.session.status, draw_id=view.draw_id,
                        members=[_member_out(m) for m in view.members])


@api.post("/api/v1/evaluation-sessions/{session_id}/committee",
          summary="Form the committee from the lot's confirmed draw and the tenderer's representatives; members "
                  "without a place get the first free place of their own region",
          body=CommitteeIn, response=CommitteeOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def form_committee(request: web.Request, who: Principal, body: CommitteeIn):
    return _committee_out(await members.form_committee(db(request), who=who,
                                                       session_public_id=request.match_info["session_id"],
                                                       representatives=body.representatives))


@api.get("/api/v1/evaluation-sessions/{session_id}/committee",
         summary="The committee: places, check-ins, withdrawals; experts' names for supervisors only",
         response=CommitteeOut, errors=(403, 404))
async def get_committee(request: web.Request, who: Principal):
    return _committee_out(await members.committee_view(db(request), who=who,
                                                       session_public_id=request.match_info["session_id"]))


@api.put("/api/v1/evaluation-sessions/{session_id}/members/{member_id}/place",
         summary="Place a member at a place (席位) of the session's rooms, in their own region's site",
         body=PlaceAssignIn, response=CommitteeOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def assign_place(request: web.Request, who: Principal, body: PlaceAssignIn):
    return _committee_out(await members.assign_place(
        db(request), who=who, session_public_id=request.match_info["session_id"],
        member_public_id=request.match_info["member_id"], place_public_id=body.place_id))


# ---- the session's course -------------------------------------------------------------------------------------

def _sid(request: web.Request) -> str:
    return request.match_info["session_id"]


@api.post("/api/v1/evaluation-sessions/{session_id}/check-in/open",
          summary="Open check-in (签到): the committee is complete and every member placed",
          response=SessionOut, roles=("agent", "admin"), errors=(403, 404, 409))
async def open_check_in(request: web.Request, who: Principal):
    return _session_out(await sessions.open_check_in(db(request), who=who, session_public_id=_sid(request)))


@api.post("/api/v1/evaluation-sessions/{session_id}/start",
          summary="Start the evaluation once every member checked in; the tender moves to evaluating",
          response=SessionOut, roles=("agent", "admin"), errors=(403, 404, 409))
async def start_session(request: web.Request, who: Principal):
    return _session_out(await sessions.start_session(db(request), who=who, session_public_id=_sid(request)))


@api.post("/api/v1/evaluation-sessions/{session_id}/suspend",
          summary="Suspend with a reason (supervisors); agents report venue faults, which start the fault timer",
          body=SuspendIn, response=SessionOut, errors=(403, 404, 409, 422))
async def suspend_session(request: web.Request, who: Principal, body: SuspendIn):
    return _session_out(await sessions.suspend_session(db(request), who=who, session_public_id=_sid(request),
                                                       reason=body.reason, fault=body.fault))


@api.post("/api/v1/evaluation-sessions/{session_id}/resume",
          summary="Resume a suspended session where it stopped (supervisors)", body=ResumeIn, response=SessionOut,
          roles=("supervisor",), errors=(403, 404, 409, 422))
async def resume_session(request: web.Request, who: Principal, body: ResumeIn):
    return _session_out(await sessions.resume_session(db(request), who=who, session_public_id=_sid(request),
                                                      note=body.note))


@api.post("/api/v1/evaluation-sessions/{session_id}/abort",
          summary="End a session that cannot go on (终止); started sessions have their materials sealed",
          body=ReasonIn, response=SessionOut, errors=(403, 404, 409, 422))
async def abort_session(request: web.Request, who: Principal, body: ReasonIn):
    return _session_out(await sessions.abort_session(db(request), who=who, session_public_id=_sid(request),
                                                     reason=body.reason))


@api.post("/api/v1/evaluation-sessions/{session_id}/fault-decision",
          summary="The tenderer decides whether to go on after a fault unresolved for 2 h before the start",
          body=FaultDecisionIn, response=SessionOut, errors=(403, 404, 409, 422))
async def fault_decision(request: web.Request, who: Principal, body: FaultDecisionIn):
    return _session_out(await sessions.decide_after_fault(db(request), who=who, session_public_id=_sid(request),
                                                          go_on=body.go_on, reason=body.reason))


# ---- check-in -------------------------------------------------------------------------------------------------

@api.get("/api/v1/evaluation-sessions/{session_id}/declaration",
         summary="The bidders a member declares against (回避声明), from check-in on; members only",
         response=list[BidderOut], errors=(403, 404, 409))
async def declaration_form(request: web.Request, who: Principal):
    bidders = await members.declaration_form(db(request), who=who, session_public_id=_sid(request))
    return [BidderOut(organisation_id=b.organisation_public_id, name=b.name) for b in bidders]


@api.post("/api/v1/evaluation-sessions/{session_id}/check-in",
          summary="Check in at my place: identity, the integrity commitment (承诺书) and the avoidance declaration "
                  "(回避声明); a declared conflict withdraws me and calls in the next backup",
          body=CheckInIn, response=MemberOut, errors=(403, 404, 409, 422))
async def check_in(request: web.Request, who: Principal, body: CheckInIn):
    view = await members.check_in(db(request), who=who, session_public_id=_sid(request),
                                  id_card_last4=body.id_card_last4, commitment=body.commitment,
                                  conflicts=body.conflicts, note=body.note)
    return _member_out(view)


# ---- the chair ------------------------------------------------------------------------------------------------

def _chair_out(view: chairs.ChairView) -> ChairOut:
    es = view.session
    return ChairOut(session_id=es.public_id, chair=view.chair.public_id if view.chair else None, how=es.chair_how,
                    votes_cast=view.votes_cast, members=view.members, tied=view.tied,
                    commitment=es.chair_commitment, seed=es.chair_seed)


@api.post("/api/v1/evaluation-sessions/{session_id}/chair/votes",
          summary="Vote once for the chair (推选组长); a majority of the committee elects",
          body=VoteIn, response=ChairOut, errors=(403, 404, 409, 422))
async def vote_chair(request: web.Request, who: Principal, body: VoteIn):
    return _chair_out(await chairs.vote(db(request), who=who, session_public_id=_sid(request),
                                        candidate_public_id=body.candidate))


@api.post("/api/v1/evaluation-sessions/{session_id}/chair/draw",
          summary="Settle a tie for the chair with a verifiable draw; a supervisor supplies the entropy",
          body=EntropyIn, response=ChairOut, roles=("supervisor",), errors=(403, 404, 409, 422))
async def settle_chair_tie(request: web.Request, who: Principal, body: EntropyIn):
    return _chair_out(await chairs.settle_tie(db(request), who=who, session_public_id=_sid(request),
                                              entropy=body.entropy))


@api.get("/api/v1/evaluation-sessions/{session_id}/chair", summary="The chair election's standing",
         response=ChairOut, errors=(403, 404))
async def get_chair(request: web.Request, who: Principal):
    return _chair_out(await chairs.get_chair(db(request), who=who, session_public_id=_sid(request)))


# ---- qualification and compliance review ----------------------------------------------------------------------

def _review_out(view: reviews.ReviewView) -> ReviewOut:
    es = view.session
    return ReviewOut(session_id=es.public_id, requirements=view.requirements,
                     bidders=[BidderOut(organisation_id=b.organisation_public_id, name=b.name) for b in view.bidders],
                     ballots_cast=view.ballots_cast, ballots_expected=view.ballots_expected,
                     mine=[BallotOut(bidder=b.bidder, requirement=b.requirement, passed=b.passed, reason=b.reason)
                           for b in view.mine],
                     closed_at=es.review_closed_at, result=es.review_result, lot_failed=es.lot_failed,
                     failure_record=(es.review_result or {}).get("failure_record"))


@api.put("/api/v1/evaluation-sessions/{session_id}/review/requirements",
         summary="The requirements of the qualification and compliance review (资格/符合性审查), from the tender "
                 "documents; fixed once the first ballot is cast",
         body=RequirementsIn, response=ReviewOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def set_review_requirements(request: web.Request, who: Principal, body: RequirementsIn):
    return _review_out(await reviews.set_requirements(
        db(request), who=who, session_public_id=_sid(request),
        requirements=[r.model_dump() for r in body.requirements]))


@api.post("/api/v1/evaluation-sessions/{session_id}/review/ballots",
          summary="My pass or fail per bidder per requirement, a reason for each fail; revisable until closed",
          body=BallotsIn, response=ReviewOut, errors=(403, 404, 409, 422))
async def cast_review_ballots(request: web.Request, who: Principal, body: BallotsIn):
    return _review_out(await reviews.cast(db(request), who=who, session_public_id=_sid(request),
                                          ballots=[b.model_dump() for b in body.ballots]))


@api.post("/api/v1/evaluation-sessions/{session_id}/review/close",
          summary="The chair closes the review: majority per requirement, rejected bids out with reasons; fewer "
                  "than 3 compliant bids fail the lot, with its failure record (流标记录) signed by the chair and "
                  "sealed", response=ReviewOut, errors=(403, 404, 409))
async def close_review(request: web.Request, who: Principal):
    return _review_out(await reviews.close(db(request), who=who, session_public_id=_sid(request),
                                           records=request.app[RECORDS]))


@api.get("/api/v1/evaluation-sessions/{session_id}/review", summary="The review's progress and, once closed, its result",
         response=ReviewOut, errors=(403, 404))
async def get_review(request: web.Request, who: Principal):
    return _review_out(await reviews.view(db(request), who=who, session_public_id=_sid(request)))


# ---- score sheets ---------------------------------------------------------------------------------------------

def _sheet_out(row) -> SheetOut:
    sheet, member, bidder = row
    return SheetOut(member_id=member, bidder=bidder, scores=sheet.scores, status=sheet.status,
                    return_reason=sheet.return_reason, justifications=sheet.justifications,
                    submitted_at=sheet.submitted_at)


def _flags_out(pair) -> FlagsOut:
    all_flags, still_open = pair
    return FlagsOut(flags=[f.to_json() for f in all_flags], open=[f.to_json() for f in still_open])


@api.put("/api/v1/evaluation-sessions/{session_id}/sheets/{bidder}",
         summary="Save my score sheet (评分表) for a compliant bidder as a draft, or submit and lock it",
         body=SheetIn, response=SheetOut, errors=(403, 404, 409, 422))
async def save_sheet(request: web.Request, who: Principal, body: SheetIn):
    return _sheet_out(await sheet_svc.save_sheet(db(request), who=who, session_public_id=_sid(request),
                                                 bidder=request.match_info["bidder"], scores=body.scores,
                                                 submit=body.submit))


@api.get("/api/v1/evaluation-sessions/{session_id}/sheets",
         summary="My score sheets; everyone's once scoring has closed", response=list[SheetOut], errors=(403, 404))
async def list_sheets(request: web.Request, who: Principal):
    return [_sheet_out(r) for r in await sheet_svc.my_sheets(db(request), who=who, session_public_id=_sid(request))]


@api.post("/api/v1/evaluation-sessions/{session_id}/sheets/return",
          summary="The chair returns a submitted sheet with a reason", body=ReturnSheetIn, response=SheetOut,
          errors=(403, 404, 409, 422))
async def return_sheet(request: web.Request, who: Principal, body: ReturnSheetIn):
    return _sheet_out(await sheet_svc.return_sheet(db(request), who=who, session_public_id=_sid(request),
                                                   member_public_id=body.member_id, bidder=body.bidder,
                                                   reason=body.reason))


@api.get("/api/v1/evaluation-sessions/{session_id}/flags",
         summary="Score flags (ALGORITHMS.md §2) on the submitted sheets, and those still open", response=FlagsOut,
         errors=(403, 404, 422))
async def get_flags(request: web.Request, who: Principal):
    return _flags_out(await sheet_svc.flags(db(request), who=who, session_public_id=_sid(request)))


@api.post("/api/v1/evaluation-sessions/{session_id}/flags/justify",
          summary="Justify in writing a flag on my own score (说明理由)", body=JustifyIn, response=FlagsOut,
          errors=(403, 404, 409, 422))
async def justify_flag(request: web.Request, who: Principal, body: JustifyIn):
    return _flags_out(await sheet_svc.justify(db(request), who=who, session_public_id=_sid(request),
                                              bidder=body.bidder, criterion=body.criterion, kind=body.kind,
                                              text=body.text))


@api.post("/api/v1/evaluation-sessions/{session_id}/scoring/close",
          summary="The chair closes scoring: the ranking (ALGORITHMS.md §2) and the bidroom-score-v1 record",
          response=ScoringClosedOut, errors=(403, 404, 409, 422))
async def close_scoring(request: web.Request, who: Principal):
    es = await sheet_svc.close_scoring(db(request), who=who, session_public_id=_sid(request))
    return ScoringClosedOut(session_id=es.public_id, status=es.status, ranking=es.ranking, record=es.score_record)


# ---- supervision ----------------------------------------------------------------------------------------------

@api.get("/api/v1/supervision/evaluation-sessions",
         summary="Every live evaluation session of the tenders I supervise: stage, places, check-ins, each "
                 "member's progress, open flags", response=list[SupervisionOut], roles=("supervisor", "admin"),
         errors=(403,))
async def supervise(request: web.Request, who: Principal):
    out = []
    for o in await supervision.live_sessions(db(request), who=who):
        es = o.session
        chair = next((p.view.member.public_id for p in o.members if p.view.member.id == es.chair_member_id), None)
        out.append(SupervisionOut(
            session_id=es.public_id, tender=o.tender.code, lot_id=o.lot.public_id, status=es.status, stage=o.stage,
            suspend_reason=es.suspend_reason, fault_at=es.fault_at, chair=chair,
            members=[MemberProgressOut(member=_member_out(p.view), voted_chair=p.voted_chair,
                                       review_ballots=p.ballots, sheets_submitted=p.sheets_submitted)
                     for p in o.members],
            review_ballots_expected=o.ballots_expected, sheets_expected=o.sheets_expected,
            open_flags=o.open_flags))
    return out


@api.post("/api/v1/evaluation-sessions/{session_id}/scoring/tie-draw",
          summary="A supervisor supplies the entropy of the draw between bidders tied after every ranking rule",
          body=EntropyIn, response=SessionOut, roles=("supervisor",), errors=(403, 404, 409, 422))
async def scoring_tie_entropy(request: web.Request, who: Principal, body: EntropyIn):
    es = await sheet_svc.supply_tie_entropy(db(request), who=who, session_public_id=_sid(request),
                                            entropy=body.entropy)
    return await _session_view_out(request, who, es.public_id)


async def _session_view_out(request: web.Request, who: Principal, session_public_id: str) -> SessionOut:
    return _session_out(await sessions.get_session(db(request), who=who, session_public_id=session_public_id))
