"""Archived records (signed PDFs) and each signature revision they went through."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Record(Base):
    """One legal record: draw, opening, selection, evaluation report ... Sealed records never change."""

    __tablename__ = "record"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_no: Mapped[str] = mapped_column(String(32), unique=True)  # printed on every page, e.g. R-7Q4M2K
    kind: Mapped[str] = mapped_column(String(48), index=True)
    entity: Mapped[str] = mapped_column(String(128), index=True)  # e.g. tender:ZS-2026-ZFCG-00042
    # who may download it: public, staff (agents, supervisors, admins) or supervisors
    audience: Mapped[str] = mapped_column(String(16), server_default="public")
    status: Mapped[str] = mapped_column(String(16), server_default="signing")  # signing, sealed
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # the current (after sealing: final) bytes
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    signers: Mapped[list] = mapped_column(JSONB, server_default="[]")  # [{field, public_id, name, at}]
    checkpoint_size: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sealed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecordRevision(Base):
    """Each signed state of a record's bytes (rendered, then one per signature); append-only."""

    __tablename__ = "record_revision"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    signed_field: Mapped[str | None] = mapped_column(String(64))
    signer: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
