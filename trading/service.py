"""Tender service: drafts, publication, the close job, public listing, documents, registration, clarifications,
amendments and the OCDS snapshot. Services never commit; the caller's transaction holds every change and its
ledger entry together. Deadlines are judged by the database clock (core.db.db_now)."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core import scheduler
from core.db import db_now
from core.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from core.identity_models import Organisation, User
from core.ids import public_id
from core.notifier import Notifier
from evidence import ledger_service as ledger
from trading import search_terms
from trading.codes import load_categories, tender_code
from trading import statutory
from trading.lifecycle import (TenderStatus, Timeline, apply_amendment, as_method, as_status, transition,
                               validate_timeline)
from trading.models import Amendment, BidderRegistration, Clarification, Lot, Tender, TenderDocument
from trading.ocds import AwardSnapshot, DocumentSnapshot, LotSnapshot, OrgRef, TenderSnapshot
from trading.status import move_tender
from trading.tender_rules import (SNIFF_BYTES, Cursor, cjk_phrases, decode_cursor, encode_cursor,
                                  parse_evaluation, sniff_document_type)

log = logging.getLogger(__name__)

CLOSE_JOB = "trading.close_bidding"
CHINA = ZoneInfo("Asia/Shanghai")  # the code's year is the year in China at creation
MAX_LOTS = 50
MAX_KEY_HOLDERS = 15
PAGE_MAX = 100
STAFF_ROLES = ("agent", "admin", "supervisor")


def close_job_key(tender_id: int) -> str:
    """The scheduler's dedupe key of a tender's close job."""
    return f"tender:{tender_id}:close"


def _money(value: Any, field: str) -> Decimal:
    if isinstance(value, float) or isinstance(value, bool):
        raise Unprocessable(f"{field} must be a decimal number", code="invalid_budget", details={"field": field})
    amount = Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise Unprocessable(f"{field} must be zero or more", code="invalid_budget", details={"field": field})
    if amount != amount.quantize(Decimal("0.01"), rounding="ROUND_DOWN"):
        raise Unprocessable(f"{field} has at most 2 decimal places", code="invalid_budget", details={"field": field})
    return amount


# ---- lookups -------------------------------------------------------------------------------------------------

async def get_tender(session: AsyncSession, code: str, *, lock: bool = False) -> Tender:
    """The tender with this code (FOR UPDATE when `lock`), or 404 tender_not_found."""
    stmt = select(Tender).where(Tender.code == code)
    if lock:
        stmt = stmt.with_for_update()
    tender = (await session.execute(stmt)).scalar_one_or_none()
    if tender is None:
        raise NotFound(f"no tender {code}", code="tender_not_found", details={"code": code})
    return tender


def may_manage(who: Any, tender: Tender) -> bool:
    """True for the agent who created the tender, its agency's agents, and admins."""
    if who is None:
        return False
    if who.has("admin"):
        return True
    return who.has("agent") and (who.user_id == tender.created_by_id or
                                 (who.organisation_id is not None and who.organisation_id == tender.agent_id))


def require_manager(who: Any, tender: Tender) -> None:
    """Refuse 403 not_tender_agent unless `who` manages this tender."""
    if not may_manage(who, tender):
        raise Forbidden("only the tender's agent may do this", code="not_tender_agent",
                        details={"tender": tender.code})


async def visible_tender(session: AsyncSession, code: str, who: Any) -> Tender:
    """A tender the caller may see: any but a draft for the public; drafts only for their agent (else 404)."""
    tender = await get_tender(session, code)
    if tender.status == TenderStatus.DRAFT and not may_manage(who, tender):
        raise NotFound(f"no tender {code}", code="tender_not_found", details={"code": code})
    return tender


async def _organisation(session: AsyncSession, org_public_id: str, field: str) -> Organisation:
    org = (await session.execute(select(Organisation).where(Organisation.public_id == org_public_id))
           ).scalar_one_or_none()
    if org is None:
        raise Unprocessable(f"no organisation {org_public_id}", code="unknown_organisation",
                            details={"field": field, "organisation": org_public_id})
    return org


# ---- codes ---------------------------------------------------------------------------------------------------

async def allocate_codes(session: AsyncSession, region_code: str, year: int, family: str, count: int = 1) -> list[str]:
    """Reserve `count` consecutive tender codes; the upsert locks the sequence row until the transaction ends."""
    tender_code(region_code, year, family, 1)  # refuse bad parts before touching the row
    last = (await session.execute(text(
        "INSERT INTO tender_sequence (region_code, year, family, last_seq) VALUES (:r, :y, :f, :n) "
        "ON CONFLICT (region_code, year, family) DO UPDATE SET last_seq = tender_sequence.last_seq + :n "
        "RETURNING last_seq"), {"r": region_code, "y": year, "f": family, "n": count})).scalar_one()
    return [tender_code(region_code, year, family, seq) for seq in range(last - count + 1, last + 1)]


