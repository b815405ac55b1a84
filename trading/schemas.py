"""Request and response shapes of the tender API. Money travels as decimal strings, times as RFC 3339."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler,
                      field_validator)

from trading.codes import load_categories
from trading.evaluation_methods import EvaluationMethod, evaluation_error


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LotIn(_In):
    title: str = Field(min_length=1, max_length=300)
    budget: Decimal


class _EvaluationIn(_In):
    """Refuses a bad evaluation method with the domain's codes (invalid_evaluation, evaluation_total_not_100)
    rather than the generic validation_failed, naming the field."""

    @field_validator("evaluation", mode="wrap", check_fields=False)
    @classmethod
    def _evaluation(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as err:
            raise evaluation_error(err) from err


KEY_THRESHOLD_DOC = ("k: how many of the tender's person key holders must unlock their shares to open the bids "
                     "(2 <= k <= n); the platform's share never counts as a person")
KEY_HOLDER_COUNT_DOC = "n: how many people hold shares of the tender's key (the platform's share not counted)"
PLATFORM_SHARE_DOC = ("the platform holds one more share, which joins k people's and never replaces one: the key "
                      "opens with k people's shares and the platform's, or with k + 1 people's")


class TenderIn(_EvaluationIn):
    """A new draft tender (招标项目)."""

    title: str = Field(min_length=1, max_length=300)
    title_en: str | None = Field(default=None, max_length=300, description="an optional English title, searched too")
    description: str = Field(default="", max_length=20000)
    tenderer: str = Field(min_length=3, max_length=16, description="the tenderer organisation's public id (招标人)")
    supervisor_organisation: str | None = Field(
        default=None, min_length=3, max_length=16,
        description="the supervising organisation's public id (行政监督部门): an organisation with supervisor "
                    "accounts; required before publishing")
    region_code: str = Field(pattern=r"^[A-Z0-9]{2,8}$", description="code prefix, e.g. ZS for 中山")
    family: str = Field(min_length=4, max_length=8)
    subtype: str = Field(min_length=4, max_length=16)
    method: str = Field(min_length=1, max_length=32)
    budget: Decimal
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    lots: list[LotIn] = Field(default_factory=list, max_length=50)
    evaluation: EvaluationMethod
    clarification_end_at: AwareDatetime
    bid_deadline_at: AwareDatetime
    opening_at: AwareDatetime
    key_threshold: int = Field(default=2, ge=1, le=15, description=KEY_THRESHOLD_DOC)
    key_holder_count: int = Field(default=3, ge=1, le=15, description=KEY_HOLDER_COUNT_DOC)
    platform_holds_share: bool = Field(default=False, description=PLATFORM_SHARE_DOC)


class TenderPatch(_EvaluationIn):
    """Changes to a draft; omitted fields stay as they are."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    title_en: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    tenderer: str | None = Field(default=None, min_length=3, max_length=16)
    supervisor_organisation: str | None = Field(default=None, min_length=3, max_length=16)
    subtype: str | None = Field(default=None, min_length=4, max_length=16)
    method: str | None = Field(default=None, min_length=1, max_length=32)
    budget: Decimal | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    lots: list[LotIn] | None = Field(default=None, max_length=50)
    evaluation: EvaluationMethod | None = None
    clarification_end_at: AwareDatetime | None = None
    bid_deadline_at: AwareDatetime | None = None
    opening_at: AwareDatetime | None = None
    key_threshold: int | None = Field(default=None, ge=1, le=15, description=KEY_THRESHOLD_DOC)
    key_holder_count: int | None = Field(default=None, ge=1, le=15, description=KEY_HOLDER_COUNT_DOC)
    platform_holds_share: bool | None = Field(default=None, description=PLATFORM_SHARE_DOC)


class CancelIn(_In):
    reason: str = Field(min_length=2, max_length=1000)


class LotOut(BaseModel):
    lot_id: str
    lot_no: int
    title: str
    budget: Decimal


class DocumentOut(BaseModel):
    document_id: str
    title: str
    filename: str
    document_type: str
    media_type: str
    size_bytes: int
    sha256: str
    url: str
    uploaded_at: datetime


