"""Trading tables: tenders (招标项目), lots (标段), bidder registrations (投标报名), documents, clarifications and
amendments; then key holding, sealed bids (投标), the opening (开标), candidates, objections and awards.

What sits where, and why nobody can read a bid before the opening:
- bid ciphertext lives in storage (core.storage), sealed with age to the tender's recipient; the DB keeps only
  its SHA-256 and size, and the price columns stay NULL until the opening;
- the tender's identity exists only as k-of-n shares, each encrypted to one holder's personal age key, and
  each personal key is wrapped under its holder's passphrase (age scrypt), which the platform never stores;
- the platform's own share (when a tender allows one) is encrypted to a platform holder key wrapped under a
  key derived from the master secret, which lives in a file outside the database.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (ARRAY, BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary,
                        Numeric, String, Text, UniqueConstraint, func, text)
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
    title_en: Mapped[str | None] = mapped_column(String(300))  # optional English title, searched too
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
    # CJK bigrams and lowercase words of the titles, code, description, tenderer and lot titles, for GIN `@>`
    # search (trading.listing.search_terms.tender_terms)
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


# ---- key holding, sealed bids, the opening and results -------------------------------------------------------

class HolderKey(Base):
    """A key holder's personal age X25519 key (持钥人密钥); the identity is stored wrapped, never in clear.

    kind "person": wrapped with age scrypt under the holder's passphrase. kind "platform": wrapped with
    AES-GCM under a key derived from the platform master secret. Re-enrolment adds a row and retires the old
    one (retired_at), which still opens the tenders sealed while it was current.
    """

    __tablename__ = "holder_key"
    __table_args__ = (
        CheckConstraint("kind IN ('person', 'platform')", name="kind_known"),
        CheckConstraint("(kind = 'person') = (user_id IS NOT NULL)", name="person_has_user"),
        Index("holder_key_current_user_idx", "user_id", unique=True,
              postgresql_where=text("retired_at IS NULL AND kind = 'person'")),
        Index("holder_key_current_platform_idx", "kind", unique=True,
              postgresql_where=text("retired_at IS NULL AND kind = 'platform'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), server_default="person")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(100))
    wrapped_identity: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TenderKeyHolder(Base):
    """One of a tender's n key holders; at publish it receives its share, encrypted to its holder key."""

    __tablename__ = "tender_key_holder"
    __table_args__ = (
        UniqueConstraint("tender_id", "position", name="tender_key_holder_tender_id_position_key"),
        Index("tender_key_holder_person_idx", "tender_id", "user_id", unique=True,
              postgresql_where=text("user_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1..n, the order the agent named them in
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))  # NULL: the platform's share
    holder_key_id: Mapped[int | None] = mapped_column(ForeignKey("holder_key.id"))  # set at publish
    encrypted_share: Mapped[bytes | None] = mapped_column(LargeBinary)  # age file to the holder key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OpeningShare(Base):
    """A share unlocked at the opening, kept (encrypted under the master-secret key) until k are in."""

    __tablename__ = "opening_share"
    __table_args__ = (UniqueConstraint("tender_key_holder_id", name="opening_share_tender_key_holder_id_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    tender_key_holder_id: Mapped[int] = mapped_column(ForeignKey("tender_key_holder.id"))
    sealed_share: Mapped[bytes] = mapped_column(LargeBinary)
    unlocked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Bid(Base):
    """A sealed bid (投标文件) of one organisation for one lot; one live bid per (lot, organisation).

    status: submitted (live, sealed) → replaced | withdrawn (by the bidder, 撤回, before the deadline) →
    opened | invalid (could not be decrypted or read at the opening; withdrawal_kind says 撤销 or 撤回).
    """

    __tablename__ = "bid"
    __table_args__ = (
        CheckConstraint("status IN ('submitted', 'replaced', 'withdrawn', 'opened', 'invalid')",
                        name="status_known"),
        CheckConstraint("sealed_by IN ('client', 'server')", name="sealed_by_known"),
        CheckConstraint("price IS NULL OR price > 0", name="price_positive"),
        Index("bid_live_idx", "lot_id", "organisation_id", unique=True,
              postgresql_where=text("status = 'submitted'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="submitted")
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("bid.id"))
    storage_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sealed_by: Mapped[str] = mapped_column(String(8))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 撤回 (withdrawn, not the bidder's doing at the opening / the bidder's choice before the deadline) or
    # 撤销 (revoked: the bidder's own file could not be opened), with the cause
    withdrawal_kind: Mapped[str | None] = mapped_column(String(8))
    withdrawal_cause: Mapped[str | None] = mapped_column(Text)
    # read out at the opening (开标一览表); NULL until then
    price: Mapped[Decimal | None] = mapped_column(MONEY)
    duration_days: Mapped[int | None] = mapped_column(Integer)
    declared: Mapped[dict | None] = mapped_column(JSONB)
    documents: Mapped[list | None] = mapped_column(JSONB)  # names, sizes, SHA-256 of the documents inside
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TenderOpening(Base):
    """The opening (开标) of a tender: who started it, when it completed, its record, and the outcome."""

    __tablename__ = "tender_opening"

    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), primary_key=True)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))  # opened | failed
    valid_bids: Mapped[int | None] = mapped_column(Integer)
    record_no: Mapped[str | None] = mapped_column(String(32))


class AwardCandidate(Base):
    """A ranked candidate (中标候选人) of a lot, published with a publicity period (公示期)."""

    __tablename__ = "award_candidate"
    __table_args__ = (UniqueConstraint("lot_id", "rank", name="award_candidate_lot_id_rank_key"),
                      CheckConstraint("(report_no IS NULL) = (report_revision IS NULL)", name="report_with_revision"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    bid_id: Mapped[int] = mapped_column(ForeignKey("bid.id"))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    publicity_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # the sealed evaluation report (评标报告) and its revision the candidate comes from (migration 0022); NULL
    # only for a method without an evaluation committee (single source), whose candidates the agent enters
    report_no: Mapped[str | None] = mapped_column(String(32))
    report_revision: Mapped[int | None] = mapped_column(Integer)


class Objection(Base):
    """An objection (异议) filed by a bidder during the publicity period, and the agent's answer."""

    __tablename__ = "objection"
    __table_args__ = (CheckConstraint("upheld IS NULL OR answer IS NOT NULL", name="upheld_when_answered"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    body: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the answer's outcome (migration 0022): upheld (异议成立) sends `lot_id` back to its committee
    upheld: Mapped[bool | None] = mapped_column(Boolean)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lot.id"))


class Award(Base):
    """The award (中标) of a lot to a bid, with its signed award notice (中标通知书)."""

    __tablename__ = "award"
    __table_args__ = (UniqueConstraint("lot_id", name="award_lot_id_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    bid_id: Mapped[int] = mapped_column(ForeignKey("bid.id"))
    price: Mapped[Decimal] = mapped_column(MONEY)
    record_no: Mapped[str] = mapped_column(String(32))
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
