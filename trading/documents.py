"""Tender documents (招标文件, 图纸, 澄清文件…): checked by their magic bytes as they stream in, stored
content-addressed through core.storage, public once the tender is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from core.ids import public_id
from core.principal import Principal
from core.storage import Storage, StorageLimitExceeded, content_key
from evidence import ledger_service as ledger
from trading.access import may_manage
from trading.lifecycle import TenderStatus
from trading.models import Tender, TenderDocument


# ---- file types ---------------------------------------------------------------------------------------------

SNIFF_BYTES = 8
_OOXML = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ALLOWED_DOCUMENT_TYPES = ("PDF", "ZIP (docx, xlsx)", "PNG", "JPEG")


def sniff_document_type(head: bytes, filename: str) -> str:
    """The media type of an upload judged by its first bytes (the name only tells docx from xlsx from zip).

    Refuses everything but PDF, ZIP containers, PNG and JPEG with 415 unsupported_document_type.
    """
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"PK\x03\x04"):
        suffix = filename[filename.rfind("."):].lower() if "." in filename else ""
        return _OOXML.get(suffix, "application/zip")
    raise UnsupportedMediaType("documents must be PDF, ZIP (docx, xlsx), PNG or JPEG", code="unsupported_document_type",
                               details={"allowed": list(ALLOWED_DOCUMENT_TYPES), "filename": filename})


def clean_filename(raw: str | None) -> str:
    """A display filename without directories or control characters; refuses an empty one."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name or name in (".", ".."):
        raise BadRequest("give the file's name in ?filename= or the X-Filename header", code="filename_required")
    return name[:255]



async def documents_of(session: AsyncSession, tender_id: int) -> list[TenderDocument]:
    return list((await session.execute(select(TenderDocument).where(TenderDocument.tender_id == tender_id)
                                       .order_by(TenderDocument.id))).scalars())

# ---- documents -----------------------------------------------------------------------------------------------

DOCUMENTS_KIND = "documents"  # content-addressed: documents/ab/abcdef… (core.storage.content_key)


@dataclass(frozen=True)
class StoredFile:
    """An upload written to content-addressed storage."""

    key: str
    sha256: str
    size_bytes: int
    media_type: str


def document_key(sha256: str) -> str:
    """The storage key of a document with this hash."""
    return content_key(DOCUMENTS_KIND, sha256)


async def store_upload(chunks: AsyncIterator[bytes], storage: Storage, filename: str, limit: int) -> StoredFile:
    """Stream an upload into storage, hashing as it goes; the type is judged by magic bytes before much is written.

    Refuses 415 unsupported_document_type, 413 upload_too_large and 422 empty_document; nothing is stored then.
    """
    head = bytearray()
    media_type: str | None = None

    def sniff(chunk: bytes) -> None:
        nonlocal media_type
        if media_type is None:
            head.extend(chunk[:SNIFF_BYTES - len(head)])
            if len(head) >= SNIFF_BYTES:
                media_type = sniff_document_type(bytes(head), filename)

    async def not_empty() -> AsyncIterator[bytes]:
        empty = True
        async for chunk in chunks:
            if chunk:
                empty = False
                yield chunk
        if empty:
            raise Unprocessable("the document is empty", code="empty_document")
        if media_type is None:  # shorter than the magic bytes: judge what there is, before it is stored
            sniff_document_type(bytes(head), filename)

    try:
        stored = await storage.put_stream(not_empty(), kind=DOCUMENTS_KIND, limit=limit, on_chunk=sniff)
    except StorageLimitExceeded as err:
        raise PayloadTooLarge(f"the document exceeds {limit} bytes", code="upload_too_large",
                              details={"limit_bytes": limit}) from err
    return StoredFile(stored.key, stored.sha256, stored.size, media_type or sniff_document_type(bytes(head), filename))


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


async def add_document(session: AsyncSession, who: Principal, tender: Tender, stored: StoredFile, *, title: str,
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


async def get_document(session: AsyncSession, doc_public_id: str,
                       who: Principal | None) -> tuple[TenderDocument, Tender]:
    """A document and its tender; documents of drafts exist only for the tender's agent (else 404)."""
    row = (await session.execute(select(TenderDocument, Tender).join(Tender, Tender.id == TenderDocument.tender_id)
                                 .where(TenderDocument.public_id == doc_public_id))).one_or_none()
    if row is None or (row[1].status == TenderStatus.DRAFT and not may_manage(row[1], who)):
        raise NotFound(f"no document {doc_public_id}", code="document_not_found",
                       details={"document": doc_public_id})
    return row[0], row[1]


