"""The opened bids reach the committee (评标委员会): each bidder's opened documents, read by the session's members
who have checked in, and by nobody else, while the session evaluates (in progress, scoring closed, signing).

Every download is on the ledger — who read which document of which bid, and when — in a transaction of its own
committed before the first byte leaves: a read is evidence of the evaluation (who saw what), so it belongs in
the same hash-chained, checkpointed ledger as the ballots and the sheets, where it cannot be edited away, and a
download that was served is never missing from it. The list of documents (names, sizes, digests) is not
logged: the opening record already publishes it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, NotFound
from core.principal import Principal
from evaluation import access, members, tender_link
from evaluation.models import EvaluationMember, EvaluationSession
from evaluation.rules import SessionStatus as SS
from evidence import ledger_service as ledger

# the committee reads the bids while it evaluates: from the start of the evaluation until the report is signed
READING_STATES = frozenset({SS.IN_PROGRESS, SS.SCORING_CLOSED, SS.SIGNING})


async def _reader(session: AsyncSession, who: Principal,
                  session_public_id: str) -> tuple[EvaluationSession, EvaluationMember]:
    es, _, _ = await members.load_session(session, session_public_id)
    me = (await session.execute(select(EvaluationMember).where(
        EvaluationMember.session_id == es.id, EvaluationMember.user_id == who.user_id,
        EvaluationMember.status != "withdrawn"))).scalar_one_or_none()
    if not access.may_read_bids(me.status if me is not None else None):
        raise Forbidden("only the committee's members who have checked in read the opened bids (招标投标法 第38条)",
                        code="not_a_reader", details={"session_id": es.public_id})
    if es.status not in READING_STATES:
        raise Conflict(f"the session is {es.status}: the bids are read while the committee evaluates",
                       code="materials_closed", details={"status": es.status})
    return es, me


async def opened_bids(session: AsyncSession, *, who: Principal,
                      session_public_id: str) -> list[tender_link.OpenedBid]:
    """The opened bids of the session's lot with their documents (names, sizes, SHA-256)."""
    es, _ = await _reader(session, who, session_public_id)
    return await tender_link.opened_bids(session, es.lot_id)


@dataclass(frozen=True)
class DocumentRead:
    bid: tender_link.OpenedBid
    document: tender_link.OpenedDocument
    data: bytes


async def read_document(session: AsyncSession, *, who: Principal, session_public_id: str, bid_public_id: str,
                        n: int, storage_dir: Path, keys_dir: Path) -> DocumentRead:
    """The n-th document (from 1) of an opened bid of the session's lot, checked against its digest, with the
    read on the ledger. 404 for a bid or document the lot's opening does not list; 409 document_not_kept when
    the opening did not keep the document (a bid opened before documents were kept)."""
    es, me = await _reader(session, who, session_public_id)
    bid = next((b for b in await tender_link.opened_bids(session, es.lot_id) if b.bid_public_id == bid_public_id),
               None)
    if bid is None:
        raise NotFound("no such opened bid in this session's lot", code="bid_not_found",
                       details={"bid_id": bid_public_id})
    document = next((d for d in bid.documents if d.n == n), None)
    if document is None:
        raise NotFound("no such document in the bid", code="document_not_found",
                       details={"bid_id": bid_public_id, "document": n})
    data = await asyncio.to_thread(tender_link.read_opened_document, storage_dir, keys_dir, bid.bid_public_id,
                                   document.sha256)
    if data is None:
        raise Conflict("the opening did not keep this document", code="document_not_kept",
                       details={"bid_id": bid_public_id, "document": n})
    await ledger.append(session, actor=who.public_id, action="evaluation.materials.read",
                        entity=members.entity(es),
                        payload={"member": me.public_id, "bid": bid.bid_public_id,
                                 "bidder": bid.organisation_public_id, "document": document.name,
                                 "sha256": document.sha256, "size": document.size})
    return DocumentRead(bid, document, data)
