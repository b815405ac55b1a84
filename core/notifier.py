"""Notifications behind one interface: in-app now; SMS or voice gateways can be added as adapters."""
from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)


class Notifier(Protocol):
    async def notify(self, session: AsyncSession, *, user_id: int, kind: str, title: str, body: str,
                     data: dict | None = None) -> None:
        """Deliver a message to one user, within the caller's transaction where the channel allows."""