# ---- drafts --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotDraft:
    """A lot as the agent describes it."""

    title: str
    budget: Decimal


def _check_lots(lots: Sequence[LotDraft], budget: Decimal) -> None:
    if len(lots) > MAX_LOTS:
        raise Unprocessable(f"at most {MAX_LOTS} lots", code="too_many_lots", details={"max": MAX_LOTS})
    total = sum((_money(lot.budget, f"lots.{i}.budget") for i, lot in enumerate(lots)), Decimal(0))
    if total > budget:
        raise Unprocessable("the lots' budgets add up to more than the tender's budget",
                            code="lot_budgets_exceed_budget",
                            details={"lots_total": str(total), "budget": str(budget)})


def _check_keys(threshold: int, holders: int) -> None:
    # one holder alone must never be able to open the bids, so k >= 2
    if not 2 <= threshold <= holders <= MAX_KEY_HOLDERS:
        raise Unprocessable("the key threshold k and holder count n need 2 <= k <= n <= 15", code="invalid_key_split",
                            details={"key_threshold": threshold, "key_holder_count": holders})


def _check_timeline(tender: Tender, now: datetime, periods: statutory.Periods | None = None) -> None:
    validate_timeline(Timeline(now, tender.clarification_end_at, tender.bid_deadline_at, tender.opening_at),
                      tender.method, periods)


async def _replace_lots(session: AsyncSession, tender: Tender, lots: Sequence[LotDraft]) -> None:
    await session.execute(Lot.__table__.delete().where(Lot.tender_id == tender.id))
    if not lots:  # one lot for the whole tender: bids and registrations are always per lot
        lots = [LotDraft(title=tender.title, budget=tender.budget)]
    for n, lot in enumerate(lots, start=1):
        session.add(Lot(public_id=f"{tender.code}-L{n:02d}", tender_id=tender.id, lot_no=n, title=lot.title,
                        budget=_money(lot.budget, f"lots.{n - 1}.budget")))
    await session.flush()


async def create_tender(session: AsyncSession, who: Any, data: dict[str, Any]) -> Tender:
    """A new draft with its code and lots; `data` is schemas.TenderIn as a dict."""
    catalogue = load_categories()
    catalogue.check_pair(data["family"], data["subtype"])
    method = as_method(data["method"])
    budget = _money(data["budget"], "budget")
    lots = [LotDraft(lot["title"], lot["budget"]) for lot in data.get("lots") or []]
    _check_lots(lots, budget)
    _check_keys(data["key_threshold"], data["key_holder_count"])
    evaluation = parse_evaluation(data["evaluation"])
    tenderer = await _organisation(session, data["tenderer"], "tenderer")
    now = await db_now(session)
    validate_timeline(Timeline(now, data["clarification_end_at"], data["bid_deadline_at"], data["opening_at"]))
    [code] = await allocate_codes(session, data["region_code"], now.astimezone(CHINA).year, data["family"])
    tender = Tender(code=code, title=data["title"], description=data.get("description") or "",
                    family=data["family"], subtype=data["subtype"], method=method.value,
                    region_code=data["region_code"], tenderer_id=tenderer.id, agent_id=who.organisation_id,
                    created_by_id=who.user_id, budget=budget, currency=data.get("currency") or "CNY",
                    evaluation=evaluation, clarification_end_at=data["clarification_end_at"],
                    bid_deadline_at=data["bid_deadline_at"], opening_at=data["opening_at"],
                    key_threshold=data["key_threshold"], key_holder_count=data["key_holder_count"],
                    platform_holds_share=bool(data.get("platform_holds_share", False)))
    session.add(tender)
    await session.flush()
    await _replace_lots(session, tender, lots)
    await ledger.append(session, actor=who.public_id, action="tender.create", entity=f"tender:{code}",
                        payload={"title": tender.title, "family": tender.family, "subtype": tender.subtype,
                                 "method": tender.method, "budget": str(budget), "tenderer": tenderer.public_id,
                                 "lots": len(lots) or 1})
    log.info("tender %s drafted", code)
    return tender


EDITABLE = ("title", "description", "subtype", "method", "budget", "currency", "evaluation", "clarification_end_at",
            "bid_deadline_at", "opening_at", "key_threshold", "key_holder_count", "platform_holds_share", "tenderer",
            "lots")


