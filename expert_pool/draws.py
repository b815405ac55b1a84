"""Expert draws (专家抽取): the aggregate and its loader, the request and its commitment, and cancellation.
Never commits.

The flow, ALGORITHMS.md §1 applied to experts:
1. An agent requests a draw for a lot. Committee rules and avoidance run first; the exclusions are stored with
   their reasons; step 7 refuses a quota that cannot be filled. The server's secret is stored, and its
   commitment is written to the audit ledger together with the request and the digest of the candidate list,
   which fixes the candidates before anyone knows the entropy.
2. A supervisor of the tender supplies the entropy; the draw runs and the primaries are invited to their seats
   (expert_pool.confirmations).
3. A decline, a timeout or a conflict found at the bid deadline offers the seat to the quota's next backup;
   with no backup left the system commits a supplementary draw (补抽), again executed with a supervisor's entropy.

Timing: a lot has one original draw. Further draws are supplementary, or follow the cancellation of the
original with a written reason and a ledger entry. The member list is fixed before the opening (PRODUCT.md,
"Rules"; 评标委员会和评标方法暂行规定 第8条: 评标委员会成员名单一般应于开标前确定) and kept secret until the award
(招标投标法 第37条), so a new original draw is refused once the tender is being opened or later.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import SHANGHAI, db_now
from core.db import execute_sql
from core.errors import Conflict, NotFound, Unprocessable
from core.identity_models import Organisation
from core.notifications import InAppNotifier
from core.notifier import Notifier
from core.principal import Principal
from core.scheduler import cancel, schedule
from evidence import ledger_service as ledger
from evidence import randomness as rnd
from expert_pool import access, venue_refs
from expert_pool.models import Expert, ExpertDraw, ExpertInvitation, ExpertService
from expert_pool.rules import PanelKind, check_committee, draw_request, validate_quotas
from expert_pool.screening import Pool, context_of, party_pks, screen_pool
from expert_pool.service import new_public_id
from expert_pool.taxonomy import load_taxonomy
from trading.models import BidderRegistration, Lot, Tender

log = logging.getLogger(__name__)

TIMEOUT_JOB = "expert_pool.invitation_timeout"
RECORDS_JOB = "expert_pool.issue_draw_records"
RESCREEN_JOB = "expert_pool.rescreen_at_bid_deadline"
# Tender states (trading.lifecycle.TenderStatus values) in which an original draw may be requested: the
# committee is formed before the bids are opened.
ORIGINAL_DRAW_STATES = frozenset({"published", "closed"})
# ... and those in which a draw exists at all (supplementary draws and replacements go on until the award).
LIVE_TENDER_STATES = frozenset({"published", "closed", "opening", "opened", "evaluating"})
PANELS_BY_METHOD = {"competitive_negotiation": PanelKind.NEGOTIATION_PANEL, "inquiry": PanelKind.INQUIRY_PANEL}


@dataclass(frozen=True)
class DrawPolicy:
    """The centre's avoidance settings (configurable per deployment, not per request)."""

    monthly_cap: int | None = 8              # most evaluations per expert per calendar month
    familiar_window_days: int = 90           # served the same tenderer within this many days: not drawn
    reply_window_s: int = 30 * 60            # default time to accept or decline an invitation
    notifier: Notifier = InAppNotifier()


DEFAULT_POLICY = DrawPolicy()


def draw_entity(draw: ExpertDraw) -> str:
    return ledger.entity_ref("draw", draw.public_id)


def rescreen_key(root: ExpertDraw) -> str:
    return f"expert_draw:{root.public_id}:rescreen"


# ---------------------------------------------------------------------------------------------------------
# Loading.

async def get_draw(session: AsyncSession, draw_public_id: str) -> tuple[ExpertDraw, Tender, Lot]:
    """A draw with its tender and lot, or 404 draw_not_found."""
    row = (await session.execute(
        select(ExpertDraw, Tender, Lot).join(Tender, Tender.id == ExpertDraw.tender_id)
        .join(Lot, Lot.id == ExpertDraw.lot_id).where(ExpertDraw.public_id == draw_public_id))).one_or_none()
    if row is None:
        raise NotFound("no such draw", code="draw_not_found", details={"draw_id": draw_public_id})
    return row[0], row[1], row[2]


