"""Results: candidates published with a publicity period (中标候选人公示), objections (异议), the award (中标通知书).

The evaluation side calls `publish_candidates` when its committee has ranked the bids; bidders may object
during the publicity period and the agent answers; after the period, with every objection answered, `award`
issues one signed award notice per lot to its first-ranked candidate. All deadlines use the DB clock.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import any_, delete, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import scheduler
from core.clock import format_local, passed
from core.db import db_now
from core.notifier import Notifier
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.identity_models import Organisation, User
from core.ids import public_id
from evidence import ledger_service as ledger
from evidence.records import KeyValueBlock, SignatureTable, TextBlock, signature_field_name
from evidence.records_service import RecordContent, RecordsContext, fresh_checkpoint, issue_record
from evidence.signing import SignerSpec
from trading import statutory
from trading.access import require_manager
from trading.lifecycle import ProcurementMethod, TenderStatus
from trading.loaders import get_tender, lot_not_found
from trading.models import Award, AwardCandidate, Bid, Lot, Objection, Tender
from trading.schemas import AwardOut, CandidateIn, CandidateOut, ObjectionOut
from trading.status import move_tender
from core.principal import Principal

log = logging.getLogger(__name__)

DEFAULT_PUBLICITY_DAYS = statutory.MIN_PUBLICITY_DAYS  # 公示期不少于3日 (招标投标法实施条例 第54条)


# 评标由招标人依法组建的评标委员会负责 (招标投标法 第37条), and it is the committee that recommends the candidates
# (招标投标法实施条例 第53条); negotiation and inquiry panels play that part in government procurement (政府采购法
# 第38条、第40条). Under these methods candidates come only from the committee's sealed report, handed over by
# the evaluation side (`publish_lot_candidates`). Single-source procurement (政府采购法 第39条) has no evaluation
# committee: the purchaser negotiates with the one supplier, so there the agent still enters the result by hand.
HAND_TYPED_METHODS = frozenset({ProcurementMethod.SINGLE_SOURCE.value})
COMMITTEE_STATUTE = "招标投标法 第三十七条; 招标投标法实施条例 第五十三条"


def check_hand_typed_allowed(tender: Tender) -> None:
    """409 committee_report_required: a method with an evaluation committee takes candidates only from its report."""
    if tender.method not in HAND_TYPED_METHODS:
        raise Conflict(f"{COMMITTEE_STATUTE}: under {tender.method} tendering the evaluation committee recommends the "
                       "candidates; they are published from its sealed evaluation report, not entered by hand",
                       code="committee_report_required",
                       details={"statute": COMMITTEE_STATUTE, "method": tender.method,
                                "hand_typed_methods": sorted(HAND_TYPED_METHODS)})


async def _resolve(session: AsyncSession, tender: Tender, candidates: list[CandidateIn]) -> list[tuple]:
    lots = {lot.public_id: lot for lot in (await session.execute(
        select(Lot).where(Lot.tender_id == tender.id))).scalars()}
    seen: set[tuple[str, int]] = set()
    resolved = []
    for cand in candidates:
        lot = lots.get(cand.lot)
        if lot is None:
            raise lot_not_found(cand.lot)
        if (cand.lot, cand.rank) in seen:
            raise Unprocessable("two candidates share a rank", code="duplicate_rank",
                                details={"lot": cand.lot, "rank": cand.rank})
        seen.add((cand.lot, cand.rank))
        bid = (await session.execute(select(Bid).where(Bid.public_id == cand.bid, Bid.lot_id == lot.id))
               ).scalar_one_or_none()
        if bid is None or bid.status != "opened":
            raise Unprocessable("a candidate must be a bid opened for that lot", code="invalid_candidate",
                                details={"bid": cand.bid, "lot": cand.lot})
        resolved.append((cand, lot, bid))
    for lot_id in {lot.id for _, lot, _ in resolved}:
        ranks = sorted(c.rank for c, lot, _ in resolved if lot.id == lot_id)
        if ranks != list(range(1, len(ranks) + 1)):
            raise Unprocessable("ranks must run 1, 2, 3 … without gaps", code="invalid_ranks",
                                details={"ranks": ranks})
    return resolved


async def publish_candidates(session: AsyncSession, tender_code: str, candidates: list[CandidateIn], *,
                             actor: str, publicity_days: int = DEFAULT_PUBLICITY_DAYS,
                             periods: statutory.Periods = statutory.ENFORCED) -> list[CandidateOut]:
    """Publish candidates entered by the agent, for a method without an evaluation committee (single source):
    (opened ->) evaluating -> candidates_published, with a publicity period of at least 3 days
    (招标投标法实施条例 第54条) unless the statutory periods are switched off.

    Any other method is refused with 409 committee_report_required (see HAND_TYPED_METHODS)."""
    tender = await get_tender(session, tender_code, lock="update")
    check_hand_typed_allowed(tender)
    statutory.check_publicity_days(publicity_days, periods)
    resolved = await _resolve(session, tender, candidates)
    if tender.status == TenderStatus.OPENED.value:
        # no committee sits: the negotiation with the single supplier is the evaluation
        await move_tender(session, tender, TenderStatus.EVALUATING, actor=actor, payload={"by": "hand_typed_result"})
    await move_tender(session, tender, TenderStatus.CANDIDATES_PUBLISHED, actor=actor,
                      payload={"publicity_days": publicity_days, "source": "hand_typed",
                               "candidates": [{"lot": c.lot, "bid": c.bid, "rank": c.rank} for c in candidates]})
    now = await db_now(session)
    ends = now + timedelta(days=publicity_days)
    await session.execute(delete(AwardCandidate).where(AwardCandidate.tender_id == tender.id))
    for cand, lot, bid in resolved:
        session.add(AwardCandidate(tender_id=tender.id, lot_id=lot.id, bid_id=bid.id, rank=cand.rank,
                                   score=cand.score, publicity_ends_at=ends, published_at=now))
    await session.flush()
    return await list_candidates(session, tender_code)


@dataclass(frozen=True)
class RankedBid:
    """A candidate as the evaluation committee's report recommends it: the bid, its rank, its total score."""

    bid_id: int
    rank: int
    score: Decimal | None = None