async def update_draft(session: AsyncSession, who: Any, code: str, changes: dict[str, Any]) -> Tender:
    """Change a draft; refuses 409 tender_not_draft (naming the state) once it is published."""
    tender = await get_tender(session, code, lock=True)
    require_manager(who, tender)
    if tender.status != TenderStatus.DRAFT:
        raise Conflict(f"only a draft can be edited; the tender is {tender.status}", code="tender_not_draft",
                       details={"current": tender.status})
    changed = sorted(k for k in changes if k in EDITABLE)
    if "tenderer" in changes:
        tender.tenderer_id = (await _organisation(session, changes["tenderer"], "tenderer")).id
    if "subtype" in changes:
        load_categories().check_pair(tender.family, changes["subtype"])
        tender.subtype = changes["subtype"]
    if "method" in changes:
        tender.method = as_method(changes["method"]).value
    if "evaluation" in changes:
        tender.evaluation = parse_evaluation(changes["evaluation"])
    for name in ("title", "description", "currency", "clarification_end_at", "bid_deadline_at", "opening_at",
                 "key_threshold", "key_holder_count", "platform_holds_share"):
        if name in changes and changes[name] is not None:
            setattr(tender, name, changes[name])
    if "budget" in changes:
        tender.budget = _money(changes["budget"], "budget")
    _check_keys(tender.key_threshold, tender.key_holder_count)
    _check_timeline(tender, await db_now(session))
    if "lots" in changes and changes["lots"] is not None:
        lots = [LotDraft(lot["title"], lot["budget"]) for lot in changes["lots"]]
        _check_lots(lots, tender.budget)
        await _replace_lots(session, tender, lots)
    else:
        lot_total = (await session.execute(select(func.coalesce(func.sum(Lot.budget), 0))
                                           .where(Lot.tender_id == tender.id))).scalar_one()
        if lot_total > tender.budget:
            raise Unprocessable("the lots' budgets add up to more than the tender's budget",
                                code="lot_budgets_exceed_budget",
                                details={"lots_total": str(lot_total), "budget": str(tender.budget)})
    tender.updated_at = await db_now(session)
    await ledger.append(session, actor=who.public_id, action="tender.edit", entity=f"tender:{tender.code}",
                        payload={"fields": changed})
    return tender


async def _tenderer_name(session: AsyncSession, tender: Tender) -> str:
    return (await session.execute(select(Organisation.name).where(Organisation.id == tender.tenderer_id))).scalar_one()


def searchable_terms(title: str, code: str, description: str, tenderer_name: str) -> list[str]:
    """What `q` matches: the text a reader sees (title, code, description, tenderer), kept apart so no bigram
    spans two fields. Categories have their own filter, so their names are not mixed into keyword search."""
    return search_terms.document_terms(title, code, description, tenderer_name)


def tender_search_terms(tender: Tender, tenderer_name: str) -> list[str]:
    """The search terms of a tender (see searchable_terms)."""
    return searchable_terms(tender.title, tender.code, tender.description, tenderer_name)


def _keyholding():
    """Part B's sealing module, once it exists in this build."""
    if importlib.util.find_spec("trading.keyholding") is None:
        return None
    return importlib.import_module("trading.keyholding")


async def publish(session: AsyncSession, who: Any, code: str, *,
                  periods: statutory.Periods = statutory.ENFORCED) -> Tender:
    """draft -> published: seals the tender's key, stamps the DB time, indexes the text, schedules the close."""
    tender = await get_tender(session, code, lock=True)
    require_manager(who, tender)
    transition(tender.status, TenderStatus.PUBLISHED)  # refuse early, before sealing, naming the current state
    now = await db_now(session)
    _check_timeline(tender, now, periods)  # the statutory periods count from this publication
    keyholding = _keyholding()
    if keyholding is not None:
        await keyholding.seal_at_publish(session, tender, actor=who.public_id)
    tender.published_at = now
    tender.search_terms = tender_search_terms(tender, await _tenderer_name(session, tender))
    await move_tender(session, tender, TenderStatus.PUBLISHED, actor=who.public_id,
                      payload={"published_at": now.isoformat(), "bid_deadline": tender.bid_deadline_at.isoformat()})
    await scheduler.schedule(session, CLOSE_JOB, due_at=tender.bid_deadline_at, payload={"tender_id": tender.id},
                             dedupe_key=close_job_key(tender.id))
    await session.flush()
    await session.refresh(tender)
    return tender


async def registered_users(session: AsyncSession, tender_id: int) -> list[int]:
    """Users to notify about a tender: everyone who registered one of the bidder organisations, once each."""
    rows = await session.execute(
        select(User.id).join(BidderRegistration, BidderRegistration.organisation_id == User.organisation_id)
        .where(BidderRegistration.tender_id == tender_id, User.is_active.is_(True)).distinct().order_by(User.id))
    return list(rows.scalars())


async def _notify_bidders(session: AsyncSession, notifier: Notifier, tender: Tender, *, kind: str, title: str,
                          body: str, data: dict[str, Any]) -> int:
    users = await registered_users(session, tender.id)
    for user_id in users:
        await notifier.notify(session, user_id=user_id, kind=kind, title=title, body=body,
                              data={"tender": tender.code, **data})
    return len(users)


