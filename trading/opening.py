"""The opening (开标): key holders unlock their shares; with k of them the bids are decrypted and read out.

Fewer than three bids are never opened (招标投标法实施条例 第44条): when the agent starts the opening, each lot
with fewer than 3 live bids (1 for single source) fails (流标) there and then. Its bids stay sealed: no share is
unlocked for it and none of its ciphertexts is ever decrypted; its record gives the number of bids and nothing
else. When every lot fails, the tender fails at once (closed -> failed) with a failed-tender record and no key
holder is asked for anything. Otherwise the opening goes on for the lots that have enough bids.

Flow: an agent starts the opening at `opening_at`, which is the bid deadline (招标投标法 第34条), by the DB
clock: closed -> opening, and the platform's share, when the tender has one, is unlocked at once. Each person holder then sends their passphrase: their holder key
is unwrapped in the process pool, their share decrypted and kept (sealed under the master-secret key) in
opening_share. When k shares are in, the tender identity is rebuilt in memory only, every live bid decrypted
and read, the opening record issued, the kept shares deleted, and the tender moves to opened or failed (流标).

A bid that cannot be opened is withdrawn with its cause, per 电子招标投标办法 第31条:
- 撤销 (revoked) when the cause is the bidder's: a client-sealed file that does not decrypt with the tender
  key, or a bundle or form that is damaged or invalid;
- 撤回 (withdrawn) when the cause is not the bidder's: the stored ciphertext is missing or no longer matches
  the SHA-256 in the bidder's receipt, or a file the platform itself sealed does not decrypt.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pyrage
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import passed
from core.db import db_now
from core.errors import Conflict, Forbidden, Unprocessable
from core.storage import Storage
from core.identity_models import Organisation, User
from evidence import ledger_service as ledger
from evidence import sealing
from evidence.records import KeyValueBlock, SectionHeading, SignatureTable, TableBlock, TextBlock, \
    signature_field_name
from evidence.records_service import RecordContent, RecordsContext, fresh_checkpoint, issue_record
from evidence.signing import SignerSpec
from trading import keyholding, schemas, statutory
from trading.access import require_manager
from trading.bundle import BundleDocument, OpenedBundle, read_bundle
from trading.lifecycle import TenderStatus, tender_fails, transition
from trading.loaders import get_tender
from trading.models import Bid, HolderKey, Lot, OpeningShare, Tender, TenderKeyHolder, TenderOpening
from trading.status import move_tender
from core.principal import Principal

log = logging.getLogger(__name__)

REVOKED = "撤销"     # the bidder's own file could not be opened
WITHDRAWN = "撤回"   # not the bidder's doing


def _share_context(holder_row_id: int) -> str:
    return f"opening_share:{holder_row_id}"


@dataclass(frozen=True)
class BidOutcome:
    """What opening one bid gave: a form and documents, or a withdrawal kind and cause."""

    bundle: OpenedBundle | None
    kind: str | None = None
    cause: str | None = None


# The documents of an opened bid are kept for the evaluation committee (评标委员会): the tender identity exists only
# in memory during the opening, so this is the one readable copy afterwards. Each document is sealed under the
# platform's master secret, bound to its bid and its SHA-256 (a file moved to another name does not open), and
# read only through evaluation's access policy (members of the lot's session).
OPENED_DOCUMENTS_KIND = "opened"


def opened_document_key(bid_public_id: str, sha256: str) -> str:
    """Where an opened bid's document is kept (sealed)."""
    return f"{OPENED_DOCUMENTS_KIND}/{bid_public_id}/{sha256}.sealed"


def _opened_document_context(bid_public_id: str, sha256: str) -> str:
    return f"opened_document:{bid_public_id}:{sha256}"


def document_keeper(storage: Storage, keyring: keyholding.PlatformKeyring,
                    bid_public_id: str) -> Callable[[BundleDocument, bytes], None]:
    """What open_stored_bid calls with each document of a good bundle (blocking, in the opening's thread)."""
    def keep(document: BundleDocument, data: bytes) -> None:
        storage.put_bytes_sync(keyring.seal(data, context=_opened_document_context(bid_public_id, document.sha256)),
                               key=opened_document_key(bid_public_id, document.sha256))
    return keep


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
                    keep: Callable[[BundleDocument, bytes], None] | None = None) -> BidOutcome:
    """Decrypt and read one stored bid (blocking: run in a thread); never raises for a bad bid. `keep` is given
    each document of a good bid (document_keeper)."""
    try:
        sealed = path.read_bytes()
    except OSError:
        return BidOutcome(None, WITHDRAWN, "stored_ciphertext_missing")
    if hashlib.sha256(sealed).hexdigest() != expected_sha256:
        return BidOutcome(None, WITHDRAWN, "stored_ciphertext_damaged")
    try:
        plaintext = sealing.open_sealed(sealed, identity)
    except Unprocessable:
        # The bytes are what the bidder's receipt names: a client's seal that fails is the bidder's doing.
        return BidOutcome(None, REVOKED if sealed_by == "client" else WITHDRAWN, "undecryptable")
    del sealed
    try:
        return BidOutcome(read_bundle(plaintext, keep))
    except Unprocessable as err:
        return BidOutcome(None, REVOKED, err.code)