class AmendmentOut(BaseModel):
    amendment_id: str
    summary: str
    body: str
    document_ids: list[str]
    published_at: datetime
    deadline_extended: bool
    bid_deadline_before: datetime
    bid_deadline_after: datetime
    opening_after: datetime


class CategoryOut(BaseModel):
    family: str
    family_zh: str
    subtype: str
    subtype_zh: str

    @classmethod
    def of(cls, family: str, subtype: str) -> CategoryOut:
        """A category with its Chinese names from the catalogue (trading/data/categories.json)."""
        catalogue = load_categories()
        return cls(family=family, family_zh=catalogue.family(family).zh, subtype=subtype,
                   subtype_zh=catalogue.subtype(subtype).zh)


class TenderSummaryOut(BaseModel):
    code: str
    title: str
    title_en: str | None = None
    status: str
    category: CategoryOut
    method: str
    region_code: str
    budget: Decimal
    currency: str
    tenderer: str
    published_at: datetime | None
    clarification_end_at: datetime | None
    bid_deadline_at: datetime | None
    opening_at: datetime | None


class TenderPage(BaseModel):
    items: list[TenderSummaryOut]
    next_cursor: str | None


class OrganisationRef(BaseModel):
    organisation_id: str
    name: str


class TenderOut(BaseModel):
    """A tender's public detail; drafts only reach their agent."""

    code: str
    title: str
    title_en: str | None = None
    description: str
    status: str
    category: CategoryOut
    method: str
    region_code: str
    budget: Decimal
    currency: str
    tenderer: OrganisationRef
    agent: OrganisationRef | None
    supervisor_organisation: OrganisationRef | None = None
    evaluation: EvaluationMethod | dict[str, Any] = Field(description="the evaluation method; {} for a tender "
                                                                   "made without one")
    published_at: datetime | None
    clarification_end_at: datetime | None
    bid_deadline_at: datetime | None
    opening_at: datetime | None
    key_threshold: int
    key_holder_count: int
    age_recipient: str | None
    lots: list[LotOut]
    documents: list[DocumentOut]
    amendments: list[AmendmentOut]
    my_registrations: list[str] = Field(default_factory=list, description="lots the caller's organisation joined")
    updated_at: datetime


class ListingQuery(_In):
    q: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=16, description="a family (ZFCG) or sub-type (ZFCG-HW)")
    region: str | None = Field(default=None, max_length=8)
    status: str | None = Field(default=None, max_length=24)
    budget_min: Decimal | None = Field(default=None, ge=0)
    budget_max: Decimal | None = Field(default=None, ge=0)
    deadline_from: AwareDatetime | None = None
    deadline_to: AwareDatetime | None = None
    sort: Literal["deadline", "published"] = "deadline"
    cursor: str | None = Field(default=None, max_length=400)
    limit: int = Field(default=20, ge=1, le=100)


class UploadQuery(_In):
    filename: str | None = Field(default=None, max_length=255)
    title: str | None = Field(default=None, max_length=300)
    document_type: str = Field(default="biddingDocuments", max_length=40)


class RegistrationOut(BaseModel):
    tender: str
    lot_id: str
    organisation_id: str
    registered_at: datetime


class QuestionIn(_In):
    question: str = Field(min_length=2, max_length=5000)


class AnswerIn(_In):
    answer: str = Field(min_length=1, max_length=20000)


class ClarificationOut(BaseModel):
    """A question and its answer; `asked_by` is filled for the tender's agent only."""

    clarification_id: str
    question: str
    asked_at: datetime
    answer: str | None
    answered_at: datetime | None
    mine: bool = False
    asked_by: OrganisationRef | None = None


class AmendmentIn(_In):
    summary: str = Field(min_length=2, max_length=300)
    body: str = Field(default="", max_length=50000)
    document_ids: list[str] = Field(default_factory=list, max_length=50)


class ReleasesQuery(_In):
    since: AwareDatetime | None = Field(default=None, description="updated at or after")
    until: AwareDatetime | None = Field(default=None, description="updated before")
    cursor: str | None = Field(default=None, max_length=400)
    limit: int = Field(default=50, ge=1, le=100)


