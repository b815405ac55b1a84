"""The opening (开标): key holders unlock their shares; with k of them the bids are decrypted and read out.

Flow: an agent starts the opening after the deadline (DB clock): closed -> opening, and the platform's share,
when the tender has one, is unlocked at once. Each person holder then sends their passphrase: their holder key
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
from typing import Any

import pyrage
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import db_now
from core.errors import Conflict, Forbidden, Unprocessable
from core.identity_models import Organisation, User
from evidence import ledger_service as ledger
from evidence import sealing
from evidence.records import KeyValueBlock, SectionHeading, SignatureTable, TableBlock, TextBlock, \
    signature_field_name
from evidence.records_service import RecordContent, RecordsContext, fresh_checkpoint, issue_record
from evidence.signing import SignerSpec
from trading import keyholding, schemas
from trading.access import require_manager
from trading.bundle import OpenedBundle, read_bundle
from trading.lifecycle import TenderStatus, tender_fails
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


def open_stored_bid(path: Path, expected_sha256: str, sealed_by: str, identity: str) -> BidOutcome:
    """Decrypt and read one stored bid (blocking: run in a thread); never raises for a bad bid."""
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
        return BidOutcome(read_bundle(plaintext))
    except Unprocessable as err:
        return BidOutcome(None, REVOKED, err.code)


async def _unlocked(session: AsyncSession, tender: Tender) -> list[tuple[OpeningShare, TenderKeyHolder]]:
    return list((await session.execute(
        select(OpeningShare, TenderKeyHolder).join(TenderKeyHolder, TenderKeyHolder.id == OpeningShare.tender_key_holder_id)
        .where(OpeningShare.tender_id == tender.id).order_by(TenderKeyHolder.position))).all())


async def opening_status(session: AsyncSession, tender_code: str) -> schemas.OpeningOut:
    """Progress of a tender's opening: how many shares are in, and the record once done."""
    tender = await get_tender(session, tender_code)
    opening = await session.get(TenderOpening, tender.id)
    unlocked = await _unlocked(session, tender)
    names = []
    for _, row in unlocked:
        names.append("platform" if row.user_id is None else (await session.get(User, row.user_id)).public_id)
    return schemas.OpeningOut(tender=tender.code, status=tender.status, threshold=tender.key_threshold,
                                  unlocked=len(unlocked), holders_unlocked=names,
                                  record_no=opening.record_no if opening else None,
                                  valid_bids=opening.valid_bids if opening else None)


async def start_opening(session: AsyncSession, tender_code: str, who: Principal, *,
                        keyring: keyholding.PlatformKeyring) -> schemas.OpeningOut:
    """closed -> opening, only after the bid deadline by the DB clock; unlocks the platform's share if any."""
    tender = await get_tender(session, tender_code, lock="update")
    require_manager(tender, who)
    now = await db_now(session)
    if tender.status in (TenderStatus.PUBLISHED.value, TenderStatus.CLOSED.value) and \
            (tender.bid_deadline_at is None or now < tender.bid_deadline_at):
        raise Conflict("the opening starts after the bid deadline", code="before_deadline",
                       details={"bid_deadline": tender.bid_deadline_at.isoformat() if tender.bid_deadline_at
                                else None, "now": now.isoformat()})
    if tender.status == TenderStatus.PUBLISHED.value:  # the close job may not have run yet
        await move_tender(session, tender, TenderStatus.CLOSED, actor=who.public_id, payload={"by": "opening"})
    await move_tender(session, tender, TenderStatus.OPENING, actor=who.public_id)
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
                               checkpoint=checkpoint)
    return await opening_status(session, tender_code)


