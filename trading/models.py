"""Trading tables: tenders (招标项目), lots (标段) and bidder registrations (投标报名).

The trading service adds its further tables (documents, clarifications, sealed bids, key shares, opening
records, results) in this module through its own migration.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (ARRAY, BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, Numeric,
                        String, Text, UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

MONEY = Numeric(18, 2)


class Tender(Base):
    """A tender project, identified publicly by its code such as ZS-2026-ZFCG-00042."""

    __tablename__ = "tender"
    __table_args__ = (
        CheckConstraint("budget >= 0", name="budget_not_negative"),
        CheckConstraint("key_threshold >= 1 AND key_threshold <= key_holder_count", name="key_threshold_valid"),
        Index("tender_search_terms_idx", "search_terms", postgresql_using="gin"),
        Index("tender_status_bid_deadline_idx", "status", "bid_deadline_at"),
        Index("tender_published_at_idx", "published_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, server_default="")
    family: Mapped[str] = mapped_column(String(8))  # FJSZ, TDKY, ZFCG, GYCQ (trading/data/categories.json)
    subtype: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))  # trading.lifecycle.ProcurementMethod
    region_code: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24), server_default="draft")
    tenderer_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)  # 招标人
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)  # 招标代理机构
    # 行政监督部门: only its supervisors see the draw identities, supply entropy and hold keys as supervisors
    supervisor_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    budget: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    # evaluation method (评标办法): comprehensive scoring with criteria, or lowest evaluated price
    evaluation: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clarification_end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bid_deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opening_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # sealing: the age recipient published at publish time and the k-of-n split of its identity
    age_recipient: Mapped[str | None] = mapped_column(String(100))
    key_threshold: Mapped[int] = mapped_column(Integer, server_default="2")
    key_holder_count: Mapped[int] = mapped_column(Integer, server_default="3")
    platform_holds_share: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # CJK bigrams and lowercase words of title, code and description, for GIN `@>` search
    search_terms: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenderSequence(Base):
    """The last issued sequence number per (region, year, family), for tender codes."""

    __tablename__ = "tender_sequence"

    region_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, server_default="0")


class Lot(Base):
    """A lot (标段) of a tender; bids, draws and evaluations are per lot."""

    __tablename__ = "lot"
    __table_args__ = (
        UniqueConstraint("tender_id", "lot_no", name="lot_tender_id_lot_no_key"),
        CheckConstraint("budget >= 0", name="budget_not_negative"),
        CheckConstraint("(failed_at IS NULL) = (failure_reason IS NULL)", name="failure_complete"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # e.g. ZS-2026-ZFCG-00042-L01
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_no: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    budget: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # 流标 of this lot (migration 0012): trading.statutory FAILURE_* reasons, and the live bids it had
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(String(40))
    failure_bid_count: Mapped[int | None] = mapped_column(Integer)


class BidderRegistration(Base):
    """A bidder organisation registered for a lot (投标报名); needed to bid and to ask questions."""

    __tablename__ = "bidder_registration"
    __table_args__ = (UniqueConstraint("lot_id", "organisation_id", name="bidder_registration_lot_id_org_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# The public listing walks these in sort order and stops after one page: with a common keyword that beats
# collecting every match from the GIN index and sorting (bench/listing.py). Added by migration 0006.
Index("tender_listing_deadline_idx", Tender.bid_deadline_at, Tender.id)
Index("tender_listing_published_idx", Tender.published_at, Tender.id)
Index("tender_updated_at_idx", Tender.updated_at, Tender.id)


class TenderDocument(Base):
    """A file attached to a tender (招标文件, 澄清文件, 图纸…), stored content-addressed by its SHA-256."""

    __tablename__ = "tender_document"
    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_positive"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # D-XXXXXXXX
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(255))
    # OCDS documentType: biddingDocuments, tenderNotice, clarifications, technicalSpecifications, ...
    document_type: Mapped[str] = mapped_column(String(40), server_default="biddingDocuments")
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Clarification(Base):
    """A bidder's question (澄清问题) and the agent's public answer; the asker is never shown to others."""

    __tablename__ = "clarification"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # Q-XXXXXXXX
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    asked_by_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    asked_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Amendment(Base):
    """A published change to the tender documents (澄清或修改), with the deadline before and after it."""

    __tablename__ = "tender_amendment"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # M-XXXXXXXX
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    summary: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, server_default="")
    document_ids: Mapped[list[str]] = mapped_column(ARRAY(String(16)), server_default=text("'{}'"))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opening_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