async def publish_lot_candidates(session: AsyncSession, tender: Tender, lot: Lot, ranked: list[RankedBid], *,
                                 report_no: str, report_revision: int, actor: str,
                                 publicity_days: int = DEFAULT_PUBLICITY_DAYS,
                                 periods: statutory.Periods = statutory.ENFORCED) -> list[CandidateOut]:
    """Publish one lot's candidates from its committee's sealed evaluation report (the caller, the evaluation
    side, vouches for the report; `tender` is locked by the caller).

    The lot's earlier candidates (an earlier revision, before a re-evaluation) are replaced. Once every lot that
    has not failed has its candidates, the tender moves evaluating -> candidates_published; each lot's publicity
    lasts at least 3 days (招标投标法实施条例 第54条) unless the statutory periods are switched off."""
    if tender.status != TenderStatus.EVALUATING.value:
        raise Conflict("candidates are published from the evaluation, while the tender is being evaluated",
                       code="illegal_transition",
                       details={"current": tender.status, "target": TenderStatus.CANDIDATES_PUBLISHED.value})
    statutory.check_publicity_days(publicity_days, periods)
    if not ranked:
        raise Unprocessable("the report recommends no candidate", code="no_candidates", details={"lot": lot.public_id})
    ranks = sorted(r.rank for r in ranked)
    if ranks != list(range(1, len(ranks) + 1)):
        raise Unprocessable("ranks must run 1, 2, 3 … without gaps", code="invalid_ranks", details={"ranks": ranks})
    bids = {b.id: b for b in (await session.execute(select(Bid).where(
        Bid.id.in_([r.bid_id for r in ranked])))).scalars()}
    for r in ranked:
        bid = bids.get(r.bid_id)
        if bid is None or bid.lot_id != lot.id or bid.status != "opened":
            raise Unprocessable("a candidate must be a bid opened for that lot", code="invalid_candidate",
                                details={"lot": lot.public_id})
    now = await db_now(session)
    ends = now + timedelta(days=publicity_days)
    await session.execute(delete(AwardCandidate).where(AwardCandidate.lot_id == lot.id))
    for r in ranked:
        session.add(AwardCandidate(tender_id=tender.id, lot_id=lot.id, bid_id=r.bid_id, rank=r.rank, score=r.score,
                                   publicity_ends_at=ends, published_at=now, report_no=report_no,
                                   report_revision=report_revision))
    await session.flush()
    listed = [{"rank": r.rank, "bid": bids[r.bid_id].public_id,
               "score": None if r.score is None else format(r.score, "f")} for r in sorted(ranked, key=lambda x: x.rank)]
    await ledger.append(session, actor=actor, action="tender.lot_candidates", entity=f"tender:{tender.code}",
                        payload={"lot": lot.public_id, "report_no": report_no, "report_revision": report_revision,
                                 "publicity_days": publicity_days, "publicity_ends_at": ends.isoformat(),
                                 "candidates": listed, "statute": statutory.PUBLICITY_STATUTE})
    waiting = (await session.execute(
        select(Lot.public_id).where(Lot.tender_id == tender.id, Lot.failed_at.is_(None),
                                    ~select(AwardCandidate.id).where(AwardCandidate.lot_id == Lot.id).exists())
    )).scalars().all()
    if not waiting:
        await move_tender(session, tender, TenderStatus.CANDIDATES_PUBLISHED, actor=actor,
                          payload={"publicity_days": publicity_days, "source": "evaluation_report",
                                   "lot": lot.public_id, "report_no": report_no, "report_revision": report_revision})
    return await list_candidates(session, tender.code)


