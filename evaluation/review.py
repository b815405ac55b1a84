"""Qualification and compliance review (资格审查 / 符合性审查) of a session: the requirements reviewed (set by the
tender's agent from the tender documents), each member's pass or fail per bidder per requirement with reasons,
and the chair closing the review, which decides it by majority (evaluation.rules.review_result): rejected
bidders are out with their reasons; fewer than 3 compliant bids fail the lot (流标), on the lot itself through
evaluation.tender_link, with a failure record signed by the chair and sealed (evaluation.failure_record), and the
tender fails once every one of its lots has.

Never commits; every action writes its ledger entry in the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import Conflict, Forbidden, Unprocessable
from core.principal import Principal
from evaluation import access, committee, failure_record, members, tender_link
from evaluation.models import EvaluationMember, EvaluationSession, ReviewVote
from evaluation.rules import (REVIEW_KINDS, ReviewBallot, SessionStatus as SS, check_declared_bidders,
                              check_review_ballot, missing_ballots, review_result)
from evidence import ledger_service as ledger
from evidence.records_service import RecordsContext, fresh_checkpoint


@dataclass
class ReviewView:
    session: EvaluationSession
    requirements: list[dict]
    bidders: list[tender_link.Bidder]
    ballots_cast: int
    ballots_expected: int
    mine: list[ReviewBallot]


def _check_in_progress(es: EvaluationSession) -> None:
    if es.status != SS.IN_PROGRESS:
        raise Conflict(f"the session is {es.status}: the review runs while the evaluation is in progress",
                       code="session_not_in_progress", details={"status": es.status})
    if es.review_closed_at is not None:
        raise Conflict("the review is closed", code="review_closed")


async def _ballots(session: AsyncSession, es: EvaluationSession) -> list[ReviewBallot]:
    current = {m.id: m.public_id for m in await members.members_of(session, es)}
    bidders = {b.organisation_id: b.organisation_public_id
               for b in await tender_link.opened_bidders(session, es.lot_id)}
    rows = (await session.execute(select(ReviewVote).where(ReviewVote.session_id == es.id))).scalars()
    return [ReviewBallot(current[v.member_id], bidders[v.bidder_id], v.requirement, v.passed, v.reason)
            for v in rows if v.member_id in current and v.bidder_id in bidders]


async def set_requirements(session: AsyncSession, *, who: Principal, session_public_id: str,
                           requirements: Sequence[dict]) -> ReviewView:
    """The tender's agent lists the requirements reviewed, before the first ballot."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_run_session(tender, who):
        raise Forbidden("only the tender's agents run its evaluation session", code="session_forbidden")
    _check_in_progress(es)
    if await _ballots(session, es):
        raise Conflict("the review has started: its requirements are fixed", code="review_started")
    codes = [r["code"] for r in requirements]
    if len(set(codes)) != len(codes):
        raise Unprocessable("each requirement has its own code", code="requirement_repeated",
                            details={"codes": codes})
    bad = [r["kind"] for r in requirements if r["kind"] not in REVIEW_KINDS]
    if bad:
        raise Unprocessable("a requirement is a qualification or a compliance requirement", code="unknown_kind",
                            details={"kinds": bad, "allowed": list(REVIEW_KINDS)})
    es.review_requirements = [dict(r) for r in requirements]
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.review.requirements",
                        entity=members.entity(es), payload={"requirements": es.review_requirements})
    return await view(session, who=who, session_public_id=es.public_id)


async def _member(session: AsyncSession, es: EvaluationSession, who: Principal) -> EvaluationMember:
    me = next((m for m in await members.members_of(session, es) if m.user_id == who.user_id), None)
    if me is None:
        raise Forbidden("only members of the committee act in this session", code="not_a_member",
                        details={"session_id": es.public_id})
    return me


