"""HTTP endpoints for tenders: drafts and publication, the public listing and feed, documents, registration,
clarifications, amendments and OCDS. Thin: trading.service decides; these shape requests and JSON."""
from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any, AsyncIterator
from urllib.parse import quote

from aiohttp import web

from core.db import asyncpg_dsn, db_now
from core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from core.notifications import InAppNotifier
from trading import listing_cache, ocds, statutory
from trading import service as svc
from trading.codes import load_categories
from trading.demo import seed_demo  # noqa: F401  (the demo hook, found by name)
from trading.feed import FeedEntry, atom_feed
from trading.models import Amendment, Clarification, Tender, TenderDocument
from trading.schemas import (AmendmentIn, AmendmentOut, AnswerIn, CancelIn, CategoryOut, ClarificationOut,
                             DocumentOut, ListingQuery, LotOut, OrganisationRef, QuestionIn, RegistrationOut,
                             ReleasesQuery, TenderIn, TenderOut, TenderPage, TenderPatch,
                             UploadQuery)
from trading.tender_rules import Cursor, clean_filename, decode_cursor, encode_cursor
from web.api import Api, json_body
from web.keys import NOTIFIER, PG_POOL, SERVICES, SETTINGS, Principal, db, principal

log = logging.getLogger(__name__)

api = Api("trading")
LISTING_CACHE = "trading.listing_cache"
MAX_DOCUMENT_KEY = "trading.max_document_bytes"  # app[SERVICES] override of settings.max_upload_bytes
OCID_PREFIX_KEY = "ocid_prefix"  # settings.extra
DEFAULT_OCID_PREFIX = "ocds-bidrm0"
PUBLISHER = "bidroom 公共资源交易平台"


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """The public listing's page cache and, unless it is switched off, the connection that hears about changes."""
    settings = app[SETTINGS]
    cache = listing_cache.ListingCache(settings.listing_cache_s)
    app[SERVICES][LISTING_CACHE] = cache
    if settings.listing_cache_s <= 0:
        yield
        return
    async with listing_cache.listening(cache, asyncpg_dsn(settings.database_url)):
        yield


def register_jobs(app: web.Application, registry: Any) -> None:
    """The tender close job (published -> closed at the bid deadline, by the database clock)."""
    registry.register(svc.CLOSE_JOB, svc.close_bidding)


def _periods(request: web.Request) -> statutory.Periods:
    """Whether the statutory period minimums apply (BIDROOM_STATUTORY_PERIODS, on unless switched off)."""
    return statutory.Periods(request.app[SETTINGS].statutory_periods)


def _notifier(request: web.Request):
    return request.app.get(NOTIFIER) or InAppNotifier()


def _base(request: web.Request) -> str:
    return request.app[SETTINGS].public_url.rstrip("/")


def _category(family: str, subtype: str) -> CategoryOut:
    catalogue = load_categories()
    return CategoryOut(family=family, family_zh=catalogue.family(family).zh, subtype=subtype,
                       subtype_zh=catalogue.subtype(subtype).zh)


def _document_out(request: web.Request, doc: TenderDocument) -> DocumentOut:
    return DocumentOut(document_id=doc.public_id, title=doc.title, filename=doc.filename,
                       document_type=doc.document_type, media_type=doc.media_type, size_bytes=doc.size_bytes,
                       sha256=doc.sha256, url=f"{_base(request)}/api/v1/documents/{doc.public_id}",
                       uploaded_at=doc.created_at)


def _amendment_out(item: Amendment) -> AmendmentOut:
    return AmendmentOut(amendment_id=item.public_id, summary=item.summary, body=item.body,
                        document_ids=list(item.document_ids), published_at=item.published_at,
                        deadline_extended=item.deadline_after != item.deadline_before,
                        bid_deadline_before=item.deadline_before, bid_deadline_after=item.deadline_after,
                        opening_after=item.opening_after)