async def list_candidates(session: AsyncSession, tender_code: str) -> list[CandidateOut]:
    """The published candidates, per lot in rank order (public)."""
    tender = await get_tender(session, tender_code)
    rows = (await session.execute(
        select(AwardCandidate, Lot, Bid, Organisation).join(Lot, Lot.id == AwardCandidate.lot_id)
        .join(Bid, Bid.id == AwardCandidate.bid_id).join(Organisation, Organisation.id == Bid.organisation_id)
        .where(AwardCandidate.tender_id == tender.id).order_by(Lot.lot_no, AwardCandidate.rank))).all()
    return [CandidateOut(lot=lot.public_id, rank=c.rank, bid=bid.public_id, bidder=org.public_id,
                         bidder_name=org.name, price=bid.price, score=c.score, publicity_ends_at=c.publicity_ends_at,
                         report_no=c.report_no, report_revision=c.report_revision)
            for c, lot, bid, org in rows]


async def list_awards(session: AsyncSession, tender_code: str) -> list[AwardOut]:
    """The awards made (中标结果), per lot, each with its public award notice record (public once awarded)."""
    tender = await get_tender(session, tender_code)
    rows = (await session.execute(
        select(Award, Lot, Bid, Organisation).join(Lot, Lot.id == Award.lot_id).join(Bid, Bid.id == Award.bid_id)
        .join(Organisation, Organisation.id == Bid.organisation_id)
        .where(Award.tender_id == tender.id).order_by(Lot.lot_no))).all()
    return [AwardOut(lot=lot.public_id, bid=bid.public_id, bidder=org.public_id, price=award.price,
                     record_no=award.record_no) for award, lot, bid, org in rows]


async def _publicity_ends(session: AsyncSession, tender: Tender):
    return (await session.execute(select(func.max(AwardCandidate.publicity_ends_at)).where(
        AwardCandidate.tender_id == tender.id))).scalar_one()