async def _unlocked(session: AsyncSession, tender: Tender) -> list[tuple[OpeningShare, TenderKeyHolder]]:
    return list((await session.execute(
        select(OpeningShare, TenderKeyHolder).join(TenderKeyHolder, TenderKeyHolder.id == OpeningShare.tender_key_holder_id)
        .where(OpeningShare.tender_id == tender.id).order_by(TenderKeyHolder.position))).all())


async def opening_status(session: AsyncSession, tender_code: str) -> schemas.OpeningOut:
    """Progress of a tender's opening: how many shares are in, the failed lots, and the record once done."""
    tender = await get_tender(session, tender_code)
    opening = await session.get(TenderOpening, tender.id)
    unlocked = await _unlocked(session, tender)
    names = []
    for _, row in unlocked:
        names.append("platform" if row.user_id is None else (await session.get(User, row.user_id)).public_id)
    failed = list((await session.execute(select(Lot.public_id).where(
        Lot.tender_id == tender.id, Lot.failed_at.is_not(None)).order_by(Lot.lot_no))).scalars())
    return schemas.OpeningOut(tender=tender.code, status=tender.status, threshold=tender.key_threshold,
                                  unlocked=len(unlocked), holders_unlocked=names,
                                  record_no=opening.record_no if opening else None,
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
    platform_row = (await session.execute(select(TenderKeyHolder).where(
        TenderKeyHolder.tender_id == tender.id, TenderKeyHolder.user_id.is_(None)))).scalar_one_or_none()
    if platform_row is not None and platform_row.encrypted_share is not None:
        key = await session.get(HolderKey, platform_row.holder_key_id)
        identity = keyring.open(key.wrapped_identity, context=keyholding.PLATFORM_IDENTITY_CONTEXT).decode()
        share = pyrage.decrypt(platform_row.encrypted_share, [pyrage.x25519.Identity.from_str(identity)])
        session.add(OpeningShare(tender_id=tender.id, tender_key_holder_id=platform_row.id,
                                 sealed_share=keyring.seal(share, context=_share_context(platform_row.id))))
        await ledger.append(session, actor="system", action="tender.share_unlocked",
                            entity=f"tender:{tender.code}", payload={"holder": "platform"})
    await session.flush()
    return await opening_status(session, tender_code)


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


async def submit_share(session: AsyncSession, tender_code: str, who: Principal, passphrase: str, *,
                       pool, keyring: keyholding.PlatformKeyring, records: RecordsContext,
                       storage_dir: Path) -> schemas.OpeningOut:
    """A holder unlocks their share with their passphrase; the k-th share completes the opening."""
    tender = await get_tender(session, tender_code, lock="update")
    if tender.status != TenderStatus.OPENING.value:
        raise Conflict("the tender is not being opened", code="not_opening", details={"current": tender.status})
    row = (await session.execute(select(TenderKeyHolder).where(
        TenderKeyHolder.tender_id == tender.id, TenderKeyHolder.user_id == who.user_id))).scalar_one_or_none()
    if row is None or row.encrypted_share is None:
        raise Forbidden("you are not a key holder of this tender", code="not_key_holder")
    if (await session.execute(select(OpeningShare.id).where(
            OpeningShare.tender_key_holder_id == row.id))).first() is not None:
        raise Conflict("you have already unlocked your share", code="share_already_unlocked")
    key = await session.get(HolderKey, row.holder_key_id)
    identity = await keyholding.run_in_pool(pool, keyholding.unwrap_holder_identity, key.wrapped_identity,
                                            passphrase)
    if identity is None:
        raise Unprocessable("the passphrase does not unlock your holder key", code="wrong_passphrase")
    try:
        share = pyrage.decrypt(row.encrypted_share, [pyrage.x25519.Identity.from_str(identity)])
    except pyrage.DecryptError as err:
        raise Unprocessable("your key share is damaged", code="malformed_share") from err
    del identity
    completes = len(await _unlocked(session, tender)) + 1 >= tender.key_threshold
    # The record's ledger checkpoint is signed in a side transaction, which waits for the ledger lock: take it
    # before this transaction appends anything, or the two would wait for each other.
    checkpoint = await fresh_checkpoint(records) if completes else None
    session.add(OpeningShare(tender_id=tender.id, tender_key_holder_id=row.id,
                             sealed_share=keyring.seal(share, context=_share_context(row.id))))
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="tender.share_unlocked",
                        entity=f"tender:{tender.code}", payload={"holder": who.public_id})
    unlocked = await _unlocked(session, tender)
    if len(unlocked) >= tender.key_threshold:
        shares = [keyring.open(s.sealed_share, context=_share_context(r.id)) for s, r in unlocked]
        await complete_opening(session, tender, shares, who=who, records=records, storage_dir=storage_dir,
                               checkpoint=checkpoint, keyring=keyring)
    return await opening_status(session, tender_code)


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


