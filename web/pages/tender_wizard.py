"""The agent's tender wizard (招标项目向导) and a draft's last steps: the draft's lots, evaluation method and timeline
in one form, then its key holders and its publication on the tender's desk.

Every step is the JSON API's own handler (POST /api/v1/tenders, PUT /api/v1/tenders/{code}/key-holders,
POST /api/v1/tenders/{code}/publish), so the API's checks and ledger entries apply: the evaluation method must make
100 points (`evaluation_total_not_100`), the timeline follows the statute (招标投标法 第24条 and 第34条, named in
the refusal) and k of n key holders come from two organisations. The page only adds what a person filling the form
needs: the catalogue's sub-types and methods to choose from, the statutory minimum shown beside the deadline, and a
live total of the points (static/js/wizard.js), which the server checks again."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import and_, any_, literal, or_, select

from core.clock import SHANGHAI, db_now
from core.errors import DomainError
from core.identity_models import Organisation, User
from trading import statutory
from trading.codes import load_categories
from trading.lifecycle import ProcurementMethod
from trading import loaders
from trading.models import Tender
from trading.routes import bids as bid_routes
from trading.routes import tenders as tender_routes
from trading.schemas import KeyHoldersIn, TenderIn, TenderOut, TenderPatch
from web.api import RequestValidationFailed
from web.keys import db
from web.pages.agent import _form_time, _local, desk_context
from web.pages.i18n import N_
from web.pages.routing import FormError, Pages, act, as_refusal, form_rows, see_other, validated

pages = Pages()
LOT_ROWS = 5
CRITERION_ROWS = 6
METHOD_LABELS = {
    ProcurementMethod.OPEN.value: N_("Open tendering (公开招标)"),
    ProcurementMethod.INVITATIONAL.value: N_("Invitational tendering (邀请招标)"),
    ProcurementMethod.COMPETITIVE_NEGOTIATION.value: N_("Competitive negotiation (竞争性谈判)"),
    ProcurementMethod.INQUIRY.value: N_("Request for quotations (询价)"),
    ProcurementMethod.SINGLE_SOURCE.value: N_("Single source (单一来源)"),
}


def _typed(form) -> dict[str, Any]:
    """What the agent typed, kept to fill the form again after a refusal."""
    single = ("title", "title_en", "description", "tenderer", "supervisor_organisation", "region_code", "subtype",
              "method", "budget", "evaluation_method", "price_weight", "price_rule", "k", "e", "aggregation",
              "decimals", "clarification_end_at", "bid_deadline_at", "opening_at", "key_threshold",
              "key_holder_count")
    typed: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in single}
    typed["drop_extremes"] = bool(form.get("drop_extremes"))
    typed["platform_holds_share"] = bool(form.get("platform_holds_share"))
    typed["lots"] = form_rows(form, ("lot_title", "lot_budget"), LOT_ROWS)
    criteria = form_rows(form, ("criterion_name", "criterion_max"), CRITERION_ROWS)
    objective = {str(v) for v in form.getall("criterion_objective", [])}
    for i, row in enumerate(criteria):
        row["objective"] = str(i) in objective
    typed["criteria"] = criteria
    return typed


def _evaluation(typed: dict[str, Any]) -> dict[str, Any]:
    if typed["evaluation_method"] == "lowest_price":
        return {"method": "lowest_price"}
    formula: dict[str, Any] = {"rule": typed["price_rule"] or "lowest_price"}
    if formula["rule"] == "mean_benchmark":
        formula.update(k=typed["k"] or "1", e=typed["e"], drop_extremes=typed["drop_extremes"])
    return {"method": "comprehensive", "price_weight": typed["price_weight"], "price_formula": formula,
            "criteria": [{"name": c["criterion_name"], "max": c["criterion_max"], "objective": c["objective"]}
                         for c in typed["criteria"] if c["criterion_name"] or c["criterion_max"]],
            "aggregation": typed["aggregation"] or "mean",
            "decimals": int(typed["decimals"]) if typed["decimals"].isdigit() else typed["decimals"]}


def tender_body(typed: dict[str, Any]) -> dict[str, Any]:
    """The form as the API's TenderIn body: the family follows from the chosen sub-type."""
    try:
        family = load_categories().subtype(typed["subtype"]).family
    except DomainError:
        family = typed["subtype"].split("-")[0]  # the schema or the catalogue refuses it with its own code
    body: dict[str, Any] = {
        "title": typed["title"], "description": typed["description"], "tenderer": typed["tenderer"],
        "region_code": typed["region_code"], "family": family, "subtype": typed["subtype"],
        "method": typed["method"], "budget": typed["budget"], "evaluation": _evaluation(typed),
        "lots": [{"title": r["lot_title"], "budget": r["lot_budget"]} for r in typed["lots"]
                 if r["lot_title"] or r["lot_budget"]],
        "clarification_end_at": _local(typed["clarification_end_at"]),
        "bid_deadline_at": _local(typed["bid_deadline_at"]), "opening_at": _local(typed["opening_at"]),
        "platform_holds_share": typed["platform_holds_share"]}
    for key in ("title_en", "supervisor_organisation"):
        if typed[key]:
            body[key] = typed[key]
    for key in ("key_threshold", "key_holder_count"):
        if typed[key]:
            body[key] = int(typed[key]) if typed[key].isdigit() else typed[key]
    return body


