"""Confirmations (专家确认): executing a draw with a supervisor's entropy, inviting the drawn experts to their
seats, replies and timeouts, supplementary draws (补抽), and the re-screen at the bid deadline. Never commits.

A decline, a timeout or a conflict found at the bid deadline offers the seat to the quota's next backup
(expert_pool.seating). When no backup is left, the system commits a supplementary draw over the short quotas,
again executed with a supervisor's entropy, with everyone already picked excluded. Supplementary draws need a
person's entropy like any other: deriving it from the server's own randomness would let the server choose.

At the bid deadline the committee is screened again against the bidders who actually bid (PRODUCT.md
"Avoidance": no expert employed by a bidder or tied to one; 招标投标法 第37条第4款, 评标委员会和评标方法暂行规定
第12条). A bidder
may register after the draw, so its employees could not be screened then. A seated expert who now conflicts
is withdrawn with the reason recorded, and the seat goes to the next backup through the same path.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now, format_local, passed
from core.errors import Conflict, NotFound, Unprocessable
from core.principal import Principal
from core.scheduler import cancel, schedule
from evidence import ledger_service as ledger
from evidence import randomness as rnd
from expert_pool import access
from expert_pool.draws import (DEFAULT_POLICY, RECORDS_JOB, RESCREEN_JOB, TIMEOUT_JOB, DrawPolicy, draw_entity,
                               family, get_draw, invitations, lock_family, rescreen_key, store_draw)
from expert_pool.models import Expert, ExpertDraw, ExpertInvitation, ExpertService
from expert_pool.rules import draw_request, validate_quotas
from expert_pool.screening import bidder_conflicts, context_of, party_pks, screen_pool
from expert_pool.seating import (InvitationStatus, SeatInvitation, SeatOffer, employers_to_exclude, filled,
                                 initial_offers, plan_seats, replacement_queues, supplementary_quotas)
from expert_pool.service import new_public_id
from expert_pool.taxonomy import load_taxonomy
from trading.models import Tender

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------
# Execution.

async def supply_entropy(session: AsyncSession, *, who: Principal, draw_public_id: str, entropy: str,
                         policy: DrawPolicy = DEFAULT_POLICY) -> ExpertDraw:
    """A supervisor of the tender supplies the entropy that executes the draw (steps 3–6); the primaries are
    invited at once."""
    draw, tender, _ = await get_draw(session, draw_public_id)
    access.check_supply_entropy(tender, who)
    root, draw = await lock_family(session, draw)
    if draw.status == "cancelled":
        raise Conflict("this draw was cancelled", code="draw_cancelled", details={"draw_id": draw.public_id})
    if draw.entropy is not None:
        raise Conflict("this draw already has its entropy and has been executed", code="entropy_already_supplied",
                       details={"draw_id": draw.public_id})
    if not entropy:
        raise Unprocessable("the entropy must be a non-empty string", code="missing_entropy")
    outcome = rnd.draw(draw.secret, entropy, draw.request, draw.candidates)
    draw.entropy, draw.entropy_by_id = entropy, who.user_id
    draw.seed, draw.result = outcome.seed.hex(), outcome.result_json()
    draw.executed_at = await db_now(session)
    draw.status = "executed"
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="draw.execute", entity=draw_entity(draw), payload={
        "draw_id": draw.public_id, "secret": bytes(draw.secret).hex(), "entropy": entropy, "seed": draw.seed,
        "candidates_sha256": draw.candidates_digest, "result": draw.result})
    # Rendering and signing take most of a second: the record PDFs are issued by the scheduler right after
    # this transaction commits, so the supervisor's request stays fast.
    await schedule(session, RECORDS_JOB, delay_s=0, payload={"draw": draw.public_id},
                   dedupe_key=f"expert_draw:{draw.public_id}:records")
    await seat_committee(session, root, tender=tender, policy=policy, actor=who.public_id)
    return draw


# ---------------------------------------------------------------------------------------------------------
# Invitations, replacement and supplementary draws.

def seat_rows(invited: Sequence[tuple[ExpertInvitation, str]]) -> list[SeatInvitation]:
    return [SeatInvitation(pid, i.quota, i.seat, InvitationStatus(i.status)) for i, pid in invited]


def unavailable(root: ExpertDraw) -> dict[str, str]:
    """Drawn experts who may not be invited any more (found to conflict with a bidder), with the reason."""
    return dict(root.context.get("unavailable") or {})


def seats_of(root: ExpertDraw) -> dict[str, int]:
    """The committee's seats per quota, in request order."""
    return {q["name"]: q["count"] for q in root.quotas}