async def lot_with_tender(session: AsyncSession, lot_public_id: str) -> tuple[Lot, Tender]:
    """A lot and its tender, or 404 lot_not_found."""
    row = (await session.execute(select(Lot, Tender).join(Tender, Tender.id == Lot.tender_id)
                                 .where(Lot.public_id == lot_public_id))).one_or_none()
    if row is None:
        raise NotFound("no such lot", code="lot_not_found", details={"lot_id": lot_public_id})
    return row[0], row[1]


async def lock_family(session: AsyncSession, draw: ExpertDraw) -> tuple[ExpertDraw, ExpertDraw]:
    """Lock the original draw, then `draw` (always in that order, so two replies cannot deadlock)."""
    root_id = draw.parent_id or draw.id
    root = (await session.execute(select(ExpertDraw).where(ExpertDraw.id == root_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()
    if draw.id == root.id:
        return root, root
    draw = (await session.execute(select(ExpertDraw).where(ExpertDraw.id == draw.id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()
    return root, draw


async def family(session: AsyncSession, root: ExpertDraw) -> list[ExpertDraw]:
    """The original draw and its supplementary draws, in round order."""
    rows = await session.execute(select(ExpertDraw).where(or_(ExpertDraw.id == root.id,
                                                              ExpertDraw.parent_id == root.id))
                                 .order_by(ExpertDraw.round))
    return list(rows.scalars())


async def invitations(session: AsyncSession, root: ExpertDraw) -> list[tuple[ExpertInvitation, str]]:
    """The committee's invitations with the invited expert's public id, oldest first."""
    rows = await session.execute(select(ExpertInvitation, Expert.public_id)
                                 .join(Expert, Expert.id == ExpertInvitation.expert_id)
                                 .where(ExpertInvitation.root_draw_id == root.id).order_by(ExpertInvitation.id))
    return [(i, pid) for i, pid in rows.all()]


@dataclass
class DrawState:
    """A draw with everything the views and the record need."""

    draw: ExpertDraw
    root: ExpertDraw
    tender: Tender
    lot: Lot
    family: list[ExpertDraw]
    invitations: list[tuple[ExpertInvitation, str]]


async def draw_state(session: AsyncSession, draw_public_id: str) -> DrawState:
    """Load a draw, its original draw, the supplementary draws and the invitations."""
    draw, tender, lot = await get_draw(session, draw_public_id)
    root = draw if draw.parent_id is None else await session.get(ExpertDraw, draw.parent_id)
    return DrawState(draw, root, tender, lot, await family(session, root), await invitations(session, root))


async def created_draw_state(session: AsyncSession, draw: ExpertDraw) -> DrawState:
    """The state of a draw this session has just created: its own family, no invitations yet, and the tender
    and lot from the session's identity map, so the response needs no second read of the candidate list."""
    tender = await session.get(Tender, draw.tender_id)
    lot = await session.get(Lot, draw.lot_id)
    return DrawState(draw, draw, tender, lot, [draw], [])


async def store_draw(session: AsyncSession, draw: ExpertDraw, pool: Pool, *, actor: str) -> None:
    """Insert a committed draw with its exclusions, and write its commitment to the ledger."""
    session.add(draw)
    await session.flush()
    if pool.reasons:
        # one statement for all of them; reasons travel as "a,b" strings, as unnest flattens 2-D arrays
        await execute_sql(session, "INSERT INTO expert_draw_exclusion (draw_id, expert_id, reasons) SELECT $1, e, "
                                   "string_to_array(r, ',') FROM unnest($2::bigint[], $3::text[]) AS x(e, r)",
                          draw.id, [pool.ids[pid] for pid in pool.reasons],
                          [",".join(found) for found in pool.reasons.values()])
    # The commitment alone would let the server trim the candidates after seeing the entropy; logging the
    # request and the candidates' digest now binds both before any entropy exists.
    await ledger.append(session, actor=actor, action="draw.commit", entity=draw_entity(draw), payload={
        "draw_id": draw.public_id, "supplements": draw.request.get("supplements"), "commitment": draw.commitment,
        "request": draw.request, "candidates_sha256": draw.candidates_digest, "eligible": draw.eligible_count,
        "considered": draw.considered_count, "exclusions": draw.exclusion_counts})


def _iso(at: datetime) -> str:
    return at.astimezone(SHANGHAI).isoformat()


# ---------------------------------------------------------------------------------------------------------
# Request.

async def _live_original(session: AsyncSession, lot: Lot) -> ExpertDraw | None:
    return (await session.execute(select(ExpertDraw).where(
        ExpertDraw.lot_id == lot.id, ExpertDraw.parent_id.is_(None), ExpertDraw.status != "cancelled"))).scalar_one_or_none()


async def create_draw(session: AsyncSession, *, who: Principal, lot_public_id: str, session_at: datetime,
                      venue: str | None = None, quotas: Sequence[dict[str, Any]], representatives: int = 0,
                      reply_window_s: int | None = None, authority_organisations: Sequence[str] = (),
                      policy: DrawPolicy = DEFAULT_POLICY, evaluation_session: str | None = None) -> ExpertDraw:
    """An agent requests the original draw of a lot; refused before anything is stored when a rule fails.

    The venue is either the lot's evaluation session (`evaluation_session`, its public id, when it is scheduled
    already: the draw refers to it and tells the experts its venues) or free text (`venue`), not both."""
    lot, tender = await lot_with_tender(session, lot_public_id)
    access.check_request(tender, who)
    if (venue is None) == (evaluation_session is None):
        raise Unprocessable("give the venue either as the lot's evaluation session or as text, one of the two",
                            code="venue_required" if venue is None else "venue_twice",
                            details={"fields": ["evaluation_session", "venue"]})
    if tender.status not in ORIGINAL_DRAW_STATES:
        # 评标委员会和评标方法暂行规定 第8条: the committee's member list is fixed before the bids are opened
        raise Conflict(f"no new expert draw for a tender in state {tender.status}: the committee is fixed before "
                       "the opening (评标委员会和评标方法暂行规定 第8条)", code="tender_not_drawable",
                       details={"status": tender.status, "statute": "评标委员会和评标方法暂行规定 第8条"})
    existing = await _live_original(session, lot)
    if existing is not None:
        raise Conflict("this lot already has its expert draw; cancel it with a reason first, or let replacements "
                       "and supplementary draws fill the committee", code="draw_exists",
                       details={"draw_id": existing.public_id})
    if session_at.tzinfo is None:
        raise Unprocessable("the session time needs a timezone", code="naive_datetime")
    taxonomy = load_taxonomy()
    named = [{**q, "name": q.get("name") or f"Q{i}"} for i, q in enumerate(quotas, start=1)]
    checked = validate_quotas(named, taxonomy)
    experts = sum(q.count for q in checked)
    check_committee(members=experts + representatives, representatives=representatives,
                    panel=PANELS_BY_METHOD.get(tender.method, PanelKind.EVALUATION_COMMITTEE),
                    family=tender.family, budget=tender.budget)
    if session_at <= await db_now(session):
        raise Unprocessable("the evaluation session must be in the future", code="session_in_past")
    if evaluation_session is not None:
        venue = await venue_refs.resolve(session, lot.id, evaluation_session)
    tenderer = await session.get(Organisation, tender.tenderer_id)
    bidders = sorted((await session.execute(
        select(Organisation.public_id).join(BidderRegistration, BidderRegistration.organisation_id == Organisation.id)
        .where(BidderRegistration.tender_id == tender.id).distinct())).scalars())
    authority_pks = await party_pks(session, authority_organisations)
    if len(authority_pks) != len(set(authority_organisations)):
        raise NotFound("an authority organisation is unknown", code="organisation_not_found",
                       details={"authority_organisations": list(authority_organisations)})
    context_json = {"tenderer": tenderer.public_id, "bidders": bidders,
                    "authorities": sorted(set(authority_organisations)), "monthly_cap": policy.monthly_cap,
                    "familiar_window_days": policy.familiar_window_days}
    context = context_of(context_json, session_at)
    parties = [tender.tenderer_id, *await party_pks(session, bidders)]
    pool = await screen_pool(session, quotas=checked, context=context, tenderer_pk=tender.tenderer_id,
                             party_pks=parties)
    draw_id = await new_public_id(session, ExpertDraw, "D")
    request = draw_request(draw_id, checked, lot=lot.public_id, session_at=_iso(session_at))
    rnd.check_sufficient(request, pool.candidates)  # step 7: insufficient_candidates, nothing stored
    secret = rnd.new_secret()
    draw = ExpertDraw(
        public_id=draw_id, tender_id=tender.id, lot_id=lot.id, parent_id=None, round=0,
        requested_by_id=who.user_id, session_at=session_at, venue=venue, evaluation_session=evaluation_session,
        members=experts + representatives,
        representatives=representatives, reply_window_s=reply_window_s or policy.reply_window_s,
        quotas=[q.to_request() for q in checked], context=context_json, request=request,
        candidates=pool.candidates, candidates_digest=rnd.candidates_digest(pool.candidates),
        considered_count=len(pool.records), eligible_count=len(pool.candidates), exclusion_counts=pool.counts,
        secret=secret, commitment=rnd.commitment(secret), status="awaiting_entropy")
    await store_draw(session, draw, pool, actor=who.public_id)
    # At the bid deadline the committee is screened again against the bidders who actually bid.
    await schedule_rescreen(session, draw, tender)
    log.info("draw %s committed for lot %s over %d candidates", draw_id, lot.public_id, len(pool.candidates))
    return draw


async def schedule_rescreen(session: AsyncSession, root: ExpertDraw, tender: Tender) -> None:
    """The deadline re-screen of an original draw, due at the tender's bid deadline (at once if it passed)."""
    await schedule(session, RESCREEN_JOB, due_at=tender.bid_deadline_at, payload={"draw": root.public_id},
                   dedupe_key=rescreen_key(root))


# ---------------------------------------------------------------------------------------------------------
# Cancellation.

async def cancel_draw(session: AsyncSession, *, who: Principal, draw_public_id: str, reason: str) -> ExpertDraw:
    """Cancel an original draw with a written reason: its supplementary draws and open invitations end with it,
    and a new original draw may be requested while the tender is not yet opened. Accepted seats are released."""
    draw, tender, _ = await get_draw(session, draw_public_id)
    access.check_cancel(tender, who)
    if draw.parent_id is not None:
        raise Conflict("a supplementary draw ends with its original draw: cancel the original", code="not_original_draw",
                       details={"draw_id": draw.public_id})
    if not (reason or "").strip():
        raise Unprocessable("a cancellation needs a written reason", code="reason_required", details={"field": "reason"})
    root, _ = await lock_family(session, draw)
    if root.status == "cancelled":
        raise Conflict("this draw is already cancelled", code="draw_cancelled", details={"draw_id": root.public_id})
    if tender.status not in LIVE_TENDER_STATES:
        raise Conflict(f"a draw of a tender in state {tender.status} is part of the record and cannot be cancelled",
                       code="tender_not_drawable", details={"status": tender.status})
    now = await db_now(session)
    members = await family(session, root)
    open_invitations = [i for i, _ in await invitations(session, root) if i.status in ("pending", "accepted")]
    for invitation in open_invitations:
        await cancel(session, f"expert_invitation:{invitation.public_id}:timeout")
    if open_invitations:
        await session.execute(update(ExpertInvitation).where(
            ExpertInvitation.id.in_([i.id for i in open_invitations])).values(status="cancelled", replied_at=now)
            .execution_options(synchronize_session="fetch"))
    # the accepted experts will not sit: their service rows (monthly cap, familiar faces) go with the draw
    await session.execute(delete(ExpertService).where(ExpertService.draw_id == root.id))
    for member in members:
        member.status = "cancelled"
    root.cancelled_at, root.cancelled_by_id, root.cancel_reason = now, who.user_id, reason.strip()
    await session.flush()
    await cancel(session, rescreen_key(root))
    await ledger.append(session, actor=who.public_id, action="draw.cancel", entity=draw_entity(root), payload={
        "draw_id": root.public_id, "reason": root.cancel_reason,
        "supplementary_draws": [d.public_id for d in members if d.id != root.id],
        "invitations_cancelled": len(open_invitations)})
    log.info("draw %s cancelled: %s", root.public_id, root.cancel_reason)
    return root
