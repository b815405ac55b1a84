"""Organisations, users, refresh tokens and login throttling."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (ARRAY, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, func, text)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

ROLES = ("admin", "agent", "purchaser", "bidder", "expert", "supervisor", "intermediary")
TOTP_REQUIRED_ROLES = frozenset({"admin", "agent", "supervisor"})
SELF_REGISTERING_ROLES = frozenset({"bidder", "intermediary"})


class Organisation(Base):
    """A legal entity: trading centre, tenderer, agency, bidder, expert employer or intermediary firm."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # 统一社会信用代码; null for organisations registered without one (e.g. a centre's own departments)
    social_credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    kind: Mapped[str] = mapped_column(String(32), server_default="company")
    region_code: Mapped[str | None] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(16)), server_default=text("'{}'"))
    # sealed under the master secret (core.totp); legacy plaintext values are sealed at their first use
    totp_secret: Mapped[str | None] = mapped_column(Text)
    # the RFC 6238 time step of the last code accepted: a code is good once
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # access tokens issued before this instant are refused (admin kills sessions)
    sessions_revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefreshToken(Base):
    """An opaque refresh token, stored as SHA-256; each use rotates it within its family."""

    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed-login counters per account and per client address."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    window_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DemoMarker(Base):
    """Present when `bidroom demo seed` made this database's data: a later seed may add to it."""

    __tablename__ = "demo_marker"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seeded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
