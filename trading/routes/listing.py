"""HTTP endpoints of the public listing: the tender search with its page cache, the Atom feed of new tenders,
and OCDS (a tender's record package, the release packages by last update)."""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, AsyncIterator
from urllib.parse import quote

from aiohttp import web

from core.db import asyncpg_dsn, db_now
from core.errors import BadRequest
from trading import ocds
from trading.codes import load_categories
from trading.feed import FeedEntry, atom_feed
from trading.listing import cache as listing_cache
from trading.listing.cursors import Cursor, decode_cursor, encode_cursor
from trading.listing.query import ListingFilter, latest_published, list_tenders as list_page, tenders_updated
from trading.loaders import visible_tender
from trading.ocds_snapshot import ocds_snapshot
from trading.schemas import CategoryOut, ListingQuery, ReleasesQuery, TenderPage
from web.api import Api, json_body
from web.keys import PG_POOL, SETTINGS, db, principal

api = Api("trading")
LISTING_CACHE = web.AppKey("trading.listing_cache", listing_cache.ListingCache)
OCID_PREFIX_KEY = "ocid_prefix"  # settings.extra
DEFAULT_OCID_PREFIX = "ocds-bidrm0"
PUBLISHER = "bidroom 公共资源交易平台"


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """The public listing's page cache and, unless it is switched off, the connection that hears about changes."""
    settings = app[SETTINGS]
    cache = listing_cache.ListingCache(settings.listing_cache_s)
    app[LISTING_CACHE] = cache
    if settings.listing_cache_s <= 0:
        yield
        return
    async with listing_cache.listening(cache, asyncpg_dsn(settings.database_url)):
        yield


def _base(request: web.Request) -> str:
    return request.app[SETTINGS].public_url.rstrip("/")


@functools.lru_cache(maxsize=64)
def _category_json(family: str, subtype: str) -> dict[str, str]:
    return CategoryOut.of(family, subtype).model_dump()


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _summary(row: Any) -> dict[str, Any]:
    """A listing item in the shape of TenderSummaryOut, built as a dict: pydantic per row cost more than the SQL."""
    return {"code": row["code"], "title": row["title"], "title_en": row["title_en"], "status": row["status"],
            "category": _category_json(row["family"], row["subtype"]), "method": row["method"],
            "region_code": row["region_code"], "budget": str(row["budget"]), "currency": row["currency"],
            "tenderer": row["tenderer_name"], "published_at": _iso(row["published_at"]),
            "clarification_end_at": _iso(row["clarification_end_at"]),
            "bid_deadline_at": _iso(row["bid_deadline_at"]), "opening_at": _iso(row["opening_at"])}


@api.get("/api/v1/tenders", summary="Public tenders: search (Chinese or English), filters, keyset pages",
         query=ListingQuery, response=TenderPage, auth=False, errors=(400, 404, 422))
async def list_tenders(request: web.Request, query: ListingQuery):
    body = await listing_body(request.app, query, request.rel_url.raw_query_string)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def listing_body(app: web.Application, query: ListingQuery, cache_key: str) -> bytes:
    """The JSON body of one listing page, through the page cache under `cache_key` (the query string): the API
    and the public tender list page share both."""
    cache: listing_cache.ListingCache = app[LISTING_CACHE]

    async def page() -> bytes:
        rows, next_cursor = await list_page(app[PG_POOL], ListingFilter(**query.model_dump()))
        return json_body({"items": [_summary(r) for r in rows], "next_cursor": next_cursor})
    return await cache.load(cache_key, page)


@api.get("/api/v1/tenders/feed.atom", summary="Atom feed of newly published tenders", auth=False,
         content_type="application/atom+xml")
async def feed(request: web.Request):
    rows = await latest_published(request.app[PG_POOL], limit=50)
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


# ---- OCDS ----------------------------------------------------------------------------------------------------

def _ocid_prefix(request: web.Request) -> str:
    return request.app[SETTINGS].extra.get(OCID_PREFIX_KEY, DEFAULT_OCID_PREFIX)


def _ocds_response(package: dict) -> web.Response:
    return web.Response(text=ocds.to_json(package), content_type="application/json", charset="utf-8")


@api.get("/api/v1/tenders/{code}/ocds", summary="The tender's OCDS 1.1 record package", auth=False,
         errors=(404,))
async def tender_record(request: web.Request):
    session = db(request)
    tender = await visible_tender(session, request.match_info["code"], principal(request))
    snapshot = await ocds_snapshot(session, tender, _base(request))
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
    tenders = await tenders_updated(session, since=query.since, until=query.until, after=after,
                                        limit=query.limit)
    next_cursor = None
    if len(tenders) > query.limit:
        tenders = tenders[:query.limit]
        next_cursor = encode_cursor(Cursor("updated", tenders[-1].updated_at.isoformat(), tenders[-1].id))
    prefix, base = _ocid_prefix(request), _base(request)
    rels = [ocds.release(await ocds_snapshot(session, t, base), prefix) for t in tenders]
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
