"""The opening (开标): key holders unlock their shares; with k of them the bids are decrypted and read out.

Fewer than three bids are never opened (招标投标法实施条例 第44条): when the agent starts the opening, each lot
with fewer than 3 live bids (1 for single source) fails (流标) there and then. Its bids stay sealed: no share is
unlocked for it and none of its ciphertexts is ever decrypted; its record gives the number of bids and nothing
else. When every lot fails, the tender fails at once (closed -> failed) with a failed-tender record and no key
holder is asked for anything. Otherwise the opening goes on for the lots that have enough bids.

Flow: an agent starts the opening at `opening_at`, which is the bid deadline (招标投标法 第34条), by the DB
clock: closed -> opening, and the platform's share, when the tender has one, is unlocked at once. Each person
holder then sends their passphrase: their holder key is unwrapped in the process pool with no database
connection held (`unlock_share`), then their share is kept (sealed under the master-secret key) in
opening_share (`record_share`). When k people's shares are in (k counts people: the platform's share, when there
is one, joins them and the key was split with threshold k + 1, keyholding.shares_needed), the tender identity is
rebuilt in memory only, every live bid decrypted and read, the opening record issued, the kept shares deleted,
and the tender moves to opened or failed (流标).

Each bid is decrypted as a stream straight into the bundle scanner (trading.bundle), with the same member rules
and limits as a plain upload, so neither its ciphertext nor its plaintext is ever held whole, whatever the
bundle declares. All of this happens before the transaction's first ledger entry: the ledger lock, which every
write on the platform waits for, is never held while bids are decrypted or parsed.

A bid that cannot be opened is withdrawn alone, with its cause in the bid row, a `bid.invalidated` ledger entry
and the opening record, and the others open (电子招标投标办法 第31条); if fewer than 3 valid bids remain in a
lot, the lot fails (流标) as any lot with too few valid bids does:
- 撤销 (revoked) when the cause is the bidder's: a client-sealed file that does not decrypt with the tender
  key, or a bundle or form that is damaged, invalid or breaks the bundle rules (a link, device or sparse
  member, an unsafe name, too many members, too many bytes), with the rule's code as the cause;
- 撤回 (withdrawn) when the cause is not the bidder's: the stored ciphertext is missing, unreadable or no longer
  matches the SHA-256 in the bidder's receipt, or a file the platform itself sealed does not decrypt.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyrage
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import passed
from core.db import db_now
from core.errors import Conflict, Forbidden, ServiceBusy, Unprocessable
from core.identity_models import Organisation, User
from core.storage import Storage
from evidence import ledger_service as ledger
from evidence import sealing
from evidence.records import KeyValueBlock, SectionHeading, SignatureTable, TableBlock, TextBlock, \
    signature_field_name
from evidence.records_service import RecordContent, RecordsContext, fresh_checkpoint, issue_record
from evidence.sealing.shares import parse_identity
from evidence.signing import SignerSpec
from trading import keyholding, schemas, statutory
from trading.access import require_manager
from trading.bundle import BundleDocument, BundleLimits, BundleScanner, OpenedBundle
from trading.lifecycle import TenderStatus, tender_fails, transition
from trading.loaders import get_tender, visible_tender
from trading.models import Bid, HolderKey, Lot, OpeningShare, Tender, TenderKeyHolder, TenderOpening
from trading.status import move_tender
from core.principal import Principal

log = logging.getLogger(__name__)

REVOKED = "撤销"     # the bidder's own file could not be opened
WITHDRAWN = "撤回"   # not the bidder's doing
# 电子招标投标办法 第31条: 因投标人原因造成投标文件未解密的，视为撤销其投标文件；因投标人之外的原因造成投标文件
# 未解密的，视为撤回其投标文件……部分投标文件未解密的，其他投标文件的开标可以继续进行。
WITHDRAWAL_STATUTE = "电子招标投标办法 第三十一条"


def _share_context(holder_row_id: int) -> str:
    return f"opening_share:{holder_row_id}"


@dataclass(frozen=True)
class BidOutcome:
    """What opening one bid gave: a form and documents, or a withdrawal kind and cause."""

    bundle: OpenedBundle | None
    kind: str | None = None
    cause: str | None = None


READ_CHUNK = 64 * 1024


class _HashingReader:
    """Reads the stored ciphertext for pyrage while hashing it; an I/O error is kept, not mistaken for bad
    ciphertext."""

    def __init__(self, fh) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.error: OSError | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._fh.read(READ_CHUNK if size is None or size < 0 else min(size, READ_CHUNK))
        except OSError as err:
            self.error = err
            raise
        self.sha256.update(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the file (after an early stop), so the digest can still be compared."""
        while self.read(READ_CHUNK):
            pass


class _ScanningWriter:
    """Where pyrage writes the plaintext: straight into the bundle scanner, never kept whole."""

    def __init__(self, scanner: BundleScanner) -> None:
        self._scanner = scanner
        self.refusal: Unprocessable | None = None

    def write(self, data: bytes) -> int:
        try:
            self._scanner.feed(data)
        except Unprocessable as err:
            self.refusal = err
            raise
        return len(data)

    def flush(self) -> None:
        pass