async def wizard_context(request: web.Request, who, typed: dict[str, Any] | None = None) -> dict[str, Any]:
    session = db(request)
    # the experts' employers (thousands in a large pool) are never a tender's tenderer or its supervision
    organisations = (await session.execute(select(Organisation).where(Organisation.kind != "employer")
                                           .order_by(Organisation.name))).scalars().all()
    supervising = set((await session.execute(
        select(User.organisation_id).where(literal("supervisor") == any_(User.roles), User.is_active))).scalars())
    if typed is None:
        now = (await db_now(session)).astimezone(SHANGHAI)
        # a deadline the statute allows if published today, at 09:30 Beijing time
        deadline = (now + timedelta(days=statutory.MIN_BIDDING_DAYS + 1)).replace(hour=9, minute=30, second=0,
                                                                                  microsecond=0)
        # the region code of the tender numbers this agent's organisation used last (ZS for 中山, say)
        last_region = (await session.execute(
            select(Tender.region_code).where(Tender.agent_id == who.organisation_id)
            .order_by(Tender.created_at.desc()).limit(1))).scalar() if who.organisation_id else None
        typed = {"region_code": last_region or "", "method": ProcurementMethod.OPEN.value, "evaluation_method": "comprehensive",
                 "price_rule": "lowest_price", "aggregation": "mean", "decimals": "2", "k": "1",
                 "key_threshold": "2", "key_holder_count": "3", "platform_holds_share": False,
                 "clarification_end_at": _form_time(deadline - timedelta(days=3)),
                 "bid_deadline_at": _form_time(deadline), "opening_at": _form_time(deadline),
                 "lots": [{"lot_title": "", "lot_budget": ""} for _ in range(LOT_ROWS)],
                 "criteria": [{"criterion_name": "", "criterion_max": "", "objective": False}
                              for _ in range(CRITERION_ROWS)]}
    return {"form": typed, "editing": None,
            "organisations": [{"id": o.public_id, "name": o.name} for o in organisations],
            "supervising": [{"id": o.public_id, "name": o.name} for o in organisations if o.id in supervising],
            "families": load_categories().families, "methods": METHOD_LABELS,
            "tendering_methods": sorted(statutory.TENDERING_METHODS),
            "min_bidding_days": statutory.MIN_BIDDING_DAYS, "bidding_statute": statutory.BIDDING_PERIOD_STATUTE,
            "opening_statute": statutory.OPENING_STATUTE}


@pages.get("/manage/tenders/new", "manage_new_tender.html", roles=("agent",))
async def wizard(request: web.Request, who):
    return await wizard_context(request, who)


@pages.post("/manage/tenders/new", roles=("agent",))
async def create(request: web.Request, who):
    """The draft through POST /api/v1/tenders; a refusal shows the form again with what was typed."""
    typed = _typed(await request.post())
    try:
        tender = await tender_routes.create_tender(request, who=who, body=validated(TenderIn, tender_body(typed)))
    except (DomainError, RequestValidationFailed) as err:
        await db(request).rollback()
        raise FormError(as_refusal(err), "manage_new_tender.html",
                        await wizard_context(request, who, typed)) from err
    return see_other(f"/manage/tenders/{tender.code}#draft")


def typed_from(out: TenderOut, platform_holds_share: bool) -> dict[str, Any]:
    """A saved draft as the wizard's form, to edit it."""
    ev = out.evaluation.model_dump(mode="json") if hasattr(out.evaluation, "model_dump") else dict(out.evaluation)
    formula = ev.get("price_formula") or {}
    criteria = [{"criterion_name": c["name"], "criterion_max": str(c["max"]), "objective": bool(c.get("objective"))}
                for c in ev.get("criteria", [])]
    lots = [{"lot_title": lot.title, "lot_budget": str(lot.budget)} for lot in out.lots]
    when = {k: _form_time(v) if v else "" for k, v in (("clarification_end_at", out.clarification_end_at),
                                                        ("bid_deadline_at", out.bid_deadline_at),
                                                        ("opening_at", out.opening_at))}
    return {
        "title": out.title, "title_en": out.title_en or "", "description": out.description,
        "tenderer": out.tenderer.organisation_id,
        "supervisor_organisation": out.supervisor_organisation.organisation_id if out.supervisor_organisation else "",
        "region_code": out.region_code, "subtype": out.category.subtype, "method": out.method,
        "budget": str(out.budget), "evaluation_method": ev.get("method", "comprehensive"),
        "price_weight": str(ev.get("price_weight", "")), "price_rule": formula.get("rule", "lowest_price"),
        "k": str(formula.get("k", "1")), "e": str(formula.get("e", "")),
        "drop_extremes": bool(formula.get("drop_extremes")), "aggregation": ev.get("aggregation", "mean"),
        "decimals": str(ev.get("decimals", 2)), **when,
        "key_threshold": str(out.key_threshold), "key_holder_count": str(out.key_holder_count),
        "platform_holds_share": platform_holds_share,
        "lots": lots + [{"lot_title": "", "lot_budget": ""} for _ in range(max(0, LOT_ROWS - len(lots)))],
        "criteria": criteria + [{"criterion_name": "", "criterion_max": "", "objective": False}
                                for _ in range(max(0, CRITERION_ROWS - len(criteria)))]}


