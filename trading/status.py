"""Moving a tender through its lifecycle: the pure state machine decides, and every move leaves a ledger entry."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from evidence import ledger_service as ledger
from trading.lifecycle import TenderStatus, transition
from trading.models import Tender

log = logging.getLogger(__name__)


async def move_tender(session: AsyncSession, tender: Tender, target: str | TenderStatus, *, actor: str,
                      payload: dict[str, Any] | None = None) -> TenderStatus:
    """Move `tender` to `target` or refuse with 409 illegal_transition; writes `tender.<target>` to the ledger.

    The caller holds the tender row (SELECT ... FOR UPDATE) so that two moves cannot race.
    """
    previous = tender.status
    goal = transition(previous, target)
    tender.status = goal.value
    tender.updated_at = func.now()
    await ledger.append(session, actor=actor, action=f"tender.{goal.value}", entity=f"tender:{tender.code}",
                        payload={"from": previous, "to": goal.value, **(payload or {})})
    log.info("tender %s moved %s -> %s", tender.code, previous, goal.value)
    return goal
