"""The few places where evaluation reads or moves a tender: its lock, its move to `evaluating` through
trading's one state mover, the bidders whose bids were opened, and who speaks for the tenderer. Every call into
trading's services goes through here; trading.access and trading.models are used directly."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity_models import Organisation, User
from trading.models import Bid
from trading.models import Tender
from trading.status import move_tender


@dataclass(frozen=True)
class Bidder:
    organisation_id: int
    organisation_public_id: str
    name: str
    price: Decimal | None = None  # read out at the opening


async def lock_tender(session: AsyncSession, tender_id: int) -> Tender:
    """The tender row, locked (moves of its state are serialised on it)."""
    return (await session.execute(select(Tender).where(Tender.id == tender_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()


async def start_evaluating(session: AsyncSession, tender_id: int, *, actor: str, session_public_id: str) -> bool:
    """Move the tender `opened → evaluating` when its first lot's session starts; a tender already evaluating
    (another lot, or a new committee after an abort) stays. Returns whether it moved."""
    tender = await lock_tender(session, tender_id)
    if tender.status == "evaluating":
        return False
    await move_tender(session, tender, "evaluating", actor=actor, payload={"evaluation_session": session_public_id})
    return True


async def opened_bidders(session: AsyncSession, lot_id: int) -> list[Bidder]:
    """The bidders whose bids for the lot were opened (开标), by name: what the avoidance declaration lists."""
    rows = (await session.execute(
        select(Organisation.id, Organisation.public_id, Organisation.name, Bid.price)
        .join(Bid, Bid.organisation_id == Organisation.id)
        .where(Bid.lot_id == lot_id, Bid.status == "opened").order_by(Organisation.name))).all()
    return [Bidder(*r) for r in rows]


async def tenderer_user_ids(session: AsyncSession, tender: Tender) -> list[int]:
    """The accounts of the tenderer's organisation (招标人), who decide after a fault before the start."""
    return list((await session.execute(select(User.id).where(User.organisation_id == tender.tenderer_id)
                                       .order_by(User.id))).scalars())


async def user_by_public_id(session: AsyncSession, public_id: str) -> User | None:
    return (await session.execute(select(User).where(User.public_id == public_id))).scalar_one_or_none()
