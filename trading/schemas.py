"""Request and response shapes of the tender API. Money travels as decimal strings, times as RFC 3339."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LotIn(_In):
    title: str = Field(min_length=1, max_length=300)
    budget: Decimal


class TenderIn(_In):
    """A new draft tender (招标项目)."""

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20000)
    tenderer: str = Field(min_length=3, max_length=16, description="the tenderer organisation's public id (招标人)")
    region_code: str = Field(pattern=r"^[A-Z0-9]{2,8}$", description="code prefix, e.g. ZS for 中山")
    family: str = Field(min_length=4, max_length=8)
    subtype: str = Field(min_length=4, max_length=16)
    method: str = Field(min_length=1, max_length=32)
    budget: Decimal
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    lots: list[LotIn] = Field(default_factory=list, max_length=50)
    evaluation: dict[str, Any]
    clarification_end_at: AwareDatetime
    bid_deadline_at: AwareDatetime
    opening_at: AwareDatetime
    key_threshold: int = Field(default=2, ge=1, le=15)
    key_holder_count: int = Field(default=3, ge=1, le=15)
    platform_holds_share: bool = False


class TenderPatch(_In):
    """Changes to a draft; omitted fields stay as they are."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    tenderer: str | None = Field(default=None, min_length=3, max_length=16)
    subtype: str | None = Field(default=None, min_length=4, max_length=16)
    method: str | None = Field(default=None, min_length=1, max_length=32)
    budget: Decimal | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    lots: list[LotIn] | None = Field(default=None, max_length=50)
    evaluation: dict[str, Any] | None = None
    clarification_end_at: AwareDatetime | None = None
    bid_deadline_at: AwareDatetime | None = None
    opening_at: AwareDatetime | None = None
    key_threshold: int | None = Field(default=None, ge=1, le=15)
    key_holder_count: int | None = Field(default=None, ge=1, le=15)
    platform_holds_share: bool | None = None


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


class TenderSummaryOut(BaseModel):
    code: str
    title: str
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
    description: str
    status: str
    category: CategoryOut
    method: str
    region_code: str
    budget: Decimal
    currency: str
    tenderer: OrganisationRef
    agent: OrganisationRef | None
    evaluation: dict[str, Any]
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
