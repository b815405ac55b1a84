"""Public pages: the tender list (the API's listing and page cache), a tender's detail with its lifecycle
timeline, results and award notices, record and draw verification, and the ledger checkpoint."""
from __future__ import annotations

import json
from collections import OrderedDict
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup
from pydantic import ValidationError

from core.clock import db_now
from core.errors import DomainError, PayloadTooLarge, Unprocessable
from evidence import ledger_service as ledger
from evidence import records_service
from expert_pool import draw_verify
from trading import results
from trading.codes import load_categories
from trading.lifecycle import TenderStatus
from trading.routes import bids as bid_routes
from trading.routes import listing as listing_routes
from trading.routes import tenders as tender_routes
from trading.schemas import ListingQuery, TenderOut
from web.api import RequestValidationFailed
from web.keys import LEDGER_SIGNER, RECORDS, db
from web.pages import i18n
from web.pages.i18n import N_, gettext
from web.pages.routing import FormError, Pages, base_context, see_other

pages = Pages()

STATUS_LABELS = {
    "draft": N_("Draft"), "published": N_("Open for bids"), "closed": N_("Bidding closed"),
    "opening": N_("Opening"), "opened": N_("Opened"), "evaluating": N_("Under evaluation"),
    "candidates_published": N_("Candidates published"), "awarded": N_("Awarded"), "complete": N_("Complete"),
    "cancelled": N_("Cancelled"), "failed": N_("Failed"),
}
METHOD_LABELS = {"open": N_("Open tendering"), "invitational": N_("Invitational tendering"),
                 "competitive_negotiation": N_("Competitive negotiation"), "inquiry": N_("Request for quotations"),
                 "single_source": N_("Single source")}
LISTED_STATUSES = ("published", "closed", "opened", "evaluating", "candidates_published", "awarded", "cancelled",
                   "failed")
LISTING_FIELDS = ("q", "category", "status", "region", "budget_min", "budget_max", "sort", "cursor")


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS.get(status, status))


def category_label(family: str, subtype: str | None = None) -> str:
    catalogue = load_categories()
    zh = i18n.current() == "zh_CN"
    fam = catalogue.family(family)
    text = fam.zh if zh else fam.en
    if subtype:
        sub = catalogue.subtype(subtype)
        text += " · " + (sub.zh if zh else sub.en)
    return text


def families() -> list[tuple[str, str]]:
    catalogue = load_categories()
    return [(f.code, category_label(f.code)) for f in catalogue.families]


@pages.get("/")
async def home(request: web.Request, who):
    return see_other("/tenders")


async def listing_bytes(request: web.Request, params: dict[str, str]) -> bytes:
    """One page of the public listing through the API's query model, listing SQL and page cache (the same cache
    entries as GET /api/v1/tenders with the same query string)."""
    try:
        query = ListingQuery.model_validate(params)
    except ValidationError as err:
        raise RequestValidationFailed("query", err) from err
    return await listing_routes.listing_body(request.app, query, urlencode(params))


async def listing(request: web.Request, params: dict[str, str]) -> dict[str, Any]:
    return json.loads(await listing_bytes(request, params))


def card(item: dict[str, Any]) -> dict[str, Any]:
    """A listing item as the list shows it, in the reader's language."""
    english = i18n.current() != "zh_CN"
    return {"code": item["code"], "title": item["title_en"] if english and item["title_en"] else item["title"],
            "status": item["status"], "status_text": status_label(item["status"]),
            "category_text": category_label(item["category"]["family"], item["category"]["subtype"]),
            "tenderer": item["tenderer"], "budget": i18n.money(item["budget"], item["currency"]),
            "deadline": i18n.when(item["bid_deadline_at"])}


# The list's content depends only on the language, the query and the listing page's bytes, so its HTML is kept
# under exactly those: when any tender changes, the listing cache serves new bytes and the old entry is never
# hit again. (It halved the page's cost next to the API's, whose cached answer is the bytes themselves.)
LIST_HTML: OrderedDict[tuple, Markup] = OrderedDict()
LIST_HTML_SIZE = 256


