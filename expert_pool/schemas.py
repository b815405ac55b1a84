"""Request and response models of the expert pool API."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---- experts ------------------------------------------------------------------------------------------------

class ExpertIn(Strict):
    """An expert as an admin registers them; the fields are checked like a CSV import row."""

    name: str = Field(max_length=50, description="姓名")
    id_card_no: str = Field(max_length=24, description="居民身份证号码 (GB 11643, 18 characters)")
    phone: str = Field(max_length=20, description="mainland mobile number")
    province_code: str = Field(max_length=6, examples=["440000"])
    city_code: str = Field(max_length=6, examples=["442000"])
    category: Literal["technical", "economic"]
    title: str = Field(default="", max_length=50, description="职称, e.g. 高级工程师")
    specialties: list[str] = Field(max_length=5, description="leaf codes of GET /api/v1/expert-specialties")
    employer_id: str | None = Field(default=None, max_length=16, description="O-XXXXXX of a known organisation")
    employer_name: str | None = Field(default=None, max_length=200)
    employer_credit_code: str | None = Field(default=None, max_length=18, description="统一社会信用代码")
    username: str | None = Field(default=None, max_length=64, description="an account with the expert role")


class OrganisationRef(BaseModel):
    organisation_id: str
    name: str


class SpecialtyOut(BaseModel):
    code: str
    zh: str
    en: str


class LeaveIn(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)


class LeaveOut(BaseModel):
    leave_id: int
    starts_at: datetime
    ends_at: datetime
    reason: str


class ConflictIn(Strict):
    organisation_id: str | None = Field(default=None, max_length=16)
    social_credit_code: str | None = Field(default=None, max_length=18)
    note: str = Field(default="", max_length=200)


class ConflictOut(BaseModel):
    organisation_id: str
    name: str
    note: str
    declared_at: datetime


class ExpertSummaryOut(BaseModel):
    """An expert in a list; ID card and phone masked except for admins."""

    expert_id: str
    name: str
    id_card_no: str
    phone: str
    masked: bool
    province_code: str
    city_code: str
    city_name: str
    employer: OrganisationRef | None
    category: str
    title: str
    specialties: list[SpecialtyOut]
    status: str
    status_reason: str | None
    credit_score: Decimal


class ExpertOut(ExpertSummaryOut):
    """An expert's profile with their account, leave and declared conflicts."""

    account: str | None
    leave: list[LeaveOut]
    conflicts: list[ConflictOut]
    created_at: datetime


class ExpertQuery(Strict):
    specialty: str | None = Field(default=None, max_length=8)
    city_code: str | None = Field(default=None, max_length=6)
    status: Literal["active", "suspended", "retired"] | None = None
    after: str | None = Field(default=None, max_length=16, description="last expert_id of the previous page")
    limit: int = Field(default=50, ge=1, le=500)


class StatusIn(Strict):
    status: Literal["active", "suspended", "retired"]
    reason: str | None = Field(default=None, max_length=500)


class ProblemOut(BaseModel):
    field: str
    code: str
    message: str


class ImportRowOut(BaseModel):
    line: int = Field(description="line in the file; the header is line 1")
    status: Literal["imported", "refused"]
    expert_id: str | None = None
    problems: list[ProblemOut] = []


class ImportReportOut(BaseModel):
    total: int
    imported: int
    refused: int
    rows: list[ImportRowOut]


class ServiceOut(BaseModel):
    tenderer_id: str
    tenderer: str
    served_at: datetime
    role: str


# ---- draws --------------------------------------------------------------------------------------------------

class QuotaIn(Strict):
    """One line of the draw request (抽取条件)."""

    name: str | None = Field(default=None, max_length=64, description="defaults to Q1, Q2 ...")
    specialty: str = Field(max_length=8, description="any node of the taxonomy; a parent takes every leaf below")
    region: str | None = Field(default=None, max_length=6, description="province or city code; none: anywhere")
    count: StrictInt
    backups: StrictInt = 0


class DrawIn(Strict):
    session_at: AwareDatetime = Field(description="when the evaluation session starts")
    venue: str | None = Field(default=None, min_length=1, max_length=200,
                              description="the venue as text, when the lot's evaluation session is not scheduled yet")
    evaluation_session: str | None = Field(
        default=None, min_length=1, max_length=16,
        description="the lot's scheduled evaluation session (ES-...): the draw refers to it and tells the experts "
                    "its venues; give this or `venue`")
    quotas: list[QuotaIn] = Field(min_length=1, max_length=20)
    representatives: StrictInt = Field(default=0, description="tenderer representatives on the committee")
    reply_minutes: int | None = Field(default=None, ge=5, le=24 * 60, description="default 30")
    authority_organisations: list[str] = Field(default=[], max_length=10,
                                               description="competent authority / supervisor (O-XXXXXX): avoided")


class EntropyIn(BaseModel):
    # not stripped: the entropy is hashed byte for byte as the supervisor typed it
    model_config = ConfigDict(extra="forbid")

    entropy: str = Field(min_length=1, max_length=256, description="typed, or 128 random bits in hex")