async def cancel(session: AsyncSession, who: Any, code: str, reason: str, notifier: Notifier) -> Tender:
    """Cancel (终止) with a reason; the close job goes, registered bidders hear of it."""
    tender = await get_tender(session, code, lock=True)
    require_manager(who, tender)
    await move_tender(session, tender, TenderStatus.CANCELLED, actor=who.public_id, payload={"reason": reason})
    await scheduler.cancel(session, close_job_key(tender.id))
    await _notify_bidders(session, notifier, tender, kind="tender.cancelled", title=f"招标项目终止 {tender.code}",
                          body=f"{tender.title} 已终止：{reason}", data={"reason": reason})
    await session.flush()
    await session.refresh(tender)
    return tender


async def close_bidding(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The close job: published -> closed once the database clock has reached the (possibly moved) deadline."""
    tender = (await session.execute(select(Tender).where(Tender.id == payload["tender_id"]).with_for_update())
              ).scalar_one_or_none()
    if tender is None or tender.status != TenderStatus.PUBLISHED:
        return  # cancelled or moved on by hand: nothing to close
    now = await db_now(session)
    if now < tender.bid_deadline_at:
        # the job ran early (its due time lagged a deadline change): come back at the real deadline
        await scheduler.schedule(session, CLOSE_JOB, due_at=tender.bid_deadline_at, payload=payload,
                                 dedupe_key=close_job_key(tender.id))
        return
    await move_tender(session, tender, TenderStatus.CLOSED, actor="system",
                      payload={"bid_deadline": tender.bid_deadline_at.isoformat(), "closed_at": now.isoformat()})


# ---- listing -------------------------------------------------------------------------------------------------

SORTS = ("deadline", "published")


@dataclass(frozen=True)
class ListingFilter:
    """The public listing's filters (all optional)."""

    q: str | None = None
    category: str | None = None
    region: str | None = None
    status: str | None = None
    budget_min: Decimal | None = None
    budget_max: Decimal | None = None
    deadline_from: datetime | None = None
    deadline_to: datetime | None = None
    sort: str = "deadline"
    cursor: str | None = None
    limit: int = 20


LIST_COLUMNS = ("t.id", "t.code", "t.title", "t.status", "t.family", "t.subtype", "t.method", "t.region_code",
                "t.budget", "t.currency", "t.published_at", "t.clarification_end_at", "t.bid_deadline_at",
                "t.opening_at", "o.name AS tenderer_name")


def listing_sql(f: ListingFilter) -> tuple[str, list[Any]]:
    """The SQL and positional arguments behind GET /api/v1/tenders (also run bare by bench/listing.py).

    Plain asyncpg SQL rather than an ORM statement: this is the platform's hottest public read, and building and
    compiling a statement per request cost more than the query itself.
    """
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["t.status <> 'draft'"]
    if f.q:
        terms = search_terms.query_terms(f.q)
        if terms:
            where.append(f"t.search_terms @> {arg(terms)}::text[]")  # on the GIN index
        for phrase in cjk_phrases(f.q):  # bigrams found apart are not the phrase: re-check it as a substring
            where.append(f"strpos(t.title || ' ' || t.description || ' ' || o.name, {arg(phrase)}) > 0")
    if f.category:
        if "-" in f.category:
            load_categories().subtype(f.category)
            where.append(f"t.subtype = {arg(f.category)}")
        else:
            load_categories().family(f.category)
            where.append(f"t.family = {arg(f.category)}")
    if f.region:
        where.append(f"t.region_code = {arg(f.region)}")
    if f.status:
        status = as_status(f.status)
        if status is TenderStatus.DRAFT:
            raise Unprocessable("drafts are not public", code="status_not_public", details={"status": "draft"})
        where.append(f"t.status = {arg(status.value)}")
    if f.budget_min is not None:
        where.append(f"t.budget >= {arg(f.budget_min)}")
    if f.budget_max is not None:
        where.append(f"t.budget <= {arg(f.budget_max)}")
    if f.deadline_from is not None:
        where.append(f"t.bid_deadline_at >= {arg(f.deadline_from)}")
    if f.deadline_to is not None:
        where.append(f"t.bid_deadline_at <= {arg(f.deadline_to)}")
    if f.sort not in SORTS:
        raise Unprocessable("sort is deadline or published", code="invalid_sort", details={"allowed": list(SORTS)})
    column, direction, compare = ("t.bid_deadline_at", "ASC", ">") if f.sort == "deadline" else \
        ("t.published_at", "DESC", "<")
    if f.cursor:
        cur = decode_cursor(f.cursor, f.sort)
        try:
            key = datetime.fromisoformat(cur.key)
        except ValueError as err:
            raise BadRequest("the cursor is not one this listing issued", code="invalid_cursor") from err
        where.append(f"({column}, t.id) {compare} ({arg(key)}, {arg(cur.id)})")
    limit = min(max(f.limit, 1), PAGE_MAX)
    sql = (f"SELECT {', '.join(LIST_COLUMNS)} FROM tender t JOIN organisation o ON o.id = t.tenderer_id "
           f"WHERE {' AND '.join(where)} ORDER BY {column} {direction}, t.id {direction} LIMIT {arg(limit + 1)}")
    return sql, args


async def list_tenders(db: Any, f: ListingFilter) -> tuple[list[Any], str | None]:
    """One page of public tenders and the cursor of the next page (None on the last); `db` is an asyncpg pool
    or connection."""
    sql, args = listing_sql(f)
    rows = await db.fetch(sql, *args)
    limit = min(max(f.limit, 1), PAGE_MAX)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        key = last["bid_deadline_at"] if f.sort == "deadline" else last["published_at"]
        next_cursor = encode_cursor(Cursor(f.sort, key.isoformat(), last["id"]))
    return list(rows), next_cursor


async def latest_published(db: Any, limit: int = 50) -> list[Any]:
    """The newest public tenders by publication time, for the Atom feed."""
    rows, _ = await list_tenders(db, ListingFilter(sort="published", limit=limit))
    return rows


# ---- detail --------------------------------------------------------------------------------------------------

async def lots_of(session: AsyncSession, tender_id: int) -> list[Lot]:
    return list((await session.execute(select(Lot).where(Lot.tender_id == tender_id).order_by(Lot.lot_no))
                 ).scalars())


async def documents_of(session: AsyncSession, tender_id: int) -> list[TenderDocument]:
    return list((await session.execute(select(TenderDocument).where(TenderDocument.tender_id == tender_id)
                                       .order_by(TenderDocument.id))).scalars())


async def amendments_of(session: AsyncSession, tender_id: int) -> list[Amendment]:
    return list((await session.execute(select(Amendment).where(Amendment.tender_id == tender_id)
                                       .order_by(Amendment.id))).scalars())


async def organisations(session: AsyncSession, ids: Sequence[int | None]) -> dict[int, Organisation]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Organisation).where(Organisation.id.in_(wanted)))
    return {org.id: org for org in rows.scalars()}


