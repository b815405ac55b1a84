"""Evaluation tables: venues (统一场地管理) — trading centres (交易中心) as sites, their rooms and the places
(席位) in each room — room bookings, which the database keeps from ever overlapping, and evaluation sessions
(评标会议) of a lot held at a main venue (主场) and sub-venues (副场), each a booking.

"Place" is the word for where an expert sits; "seat" belongs to the committee (expert_pool.seating).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Computed, DateTime, ForeignKey, Index, Integer,
                        LargeBinary, String, Text, UniqueConstraint, func, literal_column, text)
from sqlalchemy.dialects.postgresql import TSTZRANGE, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from sqlalchemy.dialects.postgresql import JSONB

from evaluation.rules import (BOOKING_STATUSES, FAULT_OUTCOMES, MEMBER_KINDS, MEMBER_STATUSES, SESSION_STATUSES,
                              VENUE_ROLES, VENUE_STATUSES)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Site(Base):
    """A trading centre (交易中心) where evaluations take place, in one administrative region (GB/T 2260)."""

    __tablename__ = "venue_site"
    __table_args__ = (
        CheckConstraint(_in("status", VENUE_STATUSES), name="status_known"),
        # a retired centre's name may be reused by a new one
        Index("venue_site_active_name_idx", "name", unique=True, postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # ST-XXXXXX
    name: Mapped[str] = mapped_column(String(100))  # e.g. 广东省公共资源交易中心
    region_code: Mapped[str] = mapped_column(String(6), index=True)  # e.g. 440100 广州市
    address: Mapped[str] = mapped_column(String(200), server_default="")
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Room(Base):
    """An evaluation room (评标室) of a site.

    Its key is a 4-byte integer so that it goes into the bookings' exclusion constraint as an int4range.
    """

    __tablename__ = "venue_room"
    __table_args__ = (
        CheckConstraint(_in("status", VENUE_STATUSES), name="status_known"),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        Index("venue_room_site_id_active_name_idx", "site_id", "name", unique=True,
              postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # RM-XXXXXX
    site_id: Mapped[int] = mapped_column(ForeignKey("venue_site.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # e.g. 第3评标室
    capacity: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Place(Base):
    """A place (席位) in a room: one expert signs in and evaluates there; one place per room may be marked as
    the room's camera position for the media plane."""

    __tablename__ = "venue_place"
    __table_args__ = (
        CheckConstraint(_in("status", VENUE_STATUSES), name="status_known"),
        Index("venue_place_room_id_active_label_idx", "room_id", "label", unique=True,
              postgresql_where=text("status = 'active'")),
        Index("venue_place_room_id_camera_idx", "room_id", unique=True,
              postgresql_where=text("camera_position AND status = 'active'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # PL-XXXXXX
    room_id: Mapped[int] = mapped_column(ForeignKey("venue_room.id"), index=True)
    label: Mapped[str] = mapped_column(String(32))  # e.g. A-03
    camera_position: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoomBooking(Base):
    """A room held for a time range [starts_at, ends_at), for a purpose: a tender's evaluation (later its
    evaluation session) or whatever the label says.

    Two confirmed bookings of one room never overlap: the exclusion constraint refuses the second even when
    both are written at the same moment. The embedded server has no btree_gist, so the room id goes in as a
    one-element int4range, which core GiST indexes with `=`. A cancelled booking stays, outside the constraint.
    """

    __tablename__ = "room_booking"
    __table_args__ = (
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status_known"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled_when_stamped"),
        ExcludeConstraint(
            (func.int4range(literal_column("room_id"), literal_column("room_id"), literal_column("'[]'")), "="),
            (literal_column("during"), "&&"),
            name="room_booking_no_overlap", using="gist", where=text("status = 'confirmed'")),
        Index("room_booking_room_id_starts_at_idx", "room_id", "starts_at"),
        CheckConstraint("venue_role IS NULL OR " + _in("venue_role", VENUE_ROLES), name="venue_role_known"),
        CheckConstraint("(evaluation_session_id IS NULL) = (venue_role IS NULL)", name="venue_role_with_session"),
        # one main venue per session
        Index("room_booking_session_main_idx", "evaluation_session_id", unique=True,
              postgresql_where=text("venue_role = 'main'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # BK-XXXXXXXX
    room_id: Mapped[int] = mapped_column(ForeignKey("venue_room.id"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # half-open, so a booking ending at 12:00 touches one starting at 12:00 without overlapping it
    during: Mapped[object] = mapped_column(TSTZRANGE, Computed("tstzrange(starts_at, ends_at, '[)')", persisted=True))
    status: Mapped[str] = mapped_column(String(16), server_default="confirmed")
    tender_id: Mapped[int | None] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lot.id"))
    # the evaluation session the booking serves, as its main venue (主场) or a sub-venue (副场)
    evaluation_session_id: Mapped[int | None] = mapped_column(ForeignKey("evaluation_session.id"), index=True)
    venue_role: Mapped[str | None] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(200))
    booked_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class EvaluationSession(Base):
    """An evaluation session (评标会议) of a lot: where and when its committee sits, and how far it has got.

    Its venues are the room bookings that point at it: one main venue (主场), any sub-venues (副场) at other
    sites. A lot has at most one live session; a closed or aborted one stays on record.
    """

    __tablename__ = "evaluation_session"
    __table_args__ = (
        CheckConstraint(_in("status", SESSION_STATUSES), name="status_known"),
        CheckConstraint("(status = 'suspended') = (suspended_from IS NOT NULL)", name="suspended_from_set"),
        CheckConstraint("fault_outcome IS NULL OR " + _in("fault_outcome", FAULT_OUTCOMES), name="fault_outcome_known"),
        Index("evaluation_session_live_lot_idx", "lot_id", unique=True,
              postgresql_where=text("status NOT IN ('closed', 'aborted')")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # ES-XXXXXXXX
    tender_id: Mapped[int] = mapped_column(ForeignKey("tender.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default="scheduled")
    suspended_from: Mapped[str | None] = mapped_column(String(16))  # where a suspended session resumes
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspend_reason: Mapped[str | None] = mapped_column(Text)
    # an unresolved venue fault: when it was reported, and what its timer decided once it fired
    fault_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fault_outcome: Mapped[str | None] = mapped_column(String(24))
    ended_reason: Mapped[str | None] = mapped_column(Text)
    materials_sealed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    materials_sha256: Mapped[str | None] = mapped_column(String(64))
    # the chair (组长), and the draw that settles a tie: commitment published when the tie is known, the
    # supervisor's entropy, the seed (ALGORITHMS.md §1 engine, evidence.randomness)
    chair_member_id: Mapped[int | None] = mapped_column(ForeignKey("evaluation_member.id", use_alter=True))
    chair_how: Mapped[str | None] = mapped_column(String(16))
    chair_tie: Mapped[list | None] = mapped_column(JSONB)
    chair_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    chair_commitment: Mapped[str | None] = mapped_column(String(64))
    chair_entropy: Mapped[str | None] = mapped_column(Text)
    chair_seed: Mapped[str | None] = mapped_column(String(64))
    # qualification and compliance review: the requirements reviewed, and the decided result
    review_requirements: Mapped[list | None] = mapped_column(JSONB)
    review_result: Mapped[dict | None] = mapped_column(JSONB)
    review_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lot_failed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # scoring: the ranking and the bidroom-score-v1 record stored when scoring closes
    scoring_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ranking: Mapped[list | None] = mapped_column(JSONB)
    score_record: Mapped[dict | None] = mapped_column(JSONB)
    # bidders still tied after every ranking rule: the draw's commitment when the tie is found, the
    # supervisor's entropy, the groups it was committed for (ALGORITHMS.md §1 via scoring.tie_drawer)
    score_tie_groups: Mapped[list | None] = mapped_column(JSONB)
    score_tie_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    score_tie_commitment: Mapped[str | None] = mapped_column(String(64))
    score_tie_entropy: Mapped[str | None] = mapped_column(Text)


class EvaluationMember(Base):
    """A member of a session's committee: an expert seated by the lot's confirmed draw, or a tenderer
    representative (招标人代表); where they sit (a place of one of the session's rooms) and their check-in:
    identity confirmed, integrity commitment (承诺书) and avoidance declaration (回避声明) signed.

    A member who declares a conflict is withdrawn and stays on record; their seat goes to the next backup.
    """

    __tablename__ = "evaluation_member"
    __table_args__ = (
        CheckConstraint(_in("kind", MEMBER_KINDS), name="kind_known"),
        CheckConstraint(_in("status", MEMBER_STATUSES), name="status_known"),
        CheckConstraint("(kind = 'expert') = (expert_id IS NOT NULL AND invitation_id IS NOT NULL)",
                        name="expert_with_seat"),
        CheckConstraint("(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn_when_stamped"),
        Index("evaluation_member_session_id_expert_id_idx", "session_id", "expert_id", unique=True,
              postgresql_where=text("status <> 'withdrawn' AND expert_id IS NOT NULL")),
        Index("evaluation_member_session_id_user_id_idx", "session_id", "user_id", unique=True,
              postgresql_where=text("status <> 'withdrawn' AND user_id IS NOT NULL")),
        Index("evaluation_member_session_id_place_id_idx", "session_id", "place_id", unique=True,
              postgresql_where=text("status <> 'withdrawn' AND place_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # EM-XXXXXXXX
    session_id: Mapped[int] = mapped_column(ForeignKey("evaluation_session.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # expert | representative
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("expert.id"))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("expert_invitation.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    quota: Mapped[str | None] = mapped_column(String(64))
    seat: Mapped[int | None] = mapped_column(Integer)
    region_code: Mapped[str | None] = mapped_column(String(6))  # the expert's city
    place_id: Mapped[int | None] = mapped_column(ForeignKey("venue_place.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="seated")
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    declaration: Mapped[dict | None] = mapped_column(JSONB)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChairVote(Base):
    """One member's vote for the chair (推选组长); one vote per member and session, kept by the database."""

    __tablename__ = "evaluation_chair_vote"
    __table_args__ = (UniqueConstraint("session_id", "voter_id", name="evaluation_chair_vote_session_id_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("evaluation_session.id"))
    voter_id: Mapped[int] = mapped_column(ForeignKey("evaluation_member.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("evaluation_member.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReviewVote(Base):
    """A member's pass or fail for one bidder on one requirement of the qualification and compliance review,
    with the reason for a fail; revisable until the review is closed."""

    __tablename__ = "evaluation_review_vote"
    __table_args__ = (UniqueConstraint("session_id", "member_id", "bidder_id", "requirement",
                                       name="evaluation_review_vote_session_id_key"),
                      CheckConstraint("passed OR reason IS NOT NULL", name="reason_for_fail"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("evaluation_session.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("evaluation_member.id"))
    bidder_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    requirement: Mapped[str] = mapped_column(String(32))
    passed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScoreSheet(Base):
    """A member's score sheet (评分表) for one bidder: criterion → score as a decimal string. A draft is
    changed freely; submitted locks it; the chair may return it with a reason, which opens it again. Written
    justifications of flagged scores (说明理由) ride with it, each about the score it names."""

    __tablename__ = "evaluation_score_sheet"
    __table_args__ = (UniqueConstraint("session_id", "member_id", "bidder_id",
                                       name="evaluation_score_sheet_session_id_key"),
                      CheckConstraint("status IN ('draft', 'submitted', 'returned')", name="status_known"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("evaluation_session.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("evaluation_member.id"))
    bidder_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    scores: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    return_reason: Mapped[str | None] = mapped_column(Text)
    justifications: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