class DeclineIn(Strict):
    reason: str = Field(min_length=2, max_length=500)


class CancelIn(Strict):
    reason: str = Field(min_length=2, max_length=500, description="why the draw is cancelled (written to the ledger)")


class DrawSummaryOut(BaseModel):
    draw_id: str
    round: int
    status: str
    commitment: str
    eligible: int
    considered: int
    exclusions: dict[str, int]
    entropy_supplied: bool
    created_at: datetime
    executed_at: datetime | None


class SeatCountsOut(BaseModel):
    seats: int
    accepted: int
    pending: int
    open: int
    declined: int
    expired: int
    withdrawn: int = Field(default=0, description="withdrawn at the bid deadline: the expert conflicts with a bidder")


class DrawnOut(BaseModel):
    expert_id: str
    name: str | None


class QuotaResultOut(BaseModel):
    quota: str
    primaries: list[DrawnOut]
    backups: list[DrawnOut]


class InvitationOut(BaseModel):
    invitation_id: str
    expert_id: str
    name: str | None
    quota: str
    seat: int
    source: str
    status: str
    sent_at: datetime
    reply_by: datetime
    replied_at: datetime | None
    decline_reason: str | None


class DrawRecordRef(BaseModel):
    """One issued draw record PDF."""

    edition: Literal["public", "supervisor"]
    record_no: str
    status: str
    sha256: str
    download: str
    readable: bool = Field(description="whether you may download it now (the tender's supervisors until the "
                                       "award; the public edition for everyone after it)")


class DrawOut(DrawSummaryOut):
    """The draw notice. Identities (result, invitations) only for supervisors, and for the others after award."""

    tender: str
    lot: str
    supplements: str | None
    session_at: datetime
    venue: str
    evaluation_session: str | None = Field(default=None, description="the evaluation session the committee sits in")
    members: int
    representatives: int
    reply_window_s: int
    quotas: list[dict[str, Any]]
    confirmation: dict[str, SeatCountsOut]
    committee_formed: bool
    supplementary_draws: list[DrawSummaryOut]
    identities_disclosed: bool
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    entropy: str | None = None
    seed: str | None = None
    result: list[QuotaResultOut] | None = None
    invitations: list[InvitationOut] | None = None
    records: list[DrawRecordRef] = Field(default=[], description="the signed record PDFs issued for this draw")


class RecordTenderOut(BaseModel):
    code: str
    title: str


class RecordLotOut(BaseModel):
    id: str
    title: str


class DrawnLineOut(BaseModel):
    """One line of a draw record's result; `name` only in the supervisor edition."""

    quota: str
    role: Literal["primary", "backup"]
    order: int
    expert_id: str
    name: str | None = None
    confirmation: str | None = None


class DrawRecordOut(BaseModel):
    """The content of a draw record (the PDF's data), with the record PDFs issued for the draw."""

    edition: Literal["public", "supervisor"]
    record_no: str | None
    kind: str
    draw_id: str
    supplements: str | None
    tender: RecordTenderOut
    lot: RecordLotOut
    session_at: datetime
    venue: str
    members: int
    representatives: int
    quotas: list[dict[str, Any]]
    considered: int
    eligible: int
    exclusion_counts: dict[str, int]
    commitment: str
    entropy: str
    seed: str
    candidates_sha256: str
    executed_at: datetime
    drawn: list[DrawnLineOut]
    verification: dict[str, Any] = Field(description="the verification record (ALGORITHMS.md §1)")
    records: list[DrawRecordRef]


class ExclusionOut(BaseModel):
    expert_id: str
    name: str
    reason: str
    reasons: list[str]


class MyInvitationOut(BaseModel):
    """What an expert is told: time, venue, specialty and deadline; no project parties."""

    invitation_id: str
    status: str
    session_at: datetime
    venue: str
    specialty: str
    specialty_zh: str
    specialty_en: str
    sent_at: datetime
    reply_by: datetime
    replied_at: datetime | None


class RecordQuery(Strict):
    edition: Literal["public", "supervisor"] = "public"


# ---- statistics ---------------------------------------------------------------------------------------------

class DrawStatsQuery(Strict):
    expert_id: str | None = Field(default=None, max_length=16)
    limit: int = Field(default=100, ge=1, le=1000)


class DrawStatsOut(BaseModel):
    expert_id: str
    name: str
    drawn: int
    invited: int
    accepted: int
    declined: int
    expired: int
    acceptance_rate: Decimal | None = Field(description="accepted / (accepted + declined + expired)")


class FamiliarQuery(Strict):
    since_days: int = Field(default=365, ge=1, le=3650)
    min_count: int = Field(default=2, ge=1, le=100)
    limit: int = Field(default=100, ge=1, le=1000)


class FamiliarOut(BaseModel):
    tenderer_id: str
    tenderer: str
    expert_id: str
    expert: str
    served: int
    last_served_at: datetime