def list_html(request: web.Request, params: dict[str, str], body: bytes) -> Markup:
    key = (i18n.current(), tuple(sorted(params.items())), body)
    html = LIST_HTML.get(key)
    if html is not None:
        LIST_HTML.move_to_end(key)
        return html
    page = json.loads(body)
    next_url = None
    if page["next_cursor"]:
        next_url = "/tenders?" + urlencode({**params, "cursor": page["next_cursor"]})
    first_url = "/tenders?" + urlencode({k: v for k, v in params.items() if k != "cursor"}) if "cursor" in params \
        else None
    html = Markup(aiohttp_jinja2.get_env(request.app).get_template("_tender_list.html").render(
        items=[card(item) for item in page["items"]], params=params, next_url=next_url, first_url=first_url,
        families=families(), statuses=[(s, status_label(s)) for s in LISTED_STATUSES], lang=i18n.current()))
    LIST_HTML[key] = html
    if len(LIST_HTML) > LIST_HTML_SIZE:
        LIST_HTML.popitem(last=False)
    return html


# A visitor who is not signed in sees nothing of their own on the list (the language switch is a link, the search
# a GET form), so the whole page is kept the same way for them.
PUBLIC_PAGES: OrderedDict[tuple, str] = OrderedDict()


@pages.get("/tenders", "tenders.html")
async def tender_list(request: web.Request, who):
    params = {k: request.query[k].strip() for k in LISTING_FIELDS if request.query.get(k, "").strip()}
    body = await listing_bytes(request, params)
    if who is not None:
        return {"list_html": list_html(request, params, body)}
    key = (i18n.current(), tuple(sorted(params.items())), body)
    text = PUBLIC_PAGES.get(key)
    if text is None:
        text = aiohttp_jinja2.render_string("tenders.html", request, {
            **base_context(request), "list_html": list_html(request, params, body),
            "path_qs": "/tenders?" + urlencode(params) if params else "/tenders"})
        PUBLIC_PAGES[key] = text
        if len(PUBLIC_PAGES) > LIST_HTML_SIZE:
            PUBLIC_PAGES.popitem(last=False)
    else:
        PUBLIC_PAGES.move_to_end(key)
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers={
        "Cache-Control": "no-cache", "Content-Language": i18n.HTML_LANG[i18n.current()]})


@pages.get("/results", "results.html")
async def results_list(request: web.Request, who):
    sections = []
    for status in ("candidates_published", "awarded"):
        page = await listing(request, {"status": status, "sort": "published", "limit": "20"})
        sections.append((status_label(status), page["items"], f"/tenders?status={status}&sort=published"))
    return {"sections": sections, "category_label": category_label}


# ---- a tender -----------------------------------------------------------------------------------------------

ORDER = [s.value for s in (TenderStatus.PUBLISHED, TenderStatus.CLOSED, TenderStatus.OPENING,
                           TenderStatus.OPENED, TenderStatus.EVALUATING, TenderStatus.CANDIDATES_PUBLISHED,
                           TenderStatus.AWARDED, TenderStatus.COMPLETE)]


def timeline(tender: TenderOut, now: datetime, candidates: list, awards: list) -> dict[str, Any]:
    """The lifecycle as steps for an inline SVG: each step's label, time, and whether it is done, current or
    to come (read from the tender's state; times from its timeline)."""
    reached = ORDER.index(tender.status) if tender.status in ORDER else None
    steps = [
        (N_("Published"), tender.published_at, "published"),
        (N_("Questions close"), tender.clarification_end_at, None),
        (N_("Bid deadline"), tender.bid_deadline_at, "closed"),
        (N_("Opening"), tender.opening_at, "opened"),
        (N_("Evaluation"), None, "evaluating"),
        (N_("Candidates"), candidates[0].publicity_ends_at if candidates else None, "candidates_published"),
        (N_("Award"), None, "awarded"),
    ]
    out = []
    for label, at, state in steps:
        if state is None:
            done = at is not None and at <= now
        else:
            done = reached is not None and reached >= ORDER.index(state)
        out.append({"label": gettext(label), "at": i18n.when(at) if at else "", "done": done})
    current = next((i for i, s in enumerate(out) if not s["done"]), None)
    width, left, step = 980, 60, 143
    for i, s in enumerate(out):
        s["x"] = left + i * step
        s["state"] = "done" if s["done"] else ("current" if i == current else "todo")
    ended = tender.status in ("cancelled", "failed")
    return {"steps": out, "width": width, "ended": ended, "ended_label": status_label(tender.status),
            "progress_x": out[current - 1]["x"] if current else (out[-1]["x"] if current is None else left)}