async def _draft(request: web.Request, who) -> tuple[TenderOut, bool]:
    """The agent's draft and whether the platform holds a share; 404 for a tender they may not see."""
    tender = await loaders.visible_tender(db(request), request.match_info["code"], who)
    return await tender_routes.get_tender(request), bool(tender.platform_holds_share)


async def edit_context(request: web.Request, who, typed: dict[str, Any] | None = None) -> dict[str, Any]:
    out, platform_share = await _draft(request, who)
    context = await wizard_context(request, who, typed or typed_from(out, platform_share))
    return {**context, "editing": out.code}


@pages.get("/manage/tenders/{code}/edit", "manage_new_tender.html", roles=("agent",))
async def edit(request: web.Request, who):
    """The draft in the wizard's form; a published tender goes to its desk (it changes by amendment only)."""
    out, _ = await _draft(request, who)
    if out.status != "draft":
        return see_other(f"/manage/tenders/{out.code}")
    return await edit_context(request, who)


@pages.post("/manage/tenders/{code}/edit", roles=("agent",))
async def save_edit(request: web.Request, who):
    """PATCH /api/v1/tenders/{code}: the whole form (the region code is the tender number's and stays)."""
    typed = _typed(await request.post())
    body = tender_body(typed)
    body.pop("region_code", None)
    body.pop("family", None)
    code = request.match_info["code"]
    try:
        await tender_routes.edit_tender(request, who=who, body=validated(TenderPatch, body))
    except (DomainError, RequestValidationFailed) as err:
        await db(request).rollback()
        current, _ = await _draft(request, who)
        typed["region_code"] = current.region_code
        raise FormError(as_refusal(err), "manage_new_tender.html",
                        await edit_context(request, who, typed)) from err
    return see_other(f"/manage/tenders/{code}#draft")


async def draft_context(request: web.Request, who, tender) -> dict[str, Any]:
    """A draft's key holders and the people who may hold its key: the agents of the agent's organisation and the
    supervisors of the tender's supervising organisation (trading.keyholding: agents and supervisors, from at
    least two organisations)."""
    holders = (await bid_routes.get_key_holders(request, who=who)).holders
    organisations = [o for o in (who.organisation_id,) if o]
    supervision = tender.supervisor_organisation.organisation_id if tender.supervisor_organisation else None
    query = select(User, Organisation).join(Organisation, Organisation.id == User.organisation_id).where(
        User.is_active, or_(and_(literal("agent") == any_(User.roles), Organisation.id.in_(organisations)),
                            and_(literal("supervisor") == any_(User.roles), Organisation.public_id == supervision)))
    rows = (await db(request).execute(query.order_by(Organisation.name, User.display_name))).all()
    people = [{"id": u.public_id, "name": u.display_name, "organisation": o.name,
               "role": "supervisor" if "supervisor" in u.roles and o.public_id == supervision else "agent"}
              for u, o in rows]
    return {"holders": holders, "holder_ids": {h.holder for h in holders}, "people": people}


@pages.post("/manage/tenders/{code}/key-holders", roles=("agent",))
async def key_holders(request: web.Request, who):
    """PUT /api/v1/tenders/{code}/key-holders: the people chosen and k."""
    form = await request.post()
    threshold = str(form.get("threshold", "")).strip()
    body = {"holders": [str(v) for v in form.getall("holder", [])],
            "threshold": int(threshold) if threshold.isdigit() else threshold}
    return await act(request, lambda: bid_routes.put_key_holders(request, who=who,
                                                                 body=validated(KeyHoldersIn, body)),
                     template="manage_tender.html", context=lambda: desk_context(request, who),
                     then=f"/manage/tenders/{request.match_info['code']}#draft")


@pages.post("/manage/tenders/{code}/publish", roles=("agent",))
async def publish(request: web.Request, who):
    """POST /api/v1/tenders/{code}/publish: the statute's timeline checks, the key sealed, the notice out."""
    code = request.match_info["code"]
    return await act(request, lambda: tender_routes.publish_tender(request, who=who),
                     template="manage_tender.html", context=lambda: desk_context(request, who),
                     then=f"/tenders/{code}")