# The documents of an opened bid are kept for the evaluation committee (评标委员会): the tender identity exists only
# in memory during the opening, so this is the one readable copy afterwards. Each document is sealed under the
# platform's master secret, bound to its bid and its SHA-256 (a file moved to another name does not open), and
# read only through evaluation's access policy (checked-in members of the lot's session).
OPENED_DOCUMENTS_KIND = "opened"


def opened_document_key(bid_public_id: str, sha256: str) -> str:
    """Where an opened bid's document is kept (sealed)."""
    return f"{OPENED_DOCUMENTS_KIND}/{bid_public_id}/{sha256}.sealed"


def _opened_document_context(bid_public_id: str, sha256: str) -> str:
    return f"opened_document:{bid_public_id}:{sha256}"


class DocumentKeeper:
    """The scanner's sink at the opening: each document of a bid, gathered as it streams past (one document in
    memory at a time, within the bundle limits), sealed and stored when it ends; `discard` removes what was
    stored when the bundle turns out bad, so a refused bid leaves nothing readable behind."""

    def __init__(self, storage: Storage, keyring: keyholding.PlatformKeyring, bid_public_id: str) -> None:
        self._storage, self._keyring, self._bid = storage, keyring, bid_public_id
        self._data = bytearray()
        self._kept: list[str] = []

    def begin(self) -> None:
        self._data = bytearray()

    def write(self, data: bytes) -> None:
        self._data += data

    def end(self, document: BundleDocument) -> None:
        sealed = self._keyring.seal(bytes(self._data), context=_opened_document_context(self._bid, document.sha256))
        self._data = bytearray()
        key = opened_document_key(self._bid, document.sha256)
        self._storage.put_bytes_sync(sealed, key=key)
        self._kept.append(key)

    def discard(self) -> None:
        for key in self._kept:
            self._storage.delete_sync(key)
        self._kept.clear()


def read_opened_document(storage: Storage, keyring: keyholding.PlatformKeyring, bid_public_id: str,
                         sha256: str) -> bytes | None:
    """An opened document's bytes, checked against its SHA-256; None when it was not kept (blocking)."""
    try:
        sealed = storage.read_bytes_sync(opened_document_key(bid_public_id, sha256))
    except FileNotFoundError:
        return None
    data = keyring.open(sealed, context=_opened_document_context(bid_public_id, sha256))
    if hashlib.sha256(data).hexdigest() != sha256:
        raise Unprocessable("a kept bid document does not match its digest", code="document_damaged",
                            details={"bid": bid_public_id, "sha256": sha256})
    return data


def open_stored_bid(path: Path, expected_sha256: str, sealed_by: str, identity: str,
                    limits: BundleLimits | None = None, keep: DocumentKeeper | None = None) -> BidOutcome:
    """Decrypt and check one stored bid (blocking: run it in a thread; see _open_stored_bid); with `keep`, a good
    bid's documents are kept sealed for the committee and a bad one's are discarded."""
    outcome = _open_stored_bid(path, expected_sha256, sealed_by, identity, limits, keep)
    if outcome.bundle is None and keep is not None:
        keep.discard()
    return outcome


def _open_stored_bid(path: Path, expected_sha256: str, sealed_by: str, identity: str,
                     limits: BundleLimits | None, keep: DocumentKeeper | None) -> BidOutcome:
    """Decrypt and check one stored bid, streaming (blocking: run it in a thread); never raises for a bad bid.

    The ciphertext is read in 64 KiB pieces, decrypted by pyrage as it comes, and each decrypted piece goes
    straight into the bundle scanner with the same rules and `limits` as a plain upload, so neither the
    ciphertext nor the plaintext is ever held whole. A bundle that breaks a rule stops the decryption there.
    Whatever happened, the whole file is hashed: bytes that differ from the bidder's receipt are never the
    bidder's doing.
    """
    ident = parse_identity(identity)
    scanner = BundleScanner(limits, keep)
    writer = _ScanningWriter(scanner)
    try:
        fh = open(path, "rb")
    except OSError:
        return BidOutcome(None, WITHDRAWN, "stored_ciphertext_missing")
    with fh:
        reader = _HashingReader(fh)
        bundle: OpenedBundle | None = None
        failure: str | None = None
        try:
            pyrage.decrypt_io(reader, writer, [ident])
            bundle = scanner.finish()
        except Unprocessable as err:  # the scanner's refusal, raised from inside pyrage or at finish
            failure = err.code
        except (pyrage.DecryptError, OSError, ValueError) as err:
            if writer.refusal is not None:
                failure = writer.refusal.code
            elif reader.error is None:
                failure = "undecryptable"
                log.info("bid file %s does not decrypt: %s", path.name, str(err)[:200])
        if reader.error is not None:
            return BidOutcome(None, WITHDRAWN, "stored_ciphertext_unreadable")
        try:
            reader.drain()
        except OSError:
            return BidOutcome(None, WITHDRAWN, "stored_ciphertext_unreadable")
    if reader.sha256.hexdigest() != expected_sha256:
        return BidOutcome(None, WITHDRAWN, "stored_ciphertext_damaged")
    if failure == "undecryptable":
        # The bytes are what the bidder's receipt names: a client's seal that fails is the bidder's doing.
        return BidOutcome(None, REVOKED if sealed_by == "client" else WITHDRAWN, failure)
    if failure is not None:
        return BidOutcome(None, REVOKED, failure)
    return BidOutcome(bundle)


