"""A session's evaluation report (评标报告) from the closed scoring to the candidates, and the re-evaluation an
upheld objection asks for. Use cases over the report content (`evaluation.report`) and its signing
(`evaluation.report_signing`); never commits, every step writes its ledger entry in the caller's transaction.

- `issue`: once scoring is closed, the chair or the tender's agent issues the report: everything the committee
  produced, read back from the session (members with sites, places and check-in times, the review with its
  reasons, the stored `bidroom-score-v1` record, the flags and their written justifications, dissents filed on a
  stale revision). The session moves scoring_closed → signing. A report made stale by a dissent is issued again
  as the next revision, which prints the dissent.
- `sign`, `refuse`, `dissent`: each member, with their own certificate; a refusal without reasons counts as
  agreement (招标投标法实施条例 第53条). When nobody is pending the platform seals the report and the session
  closes (signing → closed).
- `publish_candidates`: the top 3 of the sealed report go to trading's candidate publication through
  `evaluation.tender_link`.
- `re_evaluate`: an objection upheld during the publicity (招标投标法实施条例 第54条) sends the lot back to its
  committee; the closed session reopens (closed → in_progress), the chair returns the sheets to be changed,
  scoring closes again, and the next report is a new revision that names the one it supersedes.

Report revisions are numbered per lot, over all its sessions; each issue writes its revision and the record it
supersedes into the ledger (`evaluation.report.issue`), and the PDF prints both.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, Unprocessable
from core.identity_models import User
from core.principal import Principal
from evaluation import access, committee, members, tender_link
from evaluation import report_signing as signing
from evaluation.flags import Justification, detect_flags
from evaluation.models import EvaluationMember, EvaluationSession, ScoreSheet
from evaluation.report import (EXPERT, RECORD_KIND, TENDERER_REP, BidderInfo, Dissent, ReportInput, ReportMember,
                               ReportSigner, ReviewOutcome, Venue, build_report)
from evaluation.rules import SessionStatus as SS, re_evaluation_transition
from evaluation.score_record import parse_record
from evaluation.scoring import COMPREHENSIVE, candidates as top_candidates, evaluate
from evaluation.sessions import SessionView, _view as session_view, move_session
from evidence import ledger_service as ledger
from evidence.ledger_models import AuditEntry
from evidence.records import signature_field_name
from evidence.records_models import Record
from evidence.records_service import RecordsContext, register_audience
from trading import statutory
from trading.models import Lot, Tender

log = logging.getLogger(__name__)

ENTITY_KIND = "evaluation_session"
CANDIDATE_COUNT = 3
# the states before scoring closes: nothing can be signed yet
BEFORE_SCORING_CLOSED = frozenset({SS.SCHEDULED, SS.CHECK_IN, SS.IN_PROGRESS})


@dataclass
class ReportView:
    session: EvaluationSession
    record: Record | None
    revision: int | None
    supersedes: str | None
    state: signing.SigningState | None


# ---- who reads the report -------------------------------------------------------------------------------

async def report_audience(session: AsyncSession, session_public_id: str, who: Principal | None) -> bool:
    """The audience rule of records about an evaluation session (evaluation.access.may_read_report)."""
    row = (await session.execute(select(EvaluationSession, Tender).join(Tender, Tender.id == EvaluationSession.tender_id)
                                 .where(EvaluationSession.public_id == session_public_id))).one_or_none()
    if row is None or who is None:
        return False
    es, tender = row
    member = (await session.execute(select(EvaluationMember.id).where(
        EvaluationMember.session_id == es.id, EvaluationMember.user_id == who.user_id,
        EvaluationMember.status != "withdrawn").limit(1))).first() is not None
    return access.may_read_report(tender, who, member=member)


def register() -> None:
    """Make every record about an evaluation session follow `report_audience` (called when the routes load)."""
    register_audience(ENTITY_KIND, report_audience)


# ---- reading the session back -----------------------------------------------------------------------------

async def _lot_reports(session: AsyncSession, lot_id: int) -> list[tuple[Record, str]]:
    """Every report issued for the lot, over all its sessions, oldest first, with the session's public id."""
    rows = (await session.execute(
        select(Record, EvaluationSession.public_id)
        .join(EvaluationSession, Record.entity == func.concat(ENTITY_KIND + ":", EvaluationSession.public_id))
        .where(EvaluationSession.lot_id == lot_id, Record.kind == RECORD_KIND).order_by(Record.id))).all()
    return [(r, sid) for r, sid in rows]


