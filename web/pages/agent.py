"""Agent pages (招标代理): the tenders I manage, and one tender's desk: the opening (开标) with the key holders'
unlock panel and its progress, each lot's evaluation session (open check-in, start), the candidates published
from the committee's sealed report, the objections to answer, and the award.

Every action is the JSON API's own handler (trading.routes.bids, evaluation.routes, evaluation.report_routes),
so the same rules, refusals and ledger entries apply. The key holders' passphrase unlocks a share on the server
exactly as `POST /api/v1/tenders/{code}/opening/shares` does; the page never stores it."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, or_, select

from core.clock import SHANGHAI, db_now, passed
from core.errors import DomainError, NotFound, Unprocessable
from evaluation import members, report_routes, session_report, sessions, venues
from evaluation import review as review_svc
from evaluation import routes as ev
from evaluation.models import EvaluationSession, Room, RoomBooking, Site
from evaluation.report_schemas import PublishIn
from evaluation.schemas import BookingIn, CommitteeIn, PlaceAssignIn, RequirementsIn, SessionIn
from evidence import records_service
from expert_pool import routes as pool_routes
from expert_pool.regions import GUANGDONG_CITIES, PROVINCES
from expert_pool.schemas import CancelIn as DrawCancelIn
from expert_pool.schemas import DrawIn
from expert_pool.taxonomy import load_taxonomy
from trading.access import may_manage
from trading.models import Lot, Tender
from trading.routes import bids as bid_routes
from trading.routes import tenders as tender_routes
from trading.schemas import ObjectionAnswerIn, PassphraseIn
from web.api import RequestValidationFailed
from web.keys import RECORDS, db
from web.pages.expert import label
from web.pages.i18n import N_, current as current_language
from web.pages.public import status_label
from web.pages.routing import FormError, Pages, act, as_refusal, form_rows, see_other, validated

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
    # the opening may start once the bid deadline has passed by the database clock, also before the close job
    # has moved the tender to closed (trading.opening.start_opening closes it then)
    deadline = tender.bid_deadline_at
    opening_due = tender.status == "closed" or (
        tender.status == "published" and deadline is not None and passed(deadline, await db_now(db(request))))
    draft = None
    if tender.status == "draft" and who.has("agent"):
        from web.pages.tender_wizard import draft_context
        draft = await draft_context(request, who, tender)
    extras = {}
    if who.has("agent", "admin"):
        from web.pages.tender_desk import desk_extras
        extras = await desk_extras(request, who, tender)
    return {**extras, "t": tender, "opening": opening, "lots": lots, "candidates": candidates, "objections": objections,
            "status_label": status_label, "label": label, "opening_due": opening_due, "draft": draft,
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


# ---- a lot's evaluation set-up: rooms booked, the session scheduled, the committee placed ---------------------
#
# Each action is the service the JSON API's handler calls (evaluation.venues.book_room behind
# POST /api/v1/rooms/{room_id}/bookings, evaluation.routes for the session and the committee), so the same rules,
# refusals and ledger entries apply: an overlapping booking is refused by the database's exclusion constraint
# (409 room_booked, with the bookings in the way), a session needs bookings made for this tender, a committee needs
# the lot's confirmed draw. Times typed in the form are Beijing time (the page says so).

def _local(value: str) -> datetime | str:
    """A `datetime-local` value read as Beijing time; anything unreadable is passed on for the schema to refuse."""
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=SHANGHAI)
    except ValueError:
        return value


def _form_time(value: datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


async def _tender_bookings(request: web.Request, tender_code: str, lot_public_id: str) -> list[dict[str, Any]]:
    """The confirmed bookings made for this tender (for this lot or the tender as a whole) not yet over, with
    their room, site and the session they serve."""
    session = db(request)
    rows = (await session.execute(
        select(RoomBooking, Room, Site, EvaluationSession.public_id)
        .join(Room, Room.id == RoomBooking.room_id).join(Site, Site.id == Room.site_id)
        .join(Tender, Tender.id == RoomBooking.tender_id)
        .outerjoin(Lot, Lot.id == RoomBooking.lot_id)
        .outerjoin(EvaluationSession, EvaluationSession.id == RoomBooking.evaluation_session_id)
        .where(Tender.code == tender_code, RoomBooking.status == "confirmed",
               RoomBooking.ends_at > func.now(), or_(Lot.public_id.is_(None), Lot.public_id == lot_public_id))
        .order_by(RoomBooking.starts_at, Site.id, Room.name))).all()
    return [{"booking_id": b.public_id, "room": r.name, "room_id": r.public_id, "site": s.name,
             "region_code": s.region_code, "starts_at": b.starts_at, "ends_at": b.ends_at, "label": b.label,
             "venue_role": b.venue_role, "session_id": sid} for b, r, s, sid in rows]


async def _draw(request: web.Request, who) -> Any:
    """The lot's live original draw as the agent may see it (None before one is requested)."""
    try:
        draws = await pool_routes.lot_draws(request, who=who)
    except DomainError as err:
        if err.status >= 500:
            raise
        return None
    live = [d for d in draws if d.round == 0 and d.status != "cancelled"] or [d for d in draws if d.round == 0]
    return live[-1] if live else None