# ---- documents -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredFile:
    """An upload written to content-addressed storage."""

    sha256: str
    size_bytes: int
    media_type: str
    path: Path


def document_path(storage_dir: Path, sha256: str) -> Path:
    """Where a document with this hash lives: storage/documents/ab/abcdef…"""
    return storage_dir / "documents" / sha256[:2] / sha256


async def store_upload(chunks: AsyncIterator[bytes], storage_dir: Path, filename: str, limit: int) -> StoredFile:
    """Stream an upload to disk, hashing as it goes; the type is judged by magic bytes before much is written.

    Refuses 415 unsupported_document_type, 413 upload_too_large and 422 empty_document; nothing stays on disk then.
    """
    tmp_dir = storage_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    media_type: str | None = None
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the document exceeds {limit} bytes", code="upload_too_large",
                                          details={"limit_bytes": limit})
                if media_type is None:
                    head += chunk[:SNIFF_BYTES]
                    if len(head) >= SNIFF_BYTES:
                        media_type = sniff_document_type(head, filename)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Unprocessable("the document is empty", code="empty_document")
        if media_type is None:
            media_type = sniff_document_type(head, filename)
        sha = digest.hexdigest()
        final = document_path(storage_dir, sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            os.unlink(tmp_name)  # same bytes already stored
        else:
            os.replace(tmp_name, final)
        return StoredFile(sha, size, media_type, final)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


DOCUMENT_TYPES = ("biddingDocuments", "tenderNotice", "technicalSpecifications", "clarifications", "evaluationCriteria",
                  "eligibilityCriteria", "billOfQuantity", "other")


def check_document_upload(tender: Tender, document_type: str) -> None:
    """Refuse an upload before any byte is stored: a known document type, and a draft or published tender."""
    if document_type not in DOCUMENT_TYPES:
        raise Unprocessable(f"unknown document type {document_type!r}", code="unknown_document_type",
                            details={"allowed": list(DOCUMENT_TYPES)})
    if tender.status not in (TenderStatus.DRAFT, TenderStatus.PUBLISHED):
        raise Conflict(f"documents can be added while draft or published; the tender is {tender.status}",
                       code="tender_documents_closed", details={"current": tender.status})


async def add_document(session: AsyncSession, who: Any, tender: Tender, stored: StoredFile, *, title: str,
                       filename: str, document_type: str) -> TenderDocument:
    """Record an uploaded document against the tender, with its ledger entry."""
    check_document_upload(tender, document_type)
    doc = TenderDocument(public_id=public_id("D", 8), tender_id=tender.id, title=title, filename=filename,
                         document_type=document_type, media_type=stored.media_type, size_bytes=stored.size_bytes,
                         sha256=stored.sha256, uploaded_by_id=who.user_id)
    session.add(doc)
    tender.updated_at = await db_now(session)  # the documents are part of the tender's open data
    await session.flush()
    await session.refresh(doc)
    await ledger.append(session, actor=who.public_id, action="tender.document.upload", entity=f"tender:{tender.code}",
                        payload={"document": doc.public_id, "filename": filename, "sha256": stored.sha256,
                                 "size_bytes": stored.size_bytes, "media_type": stored.media_type})
    return doc


async def get_document(session: AsyncSession, doc_public_id: str, who: Any) -> tuple[TenderDocument, Tender]:
    """A document and its tender; documents of drafts exist only for the tender's agent (else 404)."""
    row = (await session.execute(select(TenderDocument, Tender).join(Tender, Tender.id == TenderDocument.tender_id)
                                 .where(TenderDocument.public_id == doc_public_id))).one_or_none()
    if row is None or (row[1].status == TenderStatus.DRAFT and not may_manage(who, row[1])):
        raise NotFound(f"no document {doc_public_id}", code="document_not_found",
                       details={"document": doc_public_id})
    return row[0], row[1]


# ---- registration --------------------------------------------------------------------------------------------

async def register_for_lot(session: AsyncSession, who: Any, lot_public_id: str) -> tuple[BidderRegistration, Lot,
                                                                                        Tender]:
    """投标报名: a bidder organisation registers for a lot while the tender is published, before the deadline."""
    row = (await session.execute(select(Lot, Tender).join(Tender, Tender.id == Lot.tender_id)
                                 .where(Lot.public_id == lot_public_id))).one_or_none()
    if row is None or row[1].status == TenderStatus.DRAFT:
        raise NotFound(f"no lot {lot_public_id}", code="lot_not_found", details={"lot": lot_public_id})
    lot, tender = row
    if who.organisation_id is None:
        raise Forbidden("register with your organisation first", code="organisation_required")
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"registration is open only while the tender is published; it is {tender.status}",
                       code="registration_closed", details={"current": tender.status})
    now = await db_now(session)
    if now >= tender.bid_deadline_at:
        raise Conflict("the bid deadline has passed", code="bid_deadline_passed",
                       details={"bid_deadline": tender.bid_deadline_at.isoformat()})
    exists = (await session.execute(select(BidderRegistration.id).where(
        BidderRegistration.lot_id == lot.id, BidderRegistration.organisation_id == who.organisation_id))).first()
    if exists:
        raise Conflict("your organisation is already registered for this lot", code="already_registered",
                       details={"lot": lot.public_id})
    reg = BidderRegistration(tender_id=tender.id, lot_id=lot.id, organisation_id=who.organisation_id,
                             registered_by_id=who.user_id, registered_at=now)
    session.add(reg)
    await session.flush()
    # the ledger is public to supervisors only, so the bidder list stays secret from other bidders until opening
    await ledger.append(session, actor=who.public_id, action="tender.register", entity=f"tender:{tender.code}",
                        payload={"lot": lot.public_id})
    return reg, lot, tender