async def _tender_out(request: web.Request, tender: Tender, who: Any) -> TenderOut:
    session = db(request)
    orgs = await svc.organisations(session, [tender.tenderer_id, tender.agent_id])
    tenderer = orgs[tender.tenderer_id]
    agent = orgs.get(tender.agent_id) if tender.agent_id else None
    lots = await svc.lots_of(session, tender.id)
    mine = await svc.my_registrations(session, tender, who.organisation_id) if who is not None else []
    return TenderOut(
        code=tender.code, title=tender.title, description=tender.description, status=tender.status,
        category=_category(tender.family, tender.subtype), method=tender.method, region_code=tender.region_code,
        budget=tender.budget, currency=tender.currency,
        tenderer=OrganisationRef(organisation_id=tenderer.public_id, name=tenderer.name),
        agent=OrganisationRef(organisation_id=agent.public_id, name=agent.name) if agent else None,
        evaluation=tender.evaluation, published_at=tender.published_at,
        clarification_end_at=tender.clarification_end_at, bid_deadline_at=tender.bid_deadline_at,
        opening_at=tender.opening_at, key_threshold=tender.key_threshold, key_holder_count=tender.key_holder_count,
        age_recipient=tender.age_recipient,
        lots=[LotOut(lot_id=lot.public_id, lot_no=lot.lot_no, title=lot.title, budget=lot.budget) for lot in lots],
        documents=[_document_out(request, d) for d in await svc.documents_of(session, tender.id)],
        amendments=[_amendment_out(a) for a in await svc.amendments_of(session, tender.id)],
        my_registrations=mine, updated_at=tender.updated_at)


@functools.lru_cache(maxsize=64)
def _category_json(family: str, subtype: str) -> dict[str, str]:
    return _category(family, subtype).model_dump()


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _summary(row: Any) -> dict[str, Any]:
    """A listing item in the shape of TenderSummaryOut, built as a dict: pydantic per row cost more than the SQL."""
    return {"code": row["code"], "title": row["title"], "status": row["status"],
            "category": _category_json(row["family"], row["subtype"]), "method": row["method"],
            "region_code": row["region_code"], "budget": str(row["budget"]), "currency": row["currency"],
            "tenderer": row["tenderer_name"], "published_at": _iso(row["published_at"]),
            "clarification_end_at": _iso(row["clarification_end_at"]),
            "bid_deadline_at": _iso(row["bid_deadline_at"]), "opening_at": _iso(row["opening_at"])}


# ---- tenders -------------------------------------------------------------------------------------------------

@api.post("/api/v1/tenders", summary="Draft a tender (招标项目) with lots, evaluation method and timeline",
          body=TenderIn, response=TenderOut, status=201, roles=("agent",), errors=(404, 409, 422))
async def create_tender(request: web.Request, who: Principal, body: TenderIn):
    tender = await svc.create_tender(db(request), who, body.model_dump())
    return await _tender_out(request, tender, who)


@api.get("/api/v1/tenders", summary="Public tenders: search (Chinese or English), filters, keyset pages",
         query=ListingQuery, response=TenderPage, auth=False, errors=(400, 404, 422))
async def list_tenders(request: web.Request, query: ListingQuery):
    cache: listing_cache.ListingCache = request.app[SERVICES][LISTING_CACHE]

    async def page() -> bytes:
        rows, next_cursor = await svc.list_tenders(request.app[PG_POOL], svc.ListingFilter(**query.model_dump()))
        return json_body({"items": [_summary(r) for r in rows], "next_cursor": next_cursor})
    body = await cache.load(request.rel_url.raw_query_string, page)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


@api.get("/api/v1/tenders/feed.atom", summary="Atom feed of newly published tenders", auth=False,
         content_type="application/atom+xml")
async def feed(request: web.Request):
    rows = await svc.latest_published(request.app[PG_POOL], limit=50)
    base = _base(request)
    catalogue = load_categories()
    entries = [FeedEntry(
        code=r["code"], title=r["title"], url=f"{base}/api/v1/tenders/{r['code']}", published=r["published_at"],
        updated=r["published_at"],
        summary=(f"{r['tenderer_name']} · 预算 {r['budget']} {r['currency']} · "
                 f"投标截止 {r['bid_deadline_at'].isoformat()}"),
        category=r["subtype"],
        category_label=f"{catalogue.family(r['family']).zh}/{catalogue.subtype(r['subtype']).zh}")
        for r in rows]
    updated = max((e.published for e in entries), default=None) or datetime.now().astimezone()
    body = atom_feed(entries, feed_id=f"{base}/api/v1/tenders/feed.atom", self_url=f"{base}/api/v1/tenders/feed.atom",
                     alternate_url=f"{base}/api/v1/tenders?sort=published", title="招标公告 · Tender notices",
                     author=PUBLISHER, updated=updated)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


@api.get("/api/v1/tenders/{code}", summary="A tender's public detail (drafts: their agent only)",
         response=TenderOut, auth=False, errors=(404,))
async def get_tender(request: web.Request):
    who = principal(request)
    tender = await svc.visible_tender(db(request), request.match_info["code"], who)
    return await _tender_out(request, tender, who)