DRAW_STATUS = {"awaiting_entropy": N_("Waiting for the supervisor's entropy"),
               "executed": N_("Drawn: invitations out"), "formed": N_("Committee formed"),
               "short": N_("Short of experts: a supplementary draw is needed"), "cancelled": N_("Cancelled")}
QUOTA_ROWS = 3


def draw_choices() -> dict[str, Any]:
    """What a draw request chooses from: the taxonomy's top two levels and the regions the platform names."""
    taxonomy, zh = load_taxonomy(), current_language() == "zh_CN"
    specialties = []
    for root in taxonomy.roots():
        specialties.append({"code": root, "name": taxonomy.name(root, "zh" if zh else "en"), "level": 0})
        for child in taxonomy.get(root).children:
            specialties.append({"code": child, "name": taxonomy.name(child, "zh" if zh else "en"), "level": 1})
    regions = [{"code": code, "name": names[0] if zh else names[1]}
               for code, names in [*PROVINCES.items(), *GUANGDONG_CITIES.items()]]
    return {"specialties": specialties, "regions": regions}


def _draw_form(current, draw_form: dict[str, Any] | None) -> dict[str, Any]:
    if draw_form is not None:
        return draw_form
    starts = current.main.booking.starts_at if current is not None and current.main is not None else None
    return {"session_at": _form_time(starts) if starts else "", "venue": "", "representatives": "0",
            "reply_minutes": "30",
            "quotas": [{"name": "", "specialty": "", "region": "", "count": "", "backups": "0"}
                       for _ in range(QUOTA_ROWS)]}


async def evaluation_context(request: web.Request, who, **form: Any) -> dict[str, Any]:
    tender = await tender_routes.get_tender(request)
    lot_id = request.match_info["lot_id"]
    lot = next((x for x in tender.lots if x.lot_id == lot_id), None)
    if lot is None:
        raise NotFound("no such lot", code="lot_not_found", details={"lot_id": lot_id})
    session_views = await sessions.lot_sessions(db(request), who=who, lot_public_id=lot_id)
    # the lot's current session: the newest one not aborted (an aborted one leaves room for a new schedule)
    current = next((v for v in session_views if v.session.status != "aborted"), None)
    committee = report = review = None
    if current is not None:
        sid = current.session.public_id
        committee = ev._committee_out(await members.committee_view(db(request), who=who, session_public_id=sid))
        report = report_routes._out(await session_report.view(db(request), who=who, session_public_id=sid))
        review = ev._review_out(await review_svc.view(db(request), who=who, session_public_id=sid))
    now = await db_now(db(request))
    start = form.get("starts_at") or _form_time((now + timedelta(days=1)).replace(minute=0, second=0,
                                                                                  microsecond=0))
    # plain values: a refused form's page is rendered after its transaction has rolled back
    sites = [{"name": tree.site.name, "region_code": tree.site.region_code,
              "rooms": [{"room_id": r.room.public_id, "name": r.room.name,
                         "places": [{"place_id": p.public_id, "label": p.label} for p in r.places
                                    if p.status == "active" and not p.camera_position]} for r in tree.rooms]}
             for tree in await venues.list_sites(db(request))]
    return {"t": tender, "lot": lot, "sites": sites,
            "bookings": await _tender_bookings(request, tender.code, lot_id),
            "session": ev._session_out(current) if current else None,
            "session_rooms": [v.room.public_id for v in ([current.main] if current and current.main else [])
                              + (current.subs if current else [])],
            "past_sessions": [ev._session_out(v) for v in session_views if v is not current],
            "committee": committee, "report": report, "review": review, "draw": await _draw(request, who),
            "draw_form": _draw_form(current, form.get("draw_form")), "draw_status": DRAW_STATUS, **draw_choices(),
            "form": {"room": form.get("room", ""), "starts_at": start, "ends_at": form.get("ends_at", ""),
                     "label": form.get("label") or f"{lot.title} 评标"},
            "conflicts": form.get("conflicts", []), "label": label, "status_label": status_label}


