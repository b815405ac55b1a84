"""Sealed bids (投标): submit, replace and withdraw before the deadline, judged by the database clock.

A submission runs in two steps so the deadline is judged when the upload is complete, not when it began:
1. `bid_target` (a short read): the tender, lot and the bidder's registration, and an early refusal when the
   deadline has already passed;
2. `receive_bid` streams the body into `StreamSealer` (plaintext bundles are sealed on arrival and never touch
   disk; client-sealed age files are checked and stored as they are), then `record_bid`, in a transaction of
   its own (begun only now, so `now()` is the time the upload finished), re-checks the deadline with the
   tender row held FOR SHARE, stores the row and returns a platform-signed receipt.

A plain bundle is checked member by member as it streams in (trading.bundle.BundleScanner: regular files only,
safe names, member count and size within limits) and refused with 422 before anything is stored; a
client-sealed bundle can only be checked at the opening.

Abuse resistance (one server process): `UploadGate` lets `upload_slots` bodies be read and sealed at once (the
others are not read at all, so TCP holds them back: no thread, no buffer) and one upload per organisation and
lot at a time (409 upload_in_progress); `timed_chunks` ends a body that stalls or drags (408 upload_timeout);
`check_disk_space` refuses new uploads (507 insufficient_storage) while the data volume, which the embedded
PostgreSQL shares, is below its reserve. Once a new bid is committed, the ciphertext it supersedes (the bid it
replaces, or the bid the organisation withdrew before it) is deleted (`delete_superseded`); its hash stays in
the ledger and in the bid row.

Receipt signature: Ed25519 over the canonical JSON of the receipt with the platform's ledger key (published
with every ledger checkpoint). A PDF record per bid would cost ~0.5 s of signing each, which a deadline burst of
hundreds of bids cannot afford; the ledger entry written in the same transaction anchors the receipt as well.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now, passed
from core.errors import BadRequest, Conflict, Forbidden, InsufficientStorage, NotFound, RequestTimeout
from core.identity_models import Organisation
from core.ids import public_id
from core.principal import Principal
from core.storage import PendingFile, Storage, SweepResult
from evidence import ledger_service as ledger
from evidence.sealing import SealedUpload, StreamSealer, UploadFormat
from trading import schemas
from trading.bundle import BundleLimits, BundleScanner
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
    legacy = storage.sweep_stale(storage.root / BIDS_DIR, LEGACY_PARTIAL_GLOB, stale_after_s=stale_after_s, now=now)
    return SweepResult(found.removed + legacy.removed, found.bytes + legacy.bytes)


class UploadGate:
    """How many bid uploads one server process takes at once, and one per organisation and lot.

    `slot()` is an asyncio semaphore taken before the body is read: an upload waiting for a slot has had none
    of its body read, so TCP flow control holds the bidder's client back, and no thread or buffer is spent on
    it. `claim()` refuses a second upload for the same organisation and lot while one is in flight.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("upload_slots must be at least 1")
        self._slots = asyncio.Semaphore(slots)
        self._in_flight: set[tuple[int, int]] = set()

    @contextlib.contextmanager
    def claim(self, target: BidTarget) -> Iterator[None]:
        key = (target.organisation_id, target.lot_id)
        if key in self._in_flight:
            raise Conflict("an upload of your organisation's bid for this lot is already in progress; wait for "
                           "its receipt, then replace it if you need to", code="upload_in_progress",
                           details={"lot": target.lot_public_id})
        self._in_flight.add(key)
        try:
            yield
        finally:
            self._in_flight.discard(key)

    def slot(self) -> asyncio.Semaphore:
        return self._slots


