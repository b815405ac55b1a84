"""One loader per trading aggregate, each with one 404 code: `get_tender` (tender_not_found) and `get_lot`
(lot_not_found). Every trading service and route loads tenders and lots through these."""
from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.principal import Principal
from trading.access import may_manage
from trading.lifecycle import TenderStatus
from trading.models import Lot, Tender

Lock = Literal["update", "share"] | None


def tender_not_found(code: str) -> NotFound:
    return NotFound(f"no tender {code}", code="tender_not_found", details={"code": code})


def lot_not_found(lot_public_id: str) -> NotFound:
    return NotFound(f"no lot {lot_public_id}", code="lot_not_found", details={"lot": lot_public_id})


async def get_tender(session: AsyncSession, code: str, *, lock: Lock = None) -> Tender:
    """The tender with this code, row-locked FOR UPDATE or FOR SHARE when asked; else 404 tender_not_found."""
    stmt = select(Tender).where(Tender.code == code)
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "share":
        stmt = stmt.with_for_update(read=True)
    tender = (await session.execute(stmt)).scalar_one_or_none()
    if tender is None:
        raise tender_not_found(code)
    return tender


async def visible_tender(session: AsyncSession, code: str, who: Principal | None) -> Tender:
    """A tender the caller may see: any but a draft for everyone; drafts only for their agent (else 404)."""
    tender = await get_tender(session, code)
    if tender.status == TenderStatus.DRAFT and not may_manage(tender, who):
        raise tender_not_found(code)
    return tender


async def get_lot(session: AsyncSession, tender: Tender, lot_public_id: str) -> Lot:
    """A lot of this tender, or 404 lot_not_found."""
    lot = (await session.execute(select(Lot).where(Lot.public_id == lot_public_id, Lot.tender_id == tender.id))
           ).scalar_one_or_none()
    if lot is None:
        raise lot_not_found(lot_public_id)
    return lot


async def get_public_lot(session: AsyncSession, lot_public_id: str) -> tuple[Lot, Tender]:
    """A lot by its own id with its tender; lots of drafts are not public (404 lot_not_found)."""
    row = (await session.execute(select(Lot, Tender).join(Tender, Tender.id == Lot.tender_id)
                                 .where(Lot.public_id == lot_public_id))).one_or_none()
    if row is None or row[1].status == TenderStatus.DRAFT:
        raise lot_not_found(lot_public_id)
    return row[0], row[1]