async def seat_committee(session: AsyncSession, root: ExpertDraw, *, tender: Tender, policy: DrawPolicy,
                         actor: str) -> None:
    """Bring the committee forward: invite to every open seat, ask for a supplementary draw, or close it."""
    if root.status == "cancelled":
        return
    drawn = await family(session, root)
    executed = [d for d in drawn if d.result is not None]
    if not executed or executed[0].id != root.id:
        return
    invited = await invitations(session, root)
    seats = seats_of(root)
    rows = seat_rows(invited)
    skip = unavailable(root)
    offers: list[SeatOffer] = [] if invited else [o for o in initial_offers(root.result) if o.expert_id not in skip]
    if offers:
        rows += [SeatInvitation(o.expert_id, o.quota, o.seat, InvitationStatus.PENDING) for o in offers]
    plan = plan_seats(seats, replacement_queues(list(seats), [d.result for d in executed]), rows, skip)
    offers += plan.offers
    if offers:
        picked_by = {pid: d for d in executed for r in d.result for pid in (*r["primaries"], *r["backups"])}
        await _invite(session, root, offers, picked_by=picked_by, policy=policy, actor=actor)
        rows += [SeatInvitation(o.expert_id, o.quota, o.seat, InvitationStatus.PENDING) for o in plan.offers]
    if plan.needs_supplementary_draw:
        if any(d.result is None for d in drawn) or root.status == "short":
            return  # a supplementary draw is already waiting for its entropy, or none can be formed
        await _supplementary_draw(session, root, drawn, invited, plan.shortfall, tender=tender, policy=policy)
        return
    if filled(seats, rows) and root.status != "formed":
        root.status = "formed"
        await session.flush()
        await ledger.append(session, actor=actor, action="draw.formed", entity=draw_entity(root),
                            payload={"draw_id": root.public_id, "seats": sum(seats.values())})


async def _invite(session: AsyncSession, root: ExpertDraw, offers: Sequence[SeatOffer], *,
                  picked_by: dict[str, ExpertDraw], policy: DrawPolicy, actor: str) -> None:
    wanted = [o.expert_id for o in offers]
    experts = {e.public_id: e for e in (await session.execute(
        select(Expert).where(Expert.public_id.in_(wanted)))).scalars()}
    now = await db_now(session)
    reply_by = now + timedelta(seconds=root.reply_window_s)
    primaries = {pid for r in root.result for pid in r["primaries"]}
    quotas = {q["name"]: q for q in root.quotas}
    taxonomy = load_taxonomy()
    for offer in offers:
        expert = experts[offer.expert_id]
        by = picked_by[offer.expert_id]
        source = "primary" if offer.expert_id in primaries else ("backup" if by.id == root.id else "supplementary")
        invitation = ExpertInvitation(
            public_id=await new_public_id(session, ExpertInvitation, "IV"), root_draw_id=root.id, draw_id=by.id,
            expert_id=expert.id, quota=offer.quota, seat=offer.seat, source=source, status="pending",
            sent_at=now, reply_by=reply_by)
        session.add(invitation)
        await session.flush()
        await schedule(session, TIMEOUT_JOB, due_at=reply_by, payload={"invitation": invitation.public_id},
                       dedupe_key=f"expert_invitation:{invitation.public_id}:timeout")
        specialty = quotas[offer.quota]["specialty"]
        if expert.user_id is not None:
            # Time, venue and specialty only: no project, tenderer or bidders before the expert arrives.
            await policy.notifier.notify(
                session, user_id=expert.user_id, kind="expert.invitation", title="评标邀请 Evaluation invitation",
                body=(f"评标时间 {_local(root.session_at)}，地点 {root.venue}，专业 {taxonomy.name(specialty)}。"
                      f"请于 {_local(reply_by)} 前确认。 Session {_local(root.session_at)} at {root.venue}, "
                      f"specialty {taxonomy.name(specialty, 'en')}; reply by {_local(reply_by)}."),
                data={"invitation_id": invitation.public_id, "reply_by": reply_by.isoformat()})
        else:
            log.warning("expert %s has no account to notify", expert.public_id)
        await ledger.append(session, actor=actor, action="invitation.send",
                            entity=ledger.entity_ref("invitation", invitation.public_id), payload={
                                "draw_id": root.public_id, "picked_by": by.public_id, "expert": expert.public_id,
                                "quota": offer.quota, "seat": offer.seat, "source": source,
                                "reply_by": reply_by.isoformat()})


