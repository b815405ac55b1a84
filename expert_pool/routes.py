"""HTTP endpoints of the expert pool: experts, draws, invitations, records and statistics. Thin: the services
decide; these routes check roles, pick what each role may see and shape the JSON."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from aiohttp import web

from core.errors import Forbidden, PayloadTooLarge
from expert_pool import access, confirmations, draw_records, draws, statistics, views
from expert_pool import service as svc
from expert_pool.demo import seed_demo  # noqa: F401  (the demo hook, found by name)
from expert_pool.models import Expert
from expert_pool.personal import mask_id_card, mask_phone
from expert_pool.records import PUBLIC
from expert_pool.regions import region_name
from expert_pool.schemas import (CancelIn, ConflictIn, ConflictOut, DeclineIn, DrawIn, DrawOut, DrawStatsOut,
                                 DrawRecordOut, DrawStatsQuery, EntropyIn, ExclusionOut, ExpertIn, ExpertOut, ExpertQuery,
                                 ExpertSummaryOut, FamiliarOut, FamiliarQuery, ImportReportOut, ImportRowOut, LeaveIn,
                                 LeaveOut, MyInvitationOut, OrganisationRef, ProblemOut, RecordQuery, ServiceOut,
                                 SpecialtyOut, StatusIn)
from expert_pool.taxonomy import load_taxonomy
from web.api import Api
from web.keys import NOTIFIER, RECORDS, SETTINGS, Principal, db, principal

log = logging.getLogger(__name__)

api = Api("expert_pool")
# records about draws follow the draw's visibility: the archive asks expert_pool.access through this rule
draw_records.register()
DRAW_POLICY = web.AppKey("expert_pool.policy", draws.DrawPolicy)  # a deployment's own draw policy
MAX_IMPORT_BYTES = 8 * 1024 * 1024


def _policy(app: web.Application) -> draws.DrawPolicy:
    """The deployment's draw policy (app[DRAW_POLICY]), with the app's notifier if any."""
    policy = app.get(DRAW_POLICY, draws.DEFAULT_POLICY)
    notifier = app.get(NOTIFIER)
    if notifier is not None and policy.notifier is not notifier:
        policy = replace(policy, notifier=notifier)
    return policy


def register_jobs(app: web.Application, registry: Any) -> None:
    """Invitation timeouts (the next backup is invited), the draw record PDFs, and the committee's re-screen at
    the tender's bid deadline against the bidders who actually bid."""

    async def invitation_timeout(session, payload: dict) -> None:
        await confirmations.expire_invitation(session, payload["invitation"], policy=_policy(app))

    async def issue_records(session, payload: dict) -> None:
        await draw_records.issue_draw_records(session, app[RECORDS], payload["draw"])

    async def rescreen(session, payload: dict) -> None:
        await confirmations.rescreen_at_deadline(session, payload["draw"], policy=_policy(app))

    registry.register(draws.TIMEOUT_JOB, invitation_timeout)
    registry.register(draws.RECORDS_JOB, issue_records)
    registry.register(draws.RESCREEN_JOB, rescreen)


# ---- experts ------------------------------------------------------------------------------------------------

def _specialties(codes: list[str]) -> list[SpecialtyOut]:
    taxonomy = load_taxonomy()
    return [SpecialtyOut(code=c, zh=taxonomy.name(c), en=taxonomy.name(c, "en")) for c in codes if c in taxonomy]


def _summary_fields(expert: Expert, employer: Any, *, unmasked: bool) -> dict[str, Any]:
    return dict(
        expert_id=expert.public_id, name=expert.name,
        id_card_no=expert.id_card_no if unmasked else mask_id_card(expert.id_card_no),
        phone=expert.phone if unmasked else mask_phone(expert.phone), masked=not unmasked,
        province_code=expert.province_code, city_code=expert.city_code, city_name=region_name(expert.city_code),
        employer=OrganisationRef(organisation_id=employer.public_id, name=employer.name) if employer else None,
        category=expert.category, title=expert.title, specialties=_specialties(expert.specialties),
        status=expert.status, status_reason=expert.status_reason, credit_score=expert.credit_score)


async def _expert_out(request: web.Request, expert: Expert, who: Principal) -> ExpertOut:
    d = await svc.details(db(request), expert)
    return ExpertOut(
        **_summary_fields(expert, d.employer, unmasked=who.has("admin")), account=d.user_public_id,
        leave=[LeaveOut(leave_id=x.id, starts_at=x.starts_at, ends_at=x.ends_at, reason=x.reason) for x in d.leave],
        conflicts=[ConflictOut(organisation_id=o.public_id, name=o.name, note=c.note, declared_at=c.declared_at)
                   for c, o in d.conflicts],
        created_at=expert.created_at)


