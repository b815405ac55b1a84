"""Record download, public verification, and the PKI files outsiders need to validate signatures offline."""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import AsyncIterator

from aiohttp import web
from pydantic import BaseModel, Field

from core import clients
from core.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType, Unprocessable
from core.ratelimit import RateLimiter
from evidence import records_service as svc
from evidence.pki import Pki
from evidence.signing import check_pdf_header
from evidence.verify_pool import VerifyPool
from evidence.records_models import Record
from web.api import Api
from web.keys import LEDGER_SIGNER, RECORDS, SESSIONS, SETTINGS, Principal, db, principal

api = Api("records")
PDF_TYPES = ("application/pdf", "application/octet-stream")


VERIFY_POOL = web.AppKey("records.verify_pool", VerifyPool)
VERIFY_LIMITER = web.AppKey("records.verify_limiter", RateLimiter)


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create or load the platform PKI (blocking key work runs in a thread) and the records context; the
    bounded validation pool and the per-client limit of the public verification upload."""
    settings = app[SETTINGS]
    pki = await asyncio.to_thread(Pki.load_or_create, settings.keys_dir / "pki", public_url=settings.public_url)
    app[RECORDS] = svc.RecordsContext(pki=pki, directory=settings.storage_dir,
                                                  public_url=settings.public_url,
                                                  ledger_signer=app[LEDGER_SIGNER], sessions=app[SESSIONS],
                                                  statutory_periods=settings.statutory_periods)
    app[VERIFY_POOL] = VerifyPool(settings.verify_workers, settings.verify_queue)
    app[VERIFY_LIMITER] = RateLimiter(settings.verify_per_minute, code="verify_rate_limited")
    yield


def records(request: web.Request) -> svc.RecordsContext:
    return request.app[RECORDS]


class SignerOut(BaseModel):
    field: str
    public_id: str
    name: str
    at: str


class RecordInfo(BaseModel):
    record_no: str
    kind: str
    entity: str
    status: str
    sha256: str = Field(description="SHA-256 of the current (after sealing: final) PDF bytes")
    size: int
    signers: list[SignerOut] | None = Field(description="null when the record is restricted")
    checkpoint_size: int | None
    created_at: datetime
    sealed_at: datetime | None
    download: str


class RecordQuery(BaseModel):
    entity: str = Field(min_length=3, max_length=128)


def info(record: Record, *, with_signers: bool) -> RecordInfo:
    return RecordInfo(record_no=record.record_no, kind=record.kind, entity=record.entity, status=record.status,
                      sha256=record.sha256, size=record.size,
                      signers=record.signers if with_signers else None, checkpoint_size=record.checkpoint_size,
                      created_at=record.created_at, sealed_at=record.sealed_at,
                      download=f"/api/v1/records/{record.record_no}")


@api.get("/api/v1/records/{record_no}", summary="Download a record PDF (access depends on its kind)",
         auth=False, content_type="application/pdf", errors=(401, 403, 404))
async def download(request: web.Request):
    record = await svc.get_record(db(request), request.match_info["record_no"])
    await svc.check_access(db(request), record, principal(request))
    data = await records(request).load(record.storage_key)
    return web.Response(body=data, content_type="application/pdf", headers={
        # record numbers are [A-Z0-9-] only, so the filename needs no escaping
        "Content-Disposition": f'attachment; filename="{record.record_no}.pdf"',
        "Cache-Control": "private, max-age=0", "ETag": f'"{record.sha256}"'})


@api.get("/api/v1/records/{record_no}/verification", summary="What the archive holds for a record (QR target); "
         "records about an entity that is not visible to the caller now are refused", response=RecordInfo,
         auth=False, errors=(403, 404))
async def verification(request: web.Request):
    record = await svc.get_record(db(request), request.match_info["record_no"])
    who = principal(request)
    if not await svc.entity_visible(db(request), record.entity, who):
        raise Forbidden("you may not see this record now", code="record_restricted",
                        details={"record_no": record.record_no})
    return info(record, with_signers=await svc.may_read(db(request), record, who))


@api.get("/api/v1/records", summary="Records about one entity, e.g. tender:ZS-2026-ZFCG-00042",
         query=RecordQuery, roles=svc.STAFF_ROLES)
async def list_for_entity(request: web.Request, who: Principal, query: RecordQuery):
    """Only the records the caller may read now; a record about an entity hidden from the caller is left out."""
    return [info(r, with_signers=True) for r in await svc.records_about(db(request), query.entity, who)]


async def read_limited(request: web.Request, limit: int) -> bytes:
    """Read an upload while counting bytes ourselves: client_max_size does not bound streamed reads."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("the upload exceeds the limit", code="upload_too_large",
                                  details={"limit_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


@api.post("/api/v1/records/verify", summary="Check an uploaded PDF's signatures and whether it is an archived record "
          "(limited per client address; 429 with Retry-After when busy or over the limit)",
          auth=False, request_content_type="application/pdf", errors=(403, 413, 415, 422, 429))
async def verify_upload(request: web.Request):
    """Bounded for anonymous callers: a per-client rate limit and a place in the bounded pool, both taken before
    the body is read; a size limit (BIDROOM_VERIFY_MAX_BYTES); validation in a worker process with the inflation
    and structure caps of evidence.signing; and no database work until the validation is done (the archive
    lookup comes last)."""
    settings = request.app[SETTINGS]
    if request.content_type not in PDF_TYPES:
        raise UnsupportedMediaType("send the PDF as application/pdf", code="unsupported_media_type")
    request.app[VERIFY_LIMITER].hit(clients.client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), settings.trusted_proxies))
    limit = settings.verify_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("the upload exceeds the limit", code="upload_too_large",
                              details={"limit_bytes": limit})
    pool, ctx = request.app[VERIFY_POOL], records(request)
    async with pool.slot():  # at most verify_queue uploads are buffered and validated at once
        data = await read_limited(request, limit)
        if not data:
            raise Unprocessable("the upload is empty", code="not_a_pdf")
        check_pdf_header(data)
        report = await pool.verify(data, ctx.pki.root_certificate.dump(), ctx.pki.crl_der())
    return await svc.verify_upload(db(request), ctx, data, who=principal(request), report=report)


@api.get("/api/v1/pki/root.pem", summary="The platform root certificate (trust anchor for record signatures)",
         auth=False, content_type="application/x-pem-file")
async def root_pem(request: web.Request):
    return web.Response(body=records(request).pki.root_cert_pem(), content_type="application/x-pem-file")


@api.get("/api/v1/pki/crl", summary="The current certificate revocation list (DER)", auth=False,
         content_type="application/pkix-crl")
async def crl(request: web.Request):
    return web.Response(body=records(request).pki.crl_der(), content_type="application/pkix-crl")
