"""Score sheets (评分表) of a session and the close of scoring.

- A member keeps one sheet per compliant bidder: criterion → score, saved as a draft, then submitted and
  locked. Every score is checked by `scoring.validate_score` before it is stored (422 score_out_of_range); a
  sheet for a bidder rejected at review is refused (422 bidder_not_compliant).
- Members see only their own sheets until scoring closes.
- The chair may return a submitted sheet with a reason; it becomes editable again.
- The flags of ALGORITHMS.md §2 (`flags.detect_flags` over the submitted sheets) block the close until each
  is corrected or justified in writing by the member whose score it is.
- The chair closes scoring: `scoring.evaluate` ranks the compliant bids, and the ranking and the
  `bidroom-score-v1` record (`score_record.build_record`) are stored; the session moves to scoring_closed.
  A tie left after every tie rule is settled by a §1 draw: committed at the close that finds it (409
  tie_draw_pending), the entropy from a supervisor of the tender, drawn at the next close.

Never commits; each action writes its ledger entry in the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.canonical import cj, sha256_hex
from core.clock import db_now
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.principal import Principal
from evaluation import access, members, score_record, scoring, tender_link
from evaluation.flags import Flag, Justification, detect_flags, open_flags
from evaluation.models import EvaluationMember, EvaluationSession, ScoreSheet
from evaluation.rules import SessionStatus as SS
from evaluation.sessions import move_session
from evidence import ledger_service as ledger
from evidence import randomness as rnd
from trading.models import Lot, Tender


@dataclass
class Context:
    es: EvaluationSession
    tender: Tender
    lot: Lot
    members: list[EvaluationMember]
    bidders: dict[str, tender_link.Bidder]   # organisation public id -> bidder
    rejected: set[str]
    method: scoring.Method


async def _context(session: AsyncSession, session_public_id: str, *, lock: bool = True) -> Context:
    es, tender, lot = await members.load_session(session, session_public_id, lock=lock)
    bidders = {b.organisation_public_id: b for b in await tender_link.opened_bidders(session, lot.id)}
    rejected = {b["bidder"] for b in (es.review_result or {}).get("bidders", []) if not b["passed"]}
    return Context(es, tender, lot, await members.members_of(session, es), bidders, rejected,
                   scoring.Method.from_json(tender.evaluation))


def _me(ctx: Context, who: Principal) -> EvaluationMember:
    me = next((m for m in ctx.members if m.user_id == who.user_id), None)
    if me is None:
        raise Forbidden("only members of the committee act in this session", code="not_a_member",
                        details={"session_id": ctx.es.public_id})
    return me


def _check_scoring(ctx: Context) -> None:
    es = ctx.es
    if es.status != SS.IN_PROGRESS:
        raise Conflict(f"the session is {es.status}: scoring runs while the evaluation is in progress",
                       code="session_not_in_progress", details={"status": es.status})
    if es.review_closed_at is None:
        raise Conflict("scoring starts once the qualification and compliance review is closed",
                       code="review_not_closed")
    if es.lot_failed:
        raise Conflict("the lot failed at review: fewer than 3 compliant bids", code="lot_failed")


def _check_bidder(ctx: Context, bidder: str) -> tender_link.Bidder:
    if bidder not in ctx.bidders:
        raise Unprocessable("not a bidder of this lot", code="not_a_bidder", details={"bidder": bidder})
    if bidder in ctx.rejected:
        raise scoring.SheetForRejectedBidder("this bid was rejected at review: only compliant bids are scored",
                                             details={"bidder": bidder})
    return ctx.bidders[bidder]


async def _sheets(session: AsyncSession, ctx: Context) -> list[tuple[ScoreSheet, str, str]]:
    """(sheet, member public id, bidder public id) for the session's current members."""
    by_pk = {m.id: m.public_id for m in ctx.members}
    by_org = {b.organisation_id: pid for pid, b in ctx.bidders.items()}
    rows = (await session.execute(select(ScoreSheet).where(ScoreSheet.session_id == ctx.es.id)
                                  .order_by(ScoreSheet.id))).scalars()
    return [(s, by_pk[s.member_id], by_org[s.bidder_id]) for s in rows if s.member_id in by_pk]


