"""The few places where evaluation reads or moves a tender: its lock, its move to `evaluating` through
trading's one state mover, the bidders whose bids were opened, who speaks for the tenderer, the opening record,
the hand-over of the committee's candidates to trading's publication (trading.results), and the upheld objection
that sends a lot back. Every call into trading's services goes through here; trading.access and trading.models
are used directly. Trading never imports evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.identity_models import Organisation, User
from core.storage import Storage
from evidence import ledger_service as ledger
from trading import opening, results, statutory
from trading.keyholding import PlatformKeyring
from trading.lifecycle import TenderStatus
from trading.models import Bid, Lot, Tender, TenderOpening
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


# ---- the opened bids, for the committee -----------------------------------------------------------------------

@dataclass(frozen=True)
class OpenedDocument:
    """A document inside an opened bid, as the opening listed it (name, size, SHA-256); `n` counts from 1."""

    n: int
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class OpenedBid:
    """A bid of the lot opened at the opening (开标), with its bidder and its documents."""

    bid_public_id: str
    organisation_id: int
    organisation_public_id: str
    name: str
    price: Decimal | None
    duration_days: int | None
    documents: list[OpenedDocument]


async def opened_bids(session: AsyncSession, lot_id: int) -> list[OpenedBid]:
    """The lot's opened bids (invalid ones have nothing to read), by bidder name, with their documents."""
    rows = (await session.execute(
        select(Bid, Organisation).join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Bid.lot_id == lot_id, Bid.status == "opened").order_by(Organisation.name, Bid.id))).all()
    return [OpenedBid(b.public_id, o.id, o.public_id, o.name, b.price, b.duration_days,
                      [OpenedDocument(n, d["name"], int(d["size"]), d["sha256"])
                       for n, d in enumerate(b.documents or [], start=1)]) for b, o in rows]


def read_opened_document(storage_dir: Path, keys_dir: Path, bid_public_id: str, sha256: str) -> bytes | None:
    """The bytes of a document the opening kept, checked against its SHA-256; None when it was not kept.
    Blocking (a file read and a decryption): run it in a thread."""
    return opening.read_opened_document(Storage(storage_dir), PlatformKeyring.from_keys_dir(keys_dir),
                                        bid_public_id, sha256)


# ---- a lot failed at the qualification review -----------------------------------------------------------------

# 评标委员会和评标方法暂行规定 第27条: bids rejected at review leave fewer than three valid ones — no competition, and
# the committee rejects them all; 招标投标法 第42条: when every bid is rejected the tenderer tenders again (流标).
FAILURE_TOO_FEW_COMPLIANT = "fewer_than_three_compliant_bids"
REVIEW_FAILURE_STATUTE = "评标委员会和评标方法暂行规定 第二十七条; 招标投标法 第四十二条"


async def fail_lot_after_review(session: AsyncSession, *, tender_id: int, lot_id: int, compliant: int,
                                rejected: list[dict], actor: str, session_public_id: str,
                                record_no: str | None = None) -> bool:
    """Record the lot's failure (流标) as the opening records one — on the lot, with a `lot.failed` ledger entry
    naming the signed failure record `record_no` — and move the tender to `failed` through trading's state mover
    when every one of its lots has failed. Returns whether the tender failed."""
    tender = await lock_tender(session, tender_id)
    lot = (await session.execute(select(Lot).where(Lot.id == lot_id).with_for_update()
                                 .execution_options(populate_existing=True))).scalar_one()
    if lot.failed_at is None:
        lot.failed_at, lot.failure_reason, lot.failure_bid_count = await db_now(session), FAILURE_TOO_FEW_COMPLIANT, \
            compliant
        await ledger.append(session, actor=actor, action="lot.failed", entity=f"lot:{lot.public_id}",
                            payload={"tender": tender.code, "reason": FAILURE_TOO_FEW_COMPLIANT, "bids": compliant,
                                     "rejected": rejected, "evaluation_session": session_public_id,
                                     "record_no": record_no, "statute": REVIEW_FAILURE_STATUTE})
        await session.flush()
    standing = (await session.execute(select(func.count()).select_from(Lot).where(
        Lot.tender_id == tender.id, Lot.failed_at.is_(None)))).scalar_one()
    if standing or tender.status == TenderStatus.FAILED.value:
        return False
    failed = list((await session.execute(select(Lot.public_id).where(Lot.tender_id == tender.id)
                                         .order_by(Lot.lot_no))).scalars())
    await move_tender(session, tender, TenderStatus.FAILED, actor=actor,
                      payload={"reason": FAILURE_TOO_FEW_COMPLIANT, "failed_lots": failed,
                               "evaluation_session": session_public_id, "record_no": record_no,
                               "statute": REVIEW_FAILURE_STATUTE})
    return True