async def file_objection(session: AsyncSession, tender_code: str, who: Principal, body: str) -> ObjectionOut:
    """A bidder of this tender objects (异议) during the publicity period."""
    tender = await get_tender(session, tender_code)
    if who.organisation_id is None or (await session.execute(select(Bid.id).where(
            Bid.tender_id == tender.id, Bid.organisation_id == who.organisation_id).limit(1))).first() is None:
        raise Forbidden("only bidders of this tender may object", code="not_a_bidder")
    if tender.status != TenderStatus.CANDIDATES_PUBLISHED.value:
        raise Conflict("objections are taken during the candidates' publicity period", code="publicity_closed",
                       details={"current": tender.status})
    now = await db_now(session)
    ends = await _publicity_ends(session, tender)
    if ends is None or now >= ends:
        raise Conflict("the publicity period is over", code="publicity_closed",
                       details={"publicity_ends_at": ends.isoformat() if ends else None})
    objection = Objection(public_id=public_id("X", 8), tender_id=tender.id, organisation_id=who.organisation_id,
                          filed_by_id=who.user_id, body=body.strip(), filed_at=now)
    session.add(objection)
    await session.flush()
    due = statutory.objection_answer_due(now)
    await ledger.append(session, actor=who.public_id, action="tender.objection", entity=f"tender:{tender.code}",
                        payload={"objection": objection.public_id, "answer_due": due.isoformat(),
                                 "statute": statutory.OBJECTION_STATUTE})
    # 实施条例 第54条: the answer is due within 3 days; the agent is reminded before, the supervisors alerted after
    payload = {"objection": objection.public_id}
    await scheduler.schedule(session, OBJECTION_REMINDER_JOB, due_at=statutory.objection_reminder_at(now),
                             payload=payload, dedupe_key=_job_key(OBJECTION_REMINDER_JOB, objection))
    await scheduler.schedule(session, OBJECTION_OVERDUE_JOB, due_at=due, payload=payload,
                             dedupe_key=_job_key(OBJECTION_OVERDUE_JOB, objection))
    return _objection_out(objection, who)


OBJECTION_REMINDER_JOB = "trading.objection_reminder"
OBJECTION_OVERDUE_JOB = "trading.objection_overdue"


def _job_key(kind: str, objection: Objection) -> str:
    return f"{kind}:{objection.public_id}"


async def _open_objection(session: AsyncSession, payload: dict) -> tuple[Objection, Tender] | None:
    """The objection a job is about, locked, while it is still unanswered; None once answered or gone."""
    objection = (await session.execute(select(Objection).where(Objection.public_id == payload.get("objection"))
                                       .with_for_update())).scalar_one_or_none()
    if objection is None or objection.answer is not None:
        return None
    return objection, await session.get(Tender, objection.tender_id)


async def _users_with_role(session: AsyncSession, organisation_id: int | None, role: str,
                           also: int | None = None) -> list[int]:
    """Active users of `organisation_id` holding `role` (plus the user `also`), once each, in id order."""
    clauses = []
    if organisation_id is not None:
        clauses.append((User.organisation_id == organisation_id) & (literal(role) == any_(User.roles)))
    if also is not None:
        clauses.append(User.id == also)
    if not clauses:
        return []
    rows = await session.execute(select(User.id).where(or_(*clauses), User.is_active.is_(True)).order_by(User.id))
    return list(dict.fromkeys(rows.scalars()))


async def remind_objection(session: AsyncSession, payload: dict, *, notifier: Notifier) -> None:
    """The job a day before an objection's answer is due: remind the tender's agents (ledger entry)."""
    found = await _open_objection(session, payload)
    if found is None:
        return
    objection, tender = found
    due = statutory.objection_answer_due(objection.filed_at)
    agents = await _users_with_role(session, tender.agent_id, "agent", also=tender.created_by_id)
    await _tell(session, notifier, agents, "tender.objection_reminder", objection, tender, due,
                title=f"异议答复期限将至 Objection answer due soon {tender.code}",
                body=f"异议 {objection.public_id} 须于 {format_local(due)} 前答复"
                     f"（{statutory.OBJECTION_STATUTE}：自收到异议之日起3日内作出答复）。"
                     f"Objection {objection.public_id} must be answered by {format_local(due)}.")