def _local(at: datetime) -> str:
    return format_local(at)


async def _supplementary_draw(session: AsyncSession, root: ExpertDraw, drawn: list[ExpertDraw],
                              invited: Sequence[tuple[ExpertInvitation, str]], shortfall: dict[str, int], *,
                              tender: Tender, policy: DrawPolicy) -> ExpertDraw | None:
    """Commit a supplementary draw (补抽) over the short quotas; a supervisor's entropy executes it."""
    taxonomy = load_taxonomy()
    quotas = validate_quotas(supplementary_quotas(root.quotas, shortfall), taxonomy)
    picked_ids = {pid for d in drawn for r in d.result or () for pid in (*r["primaries"], *r["backups"])}
    picked = {c["id"]: c["employer"] for d in drawn for c in d.candidates if c["id"] in picked_ids}
    gone = {pid for i, pid in invited if i.status in ("declined", "expired", "withdrawn")} | set(unavailable(root))
    context = context_of(root.context, root.session_at)
    parties = await party_pks(session, [root.context["tenderer"], *root.context["bidders"]])
    pool = await screen_pool(session, quotas=quotas, context=context, tenderer_pk=tender.tenderer_id,
                             party_pks=parties, already_picked=picked,
                             employers_serving=employers_to_exclude(picked, gone))
    draw_id = await new_public_id(session, ExpertDraw, "D")
    n = max(d.round for d in drawn) + 1
    request = draw_request(draw_id, quotas, lot=root.request["lot"], session_at=root.request["session_at"],
                           supplements=root.public_id, round=n)
    try:
        rnd.check_sufficient(request, pool.candidates)
    except rnd.InsufficientCandidates as err:
        root.status = "short"
        await session.flush()
        await ledger.append(session, actor=ledger.SYSTEM, action="draw.short", entity=draw_entity(root),
                            payload={"draw_id": root.public_id, "shortfall": shortfall, **err.details})
        if root.requested_by_id is not None:
            await policy.notifier.notify(
                session, user_id=root.requested_by_id, kind="expert.draw_short",
                title="专家不足 Not enough experts",
                body=f"抽取 {root.public_id} 无法补足专家：{err.message}", data={"draw_id": root.public_id})
        return None
    secret = rnd.new_secret()
    supplementary = ExpertDraw(
        public_id=draw_id, tender_id=root.tender_id, lot_id=root.lot_id, parent_id=root.id, round=n,
        requested_by_id=None, session_at=root.session_at, venue=root.venue, members=sum(q.count for q in quotas),
        representatives=0, reply_window_s=root.reply_window_s, quotas=[q.to_request() for q in quotas],
        context=root.context, request=request, candidates=pool.candidates,
        candidates_digest=rnd.candidates_digest(pool.candidates), considered_count=len(pool.records),
        eligible_count=len(pool.candidates), exclusion_counts=pool.counts, secret=secret,
        commitment=rnd.commitment(secret), status="awaiting_entropy")
    await store_draw(session, supplementary, pool, actor=ledger.SYSTEM)
    notify = root.entropy_by_id
    if notify is not None:
        await policy.notifier.notify(
            session, user_id=notify, kind="expert.supplementary_draw", title="补抽待执行 Supplementary draw",
            body=f"抽取 {root.public_id} 的备选专家已用完，补抽 {draw_id} 等待您提供随机数。",
            data={"draw_id": draw_id, "supplements": root.public_id})
    log.info("supplementary draw %s committed for %s: %s", draw_id, root.public_id, shortfall)
    return supplementary


async def _invitation_for_update(session: AsyncSession, invitation_id: int) -> ExpertInvitation:
    return (await session.execute(select(ExpertInvitation).where(ExpertInvitation.id == invitation_id)
                                  .with_for_update().execution_options(populate_existing=True))).scalar_one()