async def _unlocked(session: AsyncSession, tender: Tender) -> list[tuple[OpeningShare, TenderKeyHolder]]:
    return list((await session.execute(
        select(OpeningShare, TenderKeyHolder).join(TenderKeyHolder, TenderKeyHolder.id == OpeningShare.tender_key_holder_id)
        .where(OpeningShare.tender_id == tender.id).order_by(TenderKeyHolder.position))).all())


async def _platform_holds_share(session: AsyncSession, tender: Tender) -> bool:
    """Whether the tender's key was split with a share for the platform (as sealed, not as the flag says now)."""
    return (await session.execute(select(TenderKeyHolder.id).where(
        TenderKeyHolder.tender_id == tender.id, TenderKeyHolder.user_id.is_(None),
        TenderKeyHolder.encrypted_share.is_not(None)))).first() is not None


@dataclass(frozen=True)
class Progress:
    """Whose shares are in: k people are needed, and with the platform's share the Shamir threshold is k + 1."""

    people_needed: int
    people: int
    platform_share: bool
    platform_unlocked: bool

    @property
    def shares(self) -> int:
        return self.people + (1 if self.platform_unlocked else 0)

    @property
    def complete(self) -> bool:
        """k distinct people's shares are in, and enough shares to rebuild the key (keyholding.shares_needed)."""
        return self.people >= self.people_needed and \
            self.shares >= keyholding.shares_needed(self.people_needed, self.platform_share)


def progress_of(tender: Tender, unlocked: list[tuple[OpeningShare, TenderKeyHolder]],
                platform_share: bool) -> Progress:
    return Progress(people_needed=tender.key_threshold,
                    people=sum(1 for _, row in unlocked if row.user_id is not None),
                    platform_share=platform_share,
                    platform_unlocked=any(row.user_id is None for _, row in unlocked))


async def opening_status(session: AsyncSession, tender_code: str) -> schemas.OpeningOut:
    """Progress of a tender's opening: how many people's shares are in of the k needed, whether the platform's
    share is, the failed lots, and the record once done."""
    tender = await get_tender(session, tender_code)
    opening = await session.get(TenderOpening, tender.id)
    unlocked = await _unlocked(session, tender)
    names = []
    for _, row in unlocked:
        names.append("platform" if row.user_id is None else (await session.get(User, row.user_id)).public_id)
    progress = progress_of(tender, unlocked, await _platform_holds_share(session, tender))
    failed = list((await session.execute(select(Lot.public_id).where(
        Lot.tender_id == tender.id, Lot.failed_at.is_not(None)).order_by(Lot.lot_no))).scalars())
    return schemas.OpeningOut(tender=tender.code, status=tender.status, threshold=tender.key_threshold,
                              unlocked=len(unlocked), people_unlocked=progress.people,
                              platform_share=progress.platform_share, platform_unlocked=progress.platform_unlocked,
                              holders_unlocked=names, record_no=opening.record_no if opening else None,
                              valid_bids=opening.valid_bids if opening else None, failed_lots=failed)


async def live_bids_by_lot(session: AsyncSession, tender: Tender) -> list[tuple[Lot, int]]:
    """Each lot of the tender not failed yet, with its number of live (submitted) bids; no bid is read."""
    counts = (select(Bid.lot_id, func.count().label("n")).where(Bid.tender_id == tender.id,
                                                                 Bid.status == "submitted")
              .group_by(Bid.lot_id).subquery())
    rows = (await session.execute(
        select(Lot, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.lot_id == Lot.id)
        .where(Lot.tender_id == tender.id, Lot.failed_at.is_(None)).order_by(Lot.lot_no))).all()
    return [(lot, int(n)) for lot, n in rows]


async def _fail_lot(session: AsyncSession, tender: Tender, lot: Lot, *, reason: str, bids: int, now,
                    actor: str) -> None:
    """Store a lot's failure (流标) on the lot, with a ledger entry naming the statute and the count."""
    lot.failed_at, lot.failure_reason, lot.failure_bid_count = now, reason, bids
    await ledger.append(session, actor=actor, action="lot.failed", entity=f"lot:{lot.public_id}",
                        payload={"tender": tender.code, "reason": reason, "bids": bids,
                                 "statute": statutory.FEWER_THAN_THREE_STATUTE})


