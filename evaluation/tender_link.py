"""The few places where evaluation reads or moves a tender: its lock, its move to `evaluating` through
trading's one state mover, the bidders whose bids were opened, who speaks for the tenderer, the opening record,
the hand-over of the committee's candidates to trading's publication (trading.results), and the upheld objection
that sends a lot back. Every call into trading's services goes through here; trading.access and trading.models
are used directly. Trading never imports evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from datetime import datetime
from typing import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.identity_models import Organisation, User
from trading import results, statutory
from trading.models import Bid, Lot, TenderOpening
from trading.models import Tender
from trading.schemas import CandidateOut
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


@dataclass(frozen=True)
class OpeningRef:
    """The tender's opening (开标) as the report cites it."""

    record_no: str
    opened_at: datetime | None


async def opening_of(session: AsyncSession, tender_id: int) -> OpeningRef:
    row = (await session.execute(select(TenderOpening.record_no, TenderOpening.completed_at)
                                 .where(TenderOpening.tender_id == tender_id))).one_or_none()
    if row is None or row[0] is None:
        return OpeningRef("—", None)
    return OpeningRef(row[0], row[1])


@dataclass(frozen=True)
class Recommended:
    """A candidate as the sealed report recommends it: the bidder (organisation public id), rank and score."""

    bidder: str
    rank: int
    score: Decimal | None


async def publish_recommended(session: AsyncSession, tender_id: int, lot_id: int,
                              recommended: Sequence[Recommended], *, report_no: str, revision: int, actor: str,
                              publicity_days: int, periods: statutory.Periods) -> list[CandidateOut]:
    """Hand the report's candidates to trading's publication (中标候选人公示): each bidder's opened bid for the
    lot, ranked as the report ranks them."""
    tender = await lock_tender(session, tender_id)
    lot = await session.get(Lot, lot_id)
    bids = dict((await session.execute(
        select(Organisation.public_id, Bid.id).join(Bid, Bid.organisation_id == Organisation.id)
        .where(Bid.lot_id == lot_id, Bid.status == "opened"))).all())
    ranked = [results.RankedBid(bids[r.bidder], r.rank, r.score) for r in recommended]
    return await results.publish_lot_candidates(session, tender, lot, ranked, report_no=report_no,
                                                report_revision=revision, actor=actor,
                                                publicity_days=publicity_days, periods=periods)


async def sent_back(session: AsyncSession, lot_id: int) -> str | None:
    """The upheld objection (its public id) that sent this lot back to its committee and still waits for the
    re-evaluation's candidates; None otherwise."""
    lot = await session.get(Lot, lot_id)
    objection = await results.objection_sending_back(session, lot)
    return objection.public_id if objection is not None else None


async def tender_status(session: AsyncSession, tender_id: int) -> str:
    return (await session.execute(select(Tender.status).where(Tender.id == tender_id))).scalar_one()
