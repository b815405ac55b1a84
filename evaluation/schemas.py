"""Request and response shapes of the venue API: sites, rooms, places (席位) and room bookings.
Times travel as RFC 3339 with an offset."""
from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _In(BaseModel):
    # names and labels are stripped before their length is checked: a blank name is no name
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SiteIn(_In):
    """A trading centre (交易中心) where committees sit."""

    name: str = Field(min_length=1, max_length=100)
    region_code: str = Field(description="GB/T 2260 code of its province or city, e.g. 440100 广州市")
    address: str = Field(default="", max_length=200)


class SitePatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    region_code: str | None = None
    address: str | None = Field(default=None, max_length=200)


class RoomIn(_In):
    """An evaluation room (评标室) of a site."""

    name: str = Field(min_length=1, max_length=100)
    capacity: int | None = Field(default=None, ge=1, le=1000)


class RoomPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    capacity: int | None = Field(default=None, ge=1, le=1000)


class PlaceIn(_In):
    """A place (席位) in a room, where one expert evaluates."""

    label: str = Field(min_length=1, max_length=32)
    camera_position: bool = False


class PlacePatch(_In):
    label: str | None = Field(default=None, min_length=1, max_length=32)
    camera_position: bool | None = None


class SiteQuery(_In):
    region_code: str | None = None
    include_retired: bool = False


class PlaceOut(BaseModel):
    place_id: str
    room_id: str
    label: str
    camera_position: bool
    status: str


class RoomOut(BaseModel):
    room_id: str
    site_id: str
    name: str
    capacity: int | None
    status: str
    places: list[PlaceOut]


class SiteOut(BaseModel):
    site_id: str
    name: str
    region_code: str
    region_name: str
    address: str
    status: str
    rooms: list[RoomOut]
    created_at: datetime
    retired_at: datetime | None


class BookingIn(_In):
    """Hold a room for [starts_at, ends_at), for a tender's evaluation or (admins) another purpose."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    label: str = Field(min_length=1, max_length=200, description="what the room is for, e.g. 第一标段评标")
    tender: str | None = Field(default=None, min_length=3, max_length=32, description="the tender's code")
    lot: str | None = Field(default=None, min_length=3, max_length=40, description="the lot's public id")


class CancelIn(_In):
    reason: str = Field(min_length=1, max_length=500)


class BookingQuery(_In):
    start: AwareDatetime | None = Field(default=None, alias="from")
    end: AwareDatetime | None = Field(default=None, alias="to")
    include_cancelled: bool = False


class BookingOut(BaseModel):
    """A booking; its purpose (tender, lot, label, who booked) only for those who run that evaluation."""

    booking_id: str
    room_id: str
    site_id: str
    starts_at: datetime
    ends_at: datetime
    status: str
    purpose_visible: bool
    tender: str | None = None
    lot: str | None = None
    label: str | None = None
    booked_by: str | None = None
    session_id: str | None = Field(default=None, description="the evaluation session it is a venue of")
    venue_role: str | None = Field(default=None, description="main (主场) or sub (副场)")
    created_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


class SessionIn(_In):
    """Schedule a lot's evaluation session (评标会议) at bookings already made for its tender."""

    main_booking: str = Field(min_length=3, max_length=16, description="the main venue's booking (主场)")
    sub_bookings: list[str] = Field(default_factory=list, max_length=20,
                                    description="sub-venue bookings (副场), each at another site")


class VenueOut(BaseModel):
    booking_id: str
    venue_role: str
    site_id: str
    site_name: str
    region_code: str
    room_id: str
    room_name: str
    starts_at: datetime
    ends_at: datetime


class SessionOut(BaseModel):
    session_id: str
    tender: str
    lot_id: str
    status: str
    suspended_from: str | None
    main_venue: VenueOut | None
    sub_venues: list[VenueOut]
    created_at: datetime
    started_at: datetime | None = None
    suspend_reason: str | None = None
    fault_at: datetime | None = Field(default=None, description="when the unresolved venue fault was reported")
    fault_outcome: str | None = Field(default=None, description="tenderer_decides: waiting for the tenderer")
    ended_reason: str | None = None
    materials_sha256: str | None = Field(default=None, description="digest of the materials sealed at an abort")


# ---- the committee and the session's course ---------------------------------------------------------------

class CommitteeIn(_In):
    """Form (or bring up to date) the committee from the lot's confirmed draw, with tenderer representatives."""

    representatives: list[str] = Field(default_factory=list, max_length=10,
                                       description="user ids of the tenderer's staff sitting as 招标人代表")


class PlaceAssignIn(_In):
    place_id: str = Field(min_length=3, max_length=16)


class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=1000)


class SuspendIn(_In):
    reason: str = Field(min_length=1, max_length=1000)
    fault: bool = Field(default=False, description="a venue fault (设备/网络故障): starts the fault timer")


class ResumeIn(_In):
    note: str | None = Field(default=None, max_length=1000)