# ---- key holding, sealed bids, the opening and results -------------------------------------------------------

class PassphraseIn(BaseModel):
    passphrase: str = Field(min_length=1, max_length=1024)


class HolderKeyOut(BaseModel):
    recipient: str
    enrolled_at: Any


class KeyHoldersIn(BaseModel):
    holders: list[str] = Field(min_length=1, max_length=20)
    threshold: int


class KeyHolderOut(BaseModel):
    position: int
    holder: str
    enrolled: bool
    share_issued: bool


class ReceiptOut(BaseModel):
    """A platform-signed receipt: the body, its Ed25519 signature over canonical JSON, and the key id."""

    receipt: dict[str, Any]
    signature: str
    algorithm: str = "Ed25519"
    key_id: str


class BidStatusOut(BaseModel):
    bid: str
    tender: str
    lot: str
    status: str
    ciphertext_sha256: str
    size: int
    sealed_by: str
    submitted_at: Any
    withdrawn_at: Any = None


class OpeningOut(BaseModel):
    tender: str
    status: str
    threshold: int = Field(description="k: how many people must unlock their shares to open the bids; the "
                                       "platform's share never counts as one")
    unlocked: int = Field(description="shares unlocked so far, the platform's included")
    people_unlocked: int = Field(description="people who have unlocked their shares; the bids open when this "
                                             "reaches `threshold`")
    platform_share: bool = Field(description="whether the platform holds a share beside the people's")
    platform_unlocked: bool = Field(description="whether the platform's share is unlocked (at the start)")
    holders_unlocked: list[str]
    record_no: str | None = None
    valid_bids: int | None = None
    # lots that failed (流标): with fewer than 3 bids never opened (实施条例 第44条), or too few valid ones
    failed_lots: list[str] = []


class OpenedBidOut(BaseModel):
    bid: str
    lot: str
    bidder: str
    bidder_name: str
    status: str
    price: Decimal | None = None
    duration_days: int | None = None
    declared: dict[str, str] | None = None
    withdrawal_kind: str | None = None
    withdrawal_cause: str | None = None


class CandidateIn(BaseModel):
    lot: str
    bid: str
    rank: int = Field(ge=1, le=10)
    score: Decimal | None = None


class CandidatesIn(BaseModel):
    candidates: list[CandidateIn] = Field(min_length=1, max_length=30)
    publicity_days: int = Field(default=3, ge=1, le=30)


class CandidateOut(BaseModel):
    lot: str
    rank: int
    bid: str
    bidder: str
    bidder_name: str
    price: Decimal
    score: Decimal | None = None
    publicity_ends_at: Any
    report_no: str | None = None          # the sealed evaluation report the candidate comes from
    report_revision: int | None = None


class ObjectionIn(BaseModel):
    body: str = Field(min_length=1, max_length=5000)


class ObjectionAnswerIn(BaseModel):
    answer: str = Field(min_length=1, max_length=5000)
    # 异议成立: the lot goes back to its evaluation committee for re-evaluation (招标投标法实施条例 第54条)
    upheld: bool = False
    lot: str | None = Field(default=None, description="the lot sent back, when the tender has several")


class TenderStatusOut(BaseModel):
    code: str
    status: str


class CompleteIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000,
                             description="e.g. the contract's number and date (招标投标法 第46条)")


class ObjectionOut(BaseModel):
    objection: str
    filed_at: Any
    body: str
    answer: str | None = None
    answered_at: Any = None
    mine: bool = False
    upheld: bool | None = None
    lot: str | None = None


class AwardOut(BaseModel):
    lot: str
    bid: str
    bidder: str
    price: Decimal
    record_no: str


class KeyHoldersOut(BaseModel):
    holders: list[KeyHolderOut]


class OpenedBidsOut(BaseModel):
    bids: list[OpenedBidOut]


class CandidatesOut(BaseModel):
    candidates: list[CandidateOut]


class ObjectionsOut(BaseModel):
    objections: list[ObjectionOut]


class AwardsOut(BaseModel):
    awards: list[AwardOut]