async def complete_opening(session: AsyncSession, tender: Tender, shares: list[bytes], *, who: Principal,
                           records: RecordsContext, storage_dir: Path, checkpoint: dict | None = None) -> None:
    """Rebuild the tender identity from `shares`, open every live bid, issue the record, move the tender.

    Pass `checkpoint` (records_service.fresh_checkpoint) when this transaction has already written ledger
    entries; otherwise it is taken here.
    """
    if checkpoint is None:
        checkpoint = await fresh_checkpoint(records)
    identity = sealing.combine_shares(shares, tender.age_recipient)
    now = await db_now(session)
    rows = (await session.execute(
        select(Bid, Lot, Organisation).join(Lot, Lot.id == Bid.lot_id)
        .join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Bid.tender_id == tender.id, Bid.status == "submitted")
        .order_by(Lot.lot_no, Bid.submitted_at, Bid.id).with_for_update(of=Bid))).all()
    valid_by_lot: dict[int, int] = defaultdict(int)
    for bid, lot, _ in rows:
        outcome = await asyncio.to_thread(open_stored_bid, Path(storage_dir) / bid.storage_key, bid.sha256,
                                          bid.sealed_by, identity)
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
    failed_lots = [lot.public_id for lot in lots if tender_fails(valid_by_lot[lot.id], tender.method)]
    tender_failed = len(failed_lots) == len(lots)
    valid = sum(valid_by_lot.values())
    user = await session.get(User, who.user_id)
    record = await issue_record(
        session, records, actor=who.public_id, entity=f"tender:{tender.code}",
        content=_opening_record(tender, rows, failed_lots, tender_failed, now, user.display_name),
        signers=[SignerSpec.person(signature_field_name(0), user.public_id, user.display_name,
                                   reason="开标 / Bid opening")], audience="public", checkpoint=checkpoint)
    opening = await session.get(TenderOpening, tender.id)
    opening.completed_at, opening.valid_bids, opening.record_no = now, valid, record.record_no
    opening.outcome = "failed" if tender_failed else "opened"
    await session.execute(delete(OpeningShare).where(OpeningShare.tender_id == tender.id))
    await move_tender(session, tender, TenderStatus.FAILED if tender_failed else TenderStatus.OPENED,
                      actor=who.public_id,
                      payload={"record_no": record.record_no, "valid_bids": valid, "bids": len(rows),
                               "failed_lots": failed_lots})
    log.info("tender %s opened: %d of %d bids valid, record %s", tender.code, valid, len(rows), record.record_no)


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _opening_record(tender: Tender, rows, failed_lots: list[str], tender_failed: bool, now, opener: str
                    ) -> RecordContent:
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
                       ("投标截止时间", "Bid deadline", tender.bid_deadline_at.isoformat()
                        if tender.bid_deadline_at else ""),
                       ("开标时间", "Opened at", now.isoformat()),
                       ("密封公钥", "Sealing recipient", tender.age_recipient),
                       ("解密门限", "Key threshold", f"{tender.key_threshold} / {tender.key_holder_count}")]),
        SectionHeading("开标一览表", "Bids read out"),
        TableBlock([("序号", "No."), ("投标人", "Bidder"), ("标段", "Lot"), ("投标报价（元）", "Price (CNY)"),
                    ("工期（日）", "Duration (days)"), ("其他声明", "Declared")], bid_rows or [["", "", "", "", "", ""]],
                   col_weights=[0.5, 2.2, 1.8, 1.4, 0.9, 2.2]),
    ]
    if withdrawn_rows:
        blocks += [SectionHeading("未能解密或无效的投标文件", "Bids withdrawn at the opening"),
                   TableBlock([("投标人", "Bidder"), ("标段", "Lot"), ("处理", "Treated as"), ("原因", "Cause")],
                              withdrawn_rows, col_weights=[2.2, 1.8, 0.8, 2.2])]
    if failed_lots:
        blocks.append(TextBlock(("本项目流标：有效投标不足三家。" if tender_failed else
                                 "以下标段有效投标不足三家，流标：" + "、".join(failed_lots)) +
                                "\nFewer than three valid bids: " + ("the tender fails." if tender_failed
                                                                      else ", ".join(failed_lots) + " fail.")))
    blocks.append(SignatureTable([(opener, "开标人", "Opened by")]))
    return RecordContent(
        kind="tender_failed" if tender_failed else "bid_opening",
        title_zh="流标记录" if tender_failed else "开标记录",
        title_en="Failed tender record" if tender_failed else "Bid opening record",
        blocks=blocks,
        attachment={"tender": tender.code, "opened_at": now.isoformat(), "recipient": tender.age_recipient,
                    "outcome": "failed" if tender_failed else "opened", "failed_lots": failed_lots,
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