def _numbered(reports: list[tuple[Record, str]], es: EvaluationSession) -> tuple[Record | None, int | None, str | None]:
    """This session's current report, its revision and the record it superseded."""
    current = None
    for i, (record, sid) in enumerate(reports):
        if sid == es.public_id:
            current = (record, i + 1, reports[i - 1][0].record_no if i else None)
    return current or (None, None, None)


async def _committee(session: AsyncSession, es: EvaluationSession) -> tuple[list[EvaluationMember], dict[str, str],
                                                                          dict[str, str]]:
    """The members (committee order), their names, and the account that signs for each."""
    current = await members.members_of(session, es)
    names, accounts = {}, {}
    for m in current:
        user = await session.get(User, m.user_id) if m.user_id is not None else None
        if m.kind == "expert":
            names[m.public_id] = (await committee.expert_brief(session, m.expert_id)).name
        else:
            names[m.public_id] = user.display_name if user else m.public_id
        if user is not None:
            accounts[m.public_id] = user.public_id
    return current, names, accounts


async def _signers(session: AsyncSession, es: EvaluationSession) -> tuple[ReportSigner, ...]:
    current, names, accounts = await _committee(session, es)
    return tuple(ReportSigner(m.public_id, names[m.public_id], signature_field_name(i), accounts.get(m.public_id))
                 for i, m in enumerate(current))


async def _report_input(session: AsyncSession, es: EvaluationSession, tender: Tender, lot: Lot, *, revision: int,
                        supersedes: str | None, dissents: tuple[Dissent, ...], notes: tuple[str, ...]) -> ReportInput:
    view: SessionView = await session_view(session, es, tender, lot)
    current, names, _ = await _committee(session, es)
    places = {p.place.id: p for p in await members.session_places(session, es)}
    report_members = []
    for m in current:
        at = places.get(m.place_id)
        report_members.append(ReportMember(
            public_id=m.public_id, name=names[m.public_id], site=at.site.name if at else "—",
            role=EXPERT if m.kind == "expert" else TENDERER_REP, place=at.place.label if at else None,
            checked_in_at=m.checked_in_at))
    chair = next((m.public_id for m in current if m.id == es.chair_member_id), None)
    if chair is None:
        raise Conflict("the committee has no chair", code="no_chair")
    venues = tuple(Venue(v.booking.venue_role, v.site.name, v.room.name, v.site.region_code)
                   for v in ([view.main] if view.main else []) + view.subs)
    bidders = await tender_link.opened_bidders(session, lot.id)
    titles = {r["code"]: r.get("title") or r["code"] for r in es.review_requirements or []}
    review = []
    for b in (es.review_result or {}).get("bidders", []):
        reasons = tuple(f"{titles.get(f['requirement'], f['requirement'])}: "
                        + "；".join(dict.fromkeys(x for x in f.get("reasons", []) if x)) for f in b.get("failed", []))
        review.append(ReviewOutcome(b["bidder"], b["passed"], reasons))
    data = parse_record(es.score_record)
    result = evaluate(data, tie_draws=es.score_record.get("tie_draws", []))
    flags = tuple(detect_flags(data.method, data.members, data.sheets))
    by_pk = {m.id: m.public_id for m in current}
    by_org = {b.organisation_id: b.organisation_public_id for b in bidders}
    sheets = (await session.execute(select(ScoreSheet).where(ScoreSheet.session_id == es.id))).scalars()
    justifications = tuple(Justification(j["kind"], by_pk[s.member_id], by_org[s.bidder_id], j["criterion"],
                                         Decimal(j["score"]), j["text"])
                           for s in sheets if s.member_id in by_pk for j in s.justifications)
    opening = await tender_link.opening_of(session, tender.id)
    return ReportInput(
        tender_code=tender.code, tender_title=tender.title, lot_id=lot.public_id, lot_title=lot.title,
        session_id=es.public_id, started_at=es.started_at, scoring_closed_at=es.scoring_closed_at, venues=venues,
        members=tuple(report_members), chair=chair, opening_record_no=opening.record_no,
        bidders=tuple(BidderInfo(b.organisation_public_id, b.name) for b in bidders), review=tuple(review),
        scoring=data, evaluation=result, flags=flags, justifications=justifications, dissents=dissents,
        candidate_count=CANDIDATE_COUNT, revision=revision, supersedes=supersedes, opened_at=opening.opened_at,
        notes=notes)


