"""HTTP endpoints through which the opened bids reach the committee: the list of the lot's opened bids with
their documents, and a document's download. Members who have checked in read them while the session
evaluates; everyone else is refused (evaluation.access.may_read_bids). Each download is on the ledger
(evaluation.materials)."""
from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel

from core.principal import Principal
from evaluation import materials
from web.api import Api
from web.keys import SESSIONS, SETTINGS, db

api = Api("evaluation")
CHUNK = 256 * 1024


class BidDocumentOut(BaseModel):
    n: int
    name: str
    size: int
    sha256: str
    url: str


class SessionBidOut(BaseModel):
    bid_id: str
    bidder: str
    bidder_name: str
    price: Decimal | None
    duration_days: int | None
    documents: list[BidDocumentOut]


def _bids_url(session_id: str) -> str:
    return f"/api/v1/evaluation-sessions/{session_id}/bids"


@api.get("/api/v1/evaluation-sessions/{session_id}/bids",
         summary="The opened bids of the session's lot with their documents (names, sizes, SHA-256): for the "
                 "committee's members who have checked in, while the session evaluates",
         response=SessionBidOut, errors=(403, 404, 409))
async def session_bids(request: web.Request, who: Principal):
    sid = request.match_info["session_id"]
    bids = await materials.opened_bids(db(request), who=who, session_public_id=sid)
    return [SessionBidOut(bid_id=b.bid_public_id, bidder=b.organisation_public_id, bidder_name=b.name,
                          price=b.price, duration_days=b.duration_days,
                          documents=[BidDocumentOut(n=d.n, name=d.name, size=d.size, sha256=d.sha256,
                                                    url=f"{_bids_url(sid)}/{b.bid_public_id}/documents/{d.n}")
                                     for d in b.documents]) for b in bids]


@api.get("/api/v1/evaluation-sessions/{session_id}/bids/{bid_id}/documents/{n:\\d+}",
         summary="Download a document of an opened bid (members who have checked in; every read is on the ledger)",
         content_type="application/octet-stream", errors=(403, 404, 409))
async def download_bid_document(request: web.Request, who: Principal):
    settings = request.app[SETTINGS]
    # a GET runs without a transaction; the read is recorded in one of its own, committed before streaming
    async with request.app[SESSIONS]() as session, session.begin():
        read = await materials.read_document(session, who=who, session_public_id=request.match_info["session_id"],
                                             bid_public_id=request.match_info["bid_id"],
                                             n=int(request.match_info["n"]), storage_dir=settings.storage_dir,
                                             keys_dir=settings.keys_dir)
    doc = read.document
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(doc.size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.name.rsplit('/', 1)[-1])}",
        "X-Content-SHA256": doc.sha256, "ETag": f'"{doc.sha256}"', "Cache-Control": "no-store"})
    await response.prepare(request)
    view = memoryview(read.data)
    for start in range(0, len(view), CHUNK):
        await response.write(view[start:start + CHUNK])
    await response.write_eof()
    return response