async def reply(session: AsyncSession, *, who: Principal, invitation_public_id: str, accept: bool,
                reason: str | None = None, policy: DrawPolicy = DEFAULT_POLICY) -> ExpertInvitation:
    """An expert accepts, or declines with a reason; judged against the reply deadline by the database clock."""
    row = (await session.execute(
        select(ExpertInvitation, Expert).join(Expert, Expert.id == ExpertInvitation.expert_id)
        .where(ExpertInvitation.public_id == invitation_public_id, Expert.user_id == who.user_id))).one_or_none()
    if row is None:
        raise NotFound("no such invitation of yours", code="invitation_not_found",
                       details={"invitation_id": invitation_public_id})
    invitation, expert = row
    root_draw = await session.get(ExpertDraw, invitation.root_draw_id)
    root, _ = await lock_family(session, root_draw)
    invitation = await _invitation_for_update(session, invitation.id)
    now = await db_now(session)
    if invitation.status == "expired" or (invitation.status == "pending" and passed(invitation.reply_by, now)):
        raise Conflict("the reply deadline has passed", code="invitation_expired",
                       details={"reply_by": invitation.reply_by.isoformat()})
    if invitation.status != "pending":
        raise Conflict(f"this invitation was already {invitation.status}", code="invitation_already_answered",
                       details={"status": invitation.status})
    if not accept and not (reason or "").strip():
        raise Unprocessable("a decline needs a reason", code="reason_required", details={"field": "reason"})
    tender = await session.get(Tender, root.tender_id)
    invitation.status = "accepted" if accept else "declined"
    invitation.replied_at = now
    invitation.decline_reason = None if accept else reason.strip()
    await session.flush()
    await cancel(session, f"expert_invitation:{invitation.public_id}:timeout")
    if accept:
        session.add(ExpertService(expert_id=expert.id, tenderer_id=tender.tenderer_id, tender_id=tender.id,
                                  lot_id=root.lot_id, draw_id=root.id, served_at=root.session_at))
        await session.flush()
    await ledger.append(session, actor=who.public_id, action="invitation.accept" if accept else "invitation.decline",
                        entity=ledger.entity_ref("invitation", invitation.public_id),
                        payload={"draw_id": root.public_id, "expert": expert.public_id, "quota": invitation.quota,
                                 "seat": invitation.seat, "reason": invitation.decline_reason})
    await seat_committee(session, root, tender=tender, policy=policy, actor=who.public_id)
    return invitation


async def expire_invitation(session: AsyncSession, invitation_public_id: str, *,
                            policy: DrawPolicy = DEFAULT_POLICY) -> bool:
    """The scheduler's timeout: a still-pending invitation past its deadline expires and its seat moves on."""
    invitation = (await session.execute(select(ExpertInvitation).where(
        ExpertInvitation.public_id == invitation_public_id))).scalar_one_or_none()
    if invitation is None:
        log.warning("timeout for unknown invitation %s", invitation_public_id)
        return False
    root_draw = await session.get(ExpertDraw, invitation.root_draw_id)
    root, _ = await lock_family(session, root_draw)
    invitation = await _invitation_for_update(session, invitation.id)
    if invitation.status != "pending":
        return False
    now = await db_now(session)
    if not passed(invitation.reply_by, now):
        # woken early (a clock moved): look again at the deadline
        await schedule(session, TIMEOUT_JOB, due_at=invitation.reply_by, payload={"invitation": invitation.public_id},
                       dedupe_key=f"expert_invitation:{invitation.public_id}:timeout")
        return False
    invitation.status = "expired"
    invitation.replied_at = now
    await session.flush()
    expert_pid = (await session.execute(select(Expert.public_id).where(
        Expert.id == invitation.expert_id))).scalar_one()
    await ledger.append(session, actor=ledger.SYSTEM, action="invitation.expire",
                        entity=ledger.entity_ref("invitation", invitation.public_id),
                        payload={"draw_id": root.public_id, "expert": expert_pid, "quota": invitation.quota,
                                 "seat": invitation.seat, "reply_by": invitation.reply_by.isoformat()})
    tender = await session.get(Tender, root.tender_id)
    await seat_committee(session, root, tender=tender, policy=policy, actor=ledger.SYSTEM)
    return True


# ---------------------------------------------------------------------------------------------------------
# The re-screen at the bid deadline.