async def _me(session: AsyncSession, es: EvaluationSession, who: Principal) -> EvaluationMember:
    me = (await session.execute(select(EvaluationMember).where(
        EvaluationMember.session_id == es.id, EvaluationMember.user_id == who.user_id,
        EvaluationMember.status != "withdrawn"))).scalar_one_or_none()
    if me is None:
        raise Forbidden("only the committee's members sign the evaluation report", code="not_a_member",
                        details={"session_id": es.public_id})
    return me


def _check_scoring_closed(es: EvaluationSession) -> None:
    """409 unless scoring is closed: `session_suspended` while a supervisor holds the session,
    `session_aborted` once it ended without a result, `scoring_not_closed` before the close (or while a
    re-evaluation has reopened it)."""
    if es.status == SS.SUSPENDED:
        raise Conflict("the session is suspended", code="session_suspended", details={"status": es.status})
    if es.status == SS.ABORTED:
        raise Conflict("the session was aborted", code="session_aborted", details={"status": es.status})
    if SS(es.status) in BEFORE_SCORING_CLOSED or es.scoring_closed_at is None:
        raise Conflict("the report is issued and signed once scoring is closed (评分结束)", code="scoring_not_closed",
                       details={"status": es.status})


async def view(session: AsyncSession, *, who: Principal, session_public_id: str) -> ReportView:
    """Where the report stands: its record, revision and each member's signature, refusal or dissent."""
    es, tender, lot = await members.load_session(session, session_public_id)
    if not await report_audience(session, es.public_id, who):
        raise Forbidden("the report is for the committee, the tender's agents and supervisors",
                        code="report_forbidden", details={"session_id": es.public_id})
    return await _report_view(session, es, lot)


async def _report_view(session: AsyncSession, es: EvaluationSession, lot: Lot) -> ReportView:
    record, revision, supersedes = _numbered(await _lot_reports(session, lot.id), es)
    state = await signing.signing_state(session, record, await _signers(session, es)) if record else None
    return ReportView(es, record, revision, supersedes, state)


# ---- issue, sign, refuse, dissent, seal ---------------------------------------------------------------------

async def issue(session: AsyncSession, ctx: RecordsContext, *, who: Principal, session_public_id: str,
                checkpoint: dict | None) -> ReportView:
    """Issue the report once scoring is closed (the chair or the tender's agent); again, as the next revision,
    when a dissent made the current one stale. `checkpoint` is signed by the caller before this transaction
    writes to the ledger."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    me = (await session.execute(select(EvaluationMember.id).where(
        EvaluationMember.session_id == es.id, EvaluationMember.user_id == who.user_id,
        EvaluationMember.status != "withdrawn"))).scalar_one_or_none()
    if not access.may_run_session(tender, who) and (me is None or me != es.chair_member_id):
        raise Forbidden("the chair or the tender's agent issues the report", code="session_forbidden",
                        details={"session_id": es.public_id})
    _check_scoring_closed(es)
    reports = await _lot_reports(session, lot.id)
    record, _, _ = _numbered(reports, es)
    dissents: tuple[Dissent, ...] = ()
    if es.status == SS.SIGNING:
        state = await signing.signing_state(session, record, await _signers(session, es))
        if not state.stale:
            raise Conflict("the report is issued and being signed", code="report_already_issued",
                           details={"record_no": record.record_no})
        dissents = await _dissents(session, es, reports)
    elif es.status != SS.SCORING_CLOSED:
        raise Conflict(f"the session is {es.status}: no report can be issued", code="session_closed",
                       details={"status": es.status})
    revision = len(reports) + 1
    supersedes = reports[-1][0].record_no if reports else None
    notes: tuple[str, ...] = ()
    reopened = await _reopened_by(session, es)
    if reopened:
        notes = (f"本版为异议 {reopened} 成立后评标委员会重新评审的结果，替代第{revision - 1}版评标报告 {supersedes}。\n"
                 f"This revision is the committee's re-evaluation after objection {reopened} was upheld; it "
                 f"supersedes revision {revision - 1}, report {supersedes}.",)
    inp = await _report_input(session, es, tender, lot, revision=revision, supersedes=supersedes, dissents=dissents,
                              notes=notes)
    record = await signing.issue_report(session, ctx, build_report(inp), who=who, entity=members.entity(es),
                                        audience="entity", checkpoint=checkpoint, revision=revision,
                                        supersedes=supersedes)
    if es.status == SS.SCORING_CLOSED:
        await move_session(session, es, SS.SIGNING, actor=who.public_id,
                           payload={"record_no": record.record_no, "revision": revision})
    return await _report_view(session, es, lot)


async def _dissents(session: AsyncSession, es: EvaluationSession, reports: list[tuple[Record, str]]
                    ) -> tuple[Dissent, ...]:
    """Dissents filed on this session's reports since its last sealed one: what the next revision prints."""
    mine = [r for r, sid in reports if sid == es.public_id]
    sealed = [i for i, r in enumerate(mine) if r.status == "sealed"]
    latest: dict[str, str] = {}
    for record in mine[(sealed[-1] + 1) if sealed else 0:]:
        for d in await signing.dissents_filed(session, record):
            latest.pop(d.member, None)
            latest[d.member] = d.reasons
    return tuple(Dissent(m, r) for m, r in latest.items())