def _as_sheet(sheet: ScoreSheet, member: str, bidder: str) -> scoring.Sheet:
    return scoring.Sheet(member, bidder, {k: Decimal(v) for k, v in sheet.scores.items()})


async def save_sheet(session: AsyncSession, *, who: Principal, session_public_id: str, bidder: str,
                     scores: Mapping[str, str], submit: bool) -> tuple[ScoreSheet, str, str]:
    """Save my sheet for a bidder as a draft, or submit it (every criterion scored); a submitted sheet is locked
    (409 sheet_locked) until the chair returns it."""
    ctx = await _context(session, session_public_id)
    me = _me(ctx, who)
    _check_scoring(ctx)
    target = _check_bidder(ctx, bidder)
    checked: dict[str, str] = {}
    for name, raw in scores.items():
        criterion = ctx.method.criterion(name)
        checked[name] = scoring.decimal_str(scoring.parse_score(criterion, raw))
    sheet = (await session.execute(select(ScoreSheet).where(
        ScoreSheet.session_id == ctx.es.id, ScoreSheet.member_id == me.id,
        ScoreSheet.bidder_id == target.organisation_id).with_for_update())).scalar_one_or_none()
    if sheet is not None and sheet.status == "submitted":
        raise Conflict("the sheet is submitted and locked; the chair may return it", code="sheet_locked")
    merged = {**(sheet.scores if sheet else {}), **checked}
    if submit:
        missing = [c.name for c in ctx.method.criteria if c.name not in merged]
        if missing:
            raise Unprocessable("a submitted sheet scores every criterion", code="sheet_incomplete",
                                details={"missing": missing})
    now = await db_now(session)
    if sheet is None:
        sheet = ScoreSheet(session_id=ctx.es.id, member_id=me.id, bidder_id=target.organisation_id, scores=merged,
                           status="draft")
        session.add(sheet)
    sheet.scores = merged
    sheet.updated_at = now
    if submit:
        sheet.status, sheet.submitted_at = "submitted", now
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.sheet.submit" if submit
                        else "evaluation.sheet.save", entity=members.entity(ctx.es),
                        payload={"member": me.public_id, "bidder": bidder, "scores": merged})
    return sheet, me.public_id, bidder


async def my_sheets(session: AsyncSession, *, who: Principal,
                    session_public_id: str) -> list[tuple[ScoreSheet, str, str]]:
    """My own sheets; everyone's once scoring has closed (members and those who follow the session)."""
    ctx = await _context(session, session_public_id, lock=False)
    me = next((m for m in ctx.members if m.user_id == who.user_id), None)
    if me is None and not access.may_see_session(ctx.tender, who):
        raise Forbidden("only members and those who follow the session", code="not_a_member")
    sheets = await _sheets(session, ctx)
    if ctx.es.scoring_closed_at is not None:
        return sheets
    return [s for s in sheets if me is not None and s[1] == me.public_id]


async def return_sheet(session: AsyncSession, *, who: Principal, session_public_id: str, member_public_id: str,
                       bidder: str, reason: str) -> tuple[ScoreSheet, str, str]:
    """The chair returns a submitted sheet with a reason; the member may change and submit it again."""
    ctx = await _context(session, session_public_id)
    me = _me(ctx, who)
    _check_scoring(ctx)
    if ctx.es.chair_member_id != me.id:
        raise Forbidden("the chair returns sheets", code="not_the_chair")
    reason = reason.strip()
    if not reason:
        raise Unprocessable("a returned sheet needs a reason", code="reason_required")
    found = next((s for s in await _sheets(session, ctx) if s[1] == member_public_id and s[2] == bidder), None)
    if found is None or found[0].status != "submitted":
        raise NotFound("no submitted sheet of that member for that bidder", code="sheet_not_found",
                       details={"member_id": member_public_id, "bidder": bidder})
    sheet = found[0]
    sheet.status, sheet.return_reason, sheet.submitted_at = "returned", reason, None
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.sheet.return", entity=members.entity(ctx.es),
                        payload={"member": member_public_id, "bidder": bidder, "reason": reason})
    return found


