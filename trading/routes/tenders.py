"""HTTP endpoints of tenders: drafts, publication, cancellation and amendments, the tender's detail, its documents,
bidder registration and clarifications."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from core.errors import PayloadTooLarge, UnsupportedMediaType
from core.identity_models import Organisation
from core.notifications import InAppNotifier
from core.storage import Storage
from trading import documents, loaders, participation, statutory, tenders
from trading.access import may_manage, require_manager
from trading.demo import seed_demo  # noqa: F401  (the demo hook, found by name)
from trading.documents import clean_filename
from trading.models import Amendment, Clarification, Tender, TenderDocument
from trading.schemas import (AmendmentIn, AmendmentOut, AnswerIn, CancelIn, CategoryOut, ClarificationOut,
                             DocumentOut, LotOut, OrganisationRef, QuestionIn, RegistrationOut, TenderIn, TenderOut,
                             TenderPatch, UploadQuery)
from web.api import Api
from web.keys import NOTIFIER, SETTINGS, Principal, db, principal

log = logging.getLogger(__name__)

api = Api("trading")



def register_jobs(app: web.Application, registry: Any) -> None:
    """The tender close job (published -> closed at the bid deadline, by the database clock)."""
    registry.register(tenders.CLOSE_JOB, tenders.close_bidding)


def _storage(request: web.Request) -> Storage:
    return Storage(request.app[SETTINGS].storage_dir)


def _periods(request: web.Request) -> statutory.Periods:
    """Whether the statutory period minimums apply (BIDROOM_STATUTORY_PERIODS, on unless switched off)."""
    return statutory.Periods(request.app[SETTINGS].statutory_periods)


def _notifier(request: web.Request):
    return request.app.get(NOTIFIER) or InAppNotifier()


def _base(request: web.Request) -> str:
    return request.app[SETTINGS].public_url.rstrip("/")


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


def _org_ref(org: Organisation | None) -> OrganisationRef | None:
    return OrganisationRef(organisation_id=org.public_id, name=org.name) if org is not None else None


async def _tender_out(request: web.Request, tender: Tender, who: Principal | None) -> TenderOut:
    session = db(request)
    orgs = await tenders.organisations(session, [tender.tenderer_id, tender.agent_id,
                                                 tender.supervisor_organisation_id])
    tenderer = orgs[tender.tenderer_id]
    agent = orgs.get(tender.agent_id) if tender.agent_id else None
    lots = await tenders.lots_of(session, tender.id)
    mine = await participation.my_registrations(session, tender, who.organisation_id) if who is not None else []
    return TenderOut(
        code=tender.code, title=tender.title, title_en=tender.title_en, description=tender.description,
        status=tender.status,
        category=CategoryOut.of(tender.family, tender.subtype), method=tender.method, region_code=tender.region_code,
        budget=tender.budget, currency=tender.currency,
        tenderer=OrganisationRef(organisation_id=tenderer.public_id, name=tenderer.name),
        agent=OrganisationRef(organisation_id=agent.public_id, name=agent.name) if agent else None,
        supervisor_organisation=_org_ref(orgs.get(tender.supervisor_organisation_id)),
        evaluation=tender.evaluation, published_at=tender.published_at,
        clarification_end_at=tender.clarification_end_at, bid_deadline_at=tender.bid_deadline_at,
        opening_at=tender.opening_at, key_threshold=tender.key_threshold, key_holder_count=tender.key_holder_count,
        age_recipient=tender.age_recipient,
        lots=[LotOut(lot_id=lot.public_id, lot_no=lot.lot_no, title=lot.title, budget=lot.budget) for lot in lots],
        documents=[_document_out(request, d) for d in await documents.documents_of(session, tender.id)],
        amendments=[_amendment_out(a) for a in await tenders.amendments_of(session, tender.id)],
        my_registrations=mine, updated_at=tender.updated_at)


# ---- tenders -------------------------------------------------------------------------------------------------

@api.post("/api/v1/tenders", summary="Draft a tender (招标项目) with lots, evaluation method and timeline",
          body=TenderIn, response=TenderOut, status=201, roles=("agent",), errors=(404, 409, 422))
async def create_tender(request: web.Request, who: Principal, body: TenderIn):
    tender = await tenders.create_tender(db(request), who, body.model_dump())
    return await _tender_out(request, tender, who)


@api.get("/api/v1/tenders/{code}", summary="A tender's public detail (drafts: their agent only)",
         response=TenderOut, auth=False, errors=(404,))
async def get_tender(request: web.Request):
    who = principal(request)
    tender = await loaders.visible_tender(db(request), request.match_info["code"], who)
    return await _tender_out(request, tender, who)


@api.patch("/api/v1/tenders/{code}", summary="Edit a draft tender", body=TenderPatch, response=TenderOut,
           roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def edit_tender(request: web.Request, who: Principal, body: TenderPatch):
    tender = await tenders.update_draft(db(request), who, request.match_info["code"], body.model_dump(exclude_unset=True))
    return await _tender_out(request, tender, who)


@api.post("/api/v1/tenders/{code}/publish", summary="Publish a draft: seal key, announce, schedule the close",
          response=TenderOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def publish_tender(request: web.Request, who: Principal):
    tender = await tenders.publish(db(request), who, request.match_info["code"], periods=_periods(request))
    return await _tender_out(request, tender, who)


@api.post("/api/v1/tenders/{code}/cancel", summary="Cancel a tender (终止) with a reason", body=CancelIn,
          response=TenderOut, roles=("agent", "admin"), errors=(403, 404, 409))
async def cancel_tender(request: web.Request, who: Principal, body: CancelIn):
    tender = await tenders.cancel(db(request), who, request.match_info["code"], body.reason, _notifier(request))
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
    tender = await loaders.get_tender(session, request.match_info["code"])
    require_manager(tender, who)
    documents.check_document_upload(tender, query.document_type)
    filename = clean_filename(query.filename or request.headers.get("X-Filename"))
    limit = request.app[SETTINGS].max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the document exceeds {limit} bytes", code="upload_too_large",
                                  details={"limit_bytes": limit})
    stored = await documents.store_upload(request.content.iter_chunked(64 * 1024), _storage(request),
                                    filename, limit)
    doc = await documents.add_document(session, who, tender, stored, title=query.title or filename, filename=filename,
                                 document_type=query.document_type)
    return _document_out(request, doc)


@api.get("/api/v1/documents/{document_id}", summary="Download a tender document (public once published)",
         auth=False, content_type="application/octet-stream", errors=(404,))
async def download_document(request: web.Request):
    doc, _ = await documents.get_document(db(request), request.match_info["document_id"], principal(request))
    path = _storage(request).path(documents.document_key(doc.sha256))
    return web.FileResponse(path, headers={
        "Content-Type": doc.media_type, "ETag": f'"{doc.sha256}"', "X-Content-SHA256": doc.sha256,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})


# ---- registration --------------------------------------------------------------------------------------------

@api.post("/api/v1/lots/{lot_id}/registrations", summary="Register your organisation for a lot (投标报名)",
          response=RegistrationOut, status=201, roles=("bidder",), errors=(403, 404, 409))
async def register(request: web.Request, who: Principal):
    reg, lot, tender = await participation.register_for_lot(db(request), who, request.match_info["lot_id"])
    org = (await tenders.organisations(db(request), [reg.organisation_id]))[reg.organisation_id]
    return RegistrationOut(tender=tender.code, lot_id=lot.public_id, organisation_id=org.public_id,
                           registered_at=reg.registered_at)


# ---- clarifications ------------------------------------------------------------------------------------------

async def _clarification_out(request: web.Request, item: Clarification, mine: bool, tender: Tender,
                             who: Principal | None) -> ClarificationOut:
    asked_by = None
    if may_manage(tender, who):
        org = (await tenders.organisations(db(request), [item.asked_by_org_id]))[item.asked_by_org_id]
        asked_by = OrganisationRef(organisation_id=org.public_id, name=org.name)
    return ClarificationOut(clarification_id=item.public_id, question=item.question, asked_at=item.asked_at,
                            answer=item.answer, answered_at=item.answered_at, mine=mine, asked_by=asked_by)


@api.post("/api/v1/tenders/{code}/clarifications", summary="Ask a question (澄清); others never see who asked",
          body=QuestionIn, response=ClarificationOut, status=201, roles=("bidder",), errors=(403, 404, 409))
async def ask(request: web.Request, who: Principal, body: QuestionIn):
    item = await participation.ask(db(request), who, request.match_info["code"], body.question)
    return ClarificationOut(clarification_id=item.public_id, question=item.question, asked_at=item.asked_at,
                            answer=None, answered_at=None, mine=True)


@api.get("/api/v1/tenders/{code}/clarifications", summary="Answered questions; your own; all for the agent",
         response=list[ClarificationOut], auth=False, errors=(404,))
async def clarifications(request: web.Request):
    who = principal(request)
    tender = await loaders.visible_tender(db(request), request.match_info["code"], who)
    return [await _clarification_out(request, item, mine, tender, who)
            for item, mine in await participation.clarifications_for(db(request), tender, who)]


@api.post("/api/v1/clarifications/{clarification_id}/answer", summary="Answer a question publicly",
          body=AnswerIn, response=ClarificationOut, roles=("agent", "admin"), errors=(403, 404, 409))
async def answer(request: web.Request, who: Principal, body: AnswerIn):
    item, tender = await participation.answer(db(request), who, request.match_info["clarification_id"], body.answer,
                                    _notifier(request))
    return await _clarification_out(request, item, False, tender, who)


@api.post("/api/v1/tenders/{code}/amendments", summary="Publish an amendment (澄清或修改); may extend the deadline",
          body=AmendmentIn, response=AmendmentOut, status=201, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def amend(request: web.Request, who: Principal, body: AmendmentIn):
    item, _ = await tenders.amend(db(request), who, request.match_info["code"], summary=body.summary, body=body.body,
                              document_ids=body.document_ids, notifier=_notifier(request),
                              periods=_periods(request))
    return _amendment_out(item)