async def cast(session: AsyncSession, *, who: Principal, session_public_id: str,
               ballots: Sequence[dict]) -> ReviewView:
    """A member's ballots: pass or fail (with a reason) per bidder per requirement; revisable until closed."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    me = await _member(session, es, who)
    _check_in_progress(es)
    if es.chair_member_id is None:
        raise Conflict("the committee elects its chair first", code="chair_not_elected")
    if not es.review_requirements:
        raise Conflict("the requirements to review are not set", code="requirements_not_set")
    bidders = {b.organisation_public_id: b for b in await tender_link.opened_bidders(session, lot.id)}
    known = {r["code"] for r in es.review_requirements}
    check_declared_bidders([b["bidder"] for b in ballots], list(bidders))
    unknown = sorted({b["requirement"] for b in ballots} - known)
    if unknown:
        raise Unprocessable("no such requirement in this review", code="unknown_requirement",
                            details={"requirements": unknown})
    for b in ballots:
        reason = check_review_ballot(b["passed"], b.get("reason"))
        stmt = insert(ReviewVote).values(session_id=es.id, member_id=me.id,
                                         bidder_id=bidders[b["bidder"]].organisation_id,
                                         requirement=b["requirement"], passed=b["passed"], reason=reason)
        await session.execute(stmt.on_conflict_do_update(
            constraint="evaluation_review_vote_session_id_key",
            set_={"passed": stmt.excluded.passed, "reason": stmt.excluded.reason, "updated_at": await db_now(session)}))
    await ledger.append(session, actor=who.public_id, action="evaluation.review.ballots", entity=members.entity(es),
                        payload={"member": me.public_id,
                                 "ballots": [{"bidder": b["bidder"], "requirement": b["requirement"],
                                              "passed": b["passed"], "reason": (b.get("reason") or "").strip() or None}
                                             for b in ballots]})
    return await view(session, who=who, session_public_id=es.public_id)


async def close(session: AsyncSession, *, who: Principal, session_public_id: str,
                records: RecordsContext | None = None) -> ReviewView:
    """The chair closes the review: decided by majority, rejected bids out with reasons, and the lot failed
    when fewer than 3 compliant bids remain (评标委员会和评标方法暂行规定 第二十七条; 招标投标法 第42条), with its
    failure record (流标记录) signed by the chair and sealed (evaluation.failure_record) when `records` is given."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    me = await _member(session, es, who)
    _check_in_progress(es)
    if es.chair_member_id != me.id:
        raise Forbidden("the chair closes the review", code="not_the_chair")
    current = [m.public_id for m in await members.members_of(session, es)]
    opened = await tender_link.opened_bidders(session, lot.id)
    bidders = [b.organisation_public_id for b in opened]
    requirements = [r["code"] for r in es.review_requirements or []]
    if not requirements:
        raise Conflict("the requirements to review are not set", code="requirements_not_set")
    result = review_result(current, bidders, requirements, await _ballots(session, es))
    # the record's ledger checkpoint is signed in a side transaction, before this one appends to the ledger
    checkpoint = await fresh_checkpoint(records) if result.lot_failed and records is not None else None
    es.review_result = {"bidders": [{"bidder": b.bidder, "passed": b.passed, "failed": list(b.failed)}
                                    for b in result.bidders],
                        "compliant": result.compliant, "lot_failed": result.lot_failed}
    es.review_closed_at = await db_now(session)
    es.lot_failed = result.lot_failed
    await session.flush()
    record_no = None
    if result.lot_failed and records is not None:
        names = {b.organisation_public_id: b.name for b in opened}
        chair_name = (await committee.expert_brief(session, me.expert_id)).name if me.expert_id is not None \
            else who.public_id
        record = await failure_record.issue_failure_record(session, records, failure_record.FailureInput(
            tender_code=tender.code, tender_title=tender.title, lot_id=lot.public_id, lot_title=lot.title,
            session_id=es.public_id, closed_at=es.review_closed_at, requirements=es.review_requirements,
            bidders=[failure_record.ReviewedBidder(b.bidder, names[b.bidder], b.passed, b.failed)
                     for b in result.bidders],
            members=len(current), chair_name=chair_name), who=who, checkpoint=checkpoint)
        record_no = record.record_no
        es.review_result = {**es.review_result, "failure_record": record_no}
        await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.review.closed", entity=members.entity(es),
                        payload={**es.review_result, "statute": "招标投标法实施条例 第51条"})
    if result.lot_failed:
        await ledger.append(session, actor=who.public_id, action="evaluation.review.lot_failed",
                            entity=members.entity(es),
                            payload={"lot": lot.public_id, "compliant": result.compliant, "record_no": record_no,
                                     "statute": "评标委员会和评标方法暂行规定 第二十七条; 招标投标法 第42条"})
        # the lot fails (流标) on trading's side too, and the tender with it once every lot has failed
        await tender_link.fail_lot_after_review(
            session, tender_id=tender.id, lot_id=lot.id, compliant=len(result.compliant),
            rejected=[b for b in es.review_result["bidders"] if not b["passed"]], actor=who.public_id,
            session_public_id=es.public_id, record_no=record_no)
    return await view(session, who=who, session_public_id=es.public_id)


async def rejected_bidders(session: AsyncSession, es: EvaluationSession) -> set[str]:
    """Bidders out after the closed review (organisation public ids)."""
    if not es.review_result:
        return set()
    return {b["bidder"] for b in es.review_result["bidders"] if not b["passed"]}


async def view(session: AsyncSession, *, who: Principal, session_public_id: str) -> ReviewView:
    """The review's progress; a member sees their own ballots, nobody sees others' before the close."""
    es, tender, lot = await members.load_session(session, session_public_id)
    current = await members.members_of(session, es)
    me = next((m for m in current if m.user_id == who.user_id), None)
    if me is None and not access.may_see_session(tender, who):
        raise Forbidden("only members and those who follow the session", code="not_a_member")
    bidders = await tender_link.opened_bidders(session, lot.id)
    requirements = es.review_requirements or []
    ballots = await _ballots(session, es)
    expected = len(current) * len(bidders) * len(requirements)
    missing = len(missing_ballots([m.public_id for m in current], [b.organisation_public_id for b in bidders],
                                  [r["code"] for r in requirements], ballots))
    mine = [b for b in ballots if me is not None and b.member == me.public_id]
    return ReviewView(es, requirements, bidders, expected - missing, expected, mine)
