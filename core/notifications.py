"""In-app notifications: the table and the default Notifier. Users read them through identity.notification_routes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.principal import Principal
from evidence import ledger_service as ledger


class Notification(Base):
    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InAppNotifier:
    """Stores the message for the user's inbox in the caller's transaction."""

    async def notify(self, session: AsyncSession, *, user_id: int, kind: str, title: str, body: str,
                     data: dict | None = None) -> None:
        session.add(Notification(user_id=user_id, kind=kind, title=title, body=body, data=data or {}))
        await session.flush()


async def inbox(session: AsyncSession, *, user_id: int, unread_only: bool, limit: int) -> list[Notification]:
    """A user's notifications, newest first."""
    q = select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc()).limit(limit)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return list((await session.execute(q)).scalars())


async def mark_all_read(session: AsyncSession, who: Principal) -> int:
    """Mark every unread notification of the caller read; one ledger entry when any changed."""
    result = await session.execute(update(Notification).where(
        Notification.user_id == who.user_id, Notification.read_at.is_(None)).values(read_at=func.now()))
    if result.rowcount:
        await ledger.append(session, actor=who.public_id, action="notification.read",
                            entity=f"user:{who.public_id}", payload={"count": result.rowcount})
    return result.rowcount
