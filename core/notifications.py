"""In-app notifications: the default Notifier, and the endpoint where users read them."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from evidence import ledger_service as ledger
from web.api import Api
from web.keys import Principal, db

api = Api("notifications")


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


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    data: dict
    created_at: datetime
    read_at: datetime | None


class InboxQuery(BaseModel):
    unread: bool = False
    limit: int = Field(default=50, ge=1, le=200)


@api.get("/api/v1/notifications", summary="My notifications, newest first", query=InboxQuery,
)
async def inbox(request: web.Request, who: Principal, query: InboxQuery):
    q = select(Notification).where(Notification.user_id == who.user_id).order_by(
        Notification.id.desc()).limit(query.limit)
    if query.unread:
        q = q.where(Notification.read_at.is_(None))
    rows = (await db(request).execute(q)).scalars()
    return [NotificationOut.model_validate(r, from_attributes=True) for r in rows]


@api.post("/api/v1/notifications/read", summary="Mark all my notifications read", status=204)
async def mark_read(request: web.Request, who: Principal):
    result = await db(request).execute(update(Notification).where(
        Notification.user_id == who.user_id, Notification.read_at.is_(None)).values(read_at=func.now()))
    if result.rowcount:
        await ledger.append(db(request), actor=who.public_id, action="notification.read",
                            entity=f"user:{who.public_id}", payload={"count": result.rowcount})
    return web.Response(status=204)