@pages.get("/manage/tenders/{code}/lots/{lot_id}/evaluation", "manage_evaluation.html", roles=MANAGING)
async def evaluation_desk(request: web.Request, who):
    return await evaluation_context(request, who)


def _evaluation_url(request: web.Request, anchor: str) -> str:
    return f"/manage/tenders/{request.match_info['code']}/lots/{request.match_info['lot_id']}/evaluation{anchor}"


async def _eval_act(request: web.Request, who, call, anchor: str, **form: Any) -> web.Response:
    return await act(request, call, template="manage_evaluation.html",
                     context=lambda: evaluation_context(request, who, **form), then=_evaluation_url(request, anchor))


@pages.post("/manage/tenders/{code}/lots/{lot_id}/bookings", roles=MANAGING)
async def book_room(request: web.Request, who):
    """Book a room for the lot: the booking service of POST /api/v1/rooms/{room_id}/bookings. The database's
    exclusion constraint refuses an overlap (room_booked); the page shows the bookings in the way."""
    form = await request.post()
    typed = {k: str(form.get(k, "")).strip() for k in ("room", "starts_at", "ends_at", "label")}
    try:
        if not typed["room"]:
            raise Unprocessable("choose a room", code="room_required")
        body = validated(BookingIn, {"starts_at": _local(typed["starts_at"]), "ends_at": _local(typed["ends_at"]),
                                     "label": typed["label"], "tender": request.match_info["code"],
                                     "lot": request.match_info["lot_id"]})
        await venues.book_room(db(request), who=who, room_public_id=typed["room"], starts_at=body.starts_at,
                               ends_at=body.ends_at, label=body.label, tender_code=body.tender,
                               lot_public_id=body.lot)
    except (DomainError, RequestValidationFailed) as err:
        await db(request).rollback()
        refusal = as_refusal(err)
        conflicts = [{"starts_at": datetime.fromisoformat(c["starts_at"]),
                      "ends_at": datetime.fromisoformat(c["ends_at"])}
                     for c in (refusal.details or {}).get("conflicts", [])] if refusal.code == "room_booked" else []
        raise FormError(refusal, "manage_evaluation.html",
                        await evaluation_context(request, who, conflicts=conflicts, **typed)) from err
    return see_other(_evaluation_url(request, "#bookings"))


@pages.post("/manage/tenders/{code}/lots/{lot_id}/draws", roles=("agent",))
async def request_draw(request: web.Request, who):
    """Request the lot's expert draw: POST /api/v1/lots/{lot_id}/draws, referring to the lot's scheduled session
    when there is one (its venues go to the experts), else to the venue typed. Its commitment is published at
    once; the supervisor's entropy runs it."""
    form = await request.post()
    typed = {k: str(form.get(k, "")).strip() for k in ("session_at", "venue", "evaluation_session",
                                                      "representatives", "reply_minutes")}
    rows = form_rows(form, ("name", "specialty", "region", "count", "backups"), QUOTA_ROWS, prefix="quota_")
    typed["quotas"] = rows

    def number(value: str, default: int | None = None) -> int | str | None:
        return int(value) if value.isdigit() else (default if not value else value)
    body: dict[str, Any] = {
        "session_at": _local(typed["session_at"]),
        "quotas": [{**({"name": r["name"]} if r["name"] else {}), "specialty": r["specialty"],
                    **({"region": r["region"]} if r["region"] else {}), "count": number(r["count"]),
                    "backups": number(r["backups"], 0)}
                   for r in rows if r["specialty"] or r["count"]],
        "representatives": number(typed["representatives"], 0)}
    if typed["evaluation_session"]:
        body["evaluation_session"] = typed["evaluation_session"]
    elif typed["venue"]:
        body["venue"] = typed["venue"]
    if typed["reply_minutes"]:
        body["reply_minutes"] = number(typed["reply_minutes"])
    return await _eval_act(request, who, lambda: pool_routes.create_draw(request, who=who,
                                                                        body=validated(DrawIn, body)),
                           "#draw", draw_form=typed)