async def is_registered(session: AsyncSession, lot_id: int, organisation_id: int) -> bool:
    """True when the organisation registered for the lot (bids need it)."""
    return (await session.execute(select(BidderRegistration.id).where(
        BidderRegistration.lot_id == lot_id, BidderRegistration.organisation_id == organisation_id))).first() \
        is not None


async def my_registrations(session: AsyncSession, tender: Tender, organisation_id: int | None) -> list[str]:
    """The lot public ids the organisation registered for in this tender."""
    if organisation_id is None:
        return []
    rows = await session.execute(select(Lot.public_id).join(BidderRegistration, BidderRegistration.lot_id == Lot.id)
                                 .where(BidderRegistration.tender_id == tender.id,
                                        BidderRegistration.organisation_id == organisation_id).order_by(Lot.lot_no))
    return list(rows.scalars())


# ---- clarifications ------------------------------------------------------------------------------------------

async def ask(session: AsyncSession, who: Any, code: str, question: str) -> Clarification:
    """A registered bidder asks a question before the clarification period ends (DB clock)."""
    tender = await visible_tender(session, code, who)
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"questions are taken while the tender is published; it is {tender.status}",
                       code="clarification_closed", details={"current": tender.status})
    if not await my_registrations(session, tender, who.organisation_id):
        raise Forbidden("register for a lot of this tender before asking", code="not_registered",
                        details={"tender": tender.code})
    now = await db_now(session)
    if now >= tender.clarification_end_at:
        raise Conflict("the clarification period has ended", code="clarification_period_over",
                       details={"clarification_end": tender.clarification_end_at.isoformat()})
    item = Clarification(public_id=public_id("Q", 8), tender_id=tender.id, question=question,
                         asked_by_org_id=who.organisation_id, asked_by_id=who.user_id, asked_at=now)
    session.add(item)
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="tender.clarification.ask",
                        entity=f"tender:{tender.code}", payload={"clarification": item.public_id})
    return item