async def start_opening(session: AsyncSession, tender_code: str, who: Principal, *,
                        keyring: keyholding.PlatformKeyring, records: RecordsContext) -> schemas.OpeningOut:
    """closed -> opening at `opening_at` (the bid deadline) by the DB clock; unlocks the platform's share if any.

    Lots with fewer than 3 live bids fail here, unopened (实施条例 第44条). If every lot fails, the tender fails
    at once (closed -> failed) with a failed-tender record that gives the bid counts only.
    """
    tender = await get_tender(session, tender_code, lock="update")
    require_manager(tender, who)
    now = await db_now(session)
    if tender.status in (TenderStatus.PUBLISHED.value, TenderStatus.CLOSED.value):
        if not passed(tender.bid_deadline_at, now):
            raise Conflict("the opening starts after the bid deadline", code="before_deadline",
                           details={"bid_deadline": tender.bid_deadline_at.isoformat() if tender.bid_deadline_at
                                    else None, "now": now.isoformat()})
        statutory.check_opening_start(tender.opening_at, now)  # 招标投标法 第34条: never before opening_at
    else:
        transition(tender.status, TenderStatus.OPENING)  # refuses naming the current state
    lots = await live_bids_by_lot(session, tender)
    too_few = [(lot, n) for lot, n in lots if not statutory.may_open(n, tender.method)]
    all_fail = len(too_few) == len(lots)
    # the failed-tender record's checkpoint is signed in a side transaction that takes the ledger lock:
    # before this transaction appends anything
    checkpoint = await fresh_checkpoint(records) if all_fail else None
    # the platform's share is decrypted before this transaction's first ledger entry takes the ledger lock
    platform_share = None if all_fail else await _platform_share(session, tender, keyring)
    if tender.status == TenderStatus.PUBLISHED.value:  # the close job may not have run yet
        await move_tender(session, tender, TenderStatus.CLOSED, actor=who.public_id, payload={"by": "opening"})
    for lot, n in too_few:
        await _fail_lot(session, tender, lot, reason=statutory.FAILURE_FEWER_THAN_THREE_BIDS, bids=n, now=now,
                        actor=who.public_id)
    if all_fail:
        await _fail_unopened(session, tender, too_few, who=who, records=records, checkpoint=checkpoint, now=now)
        return await opening_status(session, tender_code)
    await move_tender(session, tender, TenderStatus.OPENING, actor=who.public_id,
                      payload={"failed_lots": [lot.public_id for lot, _ in too_few]} if too_few else None)
    session.add(TenderOpening(tender_id=tender.id, started_by_id=who.user_id, started_at=now))
    if platform_share is not None:
        row_id, sealed_share = platform_share
        session.add(OpeningShare(tender_id=tender.id, tender_key_holder_id=row_id, sealed_share=sealed_share))
        await ledger.append(session, actor="system", action="tender.share_unlocked",
                            entity=f"tender:{tender.code}", payload={"holder": "platform"})
    await session.flush()
    return await opening_status(session, tender_code)


async def _platform_share(session: AsyncSession, tender: Tender,
                          keyring: keyholding.PlatformKeyring) -> tuple[int, bytes] | None:
    """The platform's share of the tender key, decrypted and sealed under the master secret, if it holds one."""
    platform_row = (await session.execute(select(TenderKeyHolder).where(
        TenderKeyHolder.tender_id == tender.id, TenderKeyHolder.user_id.is_(None)))).scalar_one_or_none()
    if platform_row is None or platform_row.encrypted_share is None:
        return None
    key = await session.get(HolderKey, platform_row.holder_key_id)
    identity = keyring.open(key.wrapped_identity, context=keyholding.PLATFORM_IDENTITY_CONTEXT).decode()
    share = pyrage.decrypt(platform_row.encrypted_share, [pyrage.x25519.Identity.from_str(identity)])
    del identity
    return platform_row.id, keyring.seal(share, context=_share_context(platform_row.id))


async def _fail_unopened(session: AsyncSession, tender: Tender, lots: list[tuple[Lot, int]], *, who: Principal,
                         records: RecordsContext, checkpoint: dict | None, now) -> None:
    """Every lot has too few bids: the tender fails with no share unlocked and no bid decrypted (第44条)."""
    user = await session.get(User, who.user_id)
    record = await issue_record(
        session, records, actor=who.public_id, entity=f"tender:{tender.code}",
        content=_unopened_record(tender, lots, now, [(user.display_name, *OPENER_ROLE)]),
        signers=[SignerSpec.person(signature_field_name(0), user.public_id, user.display_name,
                                   reason="流标 / Failed tender")], audience="public", checkpoint=checkpoint)
    bids = sum(n for _, n in lots)
    session.add(TenderOpening(tender_id=tender.id, started_by_id=who.user_id, started_at=now, completed_at=now,
                              outcome="failed", valid_bids=0, record_no=record.record_no))
    await session.flush()
    await move_tender(session, tender, TenderStatus.FAILED, actor=who.public_id,
                      payload={"record_no": record.record_no, "bids": bids, "opened": False,
                               "reason": statutory.FAILURE_FEWER_THAN_THREE_BIDS,
                               "statute": statutory.FEWER_THAN_THREE_STATUTE,
                               "failed_lots": [lot.public_id for lot, _ in lots]})
    log.info("tender %s failed unopened: %d bids in %d lots, record %s", tender.code, bids, len(lots),
             record.record_no)


def _unopened_record(tender: Tender, lots: list[tuple[Lot, int]], now,
                     signers: list[tuple[str, str, str]]) -> RecordContent:
    """The failed-tender record of a tender none of whose bids was opened: counts only, no bidder, no price."""
    total = sum(n for _, n in lots)
    return RecordContent(
        kind="tender_failed", title_zh="流标记录", title_en="Failed tender record",
        blocks=[
            KeyValueBlock([("项目编号", "Tender code", tender.code), ("项目名称", "Title", tender.title),
                           ("投标截止时间", "Bid deadline", tender.bid_deadline_at),
                           ("开标时间", "Opening time", tender.opening_at),
                           ("记录时间", "Recorded at", now),
                           ("投标文件数", "Bids received", total)]),
            SectionHeading("流标标段", "Failed lots"),
            _failed_lots_table(lots),
            TextBlock(_FEWER_THAN_THREE_TEXT),
            SignatureTable(signers),
        ],
        attachment={"tender": tender.code, "outcome": "failed", "opened": False, "recorded_at": now.isoformat(),
                    "bid_deadline": tender.bid_deadline_at.isoformat() if tender.bid_deadline_at else None,
                    "statute": statutory.FEWER_THAN_THREE_STATUTE,
                    "lots": [{"lot": lot.public_id, "bids": n, "reason": statutory.FAILURE_FEWER_THAN_THREE_BIDS}
                             for lot, n in lots]})