async def timed_chunks(chunks: AsyncIterator[bytes], *, idle_timeout_s: float,
                       timeout_s: float) -> AsyncIterator[bytes]:
    """Pass chunks on; 408 upload_timeout when none comes for `idle_timeout_s` or the whole takes `timeout_s`,
    400 upload_incomplete when the connection is lost."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    source = chunks.__aiter__()
    while True:
        wait = min(idle_timeout_s, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await source.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout("the upload was too slow: the body did not arrive in time", code="upload_timeout",
                                 details={"idle_timeout_s": idle_timeout_s, "timeout_s": timeout_s}) from None
        except ConnectionResetError:
            # the client went away mid-body (or while it waited for a slot): nobody reads this answer, but it is
            # a refusal like any other, not a server error
            raise BadRequest("the connection was lost before the upload was complete",
                             code="upload_incomplete") from None
        yield chunk


def check_disk_space(storage: Storage, *, reserve_bytes: int, incoming: int = 0) -> None:
    """507 insufficient_storage when storing `incoming` more bytes would leave less than the reserve free.

    The data volume also holds the embedded PostgreSQL, which must never run out of space: uploads are refused
    well before the volume is full."""
    free = storage.free_bytes()
    if free - max(incoming, 0) < reserve_bytes:
        log.warning("bid upload refused: %d bytes free on the data volume, %d reserved, %d incoming", free,
                    reserve_bytes, incoming)
        raise InsufficientStorage("the platform cannot store more bids just now; try again later, and tell the "
                                  "platform operator if this persists", code="insufficient_storage")


async def receive_bid(chunks: AsyncIterator[bytes], target: BidTarget, storage: Storage, *,
                      max_bytes: int, limits: BundleLimits | None = None) -> ReceivedBid:
    """Stream an upload into a sealed pending file; a plain bundle is checked member by member as it passes
    (trading.bundle.BundleScanner), and a bad one is refused (422) with nothing stored."""
    pending = await storage.open_pending()
    scanner: BundleScanner | None = BundleScanner(limits)
    undecided = bytearray()  # the first bytes, until the sealer has told plaintext from age (≤ 64 bytes)
    form: BidForm | None = None
    try:
        with StreamSealer(pending.file, target.recipient, max_bytes=max_bytes) as sealer:
            async for chunk in chunks:
                await sealer.awrite(chunk)
                if scanner is None:
                    continue
                if sealer.format is None:
                    undecided += chunk
                elif sealer.format is UploadFormat.PLAINTEXT:
                    if undecided:
                        scanner.feed(bytes(undecided))
                        undecided.clear()
                    scanner.feed(chunk)  # plaintext is checked in memory, chunk by chunk; it never goes to disk
                else:
                    scanner, undecided = None, bytearray()  # a client-sealed bid is checked at the opening
            upload = await sealer.aclose()
        if upload.format is UploadFormat.PLAINTEXT:
            assert scanner is not None
            if undecided:
                scanner.feed(bytes(undecided))
            form = scanner.finish().form
    except BaseException:
        await pending.discard()
        raise
    finally:
        undecided.clear()
    return ReceivedBid(upload, pending, form)


@dataclass
class RecordedBid:
    """A recorded bid's receipt, and the storage keys of the ciphertexts it supersedes (to delete after commit)."""

    receipt: schemas.ReceiptOut
    superseded: list[str] = field(default_factory=list)


async def record_bid(session: AsyncSession, target: BidTarget, received: ReceivedBid, who: Principal, *,
                     signer) -> RecordedBid:
    """Record a received bid (replacing the organisation's live one) if the DB clock is before the deadline.

    The caller commits, then passes `superseded` to `delete_superseded`: the ciphertext of the replaced bid, or of
    the bid the organisation withdrew before this one. 招标投标法 第29条 lets a bidder change or withdraw
    a bid before the deadline; only the last one is ever opened, so the others' ciphertexts have no further use
    and keeping them would let a bidder fill the disk by replacing. Their SHA-256 stays in the bid rows and in
    the ledger entries of their receipts."""
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
        # each recorded bid supersedes every earlier one, so only the latest earlier one can still have a file
        superseded = list((await session.execute(select(Bid.storage_key).where(
            Bid.lot_id == lot.id, Bid.organisation_id == target.organisation_id,
            Bid.status.in_(("replaced", "withdrawn"))).order_by(Bid.id.desc()).limit(1))).scalars())
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
    return RecordedBid(schemas.ReceiptOut(receipt=body, signature=signer.sign(body), key_id=signer.key_id),
                       superseded)


async def delete_superseded(storage: Storage, keys: list[str]) -> int:
    """Delete superseded ciphertexts once the bid that supersedes them is committed; returns how many were there.

    A file already gone (deleted by an earlier replacement) is skipped. A failure is logged, never raised: the
    bidder's new bid is committed and receipted whatever happens here."""
    deleted = 0
    for key in keys:
        try:
            deleted += await storage.delete(key)
        except OSError:
            log.exception("could not delete the superseded bid file %s", key)
    if deleted:
        log.info("deleted %d superseded bid ciphertexts", deleted)
    return deleted


async def _live_bid(session: AsyncSession, lot: Lot, who: Principal, *, lock: bool = False) -> Bid:
    query = select(Bid).where(Bid.lot_id == lot.id, Bid.organisation_id == who.organisation_id,
                              Bid.status == "submitted")
    bid = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if bid is None:
        raise NotFound("your organisation has no live bid for this lot", code="no_bid")
    return bid


async def withdraw_bid(session: AsyncSession, tender_code: str, lot_public_id: str,
                       who: Principal) -> schemas.BidStatusOut:
    """Withdraw (撤回) the organisation's live bid before the deadline (招标投标法 第29条); its ciphertext is kept
    until the organisation submits a new bid for the lot."""
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