async def answer(session: AsyncSession, who: Any, clarification_id: str, text_: str,
                 notifier: Notifier) -> tuple[Clarification, Tender]:
    """The agent answers publicly; every registered bidder is told (without who asked)."""
    row = (await session.execute(select(Clarification, Tender).join(Tender, Tender.id == Clarification.tender_id)
                                 .where(Clarification.public_id == clarification_id)
                                 .with_for_update(of=Clarification))).one_or_none()
    if row is None:
        raise NotFound(f"no clarification {clarification_id}", code="clarification_not_found")
    item, tender = row
    require_manager(who, tender)
    if item.answer is not None:
        raise Conflict("this question is already answered", code="already_answered")
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"answers are published while the tender is published; it is {tender.status}",
                       code="clarification_closed", details={"current": tender.status})
    now = await db_now(session)
    item.answer, item.answered_by_id, item.answered_at = text_, who.user_id, now
    await ledger.append(session, actor=who.public_id, action="tender.clarification.answer",
                        entity=f"tender:{tender.code}", payload={"clarification": item.public_id})
    await _notify_bidders(session, notifier, tender, kind="tender.clarification",
                          title=f"澄清答复 {tender.code}", body=f"{tender.title}：新的澄清答复",
                          data={"clarification": item.public_id})
    return item, tender


async def clarifications_for(session: AsyncSession, tender: Tender, who: Any) -> list[tuple[Clarification, bool]]:
    """Questions the caller may see, each with `mine`: answered ones for all, own unanswered ones, all for the
    agent. Who asked is for the agent's eyes only."""
    rows = list((await session.execute(select(Clarification).where(Clarification.tender_id == tender.id)
                                       .order_by(Clarification.id))).scalars())
    manager = may_manage(who, tender)
    org = getattr(who, "organisation_id", None)
    out = []
    for item in rows:
        mine = org is not None and item.asked_by_org_id == org
        if manager or mine or item.answer is not None:
            out.append((item, mine))
    return out


# ---- amendments ----------------------------------------------------------------------------------------------

async def amend(session: AsyncSession, who: Any, code: str, *, summary: str, body: str, document_ids: list[str],
                notifier: Notifier, periods: statutory.Periods = statutory.ENFORCED) -> tuple[Amendment, Tender]:
    """澄清或修改: publish a change; too close to the deadline, the deadline (and opening) move out."""
    tender = await get_tender(session, code, lock=True)
    require_manager(who, tender)
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"amendments are published while the tender is published; it is {tender.status}",
                       code="tender_not_published", details={"current": tender.status})
    if document_ids:
        found = set((await session.execute(select(TenderDocument.public_id).where(
            TenderDocument.tender_id == tender.id, TenderDocument.public_id.in_(document_ids)))).scalars())
        missing = [d for d in document_ids if d not in found]
        if missing:
            raise Unprocessable("documents not attached to this tender", code="unknown_document",
                                details={"documents": missing})
    now = await db_now(session)
    before = Timeline(tender.published_at, tender.clarification_end_at, tender.bid_deadline_at, tender.opening_at)
    after = validate_timeline(apply_amendment(before, now, tender.method), tender.method, periods)
    extended = after.bid_deadline != before.bid_deadline
    item = Amendment(public_id=public_id("M", 8), tender_id=tender.id, summary=summary, body=body,
                     document_ids=list(document_ids), published_at=now, deadline_before=before.bid_deadline,
                     deadline_after=after.bid_deadline, opening_after=after.opening_at, published_by_id=who.user_id)
    session.add(item)
    if extended:
        tender.bid_deadline_at, tender.opening_at = after.bid_deadline, after.opening_at
        await scheduler.reschedule(session, close_job_key(tender.id), after.bid_deadline)
    tender.updated_at = now
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="tender.amend", entity=f"tender:{tender.code}",
                        payload={"amendment": item.public_id, "summary": summary, "extended": extended,
                                 "bid_deadline_before": before.bid_deadline.isoformat(),
                                 "bid_deadline_after": after.bid_deadline.isoformat()})
    note = f"，投标截止时间顺延至 {after.bid_deadline.astimezone(CHINA):%Y-%m-%d %H:%M}" if extended else ""
    await _notify_bidders(session, notifier, tender, kind="tender.amendment", title=f"澄清或修改 {tender.code}",
                          body=f"{tender.title}：{summary}{note}",
                          data={"amendment": item.public_id, "extended": extended,
                                "bid_deadline": after.bid_deadline.isoformat()})
    return item, tender


# ---- OCDS ----------------------------------------------------------------------------------------------------

def _org_ref(org: Organisation) -> OrgRef:
    return OrgRef(org.public_id, org.name, org.social_credit_code)