class FaultDecisionIn(_In):
    go_on: bool
    reason: str = Field(min_length=1, max_length=1000)


class CheckInIn(_In):
    """Check in at the assigned place: identity, the integrity commitment (承诺书), the avoidance declaration
    (回避声明) over the lot's bidders."""

    id_card_last4: str | None = Field(default=None, min_length=4, max_length=4,
                                      description="experts: the last four characters of the ID card")
    commitment: bool = Field(description="I sign the integrity commitment (承诺书)")
    conflicts: list[str] = Field(default_factory=list, max_length=50,
                                 description="bidders (organisation ids) I have an interest in; empty: none")
    note: str | None = Field(default=None, max_length=1000)


class MemberPlaceOut(BaseModel):
    place_id: str
    label: str
    room_id: str
    site_id: str
    site_name: str
    region_code: str
    venue_role: str


class MemberOut(BaseModel):
    member_id: str
    kind: str
    quota: str | None
    seat: int | None
    region_code: str | None
    status: str
    place: MemberPlaceOut | None
    checked_in_at: datetime | None
    withdrawn_reason: str | None
    expert_id: str | None = Field(default=None, description="supervisors only, until the award")
    user_id: str | None = None
    name: str | None = Field(default=None, description="experts: supervisors only, until the award")


class CommitteeOut(BaseModel):
    session_id: str
    status: str
    draw_id: str | None
    members: list[MemberOut]


class BidderOut(BaseModel):
    organisation_id: str
    name: str


class VoteIn(_In):
    candidate: str = Field(min_length=3, max_length=16, description="the member id voted for as chair (组长)")


class EntropyIn(_In):
    entropy: str = Field(min_length=1, max_length=200, description="the supervisor's entropy for the tie draw")


class ChairOut(BaseModel):
    session_id: str
    chair: str | None = Field(description="the chair's member id, once elected")
    how: str | None = Field(description="majority, plurality or draw")
    votes_cast: int
    members: int
    tied: list[str]
    commitment: str | None = Field(default=None, description="the tie draw's commitment, published at the tie")
    seed: str | None = None


class RequirementIn(_In):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = Field(min_length=1, max_length=200, description="e.g. 营业执照有效, 投标保证金已提交")
    kind: str = Field(description="qualification (资格) or compliance (符合性)")


class RequirementsIn(_In):
    requirements: list[RequirementIn] = Field(min_length=1, max_length=100)


class BallotIn(_In):
    bidder: str = Field(min_length=3, max_length=16, description="the bidder's organisation id")
    requirement: str = Field(min_length=1, max_length=32)
    passed: bool
    reason: str | None = Field(default=None, max_length=1000, description="required for a fail")


class BallotsIn(_In):
    ballots: list[BallotIn] = Field(min_length=1, max_length=2000)


class BallotOut(BaseModel):
    bidder: str
    requirement: str
    passed: bool
    reason: str | None


class ReviewOut(BaseModel):
    session_id: str
    requirements: list[dict]
    bidders: list[BidderOut]
    ballots_cast: int
    ballots_expected: int
    mine: list[BallotOut]
    closed_at: datetime | None
    result: dict | None = Field(description="once closed: each bidder passed or failed, with reasons")
    lot_failed: bool
    failure_record: str | None = Field(default=None, description="when the review failed the lot (fewer than 3 "
                                       "compliant bids): its failure record (流标记录), signed by the chair and sealed")


class SheetIn(_In):
    scores: dict[str, str] = Field(max_length=100, description="criterion name → score as a decimal string")
    submit: bool = Field(default=False, description="submit and lock the sheet (every criterion scored)")


class SheetOut(BaseModel):
    member_id: str
    bidder: str
    scores: dict[str, str]
    status: str
    return_reason: str | None
    justifications: list[dict]
    submitted_at: datetime | None


class ReturnSheetIn(_In):
    member_id: str = Field(min_length=3, max_length=16)
    bidder: str = Field(min_length=3, max_length=16)
    reason: str = Field(min_length=1, max_length=1000)


class JustifyIn(_In):
    bidder: str = Field(min_length=3, max_length=16)
    criterion: str = Field(min_length=1, max_length=100)
    kind: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=2000)


class FlagsOut(BaseModel):
    flags: list[dict]
    open: list[dict]


class ScoringClosedOut(BaseModel):
    session_id: str
    status: str
    ranking: list[dict]
    record: dict


class MemberProgressOut(BaseModel):
    member: MemberOut
    voted_chair: bool
    review_ballots: int
    sheets_submitted: int


class SupervisionOut(BaseModel):
    """A live session as its supervisors follow it (在线监督)."""

    session_id: str
    tender: str
    lot_id: str
    status: str
    stage: str = Field(description="the state, or within the evaluation: chair_election, review, scoring")
    suspend_reason: str | None
    fault_at: datetime | None
    chair: str | None
    members: list[MemberProgressOut]
    review_ballots_expected: int = Field(description="per member")
    sheets_expected: int = Field(description="per member: the compliant bids")
    open_flags: list[dict]