def _justifications(sheets: list[tuple[ScoreSheet, str, str]]) -> list[Justification]:
    return [Justification(j["kind"], member, bidder, j["criterion"], Decimal(j["score"]), j["text"])
            for sheet, member, bidder in sheets for j in sheet.justifications]


def _flags(ctx: Context, sheets: list[tuple[ScoreSheet, str, str]]) -> tuple[list[Flag], list[Flag]]:
    submitted = [(s, m, b) for s, m, b in sheets if s.status == "submitted"]
    flags = detect_flags(ctx.method, [m.public_id for m in ctx.members], [_as_sheet(*s) for s in submitted])
    return flags, open_flags(flags, _justifications(submitted))


async def flags(session: AsyncSession, *, who: Principal, session_public_id: str) -> tuple[list[Flag], list[Flag]]:
    """All flags on the submitted sheets, and those still open: for the chair, the members (their own) and
    those who follow the session."""
    ctx = await _context(session, session_public_id, lock=False)
    me = next((m for m in ctx.members if m.user_id == who.user_id), None)
    if me is None and not access.may_see_session(ctx.tender, who):
        raise Forbidden("only members and those who follow the session", code="not_a_member")
    all_flags, still_open = _flags(ctx, await _sheets(session, ctx))
    if me is not None and me.id != ctx.es.chair_member_id and not access.may_see_session(ctx.tender, who):
        all_flags = [f for f in all_flags if f.member == me.public_id]
        still_open = [f for f in still_open if f.member == me.public_id]
    return all_flags, still_open


async def justify(session: AsyncSession, *, who: Principal, session_public_id: str, bidder: str, criterion: str,
                  kind: str, text: str) -> tuple[list[Flag], list[Flag]]:
    """A member justifies in writing a flag on their own submitted score (说明理由)."""
    ctx = await _context(session, session_public_id)
    me = _me(ctx, who)
    _check_scoring(ctx)
    text = text.strip()
    if not text:
        raise Unprocessable("a justification says why", code="reason_required")
    sheets = await _sheets(session, ctx)
    all_flags, _ = _flags(ctx, sheets)
    flag = next((f for f in all_flags if f.key == (kind, me.public_id, bidder, criterion)), None)
    if flag is None:
        raise NotFound("no such flag on your scores", code="flag_not_found",
                       details={"kind": kind, "bidder": bidder, "criterion": criterion})
    sheet = next(s for s, m, b in sheets if m == me.public_id and b == bidder)
    sheet.justifications = [*sheet.justifications, {"kind": kind, "criterion": criterion,
                                                    "score": scoring.decimal_str(flag.score), "text": text}]
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.flag.justify", entity=members.entity(ctx.es),
                        payload={"flag": flag.to_json(), "text": text})
    return _flags(ctx, await _sheets(session, ctx))