_FEWER_THAN_THREE_TEXT = (
    "依据《招标投标法实施条例》第四十四条，投标人少于3个的，不得开标。上述标段的投标文件未被解密，继续密封保存，"
    "任何人不能通过本平台读取；招标人应当依法重新招标。\n"
    "Under Article 44 of the Regulations on the Implementation of the Bidding Law, bids are not opened when fewer "
    "than three were submitted. The bids of the lots above were not decrypted and stay sealed; nobody can read "
    "them through this platform. The tenderer re-tenders.")


def _failed_lots_table(lots: list[tuple[Lot, int]]) -> TableBlock:
    return TableBlock([("标段", "Lot"), ("标段名称", "Lot title"), ("投标文件数", "Bids received")],
                      [[lot.public_id, lot.title, n] for lot, n in lots], col_weights=[1.0, 2.0, 0.9], fit_cols=(0,))


@dataclass(frozen=True)
class UnlockedShare:
    """A holder's share as their passphrase unlocked it (in memory only), and which holder row and key it came
    from, so the transaction that records it can check that nothing changed meanwhile."""

    holder_row_id: int
    holder_key_id: int
    share: bytes


@dataclass(frozen=True)
class _ShareLookup:
    holder_row_id: int
    holder_key_id: int
    wrapped_identity: bytes
    encrypted_share: bytes


async def _holder_row(session: AsyncSession, tender: Tender, who: Principal, *,
                      lock: bool = False) -> TenderKeyHolder:
    """The caller's holder row of a tender being opened whose share is not in yet; refuses 409 not_opening,
    403 not_key_holder, 409 share_already_unlocked."""
    if tender.status != TenderStatus.OPENING.value:
        raise Conflict("the tender is not being opened", code="not_opening", details={"current": tender.status})
    query = select(TenderKeyHolder).where(TenderKeyHolder.tender_id == tender.id,
                                          TenderKeyHolder.user_id == who.user_id)
    row = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if row is None or row.encrypted_share is None:
        raise Forbidden("you are not a key holder of this tender", code="not_key_holder")
    if (await session.execute(select(OpeningShare.id).where(
            OpeningShare.tender_key_holder_id == row.id))).first() is not None:
        raise Conflict("you have already unlocked your share", code="share_already_unlocked")
    return row


async def _look_up_share(session: AsyncSession, tender_code: str, who: Principal) -> _ShareLookup:
    tender = await visible_tender(session, tender_code, who)  # strangers learn nothing of a draft
    row = await _holder_row(session, tender, who)
    key = await session.get(HolderKey, row.holder_key_id)
    return _ShareLookup(row.id, key.id, key.wrapped_identity, row.encrypted_share)


async def _unwrap_share(found: _ShareLookup, passphrase: str, pool) -> UnlockedShare:
    """The CPU work: the holder key unwrapped in the pool (age scrypt, ~1.6 s), then the share decrypted."""
    try:
        identity = await keyholding.run_in_pool(pool, keyholding.unwrap_holder_identity, found.wrapped_identity,
                                                passphrase)
    except keyholding.ScryptBusy as err:
        raise ServiceBusy("the server is too busy to unlock the key now; the share was not used, try again",
                          code="key_unlock_busy", retry_after=10) from err
    if identity is None:
        raise Unprocessable("the passphrase does not unlock your holder key", code="wrong_passphrase")
    try:
        share = pyrage.decrypt(found.encrypted_share, [pyrage.x25519.Identity.from_str(identity)])
    except pyrage.DecryptError as err:
        raise Unprocessable("your key share is damaged", code="malformed_share") from err
    del identity
    return UnlockedShare(found.holder_row_id, found.holder_key_id, share)


async def unlock_share(read_sessions: async_sessionmaker, tender_code: str, who: Principal, passphrase: str, *,
                       pool) -> UnlockedShare:
    """The slow half of a holder's share submission, holding no database connection while it waits for the CPU.

    The holder row and wrapped key are read in a short session of their own (`read_sessions`), closed before the
    holder key is unwrapped in the pool: the tender's row lock and every connection stay free meanwhile, so
    other holders, the agent and readers of the tender go on. Refuses as `record_share` would (not_opening,
    not_key_holder, share_already_unlocked) before any CPU work, and 422 wrong_passphrase after it. Call
    `record_share` with the result.
    """
    async with read_sessions() as session:
        found = await _look_up_share(session, tender_code, who)
    return await _unwrap_share(found, passphrase, pool)