async def alert_overdue_objection(session: AsyncSession, payload: dict, *, notifier: Notifier) -> None:
    """The job at an objection's answer deadline: if still unanswered, alert the tender's supervisors."""
    found = await _open_objection(session, payload)
    if found is None:
        return
    objection, tender = found
    due = statutory.objection_answer_due(objection.filed_at)
    if not passed(due, await db_now(session)):  # ran early: come back at the deadline
        await scheduler.schedule(session, OBJECTION_OVERDUE_JOB, due_at=due, payload=payload,
                                 dedupe_key=_job_key(OBJECTION_OVERDUE_JOB, objection))
        return
    supervisors = await _users_with_role(session, tender.supervisor_organisation_id, "supervisor")
    await _tell(session, notifier, supervisors, "tender.objection_overdue", objection, tender, due,
                title=f"异议逾期未答复 Objection overdue {tender.code}",
                body=f"异议 {objection.public_id} 应于 {format_local(due)} 前答复，至今未答复"
                     f"（{statutory.OBJECTION_STATUTE}）。Objection {objection.public_id} was due to be answered by "
                     f"{format_local(due)} and is still unanswered.")


async def _tell(session: AsyncSession, notifier: Notifier, user_ids: list[int], kind: str, objection: Objection,
                tender: Tender, due: datetime, *, title: str, body: str) -> None:
    """Notify these users about an objection's answer deadline, and ledger whom (by count) and why."""
    data = {"tender": tender.code, "objection": objection.public_id, "answer_due": due.isoformat()}
    for user_id in user_ids:
        await notifier.notify(session, user_id=user_id, kind=kind, title=title, body=body, data=data)
    await ledger.append(session, actor="system", action=kind, entity=f"tender:{tender.code}",
                        payload={"objection": objection.public_id, "answer_due": due.isoformat(),
                                 "notified": len(user_ids), "statute": statutory.OBJECTION_STATUTE})


def job_handlers(notifier: Notifier) -> dict[str, Any]:
    """The objection jobs by kind, bound to the app's notifier, for the route module to register."""
    async def reminder(session: AsyncSession, payload: dict) -> None:
        await remind_objection(session, payload, notifier=notifier)

    async def overdue(session: AsyncSession, payload: dict) -> None:
        await alert_overdue_objection(session, payload, notifier=notifier)
    return {OBJECTION_REMINDER_JOB: reminder, OBJECTION_OVERDUE_JOB: overdue}


def _objection_out(o: Objection, who: Principal | None) -> ObjectionOut:
    # Who objected stays with the agent and the ledger; others see the text and the answer.
    return ObjectionOut(objection=o.public_id, filed_at=o.filed_at, body=o.body, answer=o.answer,
                        answered_at=o.answered_at, upheld=o.upheld,
                        mine=who is not None and who.organisation_id == o.organisation_id)


async def list_objections(session: AsyncSession, tender_code: str, who: Principal | None) -> list[ObjectionOut]:
    """Objections to a tender's candidates with their answers."""
    tender = await get_tender(session, tender_code)
    rows = (await session.execute(select(Objection).where(Objection.tender_id == tender.id)
                                  .order_by(Objection.filed_at, Objection.id))).scalars()
    return [_objection_out(o, who) for o in rows]