async def _optional(coro):
    try:
        return await coro
    except DomainError:
        return None


@pages.get("/tenders/{code}", "tender.html")
async def tender_detail(request: web.Request, who):
    tender: TenderOut = await tender_routes.get_tender(request)
    session = db(request)
    clarifications = await tender_routes.clarifications(request)
    candidates = await results.list_candidates(session, tender.code)
    awards = await results.list_awards(session, tender.code)
    opening = None
    opened = None
    if tender.status not in ("draft", "published", "closed"):
        opening = await _optional(bid_routes.get_opening(request))
        opened_out = await _optional(bid_routes.get_opened_bids(request))
        opened = opened_out.bids if opened_out else None
    now = await db_now(session)
    lots = {lot.lot_id: lot for lot in tender.lots}
    return {"t": tender, "clarifications": clarifications, "candidates": candidates, "awards": awards,
            "opening": opening, "opened": opened, "lots": lots,
            "timeline": timeline(tender, now, candidates, awards),
            "status_label": status_label, "category": category_label(tender.category.family,
                                                                     tender.category.subtype),
            "method_label": gettext(METHOD_LABELS.get(tender.method, tender.method)),
            "may_bid": who is not None and "bidder" in who.roles and tender.status == "published",
            "registered": set(tender.my_registrations or [])}


# ---- verification -------------------------------------------------------------------------------------------

async def read_multipart(request: web.Request, limit: int) -> tuple[dict[str, str], bytes | None]:
    """The text fields and the one file of a multipart form, counting the file's bytes against `limit`."""
    fields: dict[str, str] = {}
    data = None
    if not request.content_type.startswith("multipart/"):
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}, None
    reader = await request.multipart()
    async for part in reader:
        if part.filename is not None:
            chunks, size = [], 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge("the upload exceeds the limit", code="upload_too_large",
                                          details={"limit_bytes": limit})
                chunks.append(chunk)
            if size:
                data = b"".join(chunks)
        elif part.name:
            fields[part.name] = (await part.read(decode=True))[:1_000_000].decode("utf-8", "replace")
    return fields, data


@pages.get("/verify/record", "verify_record.html")
async def verify_record_form(request: web.Request, who):
    return {}


@pages.post("/verify/record", "verify_record.html")
async def verify_record(request: web.Request, who):
    _, data = await read_multipart(request, 32 * 1024 * 1024)
    try:
        if not data:
            raise Unprocessable("the upload is empty", code="not_a_pdf")
        report = await records_service.verify_upload(db(request), request.app[RECORDS], data, who=who)
    except DomainError as err:
        raise FormError(err, "verify_record.html", {}) from err
    return {"report": report}


@pages.get("/verify/draw", "verify_draw.html")
async def verify_draw_form(request: web.Request, who):
    return {"text": ""}


@pages.post("/verify/draw", "verify_draw.html")
async def verify_draw(request: web.Request, who):
    fields, data = await read_multipart(request, 8 * 1024 * 1024)
    text = data.decode("utf-8", "replace") if data else fields.get("record", "")
    try:
        record = draw_verify.load_record(text)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError as err:
        bad = Unprocessable(f"not a draw record: {err}", code="invalid_record")
        raise FormError(bad, "verify_draw.html", {"text": text[:200_000]}) from err
    result = draw_verify.verify_record(record)
    return {"text": text[:200_000], "result": result, "record": record}


@pages.get("/ledger", "ledger.html")
async def checkpoint(request: web.Request, who):
    cp = await ledger.latest_checkpoint(db(request))
    if cp is None:
        return {"cp": None}
    return {"cp": ledger.checkpoint_dict(cp, request.app[LEDGER_SIGNER]), "signed_at": cp.created_at}
