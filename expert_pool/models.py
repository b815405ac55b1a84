"""Expert pool tables: experts (评标专家) with their leave, conflicts and service history, expert draws
(专家抽取), the experts each draw excluded and why (回避), and the invitations experts confirm (专家确认)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary,
                        Numeric, PrimaryKeyConstraint, String, Text, UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

EXPERT_STATUSES = ("active", "suspended", "retired")
EXPERT_CATEGORIES = ("technical", "economic")
DRAW_STATUSES = ("awaiting_entropy", "executed", "formed", "short", "cancelled")
INVITATION_STATUSES = ("pending", "accepted", "declined", "expired", "cancelled", "withdrawn")
INVITATION_SOURCES = ("primary", "backup", "supplementary")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Expert(Base):
    """An expert of the pool, known outside the pool only by the pseudonym E-XXXXXX."""

    __tablename__ = "expert"
    __table_args__ = (
        CheckConstraint(_in("status", EXPERT_STATUSES), name="status_known"),
        CheckConstraint(_in("category", EXPERT_CATEGORIES), name="category_known"),
        # fastupdate off on both GIN indexes: see migration 0008
        Index("expert_specialties_idx", "specialties", postgresql_using="gin",
              postgresql_with={"fastupdate": "off"}),
        # "specialty@region" pairs for draw screening; the SQL function is made by migration 0008
        Index("expert_specialty_regions_idx", text("expert_specialty_regions(specialties, city_code, province_code)"),
              postgresql_using="gin", postgresql_with={"fastupdate": "off"}),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), unique=True)  # the expert's login
    name: Mapped[str] = mapped_column(String(50))
    id_card_no: Mapped[str] = mapped_column(String(18), unique=True)  # 居民身份证号码, masked except to admins
    phone: Mapped[str] = mapped_column(String(20))
    province_code: Mapped[str] = mapped_column(String(6))
    city_code: Mapped[str] = mapped_column(String(6), index=True)
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)  # 工作单位
    category: Mapped[str] = mapped_column(String(16))  # technical 技术 / economic 经济
    title: Mapped[str] = mapped_column(String(50), server_default="")  # 职称, e.g. 高级工程师
    specialties: Mapped[list[str]] = mapped_column(ARRAY(String(8)))  # leaf codes of expert_pool/data
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    credit_score: Mapped[Decimal] = mapped_column(Numeric(5, 2), server_default="100")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExpertLeave(Base):
    """A period the expert is unavailable (请假), half-open [starts_at, ends_at)."""

    __tablename__ = "expert_leave"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(200), server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExpertConflict(Base):
    """An organisation the expert declared ties to (利害关系申报): never drawn when it tenders or bids."""

    __tablename__ = "expert_conflict"
    __table_args__ = (UniqueConstraint("expert_id", "organisation_id", name="expert_conflict_expert_id_org_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    note: Mapped[str] = mapped_column(String(200), server_default="")
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExpertService(Base):
    """One evaluation the expert sat on (or confirmed for), for a tenderer: the service history (服务记录).

    The monthly cap and the familiar-faces rule count these rows.
    """

    __tablename__ = "expert_service"
    __table_args__ = (Index("expert_service_expert_id_served_at_idx", "expert_id", "served_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert.id", ondelete="CASCADE"))
    tenderer_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    tender_id: Mapped[int | None] = mapped_column(ForeignKey("tender.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lot.id"))
    draw_id: Mapped[int | None] = mapped_column(ForeignKey("expert_draw.id"), index=True)
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    role: Mapped[str] = mapped_column(String(24), server_default="member")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExpertDraw(Base):
    """A verifiable draw of experts for a lot (ALGORITHMS.md §1), or a supplementary draw (补抽) of one.

    The secret stays here, unpublished, until a supervisor's entropy executes the draw.
    """

    __tablename__ = "expert_draw"
    __table_args__ = (
        CheckConstraint(_in("status", DRAW_STATUSES), name="status_known"),
        CheckConstraint("(parent_id IS NULL) = (round = 0)", name="round_matches_parent"),
        # a lot has one live original draw; more draws are supplementary, or follow a cancellation (migration 0013)
        Index("expert_draw_one_original_idx", "lot_id", unique=True,
              postgresql_where=text("parent_id IS NULL AND status <> 'cancelled'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("expert_draw.id"), index=True)  # the original draw
    round: Mapped[int] = mapped_column(Integer, server_default="0")  # 0 original, 1.. supplementary
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))  # None: the system (补抽)
    session_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # what the invitations tell the experts: the venue as typed, or the referenced session's venues
    venue: Mapped[str] = mapped_column(String(200))
    # the evaluation session the committee sits in (its public id, migration 0023): opaque here — the pool sits
    # below evaluation — and resolved and written by evaluation (expert_pool.venue_refs)
    evaluation_session: Mapped[str | None] = mapped_column(String(16))
    members: Mapped[int] = mapped_column(Integer)  # whole committee, tenderer representatives included
    representatives: Mapped[int] = mapped_column(Integer, server_default="0")
    reply_window_s: Mapped[int] = mapped_column(Integer)
    quotas: Mapped[list] = mapped_column(JSONB)
    # the avoidance context as screened: tenderer, bidders and authorities by organisation public id
    context: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    request: Mapped[dict] = mapped_column(JSONB)
    candidates: Mapped[list] = mapped_column(JSONB)
    candidates_digest: Mapped[str] = mapped_column(String(64))
    considered_count: Mapped[int] = mapped_column(Integer)
    eligible_count: Mapped[int] = mapped_column(Integer)
    exclusion_counts: Mapped[dict] = mapped_column(JSONB)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    commitment: Mapped[str] = mapped_column(String(64))
    entropy: Mapped[str | None] = mapped_column(Text)
    entropy_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seed: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[list | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(24), server_default="awaiting_entropy")
    # a cancelled draw: who cancelled it, when and why (a new original draw may then be requested)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DrawExclusion(Base):
    """An expert a draw's avoidance screening left out, with every reason that applied (main reason first)."""

    __tablename__ = "expert_draw_exclusion"
    __table_args__ = (PrimaryKeyConstraint("draw_id", "expert_id", name="expert_draw_exclusion_pkey"),)

    draw_id: Mapped[int] = mapped_column(ForeignKey("expert_draw.id", ondelete="CASCADE"))
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert.id", ondelete="CASCADE"), index=True)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(String(32)))


class ExpertInvitation(Base):
    """An invitation to one seat of a draw's committee; the expert accepts or declines before reply_by."""

    __tablename__ = "expert_invitation"
    __table_args__ = (
        UniqueConstraint("root_draw_id", "expert_id", name="expert_invitation_root_draw_id_expert_key"),
        CheckConstraint(_in("status", INVITATION_STATUSES), name="status_known"),
        CheckConstraint(_in("source", INVITATION_SOURCES), name="source_known"),
        # one live invitation per seat: the database refuses a double booking even if two replies race
        Index("expert_invitation_live_seat_idx", "root_draw_id", "quota", "seat", unique=True,
              postgresql_where=text("status IN ('pending', 'accepted')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    root_draw_id: Mapped[int] = mapped_column(ForeignKey("expert_draw.id"))
    draw_id: Mapped[int] = mapped_column(ForeignKey("expert_draw.id"), index=True)  # the draw that picked them
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert.id"), index=True)
    quota: Mapped[str] = mapped_column(String(64))
    seat: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reply_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # why the seat was given up: the expert's reason for a decline, or the avoidance reason of a withdrawal
    decline_reason: Mapped[str | None] = mapped_column(Text)