async def record_share(session: AsyncSession, tender_code: str, who: Principal, unlocked: UnlockedShare, *,
                       keyring: keyholding.PlatformKeyring, records: RecordsContext, storage_dir: Path,
                       limits: BundleLimits | None = None) -> schemas.OpeningOut:
    """Record a holder's unlocked share; the k-th person's share completes the opening.

    The tender is locked and the checks made again (another request may have recorded the same share, or the
    opening ended, while the share was unwrapped). The opening completes when k distinct people's shares are
    in and, with the platform holding a share, the platform's too (`Progress.complete`): the Shamir threshold is
    then k + 1, so k - 1 people's shares with the platform's rebuild nothing.

    With the completing share every bid is decrypted and checked first (`read_bids`), before this transaction
    takes the ledger lock with its first entry: the ledger lock serialises every write on the platform and is
    never held while bids are decrypted or parsed. Then the share, the outcomes and the record are written.
    """
    tender = await get_tender(session, tender_code, lock="update")
    row = await _holder_row(session, tender, who, lock=True)
    if (row.id, row.holder_key_id) != (unlocked.holder_row_id, unlocked.holder_key_id):
        raise Conflict("your holder row changed while your share was unlocked; send your passphrase again",
                       code="share_changed")
    earlier = await _unlocked(session, tender)
    progress = progress_of(tender, [*earlier, (None, row)], await _platform_holds_share(session, tender))
    opened: list[OpenedBid] | None = None
    if progress.complete:
        shares = [keyring.open(s.sealed_share, context=_share_context(r.id)) for s, r in earlier] + [unlocked.share]
        opened = await read_bids(session, tender, shares, storage_dir=storage_dir, limits=limits, keyring=keyring)
        del shares
    # The record's ledger checkpoint is signed in a side transaction, which waits for the ledger lock: take it
    # before this transaction appends anything, or the two would wait for each other.
    checkpoint = await fresh_checkpoint(records) if opened is not None else None
    session.add(OpeningShare(tender_id=tender.id, tender_key_holder_id=row.id,
                             sealed_share=keyring.seal(unlocked.share, context=_share_context(row.id))))
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="tender.share_unlocked",
                        entity=f"tender:{tender.code}",
                        payload={"holder": who.public_id, "people_unlocked": progress.people,
                                 "people_needed": progress.people_needed})
    if opened is not None:
        await complete_opening(session, tender, opened, who=who, records=records, checkpoint=checkpoint)
    return await opening_status(session, tender_code)


async def submit_share(session: AsyncSession, tender_code: str, who: Principal, passphrase: str, *,
                       pool, keyring: keyholding.PlatformKeyring, records: RecordsContext,
                       storage_dir: Path, limits: BundleLimits | None = None) -> schemas.OpeningOut:
    """`unlock_share` then `record_share` in one session, for scripts (the demo) that already hold `session`.
    The HTTP route unlocks with no connection held (`unlock_share`) and records in the request's transaction."""
    unlocked = await _unwrap_share(await _look_up_share(session, tender_code, who), passphrase, pool)
    return await record_share(session, tender_code, who, unlocked, keyring=keyring, records=records,
                              storage_dir=storage_dir, limits=limits)


OPENER_ROLE = ("开标人（招标代理）", "Opened by (tendering agent)")
HOLDER_ROLE = ("解密人（密钥持有人）", "Key holder who unlocked")
BOTH_ROLE = ("开标人、解密人", "Opened by, and unlocked as key holder")


async def opening_signers(session: AsyncSession, tender: Tender) -> list[tuple[User, tuple[str, str]]]:
    """Who signs the opening record: the agent who ran the opening, then each person whose share unlocked it.

    The platform's share is the platform's: the platform seal stands for it. Someone in both roles signs once.
    """
    opening = await session.get(TenderOpening, tender.id)
    holder_ids = [row.user_id for _, row in await _unlocked(session, tender) if row.user_id is not None]
    out: list[tuple[User, tuple[str, str]]] = []
    if opening is not None:
        out.append((await session.get(User, opening.started_by_id),
                    BOTH_ROLE if opening.started_by_id in holder_ids else OPENER_ROLE))
    for user_id in holder_ids:
        if opening is None or user_id != opening.started_by_id:
            out.append((await session.get(User, user_id), HOLDER_ROLE))
    return out


@dataclass(frozen=True)
class OpenedBid:
    """One live bid as `read_bids` left it: the row (locked), its lot and bidder, and what opening it gave."""

    bid: Bid
    lot: Lot
    organisation: Organisation
    outcome: BidOutcome


async def read_bids(session: AsyncSession, tender: Tender, shares: list[bytes], *, storage_dir: Path,
                    limits: BundleLimits | None = None,
                    keyring: keyholding.PlatformKeyring | None = None) -> list[OpenedBid]:
    """Rebuild the tender identity from `shares` and decrypt and check every live bid of the lots not failed.

    Changes nothing and writes no ledger entry: call it before the transaction's first ledger append, so the
    ledger lock is not held while bids are decrypted. Each bid is streamed through the bundle scanner in a
    thread, one at a time, with `limits` (the same as at upload), so memory stays bounded whatever a bundle
    declares. Lots that failed when the opening started (fewer than 3 bids, 实施条例 第44条) are not touched:
    their bids are never decrypted. With `keyring`, every good bid's documents are kept sealed for the evaluation
    committee (DocumentKeeper, opened_document_key).
    """
    identity = sealing.combine_shares(shares, tender.age_recipient)
    storage = Storage(storage_dir)
    rows = (await session.execute(
        select(Bid, Lot, Organisation).join(Lot, Lot.id == Bid.lot_id)
        .join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Bid.tender_id == tender.id, Bid.status == "submitted", Lot.failed_at.is_(None))
        .order_by(Lot.lot_no, Bid.submitted_at, Bid.id).with_for_update(of=Bid))).all()
    opened = []
    for bid, lot, org in rows:
        keep = DocumentKeeper(storage, keyring, bid.public_id) if keyring is not None else None
        outcome = await asyncio.to_thread(open_stored_bid, Path(storage_dir) / bid.storage_key, bid.sha256,
                                          bid.sealed_by, identity, limits, keep)
        opened.append(OpenedBid(bid, lot, org, outcome))
    del identity
    return opened