async def _visible_expert(request: web.Request, who: Principal) -> Expert:
    expert = await svc.get_expert(db(request), request.match_info["expert_id"])
    if not who.has("admin", "supervisor") and expert.user_id != who.user_id:
        raise Forbidden("you may see only your own expert profile", code="expert_forbidden")
    return expert


@api.get("/api/v1/expert-specialties", summary="The expert specialty taxonomy (评标专家专业分类)")
async def specialties(request: web.Request, who: Principal):
    taxonomy = load_taxonomy()

    def node(code: str) -> dict[str, Any]:
        s = taxonomy.get(code)
        return {"code": code, "zh": s.zh, "en": s.en, "children": [node(c) for c in s.children]}

    return [node(code) for code in taxonomy.roots()]


@api.post("/api/v1/experts", summary="Register an expert", body=ExpertIn, response=ExpertOut, status=201,
          roles=("admin",), errors=(404, 409, 422))
async def create_expert(request: web.Request, who: Principal, body: ExpertIn):
    expert = await svc.create_expert(db(request), actor=who.public_id, data=body.model_dump())
    return await _expert_out(request, expert, who)


async def _read_upload(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file exceeds {limit} bytes", code="upload_too_large",
                                  details={"limit_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


@api.post("/api/v1/experts/import", summary="Import experts from CSV; a per-row report says what was refused",
          response=ImportReportOut, roles=("admin",), request_content_type="text/csv", errors=(413, 422))
async def import_experts(request: web.Request, who: Principal):
    limit = min(MAX_IMPORT_BYTES, request.app[SETTINGS].max_upload_bytes)
    report = await svc.import_experts(db(request), actor=who.public_id, data=await _read_upload(request, limit))
    return ImportReportOut(total=len(report.rows), imported=report.imported, refused=report.refused, rows=[
        ImportRowOut(line=r.line, status="imported" if r.imported else "refused", expert_id=r.expert_id,
                     problems=[ProblemOut(**p.to_json()) for p in r.problems]) for r in report.rows])


@api.get("/api/v1/experts", summary="The expert pool (ID card and phone masked except for admins)",
         query=ExpertQuery, response=ExpertSummaryOut, roles=("admin", "supervisor"))
async def list_experts(request: web.Request, who: Principal, query: ExpertQuery):
    experts = await svc.list_experts(db(request), specialty=query.specialty, city_code=query.city_code,
                                     status=query.status, after=query.after, limit=query.limit)
    employers = await svc.employers_of(db(request), experts)
    return [ExpertSummaryOut(**_summary_fields(e, employers.get(e.employer_id), unmasked=who.has("admin")))
            for e in experts]


@api.get("/api/v1/experts/{expert_id}", summary="One expert", response=ExpertOut,
         roles=("admin", "supervisor", "expert"), errors=(403, 404))
async def get_expert(request: web.Request, who: Principal):
    return await _expert_out(request, await _visible_expert(request, who), who)


@api.post("/api/v1/experts/{expert_id}/status", summary="Suspend (with a reason), reinstate or retire an expert",
          body=StatusIn, response=ExpertOut, roles=("admin",), errors=(404, 409, 422))
async def set_status(request: web.Request, who: Principal, body: StatusIn):
    expert = await svc.set_status(db(request), actor=who.public_id, expert_public_id=request.match_info["expert_id"],
                                  status=body.status, reason=body.reason)
    return await _expert_out(request, expert, who)


@api.get("/api/v1/experts/{expert_id}/history", summary="An expert's service history",
         response=ServiceOut, roles=("admin", "supervisor", "expert"), errors=(403, 404))
async def history(request: web.Request, who: Principal):
    expert = await _visible_expert(request, who)
    return [ServiceOut(tenderer_id=o.public_id, tenderer=o.name, served_at=s.served_at, role=s.role)
            for s, o in await svc.service_history(db(request), expert, who)]


@api.get("/api/v1/me/expert", summary="My expert profile", response=ExpertOut, roles=("expert",), errors=(404,))
async def my_profile(request: web.Request, who: Principal):
    return await _expert_out(request, await svc.expert_of_user(db(request), who.user_id), who)


@api.post("/api/v1/me/expert/leave", summary="Declare a period I am unavailable", body=LeaveIn, response=LeaveOut,
          status=201, roles=("expert",), errors=(404, 422))
async def add_leave(request: web.Request, who: Principal, body: LeaveIn):
    expert = await svc.expert_of_user(db(request), who.user_id, for_update=True)
    leave = await svc.add_leave(db(request), actor=who.public_id, expert=expert, starts_at=body.starts_at,
                                ends_at=body.ends_at, reason=body.reason)
    return LeaveOut(leave_id=leave.id, starts_at=leave.starts_at, ends_at=leave.ends_at, reason=leave.reason)


@api.delete("/api/v1/me/expert/leave/{leave_id:\\d+}", summary="Withdraw one of my leave periods", status=204,
            roles=("expert",), errors=(404,))
async def remove_leave(request: web.Request, who: Principal):
    expert = await svc.expert_of_user(db(request), who.user_id, for_update=True)
    await svc.remove_leave(db(request), actor=who.public_id, expert=expert, leave_id=int(request.match_info["leave_id"]))
    return web.Response(status=204)


@api.post("/api/v1/me/expert/conflicts", summary="Declare ties to an organisation", body=ConflictIn,
          response=ConflictOut, status=201, roles=("expert",), errors=(404, 409, 422))
async def declare_conflict(request: web.Request, who: Principal, body: ConflictIn):
    expert = await svc.expert_of_user(db(request), who.user_id, for_update=True)
    conflict, org = await svc.declare_conflict(db(request), actor=who.public_id, expert=expert,
                                               organisation_public_id=body.organisation_id,
                                               social_credit_code=body.social_credit_code, note=body.note)
    return ConflictOut(organisation_id=org.public_id, name=org.name, note=conflict.note,
                       declared_at=conflict.declared_at)


@api.delete("/api/v1/me/expert/conflicts/{organisation_id}", summary="Withdraw a declared conflict", status=204,
            roles=("expert",), errors=(404,))
async def withdraw_conflict(request: web.Request, who: Principal):
    expert = await svc.expert_of_user(db(request), who.user_id, for_update=True)
    await svc.withdraw_conflict(db(request), actor=who.public_id, expert=expert,
                                organisation_public_id=request.match_info["organisation_id"])
    return web.Response(status=204)


# ---- invitations ----------------------------------------------------------------------------------------------

@api.get("/api/v1/me/invitations", summary="My evaluation invitations: time, venue and specialty",
         response=MyInvitationOut, roles=("expert",))
async def my_invitations(request: web.Request, who: Principal):
    return await views.my_invitations(db(request), who)


@api.post("/api/v1/invitations/{invitation_id}/accept", summary="Accept an invitation before its deadline",
          response=MyInvitationOut, roles=("expert",), errors=(404, 409))
async def accept(request: web.Request, who: Principal):
    invitation_id = request.match_info["invitation_id"]
    await confirmations.reply(db(request), who=who, invitation_public_id=invitation_id, accept=True,
                              policy=_policy(request.app))
    return await views.my_invitation(db(request), who, invitation_id)


@api.post("/api/v1/invitations/{invitation_id}/decline", summary="Decline an invitation, giving a reason",
          body=DeclineIn, response=MyInvitationOut, roles=("expert",), errors=(404, 409, 422))
async def decline(request: web.Request, who: Principal, body: DeclineIn):
    invitation_id = request.match_info["invitation_id"]
    await confirmations.reply(db(request), who=who, invitation_public_id=invitation_id, accept=False,
                              reason=body.reason, policy=_policy(request.app))
    return await views.my_invitation(db(request), who, invitation_id)


# ---- draws ----------------------------------------------------------------------------------------------------

@api.post("/api/v1/lots/{lot_id}/draws", summary="Request the lot's expert draw; its commitment is published at "
          "once. One original draw per lot, before the opening", body=DrawIn, response=DrawOut, status=201,
          roles=("agent",), errors=(403, 404, 409, 422))
async def create_draw(request: web.Request, who: Principal, body: DrawIn):
    draw = await draws.create_draw(
        db(request), who=who, lot_public_id=request.match_info["lot_id"], session_at=body.session_at,
        venue=body.venue, evaluation_session=body.evaluation_session,
        quotas=[q.model_dump() for q in body.quotas], representatives=body.representatives,
        reply_window_s=body.reply_minutes * 60 if body.reply_minutes else None,
        authority_organisations=body.authority_organisations, policy=_policy(request.app))
    return await views.draw_view(db(request), await draws.created_draw_state(db(request), draw), who)


@api.get("/api/v1/lots/{lot_id}/draws", summary="The expert draws of a lot, as your role may see them",
         response=DrawOut, roles=("agent", "supervisor", "admin"), errors=(403, 404))
async def lot_draws(request: web.Request, who: Principal):
    return await views.lot_draws(db(request), request.match_info["lot_id"], who)


async def _visible_draw(request: web.Request, who: Principal) -> draws.DrawState:
    state = await draws.draw_state(db(request), request.match_info["draw_id"])
    access.check_see_draw(state.tender, who)
    return state


@api.get("/api/v1/draws/{draw_id}", summary="A draw: counts, confirmations and its records; identities for the "
         "tender's supervisors, and for everyone after the award", response=DrawOut,
         roles=("agent", "supervisor", "admin"), errors=(403, 404))
async def get_draw(request: web.Request, who: Principal):
    return await views.draw_view(db(request), await _visible_draw(request, who), who)


@api.post("/api/v1/draws/{draw_id}/entropy", summary="Supply the entropy (the tender's supervisors): the draw runs "
          "and invitations go out", body=EntropyIn, response=DrawOut, roles=("supervisor",),
          errors=(403, 404, 409, 422))
async def supply_entropy(request: web.Request, who: Principal, body: EntropyIn):
    draw = await confirmations.supply_entropy(db(request), who=who, draw_public_id=request.match_info["draw_id"],
                                              entropy=body.entropy, policy=_policy(request.app))
    return await views.draw_view(db(request), await draws.draw_state(db(request), draw.public_id), who)


@api.post("/api/v1/draws/{draw_id}/cancel", summary="Cancel the lot's original draw with a written reason; a new "
          "draw may then be requested before the opening", body=CancelIn, response=DrawOut,
          roles=("agent", "supervisor", "admin"), errors=(403, 404, 409, 422))
async def cancel_draw(request: web.Request, who: Principal, body: CancelIn):
    draw = await draws.cancel_draw(db(request), who=who, draw_public_id=request.match_info["draw_id"],
                                   reason=body.reason)
    return await views.draw_view(db(request), await draws.draw_state(db(request), draw.public_id), who)


@api.get("/api/v1/draws/{draw_id}/verification", summary="The verification record (ALGORITHMS.md §1): the "
         "tender's supervisors until the award, anyone afterwards", auth=False, errors=(401, 403, 404, 409))
async def verification(request: web.Request):
    draw, tender, _ = await draws.get_draw(db(request), request.match_info["draw_id"])
    access.check_read_record(tender, principal(request))
    return draw_records.verification(draw)


@api.get("/api/v1/draws/{draw_id}/exclusions", summary="Who avoidance excluded and why (the tender's supervisors)",
         response=ExclusionOut, roles=("supervisor",), errors=(403, 404))
async def exclusions(request: web.Request, who: Principal):
    state = await draws.draw_state(db(request), request.match_info["draw_id"])
    return await views.exclusions(db(request), state, who)


@api.get("/api/v1/draws/{draw_id}/record", summary="The draw record's content: the tender's supervisors until the "
         "award, anyone afterwards; the edition with names for supervisors", query=RecordQuery,
         response=DrawRecordOut, auth=False, errors=(401, 403, 404, 409))
async def record(request: web.Request, query: RecordQuery):
    who = principal(request)
    state = await draws.draw_state(db(request), request.match_info["draw_id"])
    edition = query.edition or PUBLIC
    access.check_read_record(state.tender, who, edition)
    content = await draw_records.record_content(db(request), state, edition=edition)
    return DrawRecordOut(**content.to_json(), records=await views.record_refs(db(request), state.draw, who))


# ---- statistics ------------------------------------------------------------------------------------------------

@api.get("/api/v1/expert-statistics/draws", summary="Draw frequency and acceptance rate per expert",
         query=DrawStatsQuery, response=DrawStatsOut, roles=("supervisor", "admin"))
async def draw_statistics(request: web.Request, who: Principal, query: DrawStatsQuery):
    return await statistics.draw_statistics(db(request), expert_public_id=query.expert_id, limit=query.limit)


@api.get("/api/v1/expert-statistics/familiar-faces", summary="Tenderer × expert service counts (熟面孔)",
         query=FamiliarQuery, response=FamiliarOut, roles=("supervisor",))
async def familiar_faces(request: web.Request, who: Principal, query: FamiliarQuery):
    return await statistics.familiar_faces(db(request), since_days=query.since_days, min_count=query.min_count,
                                           limit=query.limit)
