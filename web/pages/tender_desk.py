"""The agent's tender documents and clarifications (澄清) on the tender's desk.

- Documents: a multipart form (title, type, file) streamed into the same services as
  `POST /api/v1/tenders/{code}/documents`: the type judged by magic bytes (415), the size limit (413), a draft or
  published tender only (409), the ledger entry. static/js/upload.js sends the same form with a progress bar.
- Clarifications: every question asked, with the organisation that asked it (only the agent sees that), and a
  form to answer each publicly through `POST /api/v1/clarifications/{id}/answer`; the answer is published to
  every registered bidder without saying who asked (政府采购货物和服务招标投标管理办法 第27条).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aiohttp import web

from core.errors import DomainError, Unprocessable
from trading import documents, loaders
from trading.access import require_manager
from trading.routes import tenders as tender_routes
from trading.schemas import AnswerIn
from web.keys import SETTINGS, db
from web.pages.i18n import N_
from web.pages.routing import FormError, Pages, act, as_refusal, see_other, validated

pages = Pages()

DOCUMENT_TYPE_LABELS = {
    "biddingDocuments": N_("Tender documents (招标文件)"),
    "tenderNotice": N_("Tender notice (招标公告)"),
    "technicalSpecifications": N_("Technical specifications"),
    "clarifications": N_("Clarifications"),
    "evaluationCriteria": N_("Evaluation criteria"),
    "eligibilityCriteria": N_("Eligibility criteria"),
    "billOfQuantity": N_("Bill of quantities (工程量清单)"),
    "other": N_("Other"),
}
FIELD_LIMIT = 1000  # bytes of a text field read from the multipart form


async def desk_extras(request: web.Request, who, tender) -> dict[str, Any]:
    """What the desk shows of documents and questions to the tender's managers."""
    questions = await tender_routes.clarifications(request)
    return {"document_types": DOCUMENT_TYPE_LABELS, "questions": questions,
            "open_questions": sum(1 for q in questions if q.answer is None),
            "documents_open": tender.status in ("draft", "published")}


def _desk(request: web.Request, who):
    from web.pages.agent import desk_context
    return desk_context(request, who)


async def _read_form(request: web.Request):
    """The text fields, and the file part still unread (the form sends it last)."""
    fields: dict[str, str] = {}
    reader = await request.multipart()
    async for part in reader:
        if part.filename is not None:
            return fields, part
        if part.name:
            fields[part.name] = (await part.read(decode=True))[:FIELD_LIMIT].decode("utf-8", "replace").strip()
    return fields, None


@pages.post("/manage/tenders/{code}/documents", roles=("agent",))
async def upload(request: web.Request, who):
    code = request.match_info["code"]
    session = db(request)
    try:
        tender = await loaders.get_tender(session, code)
        require_manager(tender, who)
        fields, part = await _read_form(request)
        document_type = fields.get("document_type") or "biddingDocuments"
        documents.check_document_upload(tender, document_type)
        if part is None:
            raise Unprocessable("choose a file to upload", code="empty_upload")
        # browsers escape '"' and line breaks in a multipart file name as %22, %0D, %0A (and some clients every
        # non-ASCII byte): read it back before it is cleaned
        filename = documents.clean_filename(unquote(part.filename))

        async def chunks():
            while chunk := await part.read_chunk(256 * 1024):
                yield chunk
        stored = await documents.store_upload(chunks(), tender_routes._storage(request), filename,
                                              request.app[SETTINGS].max_upload_bytes)
        title = fields.get("title") or filename
        await documents.add_document(session, who, tender, stored, title=title[:300], filename=filename,
                                     document_type=document_type)
    except DomainError as err:
        await session.rollback()
        raise FormError(as_refusal(err), "manage_tender.html", await _desk(request, who)) from err
    return see_other(f"/manage/tenders/{code}#documents")


@pages.post("/manage/tenders/{code}/clarifications/{clarification_id}/answer", roles=("agent",))
async def answer(request: web.Request, who):
    form = await request.post()
    body = {"answer": str(form.get("answer", "")).strip()}

    return await act(request, lambda: tender_routes.answer(request, who=who, body=validated(AnswerIn, body)), template="manage_tender.html", context=lambda: _desk(request, who),
                     then=f"/manage/tenders/{request.match_info['code']}#clarifications")