async def _reopened_by(session: AsyncSession, es: EvaluationSession) -> str | None:
    """The upheld objection this session was last reopened for, if any."""
    row = (await session.execute(select(AuditEntry.payload).where(
        AuditEntry.entity == members.entity(es), AuditEntry.action == RE_EVALUATE)
        .order_by(AuditEntry.seq.desc()).limit(1))).scalar_one_or_none()
    return row["objection"] if row else None


async def _signing(session: AsyncSession, es: EvaluationSession, lot: Lot, who: Principal
                   ) -> tuple[Record, tuple[ReportSigner, ...]]:
    await _me(session, es, who)
    _check_scoring_closed(es)
    record, _, _ = _numbered(await _lot_reports(session, lot.id), es)
    if es.status == SS.SCORING_CLOSED or record is None:
        raise Conflict("the report has not been issued yet", code="report_not_issued")
    if es.status != SS.SIGNING:
        raise Conflict("the report is sealed; nothing can be added", code="record_sealed",
                       details={"record_no": record.record_no})
    return record, await _signers(session, es)


async def _seal_when_complete(session: AsyncSession, ctx: RecordsContext, es: EvaluationSession, lot: Lot,
                              record: Record, signers, who: Principal) -> ReportView:
    state = await signing.signing_state(session, record, signers)
    if state.complete and not state.stale:
        record = await signing.finalise(session, ctx, record, signers, who=who)
        await move_session(session, es, SS.CLOSED, actor=who.public_id,
                           payload={"record_no": record.record_no, "sealed": True})
    return await _report_view(session, es, lot)


async def sign(session: AsyncSession, ctx: RecordsContext, *, who: Principal, session_public_id: str) -> ReportView:
    """The calling member signs with their own certificate; the last one completes it and the platform seals."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    record, signers = await _signing(session, es, lot, who)
    record = await signing.sign_report(session, ctx, record, signers, who=who)
    return await _seal_when_complete(session, ctx, es, lot, record, signers, who)


async def refuse(session: AsyncSession, ctx: RecordsContext, *, who: Principal, session_public_id: str) -> ReportView:
    """The calling member declines to sign without reasons: deemed agreement (实施条例 第53条), no block."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    record, signers = await _signing(session, es, lot, who)
    await signing.refuse_to_sign(session, record, signers, who=who)
    return await _seal_when_complete(session, ctx, es, lot, record, signers, who)


