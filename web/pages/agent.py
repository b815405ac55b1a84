"""Agent pages (招标代理): the tenders I manage, and one tender's desk: the opening (开标) with the key holders'
unlock panel and its progress, each lot's evaluation session (open check-in, start), the candidates published
from the committee's sealed report, the objections to answer, and the award.

Every action is the JSON API's own handler (trading.routes.bids, evaluation.routes, evaluation.report_routes),
so the same rules, refusals and ledger entries apply. The key holders' passphrase unlocks a share on the server
exactly as `POST /api/v1/tenders/{code}/opening/shares` does; the page never stores it."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import or_, select

from core.errors import DomainError
from evaluation import report_routes, sessions
from evaluation import routes as ev
from evaluation.report_schemas import PublishIn
from trading.access import may_manage
from trading.models import Tender
from trading.routes import bids as bid_routes
from trading.routes import tenders as tender_routes
from trading.schemas import ObjectionAnswerIn, PassphraseIn
from web.keys import db
from web.pages.expert import label
from web.pages.public import status_label
from web.pages.routing import Pages, act, validated

pages = Pages()
MANAGING = ("agent", "admin")



@pages.get("/manage", "manage.html", roles=MANAGING)
async def my_tenders(request: web.Request, who):
    """The tenders I manage: those I created and those of my agency, kept to what trading.access allows."""
    query = select(Tender).order_by(Tender.created_at.desc()).limit(100)
    if not who.has("admin"):
        query = query.where(or_(Tender.created_by_id == who.user_id, Tender.agent_id == who.organisation_id))
    tenders = [t for t in (await db(request).execute(query)).scalars() if may_manage(t, who)]
    return {"tenders": [{"code": t.code, "title": t.title, "status": t.status} for t in tenders],
            "status_label": status_label}


async def desk_context(request: web.Request, who) -> dict[str, Any]:
    tender = await tender_routes.get_tender(request)
    opening = None
    try:
        opening = await bid_routes.get_opening(request)
    except DomainError as err:
        if err.status >= 500:
            raise
    lots = []
    for lot in tender.lots:
        views = await sessions.lot_sessions(db(request), who=who, lot_public_id=lot.lot_id)
        lots.append({"lot": lot, "sessions": [ev._session_out(v) for v in views]})
    candidates = (await bid_routes.get_candidates(request)).candidates
    objections = (await bid_routes.get_objections(request)).objections
    return {"t": tender, "opening": opening, "lots": lots, "candidates": candidates, "objections": objections,
            "status_label": status_label, "label": label,
            "i_unlocked": bool(opening and who.public_id in opening.holders_unlocked)}


@pages.get("/manage/tenders/{code}", "manage_tender.html", roles=MANAGING + ("supervisor",))
async def desk(request: web.Request, who):
    return await desk_context(request, who)


async def _act(request: web.Request, who, call, anchor: str) -> web.Response:
    return await act(request, call, template="manage_tender.html", context=lambda: desk_context(request, who),
                     then=f"/manage/tenders/{request.match_info['code']}{anchor}")


@pages.post("/manage/tenders/{code}/opening", roles=("agent",))
async def start_opening(request: web.Request, who):
    return await _act(request, who, lambda: bid_routes.start_opening(request, who=who), "#opening")


@pages.post("/manage/tenders/{code}/opening/share", roles=MANAGING + ("supervisor",))
async def unlock_share(request: web.Request, who):
    form = await request.post()
    body = {"passphrase": str(form.get("passphrase", ""))}
    return await _act(request, who,
                      lambda: bid_routes.post_share(request, who=who, body=validated(PassphraseIn, body)),
                      "#opening")


@pages.post("/manage/tenders/{code}/sessions/{session_id}/check-in-open", roles=MANAGING)
async def open_check_in(request: web.Request, who):
    return await _act(request, who, lambda: ev.open_check_in(request, who=who), "#sessions")


@pages.post("/manage/tenders/{code}/sessions/{session_id}/start", roles=MANAGING)
async def start_session(request: web.Request, who):
    return await _act(request, who, lambda: ev.start_session(request, who=who), "#sessions")


@pages.post("/manage/tenders/{code}/sessions/{session_id}/candidates", roles=MANAGING)
async def publish_candidates(request: web.Request, who):
    form = await request.post()
    body = {"publicity_days": str(form.get("publicity_days", "3")).strip() or "3"}
    return await _act(request, who,
                      lambda: report_routes.publish_candidates(request, who=who, body=validated(PublishIn, body)),
                      "#candidates")


@pages.post("/manage/tenders/{code}/objections/{objection}/answer", roles=("agent",))
async def answer_objection(request: web.Request, who):
    form = await request.post()
    body = {"answer": str(form.get("answer", "")).strip(), "upheld": form.get("upheld") == "yes",
            "lot": str(form.get("lot", "")).strip() or None}
    return await _act(request, who,
                      lambda: bid_routes.post_answer(request, who=who, body=validated(ObjectionAnswerIn, body)),
                      "#objections")


@pages.post("/manage/tenders/{code}/award", roles=("agent",))
async def award(request: web.Request, who):
    return await _act(request, who, lambda: bid_routes.post_award(request, who=who), "#award")