async def complete_opening(session: AsyncSession, tender: Tender, opened: list[OpenedBid], *, who: Principal,
                           records: RecordsContext, checkpoint: dict | None = None) -> None:
    """Write what `read_bids` found: each bid opened or withdrawn, the failed lots, the record, the new state.

    A bid that cannot be opened is withdrawn alone, with its cause in the bid row, in a ledger entry and in the
    opening record, and the other bids open (电子招标投标办法 第31条: 部分投标文件未解密的，其他投标文件的开标
    可以继续进行). A lot left with fewer than 3 valid bids fails (流标). The tender fails when every lot has
    failed, and is opened otherwise.

    Pass `checkpoint` (records_service.fresh_checkpoint) when this transaction has already written ledger
    entries; otherwise it is taken here.
    """
    if checkpoint is None:
        checkpoint = await fresh_checkpoint(records)
    now = await db_now(session)
    valid_by_lot: dict[int, int] = defaultdict(int)
    for item in opened:
        bid, outcome = item.bid, item.outcome
        bid.opened_at = now
        if outcome.bundle is None:
            bid.status, bid.withdrawal_kind, bid.withdrawal_cause = "invalid", outcome.kind, outcome.cause
            bid.withdrawn_at = now
            await ledger.append(session, actor=who.public_id, action="bid.invalidated",
                                entity=f"tender:{tender.code}",
                                payload={"bid": bid.public_id, "lot": item.lot.public_id, "kind": outcome.kind,
                                         "cause": outcome.cause, "ciphertext_sha256": bid.sha256,
                                         "statute": WITHDRAWAL_STATUTE})
        else:
            form = outcome.bundle.form
            bid.status, bid.price, bid.duration_days = "opened", form.price, form.duration_days
            bid.declared = dict(form.declared)
            bid.documents = [d.to_json_dict() for d in outcome.bundle.documents]
            valid_by_lot[item.lot.id] += 1
    await session.flush()
    lots = list((await session.execute(select(Lot).where(Lot.tender_id == tender.id).order_by(Lot.lot_no))).scalars())
    for lot in lots:
        if lot.failed_at is None and tender_fails(valid_by_lot[lot.id], tender.method):
            await _fail_lot(session, tender, lot, reason=statutory.FAILURE_FEWER_THAN_THREE_VALID,
                            bids=valid_by_lot[lot.id], now=now, actor=who.public_id)
    failed_lots = [lot for lot in lots if lot.failed_at is not None]
    tender_failed = len(failed_lots) == len(lots)
    valid = sum(valid_by_lot.values())
    rows = [(item.bid, item.lot, item.organisation) for item in opened]
    signers = await opening_signers(session, tender)
    record = await issue_record(
        session, records, actor=who.public_id, entity=f"tender:{tender.code}",
        content=_opening_record(tender, rows, failed_lots, tender_failed, now,
                                [(user.display_name, *role) for user, role in signers]),
        signers=[SignerSpec.person(signature_field_name(i), user.public_id, user.display_name,
                                   reason="开标 / Bid opening") for i, (user, _) in enumerate(signers)],
        audience="public", checkpoint=checkpoint)
    opening = await session.get(TenderOpening, tender.id)
    opening.completed_at, opening.valid_bids, opening.record_no = now, valid, record.record_no
    opening.outcome = "failed" if tender_failed else "opened"
    await session.execute(delete(OpeningShare).where(OpeningShare.tender_id == tender.id))
    await move_tender(session, tender, TenderStatus.FAILED if tender_failed else TenderStatus.OPENED,
                      actor=who.public_id,
                      payload={"record_no": record.record_no, "valid_bids": valid, "bids": len(rows),
                               "failed_lots": [lot.public_id for lot in failed_lots]})
    log.info("tender %s opened: %d of %d bids valid, record %s", tender.code, valid, len(rows), record.record_no)


