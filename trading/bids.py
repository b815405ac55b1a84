"""Sealed bids (投标): submit, replace and withdraw before the deadline, judged by the database clock.

A submission runs in two steps so the deadline is judged when the upload is complete, not when it began:
1. `bid_target` (a short read): the tender, lot and the bidder's registration, and an early refusal when the
   deadline has already passed;
2. `receive_bid` streams the body into `StreamSealer` (plaintext bundles are sealed on arrival and never touch
   disk; client-sealed age files are checked and stored as they are), then `record_bid`, in the request's
   transaction (begun only now, so `now()` is the time the upload finished), re-checks the deadline with the
   tender row held FOR SHARE, stores the row and returns a platform-signed receipt.

Receipt signature: Ed25519 over the canonical JSON of the receipt with the platform's ledger key (published
with every ledger checkpoint). A PDF record per bid would cost ~0.5 s of signing each, which a deadline burst of
hundreds of bids cannot afford; the ledger entry written in the same transaction anchors the receipt as well.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now, passed
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.identity_models import Organisation
from core.ids import public_id
from core.principal import Principal
from core.storage import PendingFile, Storage, SweepResult
from evidence import ledger_service as ledger
from evidence.sealing import SealedUpload, StreamSealer, UploadFormat
from trading import schemas
from trading.bundle import MAX_FORM_BYTES, form_from_head
from trading.lifecycle import TenderStatus
from trading.loaders import Lock, get_lot, get_tender
from trading.models import Bid, BidderRegistration, Lot, Tender
from trading.rules import BidForm

log = logging.getLogger(__name__)

BIDS_DIR = "bids"


@dataclass(frozen=True)
class BidTarget:
    """Where a bid goes: tender, lot, the bidder's organisation, and the recipient to seal to."""

    tender_id: int
    tender_code: str
    lot_id: int
    lot_public_id: str
    organisation_id: int
    organisation_public_id: str
    recipient: str


@dataclass
class ReceivedBid:
    """A sealed upload sitting in a pending storage file, not yet recorded."""

    upload: SealedUpload
    pending: PendingFile
    form: BidForm | None  # checked on the way in for plain bundles; None when the client sealed it

    async def discard(self) -> None:
        await self.pending.discard()


def _deadline_passed(deadline, now) -> Conflict:
    return Conflict("the bid deadline has passed", code="bid_deadline_passed",
                    details={"bid_deadline": deadline.isoformat() if deadline else None, "now": now.isoformat()})


async def _tender_and_lot(session: AsyncSession, tender_code: str, lot_public_id: str, *,
                          lock: Lock = None) -> tuple[Tender, Lot]:
    tender = await get_tender(session, tender_code, lock=lock)
    return tender, await get_lot(session, tender, lot_public_id)


async def _check_open_for_bids(session: AsyncSession, tender: Tender) -> None:
    now = await db_now(session)
    if tender.status != TenderStatus.PUBLISHED.value or tender.bid_deadline_at is None:
        if tender.status in (TenderStatus.DRAFT.value, TenderStatus.CANCELLED.value) \
                or tender.bid_deadline_at is None:
            raise Conflict("this tender does not take bids", code="not_accepting_bids",
                           details={"current": tender.status})
        raise _deadline_passed(tender.bid_deadline_at, now)
    if passed(tender.bid_deadline_at, now):
        raise _deadline_passed(tender.bid_deadline_at, now)
    if not tender.age_recipient:
        raise Conflict("this tender has no sealing key", code="not_accepting_bids")


async def _registration(session: AsyncSession, lot: Lot, who: Principal) -> BidderRegistration:
    if who.organisation_id is None:
        raise Forbidden("bids are submitted for an organisation", code="not_registered")
    reg = (await session.execute(select(BidderRegistration).where(
        BidderRegistration.lot_id == lot.id,
        BidderRegistration.organisation_id == who.organisation_id))).scalar_one_or_none()
    if reg is None:
        raise Forbidden("your organisation has not registered for this lot", code="not_registered",
                        details={"lot": lot.public_id})
    return reg


async def bid_target(session: AsyncSession, tender_code: str, lot_public_id: str, who: Principal) -> BidTarget:
    """Check that `who` may bid on this lot now (DB clock) and say what to seal to."""
    tender, lot = await _tender_and_lot(session, tender_code, lot_public_id)
    await _registration(session, lot, who)
    await _check_open_for_bids(session, tender)
    org = await session.get(Organisation, who.organisation_id)
    return BidTarget(tender.id, tender.code, lot.id, lot.public_id, org.id, org.public_id, tender.age_recipient)