async def answer_objection(session: AsyncSession, objection_id: str, who: Principal, answer: str, *,
                           upheld: bool = False, lot: str | None = None) -> ObjectionOut:
    """The tender's agent answers an objection, once, within 3 days (招标投标法实施条例 第54条).

    An upheld objection (异议成立) sends the lot back to its evaluation committee: its candidates are withdrawn
    from the publicity and the tender moves candidates_published -> evaluating; the committee's re-evaluation
    issues a new revision of its report, from which the lot's candidates are published again. `lot` names the
    lot (needed only when the tender has more than one lot still standing)."""
    objection = (await session.execute(select(Objection).where(Objection.public_id == objection_id)
                                       .with_for_update())).scalar_one_or_none()
    if objection is None:
        raise NotFound("no such objection", code="unknown_objection")
    tender = (await session.execute(select(Tender).where(Tender.id == objection.tender_id).with_for_update()
                                    .execution_options(populate_existing=True))).scalar_one()
    require_manager(tender, who)
    if objection.answer is not None:
        raise Conflict("this objection is already answered", code="already_answered")
    target = None
    if upheld:
        target = await _upheld_lot(session, tender, lot)
    objection.answer, objection.answered_by_id = answer.strip(), who.user_id
    objection.answered_at = await db_now(session)
    objection.upheld = upheld
    objection.lot_id = target.id if target is not None else None
    await session.flush()
    for kind in (OBJECTION_REMINDER_JOB, OBJECTION_OVERDUE_JOB):
        await scheduler.cancel(session, _job_key(kind, objection))
    await ledger.append(session, actor=who.public_id, action="tender.objection_answer",
                        entity=f"tender:{tender.code}",
                        payload={"objection": objection.public_id, "upheld": upheld,
                                 "lot": target.public_id if target is not None else None,
                                 "statute": statutory.OBJECTION_STATUTE})
    if target is not None:
        withdrawn = (await session.execute(delete(AwardCandidate).where(AwardCandidate.lot_id == target.id)
                                           .returning(AwardCandidate.report_no))).scalars().all()
        await move_tender(session, tender, TenderStatus.EVALUATING, actor=who.public_id,
                          payload={"re_evaluation": target.public_id, "objection": objection.public_id,
                                   "withdrawn_report": next(iter(withdrawn), None),
                                   "statute": statutory.OBJECTION_STATUTE})
    return _objection_out(objection, who)


async def _upheld_lot(session: AsyncSession, tender: Tender, lot_public_id: str | None) -> Lot:
    """The lot an upheld objection sends back: named, or the tender's only lot with candidates."""
    if tender.status != TenderStatus.CANDIDATES_PUBLISHED.value:
        raise Conflict("an objection is upheld during the candidates' publicity", code="illegal_transition",
                       details={"current": tender.status, "target": TenderStatus.EVALUATING.value})
    lots = list((await session.execute(
        select(Lot).where(Lot.tender_id == tender.id,
                          select(AwardCandidate.id).where(AwardCandidate.lot_id == Lot.id).exists())
        .order_by(Lot.lot_no))).scalars())
    if lot_public_id is None:
        if len(lots) != 1:
            raise Unprocessable("name the lot the upheld objection sends back", code="lot_required",
                                details={"lots": [x.public_id for x in lots]})
        return lots[0]
    found = next((x for x in lots if x.public_id == lot_public_id), None)
    if found is None:
        raise lot_not_found(lot_public_id)
    return found


async def objection_sending_back(session: AsyncSession, lot: Lot) -> Objection | None:
    """The upheld objection that sent this lot back to its committee, while the lot still waits for new
    candidates (for the evaluation side, which re-evaluates it)."""
    tender = await session.get(Tender, lot.tender_id)
    if tender.status != TenderStatus.EVALUATING.value:
        return None
    if (await session.execute(select(AwardCandidate.id).where(AwardCandidate.lot_id == lot.id).limit(1))).first():
        return None
    return (await session.execute(select(Objection).where(Objection.lot_id == lot.id, Objection.upheld.is_(True))
                                  .order_by(Objection.answered_at.desc(), Objection.id.desc()).limit(1))
            ).scalar_one_or_none()