async def dissent(session: AsyncSession, *, who: Principal, session_public_id: str, reasons: str) -> ReportView:
    """The calling member states a dissent in writing (实施条例 第53条); the report is issued again to print it."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    record, signers = await _signing(session, es, lot, who)
    await signing.file_dissent(session, record, signers, who=who, reasons=reasons)
    return await _report_view(session, es, lot)


# ---- candidates and re-evaluation ------------------------------------------------------------------------

async def publish_candidates(session: AsyncSession, *, who: Principal, session_public_id: str,
                             publicity_days: int, periods: statutory.Periods):
    """The tender's agent publishes the lot's candidates: the top 3 of this closed session's sealed report, which
    must be the lot's latest revision."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_run_session(tender, who):
        raise Forbidden("the tender's agents publish the candidates", code="session_forbidden",
                        details={"session_id": es.public_id})
    reports = await _lot_reports(session, lot.id)
    record, revision, _ = _numbered(reports, es)
    if es.status != SS.CLOSED or record is None or record.status != "sealed":
        raise Conflict("candidates come from the session's sealed evaluation report", code="report_not_sealed",
                       details={"status": es.status})
    if reports[-1][0].id != record.id:
        raise Conflict("a later revision of the lot's report exists", code="report_superseded",
                       details={"record_no": record.record_no, "latest": reports[-1][0].record_no})
    data = parse_record(es.score_record)
    result = evaluate(data, tie_draws=es.score_record.get("tie_draws", []))
    lines = {line.bidder: line for line in result.ranking}
    chosen = top_candidates(result, CANDIDATE_COUNT)
    recommended = [tender_link.Recommended(b, i, lines[b].total if data.method.kind == COMPREHENSIVE else None)
                   for i, b in enumerate(chosen, start=1)]
    out = await tender_link.publish_recommended(session, tender.id, lot.id, recommended, report_no=record.record_no,
                                                revision=revision, actor=who.public_id,
                                                publicity_days=publicity_days, periods=periods)
    await ledger.append(session, actor=who.public_id, action="evaluation.report.candidates",
                        entity=members.entity(es),
                        payload={"record_no": record.record_no, "revision": revision,
                                 "candidates": [{"bidder": r.bidder, "rank": r.rank} for r in recommended]})
    return out


RE_EVALUATE = "evaluation.session.re_evaluation"
RE_EVALUATION_STATUTE = "招标投标法实施条例 第五十四条"


async def re_evaluate(session: AsyncSession, *, who: Principal, session_public_id: str, reason: str) -> SessionView:
    """Send the lot back to its committee after an upheld objection (招标投标法实施条例 第54条): the closed session
    reopens (closed → in_progress) with the same members and chair; the chair returns the sheets to be changed,
    closes scoring again, and the next report is a new revision superseding this one."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_run_session(tender, who):
        raise Forbidden("the tender's agents send a lot back to its committee", code="session_forbidden",
                        details={"session_id": es.public_id})
    reason = (reason or "").strip()
    if not reason:
        raise Unprocessable("a re-evaluation states why", code="reason_required", details={"field": "reason"})
    objection = await tender_link.sent_back(session, lot.id)
    if objection is None:
        raise Conflict("only an objection upheld during the publicity sends the lot back to its committee",
                       code="not_sent_back", details={"statute": RE_EVALUATION_STATUTE, "lot": lot.public_id})
    reports = await _lot_reports(session, lot.id)
    record, revision, _ = _numbered(reports, es)
    if record is None or reports[-1][0].id != record.id:
        raise Conflict("the lot's latest report is another session's", code="report_superseded")
    live = (await session.execute(select(EvaluationSession.public_id).where(
        EvaluationSession.lot_id == lot.id, EvaluationSession.id != es.id,
        EvaluationSession.status.not_in(("closed", "aborted"))))).scalar_one_or_none()
    if live is not None:
        raise Conflict("the lot has another live session", code="session_exists", details={"session_id": live})
    previous = es.status
    target = re_evaluation_transition(es.status)
    es.status, es.scoring_closed_at = target.value, None
    es.score_tie_groups = es.score_tie_secret = es.score_tie_commitment = es.score_tie_entropy = None
    await session.flush()
    await ledger.append(session, actor=who.public_id, action=RE_EVALUATE, entity=members.entity(es),
                        payload={"from": previous, "to": target.value, "objection": objection, "reason": reason,
                                 "superseded_report": record.record_no, "superseded_revision": revision,
                                 "statute": RE_EVALUATION_STATUTE})
    log.info("evaluation session %s reopened for re-evaluation after objection %s", es.public_id, objection)
    return await session_view(session, es, tender, lot)