@pages.post("/manage/tenders/{code}/lots/{lot_id}/draws/{draw_id}/cancel", roles=("agent",))
async def cancel_draw(request: web.Request, who):
    """Cancel the lot's draw with a written reason (POST /api/v1/draws/{draw_id}/cancel); a new one may then be
    requested before the opening."""
    form = await request.post()
    body = {"reason": str(form.get("reason", "")).strip()}
    return await _eval_act(request, who, lambda: pool_routes.cancel_draw(request, who=who,
                                                                        body=validated(DrawCancelIn, body)), "#draw")


@pages.post("/manage/tenders/{code}/lots/{lot_id}/session", roles=MANAGING)
async def schedule(request: web.Request, who):
    """Schedule the lot's session at a main venue and sub-venues: POST /api/v1/lots/{lot_id}/evaluation-sessions."""
    form = await request.post()
    main = str(form.get("main_booking", "")).strip()
    body = {"main_booking": main,
            "sub_bookings": [str(b) for b in form.getall("sub_booking", []) if str(b) and str(b) != main]}
    return await _eval_act(request, who, lambda: ev.schedule_session(request, who=who,
                                                                    body=validated(SessionIn, body)), "#session")


@pages.post("/manage/tenders/{code}/lots/{lot_id}/sessions/{session_id}/committee", roles=MANAGING)
async def form_committee(request: web.Request, who):
    """The committee from the lot's confirmed draw, each member at a place of their own region's site:
    POST /api/v1/evaluation-sessions/{session_id}/committee."""
    return await _eval_act(request, who, lambda: ev.form_committee(request, who=who, body=CommitteeIn()),
                           "#committee")


@pages.post("/manage/tenders/{code}/lots/{lot_id}/sessions/{session_id}/members/{member_id}/place",
            roles=MANAGING)
async def assign_place(request: web.Request, who):
    """Move a member to another place: PUT /api/v1/evaluation-sessions/{session_id}/members/{member_id}/place."""
    form = await request.post()
    body = {"place_id": str(form.get("place_id", "")).strip()}
    return await _eval_act(request, who, lambda: ev.assign_place(request, who=who,
                                                                body=validated(PlaceAssignIn, body)), "#committee")


@pages.post("/manage/tenders/{code}/lots/{lot_id}/sessions/{session_id}/requirements", roles=MANAGING)
async def review_requirements(request: web.Request, who):
    """The review's requirements from the tender documents, one per line under each kind (codes Q1.., C1..):
    PUT /api/v1/evaluation-sessions/{session_id}/review/requirements; fixed once the first ballot is cast."""
    form = await request.post()
    requirements = []
    for kind, prefix in (("qualification", "Q"), ("compliance", "C")):
        lines = [x.strip() for x in str(form.get(kind, "")).splitlines() if x.strip()]
        requirements += [{"code": f"{prefix}{i}", "title": title, "kind": kind} for i, title in enumerate(lines, 1)]
    return await _eval_act(request, who, lambda: ev.set_review_requirements(
        request, who=who, body=validated(RequirementsIn, {"requirements": requirements})), "#requirements")


@pages.get("/manage/tenders/{code}/lots/{lot_id}/sessions/{session_id}/report.pdf", roles=MANAGING + ("supervisor",))
async def report_pdf(request: web.Request, who):
    """The session's evaluation report as signed so far (sealed at the end): the archive's own download
    (GET /api/v1/records/{record_no}) with its access rule, for those who may read the report."""
    report = await report_routes.get_report(request, who=who)
    if not report.record_no:
        raise NotFound("the report has not been issued yet", code="record_not_found")
    record = await records_service.get_record(db(request), report.record_no)
    await records_service.check_access(db(request), record, who)
    data = await request.app[RECORDS].load(record.storage_key)
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{record.record_no}.pdf"', "Cache-Control": "no-store"})
