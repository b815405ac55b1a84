"""Expert pages: my invitations (accept or decline), my sessions, and the PLACE page of an evaluation session
(评标席位): check-in with the integrity commitment (承诺书) and the avoidance declaration (回避声明), the chair
vote, the qualification and compliance review ballots, score sheets with their flags and justifications, and
signing the evaluation report.

Every action is the JSON API's own handler (evaluation.routes, evaluation.report_routes, expert_pool.routes),
so the same rules, refusals and ledger entries apply; the page only shows what those handlers return. A refusal
comes back as the place page with the refusal's translated message (`FormError`)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiohttp import web
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from core.errors import DomainError
from evaluation import report_routes, routes as ev
from evaluation import sheets as sheet_svc
from evaluation.models import EvaluationMember, EvaluationSession, Place, Room, Site
from evaluation.schemas import BallotsIn, CheckInIn, JustifyIn, SheetIn, VoteIn
from expert_pool import routes as pool_routes
from expert_pool.schemas import DeclineIn
from trading.models import Lot, Tender
from web.keys import db
from web.pages.i18n import N_, gettext
from web.pages.routing import Pages, act, see_other, validated

pages = Pages()
SESSION_STATUS = {"scheduled": N_("Scheduled"), "check_in": N_("Check-in"), "in_progress": N_("In progress"),
                  "scoring_closed": N_("Scoring closed"), "signing": N_("Report signing"), "closed": N_("Closed"),
                  "suspended": N_("Suspended"), "aborted": N_("Aborted"), "chair_election": N_("Chair election"),
                  "review": N_("Qualification review"), "scoring": N_("Scoring")}
MEMBER_STATUS = {"seated": N_("Seated"), "checked_in": N_("Checked in"), "withdrawn": N_("Withdrawn"),
                 "pending": N_("Awaiting reply"), "accepted": N_("Accepted"), "declined": N_("Declined"),
                 "expired": N_("Expired"), "cancelled": N_("Cancelled"), "replaced": N_("Replaced")}
FLAG_KINDS = {"deviant_score": N_("Far from the others' mean"), "low_score": N_("Low score"),
              "inconsistent_objective_score": N_("Objective criterion scored differently")}


def label(value: str | None) -> str:
    """A session stage, a member's or an invitation's status, or a flag kind in the reader's language."""
    if value is None:
        return ""
    found = SESSION_STATUS.get(value) or MEMBER_STATUS.get(value) or FLAG_KINDS.get(value)
    return gettext(found) if found else value



# ---- invitations and my sessions ------------------------------------------------------------------------------

async def my_sessions(request: web.Request, who) -> list[dict[str, Any]]:
    """The evaluation sessions I sit on (withdrawn memberships included, so a withdrawal stays visible)."""
    rows = (await db(request).execute(
        select(EvaluationSession.public_id, EvaluationSession.status, EvaluationMember.status, Tender.code,
               Tender.title, Lot.title)
        .join(EvaluationMember, EvaluationMember.session_id == EvaluationSession.id)
        .join(Tender, Tender.id == EvaluationSession.tender_id).join(Lot, Lot.id == EvaluationSession.lot_id)
        .where(EvaluationMember.user_id == who.user_id)
        .order_by(EvaluationSession.created_at.desc()))).all()
    return [{"session_id": r[0], "status": r[1], "member_status": r[2], "tender": r[3], "tender_title": r[4],
             "lot_title": r[5]} for r in rows]


@pages.get("/me/invitations", "expert_home.html", roles=("expert",))
async def invitations(request: web.Request, who):
    return {"invitations": await pool_routes.my_invitations(request, who=who),
            "sessions": await my_sessions(request, who), "label": label}


@pages.post("/me/invitations/{invitation_id}/accept", roles=("expert",))
async def accept(request: web.Request, who):
    await pool_routes.accept(request, who=who)
    return see_other("/me/invitations")


@pages.post("/me/invitations/{invitation_id}/decline", roles=("expert",))
async def decline(request: web.Request, who):
    form = await request.post()
    await pool_routes.decline(request, who=who, body=validated(DeclineIn, {"reason": str(form.get("reason", ""))}))
    return see_other("/me/invitations")


# ---- the place page -------------------------------------------------------------------------------------------

async def _optional(call, *args, **kw):
    """What the API's handler answers, or None where it refuses for now (e.g. the declaration before check-in)."""
    try:
        return await call(*args, **kw)
    except DomainError as err:
        if err.status >= 500:
            raise
        return None


def _plain(row) -> SimpleNamespace:
    return SimpleNamespace(**{a.key: getattr(row, a.key) for a in sa_inspect(row).mapper.column_attrs})