def bid_key(tender_code: str, bid_no: str) -> str:
    """The storage key of a bid's ciphertext: bids/<tender code>/<bid no>.age."""
    return f"{BIDS_DIR}/{tender_code}/{bid_no}.age"


PARTIAL_STALE_AFTER_S = 3600  # an upload in progress writes every chunk; an hour without a write is a dead one
LEGACY_PARTIAL_GLOB = "*/.*.part"  # where earlier versions kept uploads in progress: bids/<tender>/.<uuid>.part


def sweep_partial_uploads(storage: Storage, *, stale_after_s: float = PARTIAL_STALE_AFTER_S,
                          now: float | None = None) -> SweepResult:
    """Delete the partial uploads a crash or a dropped connection left behind (blocking: run it in a thread).

    A partial upload is ciphertext that never became a bid, so it is never receipted and has no row. Only files
    untouched for `stale_after_s` go, judged by their modification time, so uploads still streaming into this
    or another server process are safe."""
    found = storage.sweep_temp(stale_after_s=stale_after_s, now=now)
    removed, size = found.removed, found.bytes
    root = storage.root / BIDS_DIR
    cutoff = (time.time() if now is None else now) - stale_after_s
    for path in root.glob(LEGACY_PARTIAL_GLOB) if root.is_dir() else ():
        try:
            info = path.stat()
            if info.st_mtime < cutoff:
                path.unlink()
                removed, size = removed + 1, size + info.st_size
        except FileNotFoundError:
            continue  # another process swept it first
    return SweepResult(removed, size)


async def receive_bid(chunks: AsyncIterator[bytes], target: BidTarget, storage: Storage, *,
                      max_bytes: int) -> ReceivedBid:
    """Stream an upload into a sealed pending file; a plain bundle's form.json is checked as it passes."""
    pending = await storage.open_pending()
    head = bytearray()
    form: BidForm | None = None
    form_limit = MAX_FORM_BYTES + 1024
    try:
        with StreamSealer(pending.file, target.recipient, max_bytes=max_bytes) as sealer:
            async for chunk in chunks:
                await sealer.awrite(chunk)
                if sealer.format is UploadFormat.PLAINTEXT and form is None:
                    # only the small head is kept in memory to read form.json; it never goes to disk
                    head += chunk[: max(0, form_limit - len(head))]
                    form = form_from_head(bytes(head))
            upload = await sealer.aclose()
        if upload.format is UploadFormat.PLAINTEXT and form is None:
            form = form_from_head(bytes(head))
            if form is None:
                raise Unprocessable("not a bid bundle: the upload ends inside form.json",
                                    code="invalid_bid_bundle", details={"reason": "truncated form.json"})
    except BaseException:
        await pending.discard()
        raise
    finally:
        head.clear()
    return ReceivedBid(upload, pending, form)


async def record_bid(session: AsyncSession, target: BidTarget, received: ReceivedBid, who: Principal, *,
                     signer) -> schemas.ReceiptOut:
    """Record a received bid (replacing the organisation's live one) if the DB clock is before the deadline."""
    try:
        tender, lot = await _tender_and_lot(session, target.tender_code, target.lot_public_id, lock="share")
        await _check_open_for_bids(session, tender)
        if tender.age_recipient != target.recipient:
            raise Conflict("the tender's sealing key changed during the upload", code="not_accepting_bids")
        now = await db_now(session)
        previous = (await session.execute(select(Bid).where(
            Bid.lot_id == lot.id, Bid.organisation_id == target.organisation_id,
            Bid.status == "submitted").with_for_update())).scalar_one_or_none()
        if previous is not None:
            previous.status = "replaced"
            previous.withdrawn_at = now
            await session.flush()
        bid_no = public_id("B", 8)
        storage_key = bid_key(target.tender_code, bid_no)
        bid = Bid(public_id=bid_no, tender_id=tender.id, lot_id=lot.id, organisation_id=target.organisation_id,
                  submitted_by_id=who.user_id, status="submitted", replaces_id=previous.id if previous else None,
                  storage_key=storage_key, sha256=received.upload.sha256, size=received.upload.size,
                  sealed_by=received.upload.sealed_by, submitted_at=now)
        session.add(bid)
        await session.flush()
        await received.pending.commit(storage_key)  # fsync, rename, fsync the directory, off the loop
    except BaseException:
        await received.discard()
        raise
    body = {"bid": bid_no, "tender": target.tender_code, "lot": target.lot_public_id,
            "bidder": target.organisation_public_id, "ciphertext_sha256": received.upload.sha256,
            "size": received.upload.size, "sealed_by": received.upload.sealed_by,
            "received_at": now.isoformat(), "replaces": previous.public_id if previous else None}
    await ledger.append(session, actor=who.public_id, action="bid.replace" if previous else "bid.submit",
                        entity=f"tender:{target.tender_code}", payload=body)
    log.info("bid %s for %s received (%d bytes, sealed by %s)", bid_no, target.lot_public_id,
             received.upload.size, received.upload.sealed_by)
    return schemas.ReceiptOut(receipt=body, signature=signer.sign(body), key_id=signer.key_id)