async def complete_opening(session: AsyncSession, tender: Tender, shares: list[bytes], *, who: Principal,
                           records: RecordsContext, storage_dir: Path, checkpoint: dict | None = None,
                           keyring: keyholding.PlatformKeyring | None = None) -> None:
    """Rebuild the tender identity from `shares`, open the live bids of the lots not failed, issue the record.

    Lots that failed when the opening started (fewer than 3 bids, 实施条例 第44条) are not touched: their bids
    are never decrypted. A lot left with fewer than 3 valid bids after decryption fails too. The tender fails
    when every lot has failed, and is opened otherwise.

    Pass `checkpoint` (records_service.fresh_checkpoint) when this transaction has already written ledger
    entries; otherwise it is taken here. With `keyring`, the documents of every opened bid are kept sealed for
    the evaluation committee (opened_document_key).
    """
    if checkpoint is None:
        checkpoint = await fresh_checkpoint(records)
    identity = sealing.combine_shares(shares, tender.age_recipient)
    now = await db_now(session)
    rows = (await session.execute(
        select(Bid, Lot, Organisation).join(Lot, Lot.id == Bid.lot_id)
        .join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Bid.tender_id == tender.id, Bid.status == "submitted", Lot.failed_at.is_(None))
        .order_by(Lot.lot_no, Bid.submitted_at, Bid.id).with_for_update(of=Bid))).all()
    valid_by_lot: dict[int, int] = defaultdict(int)
    storage = Storage(storage_dir)
    for bid, lot, _ in rows:
        keep = document_keeper(storage, keyring, bid.public_id) if keyring is not None else None
        outcome = await asyncio.to_thread(open_stored_bid, Path(storage_dir) / bid.storage_key, bid.sha256,
                                          bid.sealed_by, identity, keep)
        bid.opened_at = now
        if outcome.bundle is None:
            bid.status, bid.withdrawal_kind, bid.withdrawal_cause = "invalid", outcome.kind, outcome.cause
            bid.withdrawn_at = now
        else:
            form = outcome.bundle.form
            bid.status, bid.price, bid.duration_days = "opened", form.price, form.duration_days
            bid.declared = dict(form.declared)
            bid.documents = [d.to_json_dict() for d in outcome.bundle.documents]
            valid_by_lot[lot.id] += 1
    del identity
    await session.flush()
    lots = list((await session.execute(select(Lot).where(Lot.tender_id == tender.id).order_by(Lot.lot_no))).scalars())
    for lot in lots:
        if lot.failed_at is None and tender_fails(valid_by_lot[lot.id], tender.method):
            await _fail_lot(session, tender, lot, reason=statutory.FAILURE_FEWER_THAN_THREE_VALID,
                            bids=valid_by_lot[lot.id], now=now, actor=who.public_id)
    failed_lots = [lot for lot in lots if lot.failed_at is not None]
    tender_failed = len(failed_lots) == len(lots)
    valid = sum(valid_by_lot.values())
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
                       ("解密门限", "Key threshold", f"{tender.key_threshold} / {tender.key_holder_count}")]),
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
        raise Conflict("the bids are read out at the opening", code="not_opened", details={"current": tender.status})
    rows = (await session.execute(
        select(Bid, Lot, Organisation).join(Lot, Lot.id == Bid.lot_id)
        .join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Bid.tender_id == tender.id, Bid.status.in_(("opened", "invalid")))
        .order_by(Lot.lot_no, Bid.submitted_at, Bid.id))).all()
    return [schemas.OpenedBidOut(bid=b.public_id, lot=lot.public_id, bidder=org.public_id, bidder_name=org.name,
                                     status=b.status, price=b.price, duration_days=b.duration_days,
                                     declared=b.declared, withdrawal_kind=b.withdrawal_kind,
                                     withdrawal_cause=b.withdrawal_cause) for b, lot, org in rows]