async def close_scoring(session: AsyncSession, *, who: Principal, session_public_id: str) -> EvaluationSession:
    """The chair closes scoring: every member's sheet for every compliant bidder submitted (409
    sheets_incomplete), no flag open (409 flags_open); the ranking and the score record are stored."""
    ctx = await _context(session, session_public_id)
    me = _me(ctx, who)
    _check_scoring(ctx)
    if ctx.es.chair_member_id != me.id:
        raise Forbidden("the chair closes scoring", code="not_the_chair")
    sheets = await _sheets(session, ctx)
    compliant = [b for b in ctx.bidders if b not in ctx.rejected]
    have = {(m, b) for s, m, b in sheets if s.status == "submitted"}
    missing = [{"member": m.public_id, "bidder": b} for m in ctx.members for b in compliant
               if (m.public_id, b) not in have]
    if missing:
        raise Conflict("every member submits a sheet for every compliant bidder first", code="sheets_incomplete",
                       details={"missing": missing[:20], "missing_count": len(missing)})
    _, still_open = _flags(ctx, sheets)
    if still_open:
        raise Conflict("flags must be corrected or justified in writing before scoring closes", code="flags_open",
                       details={"flags": [f.to_json() for f in still_open[:20]], "open_count": len(still_open)})
    data = scoring.ScoringInput(
        method=ctx.method, members=tuple(m.public_id for m in ctx.members),
        bidders=tuple(scoring.Bidder(pid, b.price, pid not in ctx.rejected) for pid, b in ctx.bidders.items()),
        sheets=tuple(_as_sheet(*s) for s in sheets if s[2] in compliant))
    es = ctx.es
    result = scoring.evaluate(data)
    if result.pending_ties:
        result = await _settle_ties(session, es, data, result, actor=who.public_id)
    record = score_record.build_record(data, result)
    es.ranking, es.score_record = record["ranking"], record
    es.scoring_closed_at = await db_now(session)
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.scoring.closed", entity=members.entity(es),
                        payload={"ranking": record["ranking"], "record_sha256": _digest(record)})
    await move_session(session, es, SS.SCORING_CLOSED, actor=who.public_id)
    return es


async def _settle_ties(session: AsyncSession, es: EvaluationSession, data: scoring.ScoringInput,
                       result: scoring.Evaluation, *, actor: str) -> scoring.Evaluation:
    """Bidders still tied after every ranking rule are ordered by a §1 draw. The first close that finds the
    tie commits a secret (its commitment goes to the ledger and the answer) and is refused with 409
    tie_draw_pending; a supervisor of the tender supplies the entropy; the next close draws. Should the tied
    groups change after the commitment (a sheet returned and changed), a new secret is committed and any
    entropy given for the old groups is discarded, so nobody can steer a draw whose seed they could foresee."""
    groups = [list(g.bidders) for g in result.pending_ties]
    if es.score_tie_groups != groups or es.score_tie_secret is None:
        secret = rnd.new_secret()
        es.score_tie_groups, es.score_tie_secret = groups, secret
        es.score_tie_commitment, es.score_tie_entropy = rnd.commitment(secret), None
        await session.flush()
        await ledger.append(session, actor=actor, action="evaluation.scoring.tie", entity=members.entity(es),
                            payload={"groups": groups, "commitment": es.score_tie_commitment})
        raise Conflict("bidders are tied after every ranking rule: a supervisor supplies the entropy for the draw",
                       code="tie_draw_pending", details={"groups": groups, "commitment": es.score_tie_commitment},
                       keep_changes=True)
    if es.score_tie_entropy is None:
        raise Conflict("the tie draw waits for a supervisor's entropy", code="tie_draw_pending",
                       details={"groups": groups, "commitment": es.score_tie_commitment})
    return scoring.evaluate(data, draw_tie=scoring.tie_drawer(bytes(es.score_tie_secret), es.score_tie_entropy,
                                                               es.public_id))


async def supply_tie_entropy(session: AsyncSession, *, who: Principal, session_public_id: str,
                             entropy: str) -> EvaluationSession:
    """A supervisor of the tender supplies the entropy of the committed tie draw (once)."""
    ctx = await _context(session, session_public_id)
    if not access.may_resume(ctx.tender, who):
        raise Forbidden("a supervisor of the tender supplies the entropy", code="session_forbidden")
    _check_scoring(ctx)
    es = ctx.es
    if es.score_tie_secret is None:
        raise Conflict("no tie draw is waiting", code="no_tie")
    if es.score_tie_entropy is not None:
        raise Conflict("the tie draw already has its entropy", code="entropy_already_supplied")
    entropy = entropy.strip()
    if not entropy:
        raise Unprocessable("the entropy must be a non-empty string", code="missing_entropy")
    es.score_tie_entropy = entropy
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="evaluation.scoring.tie_entropy",
                        entity=members.entity(es), payload={"groups": es.score_tie_groups, "entropy": entropy,
                                                            "commitment": es.score_tie_commitment})
    return es


def _digest(record: dict) -> str:
    return sha256_hex(cj(record))