async def place_context(request: web.Request, who) -> dict[str, Any]:
    sid = request.match_info["session_id"]
    session = db(request)
    ctx = await sheet_svc._context(session, sid, lock=False)   # 404 for an unknown session
    me = next((m for m in ctx.members if m.user_id == who.user_id), None)
    if me is None:
        me = (await session.execute(select(EvaluationMember).where(
            EvaluationMember.session_id == ctx.es.id, EvaluationMember.user_id == who.user_id))).scalars().first()
    if me is None:
        sheet_svc._me(ctx, who)   # refused: only members of the committee
    place = None
    if me.place_id is not None:
        row = (await session.execute(select(Place.label, Room.name, Site.name, Place.public_id)
                                     .join(Room, Room.id == Place.room_id).join(Site, Site.id == Room.site_id)
                                     .where(Place.id == me.place_id))).one_or_none()
        place = {"label": row[0], "room": row[1], "site": row[2], "place_id": row[3]} if row else None
    es = ctx.es
    bidders = await _optional(ev.declaration_form, request, who=who) or []
    chair = await _optional(ev.get_chair, request, who=who)
    review = await _optional(ev.get_review, request, who=who)
    sheets = {s.bidder: s for s in (await _optional(ev.list_sheets, request, who=who) or [])}
    flags = await _optional(ev.get_flags, request, who=who)
    report = await _optional(report_routes.get_report, request, who=who)
    names = {b.organisation_id: b.name for b in bidders}
    mine = {(b.bidder, b.requirement): b for b in (review.mine if review else [])}
    my_flags = [f for f in (flags.open if flags else []) if f["member"] == me.public_id]
    scoring_open = es.status == "in_progress" and es.review_closed_at is not None and not es.lot_failed
    compliant = [b for b in bidders if b.organisation_id not in ctx.rejected] if scoring_open else []
    # plain values: a refused form's page is rendered after its transaction has rolled back
    return {"es": _plain(es), "tender": _plain(ctx.tender), "lot": _plain(ctx.lot), "me": _plain(me), "place": place, "bidders": bidders,
            "names": names, "chair": chair, "review": review, "mine": mine, "sheets": sheets,
            "criteria": ctx.method.criteria, "decimals": ctx.method.decimals, "compliant": compliant,
            "my_flags": my_flags, "report": report, "label": label,
            "committee": sorted(m.public_id for m in ctx.members if m.status != "withdrawn")}


@pages.get("/sessions/{session_id}/place", "place.html", auth=True)
async def place_page(request: web.Request, who):
    return await place_context(request, who)


async def _act(request: web.Request, who, call, anchor: str):
    """Run the API's handler; a refusal shows the place page again with its message."""
    return await act(request, call, template="place.html", context=lambda: place_context(request, who),
                     then=f"/sessions/{request.match_info['session_id']}/place{anchor}")


@pages.post("/sessions/{session_id}/place/check-in", auth=True)
async def check_in(request: web.Request, who):
    form = await request.post()
    data = {"id_card_last4": str(form.get("id_card_last4", "")).strip() or None,
            "commitment": form.get("commitment") == "yes", "conflicts": [str(c) for c in form.getall("conflict", [])],
            "note": str(form.get("note", "")).strip() or None}
    return await _act(request, who, lambda: ev.check_in(request, who=who, body=validated(CheckInIn, data)),
                      "#check-in")


@pages.post("/sessions/{session_id}/place/chair", auth=True)
async def vote_chair(request: web.Request, who):
    form = await request.post()
    body = {"candidate": str(form.get("candidate", ""))}
    return await _act(request, who, lambda: ev.vote_chair(request, who=who, body=validated(VoteIn, body)), "#chair")


@pages.post("/sessions/{session_id}/place/review", auth=True)
async def cast_ballots(request: web.Request, who):
    form = await request.post()
    ballots = []
    for key in form:
        if key.startswith("ballot:"):
            _, bidder, requirement = key.split(":", 2)
            passed = form.get(key) == "pass"
            reason = str(form.get(f"reason:{bidder}:{requirement}", "")).strip() or None
            ballots.append({"bidder": bidder, "requirement": requirement, "passed": passed,
                            "reason": None if passed else reason})
    return await _act(request, who,
                      lambda: ev.cast_review_ballots(request, who=who, body=validated(BallotsIn, {"ballots": ballots})),
                      "#review")


@pages.post("/sessions/{session_id}/place/sheets/{bidder}", auth=True)
async def save_sheet(request: web.Request, who):
    form = await request.post()
    scores = {key[len("score:"):]: str(value).strip() for key, value in form.items()
              if key.startswith("score:") and str(value).strip()}
    body = {"scores": scores, "submit": form.get("action") == "submit"}
    return await _act(request, who, lambda: ev.save_sheet(request, who=who, body=validated(SheetIn, body)),
                      f"#sheet-{request.match_info['bidder']}")


@pages.post("/sessions/{session_id}/place/justify", auth=True)
async def justify(request: web.Request, who):
    form = await request.post()
    body = {k: str(form.get(k, "")).strip() for k in ("bidder", "criterion", "kind", "text")}
    return await _act(request, who, lambda: ev.justify_flag(request, who=who, body=validated(JustifyIn, body)),
                      "#flags")


@pages.post("/sessions/{session_id}/place/report/sign", auth=True)
async def sign_report(request: web.Request, who):
    return await _act(request, who, lambda: report_routes.sign_report(request, who=who), "#report")


# ---- the chair's steps ----------------------------------------------------------------------------------------

@pages.post("/sessions/{session_id}/place/review/close", auth=True)
async def close_review(request: web.Request, who):
    return await _act(request, who, lambda: ev.close_review(request, who=who), "#review")


@pages.post("/sessions/{session_id}/place/scoring/close", auth=True)
async def close_scoring(request: web.Request, who):
    return await _act(request, who, lambda: ev.close_scoring(request, who=who), "#scoring")


@pages.post("/sessions/{session_id}/place/report/issue", auth=True)
async def issue_report(request: web.Request, who):
    return await _act(request, who, lambda: report_routes.issue_report(request, who=who), "#report")