@api.patch("/api/v1/tenders/{code}", summary="Edit a draft tender", body=TenderPatch, response=TenderOut,
           roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def edit_tender(request: web.Request, who: Principal, body: TenderPatch):
    tender = await svc.update_draft(db(request), who, request.match_info["code"], body.model_dump(exclude_unset=True))
    return await _tender_out(request, tender, who)


@api.post("/api/v1/tenders/{code}/publish", summary="Publish a draft: seal key, announce, schedule the close",
          response=TenderOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def publish_tender(request: web.Request, who: Principal):
    tender = await svc.publish(db(request), who, request.match_info["code"], periods=_periods(request))
    return await _tender_out(request, tender, who)


@api.post("/api/v1/tenders/{code}/cancel", summary="Cancel a tender (终止) with a reason", body=CancelIn,
          response=TenderOut, roles=("agent", "admin"), errors=(403, 404, 409))
async def cancel_tender(request: web.Request, who: Principal, body: CancelIn):
    tender = await svc.cancel(db(request), who, request.match_info["code"], body.reason, _notifier(request))
    return await _tender_out(request, tender, who)


# ---- documents -----------------------------------------------------------------------------------------------

@api.post("/api/v1/tenders/{code}/documents", summary="Upload a tender document (streamed; PDF, ZIP/docx/xlsx, "
          "PNG, JPEG by magic bytes)", query=UploadQuery, response=DocumentOut, status=201,
          roles=("agent", "admin"), request_content_type="application/octet-stream",
          errors=(400, 403, 404, 409, 413, 415, 422))
async def upload_document(request: web.Request, who: Principal, query: UploadQuery):
    if request.content_type != "application/octet-stream":
        raise UnsupportedMediaType("send the file as application/octet-stream", code="unsupported_media_type")
    session = db(request)
    tender = await svc.get_tender(session, request.match_info["code"])
    svc.require_manager(who, tender)
    svc.check_document_upload(tender, query.document_type)
    filename = clean_filename(query.filename or request.headers.get("X-Filename"))
    limit = request.app[SERVICES].get(MAX_DOCUMENT_KEY, request.app[SETTINGS].max_upload_bytes)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the document exceeds {limit} bytes", code="upload_too_large",
                                  details={"limit_bytes": limit})
    stored = await svc.store_upload(request.content.iter_chunked(64 * 1024), request.app[SETTINGS].storage_dir,
                                    filename, limit)
    doc = await svc.add_document(session, who, tender, stored, title=query.title or filename, filename=filename,
                                 document_type=query.document_type)
    return _document_out(request, doc)


@api.get("/api/v1/documents/{document_id}", summary="Download a tender document (public once published)",
         auth=False, content_type="application/octet-stream", errors=(404,))
async def download_document(request: web.Request):
    doc, _ = await svc.get_document(db(request), request.match_info["document_id"], principal(request))
    path = svc.document_path(request.app[SETTINGS].storage_dir, doc.sha256)
    return web.FileResponse(path, headers={
        "Content-Type": doc.media_type, "ETag": f'"{doc.sha256}"', "X-Content-SHA256": doc.sha256,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})


# ---- registration --------------------------------------------------------------------------------------------

@api.post("/api/v1/lots/{lot_id}/registrations", summary="Register your organisation for a lot (投标报名)",
          response=RegistrationOut, status=201, roles=("bidder",), errors=(403, 404, 409))
async def register(request: web.Request, who: Principal):
    reg, lot, tender = await svc.register_for_lot(db(request), who, request.match_info["lot_id"])
    org = (await svc.organisations(db(request), [reg.organisation_id]))[reg.organisation_id]
    return RegistrationOut(tender=tender.code, lot_id=lot.public_id, organisation_id=org.public_id,
                           registered_at=reg.registered_at)


# ---- clarifications ------------------------------------------------------------------------------------------

async def _clarification_out(request: web.Request, item: Clarification, mine: bool, tender: Tender,
                             who: Any) -> ClarificationOut:
    asked_by = None
    if svc.may_manage(who, tender):
        org = (await svc.organisations(db(request), [item.asked_by_org_id]))[item.asked_by_org_id]
        asked_by = OrganisationRef(organisation_id=org.public_id, name=org.name)
    return ClarificationOut(clarification_id=item.public_id, question=item.question, asked_at=item.asked_at,
                            answer=item.answer, answered_at=item.answered_at, mine=mine, asked_by=asked_by)


@api.post("/api/v1/tenders/{code}/clarifications", summary="Ask a question (澄清); others never see who asked",
          body=QuestionIn, response=ClarificationOut, status=201, roles=("bidder",), errors=(403, 404, 409))
async def ask(request: web.Request, who: Principal, body: QuestionIn):
    item = await svc.ask(db(request), who, request.match_info["code"], body.question)
    return ClarificationOut(clarification_id=item.public_id, question=item.question, asked_at=item.asked_at,
                            answer=None, answered_at=None, mine=True)


@api.get("/api/v1/tenders/{code}/clarifications", summary="Answered questions; your own; all for the agent",
         response=ClarificationOut, auth=False, errors=(404,))
async def clarifications(request: web.Request):
    who = principal(request)
    tender = await svc.visible_tender(db(request), request.match_info["code"], who)
    return [await _clarification_out(request, item, mine, tender, who)
            for item, mine in await svc.clarifications_for(db(request), tender, who)]


@api.post("/api/v1/clarifications/{clarification_id}/answer", summary="Answer a question publicly",
          body=AnswerIn, response=ClarificationOut, roles=("agent", "admin"), errors=(403, 404, 409))
async def answer(request: web.Request, who: Principal, body: AnswerIn):
    item, tender = await svc.answer(db(request), who, request.match_info["clarification_id"], body.answer,
                                    _notifier(request))
    return await _clarification_out(request, item, False, tender, who)


@api.post("/api/v1/tenders/{code}/amendments", summary="Publish an amendment (澄清或修改); may extend the deadline",
          body=AmendmentIn, response=AmendmentOut, status=201, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def amend(request: web.Request, who: Principal, body: AmendmentIn):
    item, _ = await svc.amend(db(request), who, request.match_info["code"], summary=body.summary, body=body.body,
                              document_ids=body.document_ids, notifier=_notifier(request),
                              periods=_periods(request))
    return _amendment_out(item)


# ---- OCDS ----------------------------------------------------------------------------------------------------

def _ocid_prefix(request: web.Request) -> str:
    return request.app[SETTINGS].extra.get(OCID_PREFIX_KEY, DEFAULT_OCID_PREFIX)


def _ocds_response(package: dict) -> web.Response:
    return web.Response(text=ocds.to_json(package), content_type="application/json", charset="utf-8")


@api.get("/api/v1/tenders/{code}/ocds", summary="The tender's OCDS 1.1 record package", auth=False,
         errors=(404,))
async def tender_record(request: web.Request):
    session = db(request)
    tender = await svc.visible_tender(session, request.match_info["code"], principal(request))
    snapshot = await svc.ocds_snapshot(session, tender, _base(request))
    rel = ocds.release(snapshot, _ocid_prefix(request))
    now = await db_now(session)
    return _ocds_response(ocds.record_package([[rel]], f"{_base(request)}{request.path}", now, PUBLISHER))


@api.get("/api/v1/ocds/releases", summary="OCDS 1.1 release packages of public tenders by last update",
         query=ReleasesQuery, auth=False, errors=(400, 422))
async def releases(request: web.Request, query: ReleasesQuery):
    session = db(request)
    after = None
    if query.cursor:
        cur = decode_cursor(query.cursor, "updated")
        try:
            after = (datetime.fromisoformat(cur.key), cur.id)
        except ValueError as err:
            raise BadRequest("the cursor is not one this listing issued", code="invalid_cursor") from err
    tenders = await svc.tenders_updated(session, since=query.since, until=query.until, after=after,
                                        limit=query.limit)
    next_cursor = None
    if len(tenders) > query.limit:
        tenders = tenders[:query.limit]
        next_cursor = encode_cursor(Cursor("updated", tenders[-1].updated_at.isoformat(), tenders[-1].id))
    prefix, base = _ocid_prefix(request), _base(request)
    rels = [ocds.release(await svc.ocds_snapshot(session, t, base), prefix) for t in tenders]
    now = await db_now(session)
    uri = f"{base}{request.path_qs}"
    if not rels:
        body = {"uri": uri, "version": ocds.OCDS_VERSION, "publishedDate": ocds.iso(now),
                "publisher": {"name": PUBLISHER}, "releases": []}
    else:
        body = ocds.release_package(rels, uri, now, PUBLISHER)
    headers = {}
    if next_cursor:
        body["links"] = {"next": f"{base}{request.path}?{_next_query(request, next_cursor)}"}
        headers["Link"] = f'<{body["links"]["next"]}>; rel="next"'
    response = _ocds_response(body)
    response.headers.update(headers)
    return response


def _next_query(request: web.Request, cursor: str) -> str:
    params = {k: v for k, v in request.query.items() if k != "cursor"}
    params["cursor"] = cursor
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())