def _threshold_text(tender: Tender) -> str:
    """k of n people, and the platform's share beside them when it holds one."""
    text = f"{tender.key_threshold} / {tender.key_holder_count}"
    return text + "（另加平台份额 / plus the platform's share）" if tender.platform_holds_share else text


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _opening_record(tender: Tender, rows, failed_lots: list[Lot], tender_failed: bool, now,
                    signers: list[tuple[str, str, str]]) -> RecordContent:
    bid_rows, withdrawn_rows, attachment_bids = [], [], []
    for bid, lot, org in rows:
        entry: dict[str, Any] = {"bid": bid.public_id, "lot": lot.public_id, "bidder": org.public_id,
                                 "bidder_name": org.name, "ciphertext_sha256": bid.sha256, "status": bid.status}
        if bid.status == "opened":
            declared = "；".join(f"{k}：{v}" for k, v in (bid.declared or {}).items())
            bid_rows.append([len(bid_rows) + 1, org.name, lot.public_id, _money(bid.price),
                             bid.duration_days, declared])
            entry.update(price=format(bid.price, "f"), duration_days=bid.duration_days,
                         declared=bid.declared, documents=bid.documents)
        else:
            withdrawn_rows.append([org.name, lot.public_id, bid.withdrawal_kind, bid.withdrawal_cause])
            entry.update(withdrawal_kind=bid.withdrawal_kind, withdrawal_cause=bid.withdrawal_cause)
        attachment_bids.append(entry)
    blocks: list = [
        KeyValueBlock([("项目编号", "Tender code", tender.code), ("项目名称", "Title", tender.title),
                       ("投标截止时间", "Bid deadline", tender.bid_deadline_at),
                       ("开标时间", "Opened at", now),
                       ("密封公钥", "Sealing recipient", tender.age_recipient),
                       ("解密门限", "Key threshold", _threshold_text(tender))]),
        SectionHeading("开标一览表", "Bids read out"),
        TableBlock([("序号", "No."), ("投标人", "Bidder"), ("标段", "Lot"), ("投标报价（元）", "Price (CNY)"),
                    ("工期（日）", "Duration (days)"), ("其他声明", "Declared")], bid_rows or [["", "", "", "", "", ""]],
                   col_weights=[0.5, 2.8, 1.8, 1.3, 0.8, 1.8], fit_cols=(2,)),
    ]
    if withdrawn_rows:
        blocks += [SectionHeading("未能解密或无效的投标文件", "Bids withdrawn at the opening"),
                   TableBlock([("投标人", "Bidder"), ("标段", "Lot"), ("处理", "Treated as"), ("原因", "Cause")],
                              withdrawn_rows, col_weights=[2.2, 1.8, 0.8, 2.2], fit_cols=(1,))]
    unopened = [(lot, lot.failure_bid_count) for lot in failed_lots
                if lot.failure_reason == statutory.FAILURE_FEWER_THAN_THREE_BIDS]
    too_few_valid = [lot for lot in failed_lots if lot.failure_reason == statutory.FAILURE_FEWER_THAN_THREE_VALID]
    if unopened:
        # counts only: these bids were never decrypted, so no bidder and no price can be shown
        blocks += [SectionHeading("投标人少于3个、未开标的标段（流标）", "Lots not opened: fewer than three bids"),
                   _failed_lots_table(unopened), TextBlock(_FEWER_THAN_THREE_TEXT)]
    if too_few_valid:
        ids = [lot.public_id for lot in too_few_valid]
        blocks.append(TextBlock("以下标段有效投标不足三家，流标：" + "、".join(ids) +
                                "\nFewer than three valid bids: " + ", ".join(ids) + " fail."))
    if tender_failed:
        blocks.append(TextBlock("本项目流标。 The tender fails."))
    blocks.append(SignatureTable(signers))
    return RecordContent(
        kind="tender_failed" if tender_failed else "bid_opening",
        title_zh="流标记录" if tender_failed else "开标记录",
        title_en="Failed tender record" if tender_failed else "Bid opening record",
        blocks=blocks,
        attachment={"tender": tender.code, "opened_at": now.isoformat(), "recipient": tender.age_recipient,
                    "outcome": "failed" if tender_failed else "opened",
                    "failed_lots": [lot.public_id for lot in failed_lots],
                    "lots_not_opened": [{"lot": lot.public_id, "bids": n,
                                         "statute": statutory.FEWER_THAN_THREE_STATUTE} for lot, n in unopened],
                    "signers": [{"name": name, "role": role_en} for name, _, role_en in signers],
                    "bids": attachment_bids})


async def opened_bids(session: AsyncSession, tender_code: str) -> list[schemas.OpenedBidOut]:
    """The bids as read out at the opening; nothing before the opening is complete."""
    tender = await get_tender(session, tender_code)
    opening = await session.get(TenderOpening, tender.id)
    if opening is None or opening.completed_at is None:
        details: dict[str, Any] = {"current": tender.status}
        if tender.status == TenderStatus.OPENING.value:
            progress = progress_of(tender, await _unlocked(session, tender), await _platform_holds_share(session, tender))
            details.update(people_unlocked=progress.people, people_needed=progress.people_needed)
            raise Conflict(f"the bids are read out when {progress.people_needed} key holders have unlocked their "
                           f"shares; {progress.people} have", code="not_opened", details=details)
        raise Conflict("the bids are read out at the opening", code="not_opened", details=details)
    rows = (await session.execute(
        select(Bid, Lot, Organisation).join(Lot, Lot.id == Bid.lot_id)
        .join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Bid.tender_id == tender.id, Bid.status.in_(("opened", "invalid")))
        .order_by(Lot.lot_no, Bid.submitted_at, Bid.id))).all()
    return [schemas.OpenedBidOut(bid=b.public_id, lot=lot.public_id, bidder=org.public_id, bidder_name=org.name,
                                     status=b.status, price=b.price, duration_days=b.duration_days,
                                     declared=b.declared, withdrawal_kind=b.withdrawal_kind,
                                     withdrawal_cause=b.withdrawal_cause) for b, lot, org in rows]

