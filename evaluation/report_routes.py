"""HTTP endpoints of the evaluation report (评标报告): issued once scoring is closed, signed by each member with
their own certificate, refused or dissented from in writing, sealed by the platform last; then the candidates
published from it, and the re-evaluation an upheld objection asks for. Thin: `evaluation.session_report` decides.

Who reads the report: the committee that signs it, the tender's agents, its supervisors and admins
(`evaluation.access.may_read_report`). The rule is registered with the records archive for every record about
an evaluation session, so the archive's download (`GET /api/v1/records/{record_no}`), verification page and
verification by upload apply it too.
"""
from __future__ import annotations

import logging

from aiohttp import web

from core.principal import Principal
from evaluation import session_report as svc
from evaluation.report_schemas import DissentIn, PublishIn, ReEvaluationIn, ReEvaluationOut, ReportOut
from evidence.records_service import fresh_checkpoint
from trading import statutory
from trading.schemas import CandidatesOut
from web.api import Api
from web.keys import RECORDS, SETTINGS, db

log = logging.getLogger(__name__)

api = Api("evaluation-report")
svc.register()


def _sid(request: web.Request) -> str:
    return request.match_info["session_id"]


def _out(view: svc.ReportView) -> ReportOut:
    record, state = view.record, view.state
    out = ReportOut(session_id=view.session.public_id, session_status=view.session.status)
    if record is None:
        return out
    out.record_no, out.revision, out.supersedes = record.record_no, view.revision, view.supersedes
    out.record_status, out.sha256, out.issued_at = record.status, record.sha256, record.created_at
    out.download = f"/api/v1/records/{record.record_no}"
    if state is not None:
        out.signed, out.refused, out.dissented = list(state.signed), list(state.refused), list(state.dissented)
        out.pending, out.sealed, out.stale = list(state.pending), state.sealed, state.stale
    return out


@api.post("/api/v1/evaluation-sessions/{session_id}/report",
          summary="Issue the evaluation report once scoring is closed (the chair or the tender's agent); again as "
                  "the next revision when a dissent made it stale", response=ReportOut, status=201,
          errors=(403, 404, 409, 422))
async def issue_report(request: web.Request, who: Principal):
    ctx = request.app[RECORDS]
    # signed in a side transaction that takes the ledger lock: before this one appends anything
    checkpoint = await fresh_checkpoint(ctx)
    return _out(await svc.issue(db(request), ctx, who=who, session_public_id=_sid(request), checkpoint=checkpoint))


@api.get("/api/v1/evaluation-sessions/{session_id}/report",
         summary="The report's revision and each member's signature, refusal or dissent", response=ReportOut,
         errors=(403, 404))
async def get_report(request: web.Request, who: Principal):
    return _out(await svc.view(db(request), who=who, session_public_id=_sid(request)))


@api.post("/api/v1/evaluation-sessions/{session_id}/report/signatures",
          summary="Sign the report with my own certificate (sequential PAdES); the last member's signature or "
                  "refusal completes it and the platform seals it, closing the session", response=ReportOut,
          errors=(403, 404, 409))
async def sign_report(request: web.Request, who: Principal):
    return _out(await svc.sign(db(request), request.app[RECORDS], who=who, session_public_id=_sid(request)))


@api.post("/api/v1/evaluation-sessions/{session_id}/report/refusal",
          summary="Decline to sign without written reasons: deemed agreement (招标投标法实施条例 第53条), the seal "
                  "is not blocked", response=ReportOut, errors=(403, 404, 409))
async def refuse_report(request: web.Request, who: Principal):
    return _out(await svc.refuse(db(request), request.app[RECORDS], who=who, session_public_id=_sid(request)))


@api.post("/api/v1/evaluation-sessions/{session_id}/report/dissent",
          summary="State a dissent in writing (不同意见, 实施条例 第53条); the report is issued again to print it",
          body=DissentIn, response=ReportOut, errors=(403, 404, 409, 422))
async def dissent(request: web.Request, who: Principal, body: DissentIn):
    return _out(await svc.dissent(db(request), who=who, session_public_id=_sid(request), reasons=body.reasons))


@api.post("/api/v1/evaluation-sessions/{session_id}/candidates",
          summary="Publish the lot's candidates (中标候选人公示): the top 3 of this session's sealed report",
          body=PublishIn, response=CandidatesOut, status=201, roles=("agent", "admin"),
          errors=(403, 404, 409, 422))
async def publish_candidates(request: web.Request, who: Principal, body: PublishIn):
    periods = statutory.Periods(request.app[SETTINGS].statutory_periods)
    return CandidatesOut(candidates=await svc.publish_candidates(
        db(request), who=who, session_public_id=_sid(request), publicity_days=body.publicity_days, periods=periods))


@api.post("/api/v1/evaluation-sessions/{session_id}/re-evaluation",
          summary="Send the lot back to its committee after an upheld objection (招标投标法实施条例 第54条): the "
                  "closed session reopens for the chair to return sheets and close scoring again",
          body=ReEvaluationIn, response=ReEvaluationOut, roles=("agent", "admin"), errors=(403, 404, 409, 422))
async def re_evaluate(request: web.Request, who: Principal, body: ReEvaluationIn):
    view = await svc.re_evaluate(db(request), who=who, session_public_id=_sid(request), reason=body.reason)
    return ReEvaluationOut(session_id=view.session.public_id, status=view.session.status, lot_id=view.lot.public_id)
