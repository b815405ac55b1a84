"""Chair election (推选组长) of an evaluation session: each member votes once; more than half of the committee
elects; once everyone has voted a single leader is elected by plurality, and level leaders are settled by a
verifiable draw with the platform's draw engine (ALGORITHMS.md §1, evidence.randomness):

1. when the tie is known, the server's secret is drawn and its commitment written to the ledger with the tied
   members;
2. a supervisor of the tender supplies the entropy;
3. seed = H(secret || entropy || cj(request) || H(cj(candidates))), the tied members ranked by H(seed || id);
   the first is chair. The secret, entropy and seed go to the ledger, so anyone can recompute it.

Never commits; every action writes its ledger entry in the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, Unprocessable
from core.principal import Principal
from evaluation import access, members
from evaluation.models import ChairVote, EvaluationMember, EvaluationSession
from evaluation.rules import SessionStatus as SS, check_chair_candidate, chair_outcome
from evidence import ledger_service as ledger
from evidence import randomness as rnd

VOTE_KEY = "evaluation_chair_vote_session_id_key"


@dataclass
class ChairView:
    session: EvaluationSession
    chair: EvaluationMember | None
    votes_cast: int
    members: int
    tied: list[str]


def draw_request(es: EvaluationSession) -> dict:
    return {"purpose": "evaluation_chair", "session": es.public_id}


def draw_candidates(tied: list[str]) -> list[dict]:
    return [{"id": member_id} for member_id in tied]


async def _state(session: AsyncSession, es: EvaluationSession) -> tuple[list[EvaluationMember], dict[str, str]]:
    current = await members.members_of(session, es)
    by_pk = {m.id: m.public_id for m in current}
    rows = (await session.execute(select(ChairVote).where(ChairVote.session_id == es.id))).scalars()
    return current, {by_pk[v.voter_id]: by_pk[v.candidate_id] for v in rows if v.voter_id in by_pk}


async def chair_view(session: AsyncSession, es: EvaluationSession) -> ChairView:
    current, votes = await _state(session, es)
    chair = next((m for m in current if m.id == es.chair_member_id), None)
    return ChairView(es, chair, len(votes), len(current), list(es.chair_tie or []))


def _check_electing(es: EvaluationSession) -> None:
    if es.status != SS.IN_PROGRESS:
        raise Conflict(f"the session is {es.status}: the chair is elected once the evaluation has started",
                       code="session_not_in_progress", details={"status": es.status})
    if es.chair_member_id is not None:
        raise Conflict("the chair is already elected", code="chair_elected")


async def vote(session: AsyncSession, *, who: Principal, session_public_id: str,
               candidate_public_id: str) -> ChairView:
    """A member votes for a member as chair; a second vote is refused with 409 already_voted."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    current = await members.members_of(session, es)
    voter = next((m for m in current if m.user_id == who.user_id), None)
    if voter is None:
        raise Forbidden("only members of the committee act in this session", code="not_a_member",
                        details={"session_id": es.public_id})
    _check_electing(es)
    candidate = next((m for m in current if m.public_id == candidate_public_id), None)
    if candidate is None:
        raise Unprocessable("the candidate is not a member of this committee", code="not_a_member_candidate",
                            details={"member_id": candidate_public_id})
    check_chair_candidate(candidate.kind, candidate.public_id)
    try:
        async with session.begin_nested():
            session.add(ChairVote(session_id=es.id, voter_id=voter.id, candidate_id=candidate.id))
            await session.flush()
    except IntegrityError as err:
        if VOTE_KEY not in str(err.orig):
            raise
        raise Conflict("you have already voted for the chair", code="already_voted") from err
    # the ballot is secret until the result: the ledger records that a member voted, not for whom
    await ledger.append(session, actor=who.public_id, action="evaluation.chair.vote", entity=members.entity(es),
                        payload={"voter": voter.public_id})
    _, votes = await _state(session, es)
    outcome = chair_outcome(votes, [m.public_id for m in current])
    if outcome.elected is not None:
        await _elect(session, es, current, outcome.elected, how=outcome.how, actor=who.public_id, votes=votes)
    elif outcome.tied:
        secret = rnd.new_secret()
        es.chair_tie, es.chair_secret, es.chair_commitment = list(outcome.tied), secret, rnd.commitment(secret)
        await session.flush()
        await ledger.append(session, actor=ledger.SYSTEM, action="evaluation.chair.tie", entity=members.entity(es),
                            payload={"tied": list(outcome.tied), "votes": votes, "commitment": es.chair_commitment,
                                     "request": draw_request(es)})
    return await chair_view(session, es)


async def _elect(session: AsyncSession, es: EvaluationSession, current: list[EvaluationMember], member_id: str, *,
                 how: str, actor: str, votes: dict[str, str], extra: dict | None = None) -> None:
    chair = next(m for m in current if m.public_id == member_id)
    es.chair_member_id, es.chair_how = chair.id, how
    await session.flush()
    await ledger.append(session, actor=actor, action="evaluation.chair.elected", entity=members.entity(es),
                        payload={"chair": chair.public_id, "how": how, "votes": votes, **(extra or {})})


async def settle_tie(session: AsyncSession, *, who: Principal, session_public_id: str, entropy: str) -> ChairView:
    """A supervisor of the tender supplies the entropy that settles a tie among the leaders."""
    es, tender, lot = await members.load_session(session, session_public_id, lock=True)
    if not access.may_resume(tender, who):
        raise Forbidden("a supervisor of the tender supplies the entropy", code="session_forbidden")
    _check_electing(es)
    if not es.chair_tie:
        raise Conflict("there is no tie to settle", code="no_tie")
    entropy = entropy.strip()
    if not entropy:
        raise Unprocessable("the entropy must be a non-empty string", code="missing_entropy")
    candidates = draw_candidates(es.chair_tie)
    seed = rnd.compute_seed(bytes(es.chair_secret), entropy, draw_request(es), candidates)
    winner = rnd.rank(seed, candidates)[0]["id"]
    es.chair_entropy, es.chair_seed = entropy, seed.hex()
    current, votes = await _state(session, es)
    await _elect(session, es, current, winner, how="draw", actor=who.public_id, votes=votes, extra={
        "tied": es.chair_tie, "secret": bytes(es.chair_secret).hex(), "commitment": es.chair_commitment,
        "entropy": entropy, "seed": es.chair_seed, "request": draw_request(es)})
    return await chair_view(session, es)


async def get_chair(session: AsyncSession, *, who: Principal, session_public_id: str) -> ChairView:
    """The election's standing: for members and for those who follow the session."""
    es, tender, lot = await members.load_session(session, session_public_id)
    current = await members.members_of(session, es)
    if not (any(m.user_id == who.user_id for m in current) or access.may_see_session(tender, who)):
        raise Forbidden("only members and those who follow the session", code="not_a_member")
    return await chair_view(session, es)