async def ocds_snapshot(session: AsyncSession, tender: Tender, public_url: str) -> TenderSnapshot:
    """The tender as open data sees it: parties, lots, documents, timeline, and bidders/awards once public."""
    orgs = await organisations(session, [tender.tenderer_id, tender.agent_id])
    lots = await lots_of(session, tender.id)
    docs = await documents_of(session, tender.id)
    timeline = None
    if tender.published_at is not None:
        timeline = Timeline(tender.published_at, tender.clarification_end_at, tender.bid_deadline_at,
                            tender.opening_at)
    base = public_url.rstrip("/")
    documents = [DocumentSnapshot(d.public_id, d.title, f"{base}/api/v1/documents/{d.public_id}", d.document_type,
                                  max(d.created_at, tender.published_at or d.created_at), d.media_type)
                 for d in docs]
    extra = await _bid_parts(session, tender)
    return TenderSnapshot(
        id=tender.code, code=tender.code, title=tender.title, status=tender.status, method=tender.method,
        family=tender.family, subtype=tender.subtype, description=tender.description or None, budget=tender.budget,
        currency=tender.currency, tenderer=_org_ref(orgs[tender.tenderer_id]),
        agent=_org_ref(orgs[tender.agent_id]) if tender.agent_id in orgs else None,
        lots=[LotSnapshot(lot.public_id, lot.title, lot.budget) for lot in lots], timeline=timeline,
        documents=documents, published_at=tender.published_at, updated_at=tender.updated_at, **extra)


def _bid_models():
    """The sealed-bid tables (trading.bid_models), once they exist in this build."""
    if importlib.util.find_spec("trading.bid_models") is None:
        return None
    return importlib.import_module("trading.bid_models")


async def _bid_parts(session: AsyncSession, tender: Tender) -> dict[str, Any]:
    """Bidders, candidates and awards for OCDS; trading.ocds decides what is disclosed in which state."""
    models = _bid_models()
    if models is None:
        return {}
    opening = await session.get(models.TenderOpening, tender.id)
    opened_at = opening.completed_at if opening is not None else None
    bids = list((await session.execute(select(models.Bid).where(
        models.Bid.tender_id == tender.id, models.Bid.status.in_(("opened", "invalid"))).order_by(models.Bid.id)
    )).scalars())
    candidates = list((await session.execute(select(models.AwardCandidate).where(
        models.AwardCandidate.tender_id == tender.id).order_by(models.AwardCandidate.lot_id,
                                                               models.AwardCandidate.rank))).scalars())
    awards = {a.lot_id: a for a in (await session.execute(select(models.Award).where(
        models.Award.tender_id == tender.id))).scalars()}
    by_id = {b.id: b for b in bids}
    missing = [c.bid_id for c in candidates if c.bid_id not in by_id]
    if missing:
        by_id.update({b.id: b for b in (await session.execute(select(models.Bid).where(
            models.Bid.id.in_(missing)))).scalars()})
    orgs = await organisations(session, [b.organisation_id for b in by_id.values()])
    lots = {lot.id: lot.public_id for lot in await lots_of(session, tender.id)}
    bidders, seen = [], set()
    for bid in bids:
        if bid.organisation_id not in seen:
            seen.add(bid.organisation_id)
            bidders.append(_org_ref(orgs[bid.organisation_id]))
    award_snaps = []
    for c in candidates:
        bid = by_id[c.bid_id]
        won = awards.get(c.lot_id)
        status = "candidate" if won is None else ("awarded" if won.bid_id == c.bid_id else "unsuccessful")
        award_snaps.append(AwardSnapshot(
            id=f"{lots[c.lot_id]}-C{c.rank}", supplier=_org_ref(orgs[bid.organisation_id]),
            value=won.price if won is not None and won.bid_id == c.bid_id else (bid.price or Decimal(0)),
            date=won.awarded_at if won is not None and won.bid_id == c.bid_id else c.published_at,
            status=status, lot_id=lots[c.lot_id], rank=c.rank))
    return {"bidders": bidders, "awards": award_snaps, "opened_at": opened_at,
            "candidates_published_at": min((c.published_at for c in candidates), default=None)}


async def tenders_updated(session: AsyncSession, *, since: datetime | None, until: datetime | None,
                          after: tuple[datetime, int] | None, limit: int) -> list[Tender]:
    """Public tenders by last update (oldest first), for the OCDS release feed."""
    conditions = [Tender.status != TenderStatus.DRAFT.value]
    if since is not None:
        conditions.append(Tender.updated_at >= since)
    if until is not None:
        conditions.append(Tender.updated_at < until)
    if after is not None:
        conditions.append(tuple_(Tender.updated_at, Tender.id) > tuple_(*after))
    rows = await session.execute(select(Tender).where(*conditions).order_by(Tender.updated_at, Tender.id)
                                 .limit(limit + 1))
    return list(rows.scalars())


# used by demo and bench: rows straight into the table, bypassing drafts
async def insert_tender_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Bulk insert prepared tender rows (demo data and benchmarks only)."""
    await session.execute(insert(Tender), rows)

