"""HTTP endpoints where users read their in-app notifications (the table and notifier live in core.notifications)."""
from __future__ import annotations

from aiohttp import web

from core import notifications
from core.identity_schemas import InboxQuery, NotificationOut
from web.api import Api
from web.keys import Principal, db

api = Api("notifications")


@api.get("/api/v1/notifications", summary="My notifications, newest first", query=InboxQuery,
         response=list[NotificationOut])
async def inbox(request: web.Request, who: Principal, query: InboxQuery):
    rows = await notifications.inbox(db(request), user_id=who.user_id, unread_only=query.unread, limit=query.limit)
    return [NotificationOut.model_validate(r, from_attributes=True) for r in rows]


@api.post("/api/v1/notifications/read", summary="Mark all my notifications read", status=204)
async def mark_read(request: web.Request, who: Principal):
    await notifications.mark_all_read(db(request), who)
    return web.Response(status=204)