# Bids that were actually made (not replaced by a later version of the same bidder's bid, not withdrawn).
_BIDDERS_SQL = text("""
    SELECT DISTINCT o.id, o.public_id FROM bid b JOIN organisation o ON o.id = b.organisation_id
    WHERE b.lot_id = :lot AND b.status NOT IN ('replaced', 'withdrawn') ORDER BY o.public_id""")


async def rescreen_at_deadline(session: AsyncSession, draw_public_id: str, *,
                               policy: DrawPolicy = DEFAULT_POLICY) -> list[str]:
    """Screen the committee of an original draw against the lot's actual bidders; returns who was withdrawn.

    Runs as the scheduler's job at the tender's bid deadline; if the deadline moved later it schedules itself
    again at the new deadline and does nothing now. Experts found to conflict are withdrawn from their seats
    (or struck from the backups before they are invited), the reason is written to the ledger, and their seats
    are offered to the next backups; a supplementary draw follows when no backup is left.
    """
    draw, tender, lot = await get_draw(session, draw_public_id)
    root, _ = await lock_family(session, draw)
    if root.status == "cancelled":
        return []
    now = await db_now(session)
    if tender.bid_deadline_at is not None and not passed(tender.bid_deadline_at, now):
        await schedule(session, RESCREEN_JOB, due_at=tender.bid_deadline_at, payload={"draw": root.public_id},
                       dedupe_key=rescreen_key(root))
        return []
    bidders = (await session.execute(_BIDDERS_SQL, {"lot": lot.id})).all()
    drawn = await family(session, root)
    # everyone the committee could still come from: the candidates of every draw of the family
    considered = {c["id"] for d in drawn for c in d.candidates}
    conflicts = await bidder_conflicts(session, considered, [pk for pk, _ in bidders])
    known = unavailable(root)
    fresh = {pid: reason.value for pid, reason in conflicts.items() if pid not in known}
    root.context = {**root.context, "bidders": sorted({*root.context["bidders"], *(pid for _, pid in bidders)}),
                    "unavailable": {**known, **fresh}}
    await session.flush()
    withdrawn: list[str] = []
    for invitation, pid in await invitations(session, root):
        if pid not in fresh or invitation.status not in ("pending", "accepted"):
            continue
        was = invitation.status
        invitation.status, invitation.replied_at, invitation.decline_reason = "withdrawn", now, fresh[pid]
        await session.flush()
        await cancel(session, f"expert_invitation:{invitation.public_id}:timeout")
        if was == "accepted":
            await session.execute(delete(ExpertService).where(ExpertService.draw_id == root.id,
                                                              ExpertService.expert_id == invitation.expert_id))
        await ledger.append(session, actor=ledger.SYSTEM, action="invitation.withdraw",
                            entity=ledger.entity_ref("invitation", invitation.public_id), payload={
                                "draw_id": root.public_id, "expert": pid, "quota": invitation.quota,
                                "seat": invitation.seat, "was": was, "reason": fresh[pid]})
        user_id = (await session.execute(select(Expert.user_id).where(Expert.id == invitation.expert_id))).scalar_one()
        if user_id is not None:
            # the expert learns only that their own invitation is withdrawn, not which party they conflict with
            await policy.notifier.notify(
                session, user_id=user_id, kind="expert.invitation_withdrawn", title="邀请撤回 Invitation withdrawn",
                body="经投标截止时回避复核，您的评标邀请已撤回。Your invitation was withdrawn by the avoidance check "
                     "at the bid deadline.", data={"invitation_id": invitation.public_id})
        withdrawn.append(pid)
    if withdrawn and root.status == "formed":
        root.status = "executed"  # seats are open again until the replacements accept
        await session.flush()
    await ledger.append(session, actor=ledger.SYSTEM, action="draw.rescreen", entity=draw_entity(root), payload={
        "draw_id": root.public_id, "bidders": [pid for _, pid in bidders],
        "conflicts": fresh, "withdrawn": withdrawn})
    if fresh:
        log.info("draw %s: %d experts conflict with bidders at the deadline, %d withdrawn from seats",
                 root.public_id, len(fresh), len(withdrawn))
    await seat_committee(session, root, tender=tender, policy=policy, actor=ledger.SYSTEM)
    return withdrawn
