"""One-time enrolment links (账号开通链接): an admin invites a person to set up their own sign-in.

Only the SHA-256 of the token is stored; the token itself is shown to the admin once. A link is for an expert of
the pool who has no login yet (the account is made and linked when the link is used) or for a staff account the
admin created without a password (the person chooses the password and scans the TOTP secret, so the admin never
sees either factor).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (ARRAY, BigInteger, CheckConstraint, DateTime, ForeignKey, String, Text, func)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

EXPERT_ACCOUNT = "expert_account"
STAFF_ACCOUNT = "staff_account"
PURPOSES = (EXPERT_ACCOUNT, STAFF_ACCOUNT)


class EnrolmentToken(Base):
    __tablename__ = "enrolment_token"
    __table_args__ = (
        CheckConstraint("purpose IN ('expert_account', 'staff_account')", name="purpose_known"),
        CheckConstraint("(purpose = 'expert_account' AND expert_id IS NOT NULL) OR "
                        "(purpose = 'staff_account' AND user_id IS NOT NULL)", name="target_present"),
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the token
    purpose: Mapped[str] = mapped_column(String(16))
    # staff_account: the (inactive, password-less) user made by the admin; expert_account: set when used
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("expert.id"), index=True)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the TOTP secret offered to the person during enrolment, moved to the user when the first code checks;
    # sealed under the master secret like app_user.totp_secret (core.totp), bound to this enrolment
    pending_totp_secret: Mapped[str | None] = mapped_column(Text)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