async def award(session: AsyncSession, records: RecordsContext, tender_code: str, who: Principal) -> list[AwardOut]:
    """After the publicity period, award each lot to its first candidate with a signed 中标通知书."""
    # signed in a side transaction that needs the ledger lock: before this one appends anything
    checkpoint = await fresh_checkpoint(records)
    tender = await get_tender(session, tender_code, lock="update")
    require_manager(tender, who)
    if tender.status != TenderStatus.CANDIDATES_PUBLISHED.value:
        raise Conflict("awards follow the candidates' publicity", code="illegal_transition",
                       details={"current": tender.status, "target": TenderStatus.AWARDED.value})
    now = await db_now(session)
    ends = await _publicity_ends(session, tender)
    if ends is None or now < ends:
        raise Conflict("the publicity period is not over", code="publicity_not_over",
                       details={"publicity_ends_at": ends.isoformat() if ends else None})
    pending = (await session.execute(select(func.count()).select_from(Objection).where(
        Objection.tender_id == tender.id, Objection.answer.is_(None)))).scalar_one()
    if pending:
        raise Conflict("every objection must be answered before the award", code="objections_pending",
                       details={"pending": pending})
    firsts = (await session.execute(
        select(AwardCandidate, Lot, Bid, Organisation).join(Lot, Lot.id == AwardCandidate.lot_id)
        .join(Bid, Bid.id == AwardCandidate.bid_id).join(Organisation, Organisation.id == Bid.organisation_id)
        .where(AwardCandidate.tender_id == tender.id, AwardCandidate.rank == 1).order_by(Lot.lot_no))).all()
    user = await session.get(User, who.user_id)
    tenderer = await session.get(Organisation, tender.tenderer_id)
    out = []
    for cand, lot, bid, org in firsts:
        record = await issue_record(
            session, records, actor=who.public_id, entity=f"tender:{tender.code}",
            content=_award_notice(tender, lot, bid, org, tenderer, now, user.display_name),
            signers=[SignerSpec.person(signature_field_name(0), user.public_id, user.display_name,
                                       reason="中标通知书 / Award notice")], audience="public",
            checkpoint=checkpoint)
        session.add(Award(tender_id=tender.id, lot_id=lot.id, bid_id=bid.id, price=bid.price,
                          record_no=record.record_no, awarded_at=now))
        out.append(AwardOut(lot=lot.public_id, bid=bid.public_id, bidder=org.public_id, price=bid.price,
                            record_no=record.record_no))
    await session.flush()
    await move_tender(session, tender, TenderStatus.AWARDED, actor=who.public_id,
                      payload={"awards": [{"lot": a.lot, "bid": a.bid, "price": format(a.price, "f"),
                                           "record_no": a.record_no} for a in out]})
    return out


async def complete(session: AsyncSession, tender_code: str, who: Principal, *, note: str | None = None) -> Tender:
    """awarded -> complete: the agent records that the written contract is signed with the winner
    (招标投标法 第46条: within 30 days of the award notice) and the tender's file is closed."""
    tender = await get_tender(session, tender_code, lock="update")
    require_manager(tender, who)
    awards = (await session.execute(select(Award.record_no).where(Award.tender_id == tender.id)
                                    .order_by(Award.lot_id))).scalars().all()
    await move_tender(session, tender, TenderStatus.COMPLETE, actor=who.public_id,
                      payload={"award_notices": list(awards), "note": (note or "").strip() or None,
                               "statute": "招标投标法 第四十六条"})
    return tender


def _award_notice(tender: Tender, lot: Lot, bid: Bid, winner: Organisation, tenderer: Organisation, now,
                  signer_name: str) -> RecordContent:
    price: Decimal = bid.price
    return RecordContent(
        kind="award_notice", title_zh="中标通知书", title_en="Award notice",
        blocks=[
            TextBlock(f"{winner.name}：\n你单位于本项目的投标经评标委员会评审、中标候选人公示期满，确定为中标人。"
                      "请自本通知书发出之日起三十日内与招标人订立书面合同。\n"
                      "Your bid has been selected after evaluation and the candidates' publicity period. "
                      "Please sign the written contract with the tenderer within 30 days of this notice."),
            KeyValueBlock([("项目编号", "Tender code", tender.code), ("项目名称", "Title", tender.title),
                           ("标段", "Lot", f"{lot.public_id} {lot.title}"),
                           ("招标人", "Tenderer", tenderer.name),
                           ("中标人", "Winning bidder", f"{winner.name}（{winner.social_credit_code}）"),
                           ("中标价（元）", "Award price (CNY)", f"{price:,.2f}"),
                           ("工期（日）", "Duration (days)", bid.duration_days),
                           ("发出时间", "Issued at", now)]),
            SignatureTable([(signer_name, "招标代理", "Tendering agent")]),
        ],
        attachment={"tender": tender.code, "lot": lot.public_id, "bid": bid.public_id, "bidder": winner.public_id,
                    "price": format(price, "f"), "duration_days": bid.duration_days, "issued_at": now.isoformat()})
