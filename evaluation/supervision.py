"""What the tender's supervisors (行政监督部门) see of live evaluation sessions: the stage, every member's place and
check-in, each member's progress (chair vote, review ballots, sheets submitted), and the open score flags.
Read-only; never commits."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden
from core.principal import Principal
from evaluation import access, members, review, sheets
from evaluation.models import ChairVote, EvaluationSession, ReviewVote, ScoreSheet
from evaluation.rules import TERMINAL_SESSION_STATES, SessionStatus as SS
from trading.models import Lot, Tender


@dataclass
class MemberProgress:
    view: members.MemberView
    voted_chair: bool
    ballots: int
    sheets_submitted: int


@dataclass
class Overview:
    session: EvaluationSession
    tender: Tender
    lot: Lot
    stage: str
    members: list[MemberProgress] = field(default_factory=list)
    ballots_expected: int = 0
    sheets_expected: int = 0
    open_flags: list[dict] = field(default_factory=list)


def stage_of(es: EvaluationSession) -> str:
    """The session's state, and within the evaluation the step it has reached."""
    if es.status != SS.IN_PROGRESS:
        return es.status
    if es.chair_member_id is None:
        return "chair_election"
    if es.review_closed_at is None:
        return "review"
    return "scoring"


async def overview(session: AsyncSession, *, who: Principal, es: EvaluationSession, tender: Tender,
                   lot: Lot) -> Overview:
    committee = await members.committee_view(session, who=who, session_public_id=es.public_id,
                                             loaded=(es, tender, lot))
    voted = set((await session.execute(select(ChairVote.voter_id).where(ChairVote.session_id == es.id))).scalars())
    ballots = dict((await session.execute(select(ReviewVote.member_id, func.count()).where(
        ReviewVote.session_id == es.id).group_by(ReviewVote.member_id))).all())
    submitted = dict((await session.execute(select(ScoreSheet.member_id, func.count()).where(
        ScoreSheet.session_id == es.id, ScoreSheet.status == "submitted").group_by(ScoreSheet.member_id))).all())
    out = Overview(es, tender, lot, stage_of(es))
    for view in committee.members:
        m = view.member
        out.members.append(MemberProgress(view, m.id in voted, ballots.get(m.id, 0), submitted.get(m.id, 0)))
    if es.status == SS.IN_PROGRESS and es.chair_member_id is not None:
        state = await review.view(session, who=who, session_public_id=es.public_id)
        out.ballots_expected = state.ballots_expected // max(1, len([m for m in committee.members
                                                                    if m.member.status != "withdrawn"]))
    if es.review_closed_at is not None and not es.lot_failed and tender.evaluation:
        flagged = await sheets.flags(session, who=who, session_public_id=es.public_id)
        out.open_flags = [f.to_json() for f in flagged[1]]
        out.sheets_expected = len((es.review_result or {}).get("compliant", []))
    return out


async def live_sessions(session: AsyncSession, *, who: Principal) -> list[Overview]:
    """Every live session of the tenders the caller supervises (admins: every live session)."""
    if not (who.has("supervisor") or who.has("admin")):
        raise Forbidden("the supervision view is for supervisors", code="role_forbidden")
    query = (select(EvaluationSession, Tender, Lot).join(Tender, Tender.id == EvaluationSession.tender_id)
             .join(Lot, Lot.id == EvaluationSession.lot_id)
             .where(EvaluationSession.status.not_in([s.value for s in TERMINAL_SESSION_STATES]))
             .order_by(EvaluationSession.id))
    if not who.has("admin"):
        query = query.where(Tender.supervisor_organisation_id == who.organisation_id)
    rows = (await session.execute(query)).all()
    return [await overview(session, who=who, es=es, tender=t, lot=lot) for es, t, lot in rows
            if access.may_see_session(t, who)]