async def _live_bid(session: AsyncSession, lot: Lot, who: Principal, *, lock: bool = False) -> Bid:
    query = select(Bid).where(Bid.lot_id == lot.id, Bid.organisation_id == who.organisation_id,
                              Bid.status == "submitted")
    bid = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if bid is None:
        raise NotFound("your organisation has no live bid for this lot", code="no_bid")
    return bid


async def withdraw_bid(session: AsyncSession, tender_code: str, lot_public_id: str,
                       who: Principal) -> schemas.BidStatusOut:
    """Withdraw (撤回) the organisation's live bid before the deadline; the ciphertext is kept for the record."""
    tender, lot = await _tender_and_lot(session, tender_code, lot_public_id, lock="share")
    await _registration(session, lot, who)
    await _check_open_for_bids(session, tender)
    bid = await _live_bid(session, lot, who, lock=True)
    bid.status = "withdrawn"
    bid.withdrawn_at = await db_now(session)
    bid.withdrawal_kind = "撤回"
    bid.withdrawal_cause = "withdrawn by the bidder before the deadline"
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="bid.withdraw", entity=f"tender:{tender.code}",
                        payload={"bid": bid.public_id, "lot": lot.public_id})
    return status_of(bid, tender, lot)


async def my_bid(session: AsyncSession, tender_code: str, lot_public_id: str,
                 who: Principal) -> schemas.BidStatusOut:
    """The organisation's live bid for this lot: metadata only, never content."""
    tender, lot = await _tender_and_lot(session, tender_code, lot_public_id)
    await _registration(session, lot, who)
    return status_of(await _live_bid(session, lot, who), tender, lot)


def status_of(bid: Bid, tender: Tender, lot: Lot) -> schemas.BidStatusOut:
    """A bid's public metadata."""
    return schemas.BidStatusOut(bid=bid.public_id, tender=tender.code, lot=lot.public_id, status=bid.status,
                                    ciphertext_sha256=bid.sha256, size=bid.size, sealed_by=bid.sealed_by,
                                    submitted_at=bid.submitted_at, withdrawn_at=bid.withdrawn_at)


@dataclass(frozen=True)
class MyLot:
    """A lot the caller's organisation registered for, with its live (or last) bid's metadata."""

    tender_code: str
    tender_title: str
    tender_status: str
    bid_deadline_at: Any
    lot_id: str
    lot_title: str
    bid: schemas.BidStatusOut | None


async def my_lots(session: AsyncSession, who: Principal) -> list[MyLot]:
    """Every lot the caller's organisation registered for (newest deadline first), each with the organisation's
    newest bid for it: metadata only, never content ("my bids" of the bidder's pages)."""
    if who.organisation_id is None:
        return []
    rows = (await session.execute(
        select(BidderRegistration, Tender, Lot).join(Lot, Lot.id == BidderRegistration.lot_id)
        .join(Tender, Tender.id == BidderRegistration.tender_id)
        .where(BidderRegistration.organisation_id == who.organisation_id)
        .order_by(Tender.bid_deadline_at.desc(), Lot.lot_no))).all()
    bids = (await session.execute(select(Bid).where(
        Bid.organisation_id == who.organisation_id, Bid.lot_id.in_([lot.id for _, _, lot in rows]))
        .order_by(Bid.submitted_at))).scalars().all() if rows else []
    newest: dict[int, Bid] = {}
    for bid in bids:  # in submission order: the live one, or else the last, wins
        if bid.status == "submitted" or newest.get(bid.lot_id) is None or newest[bid.lot_id].status != "submitted":
            newest[bid.lot_id] = bid
    return [MyLot(tender.code, tender.title, tender.status, tender.bid_deadline_at, lot.public_id, lot.title,
                  status_of(newest[lot.id], tender, lot) if lot.id in newest else None)
            for _, tender, lot in rows]
