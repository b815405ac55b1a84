"""Media plane tables: the recorded segments of each place of a session, and which media worker serves which
session.

A segment is one Matroska/WebM file of one publication (one publisher connection) at one place, muxed from the
encoded packets as they arrived. Its hash, duration and frame counts also go into the ledger when it closes.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint,
                        func, text)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class MediaSegment(Base):
    """One closed (or, until it closes, open) recording segment of a place in an evaluation session."""

    __tablename__ = "media_segment"
    __table_args__ = (
        UniqueConstraint("session_id", "place_id", "publication", "seq"),
        CheckConstraint("publication >= 1 AND seq >= 1", name="numbers_positive"),
        Index("media_segment_open_idx", "recorder", postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # SG-XXXXXX
    session_id: Mapped[int] = mapped_column(ForeignKey("evaluation_session.id"), index=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("venue_place.id"), index=True)
    publisher_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    publication: Mapped[int] = mapped_column(Integer)  # 1 for the first connection, +1 per reconnect
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within a publication
    storage_key: Mapped[str] = mapped_column(String(300))  # relative to the media store of core.storage
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # wall time of the first packet
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # NULL while open
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    video_frames: Mapped[int | None] = mapped_column(Integer)
    audio_frames: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # by the retention sweep
    # the process recording it while open: "web" (the web process serves media itself) or a media worker's id
    recorder: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MediaWorker(Base):
    """A media worker process: where its signaling is reached, and when it last said it was alive."""

    __tablename__ = "media_worker"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. host:pid
    base_url: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MediaAssignment(Base):
    """The one worker that owns a session's media: every participant of the session is sent to it."""

    __tablename__ = "media_assignment"

    session_id: Mapped[int] = mapped_column(ForeignKey("evaluation_session.id"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("media_worker.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MediaDevice(Base):
    """A venue device (an unattended camera box) of a site: an account (role `device`, no password) that may
    only publish the room camera (全景) of its site's rooms during a session booked there."""

    __tablename__ = "media_device"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # DV-XXXXXX
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("venue_site.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MediaDeviceCredential(Base):
    """A device's long-lived secret, stored as SHA-256; revocable. The device trades it for short access tokens."""

    __tablename__ = "media_device_credential"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # DC-XXXXXX
    device_id: Mapped[int] = mapped_column(ForeignKey("media_device.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
