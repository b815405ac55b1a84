"""What each role sees of a draw, as the API's pydantic schemas. Reads only.

The draw notice (counts, confirmation status, the commitment, the records issued) is for the tender's agents,
admins and the tender's supervisors; who was drawn (result, invitations, entropy and seed) only where
`access.may_see_identities` allows: the tender's supervisors always, everyone once the award is made. An
expert sees their own invitations: time, venue, specialty and deadline, nothing about the project's parties.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.principal import Principal
from expert_pool import access
from expert_pool.draw_records import edition_of, issued, names_of, readable
from expert_pool.draws import DrawState, draw_state, lot_with_tender
from expert_pool.models import DrawExclusion, Expert, ExpertDraw, ExpertInvitation
from expert_pool.schemas import (DrawnOut, DrawOut, DrawRecordRef, DrawSummaryOut, ExclusionOut, InvitationOut,
                                 MyInvitationOut, QuotaResultOut, SeatCountsOut)
from expert_pool.seating import confirmation_counts
from expert_pool.confirmations import seat_rows, seats_of
from expert_pool.taxonomy import load_taxonomy


def summary(draw: ExpertDraw) -> DrawSummaryOut:
    return DrawSummaryOut(
        draw_id=draw.public_id, round=draw.round, status=draw.status, commitment=draw.commitment,
        eligible=draw.eligible_count, considered=draw.considered_count, exclusions=dict(draw.exclusion_counts),
        entropy_supplied=draw.entropy is not None, created_at=draw.created_at, executed_at=draw.executed_at)


async def record_refs(session: AsyncSession, draw: ExpertDraw, who: Principal | None) -> list[DrawRecordRef]:
    """The record PDFs issued for a draw, each saying whether `who` may download it now."""
    records = await issued(session, draw)
    may = await readable(session, records, who)
    return [DrawRecordRef(edition=edition_of(r), record_no=r.record_no, status=r.status, sha256=r.sha256,
                          download=f"/api/v1/records/{r.record_no}", readable=may[r.record_no]) for r in records]


async def draw_view(session: AsyncSession, state: DrawState, who: Principal) -> DrawOut:
    """The draw notice as `who` may see it (callers have checked `access.check_see_draw`)."""
    root, draw = state.root, state.draw
    identities = access.may_see_identities(state.tender, who)
    out = DrawOut(
        **summary(draw).model_dump(), tender=state.tender.code, lot=state.lot.public_id,
        supplements=root.public_id if draw.id != root.id else None, session_at=root.session_at, venue=root.venue,
        evaluation_session=root.evaluation_session, members=root.members, representatives=root.representatives, reply_window_s=root.reply_window_s,
        quotas=draw.quotas,
        confirmation={q: SeatCountsOut(**c) for q, c in confirmation_counts(
            seats_of(root), seat_rows(state.invitations)).items()},
        committee_formed=root.status == "formed",
        supplementary_draws=[summary(d) for d in state.family if d.id != root.id],
        identities_disclosed=identities, cancelled_at=root.cancelled_at, cancel_reason=root.cancel_reason,
        records=await record_refs(session, draw, who))
    if identities:
        picks = [pid for d in state.family for r in d.result or () for pid in (*r["primaries"], *r["backups"])]
        names = await names_of(session, [*picks, *(pid for _, pid in state.invitations)])
        out.entropy, out.seed = draw.entropy, draw.seed
        out.result = [QuotaResultOut(quota=r["quota"],
                                     primaries=[DrawnOut(expert_id=p, name=names.get(p)) for p in r["primaries"]],
                                     backups=[DrawnOut(expert_id=b, name=names.get(b)) for b in r["backups"]])
                      for r in draw.result or ()]
        out.invitations = [InvitationOut(
            invitation_id=i.public_id, expert_id=pid, name=names.get(pid), quota=i.quota, seat=i.seat,
            source=i.source, status=i.status, sent_at=i.sent_at, reply_by=i.reply_by, replied_at=i.replied_at,
            decline_reason=i.decline_reason) for i, pid in state.invitations]
    return out


async def lot_draws(session: AsyncSession, lot_public_id: str, who: Principal) -> list[DrawOut]:
    """Every draw of a lot, original and supplementary, cancelled ones included, as the caller may see them."""
    lot, tender = await lot_with_tender(session, lot_public_id)
    access.check_see_draw(tender, who)
    ids = (await session.execute(select(ExpertDraw.public_id).where(ExpertDraw.lot_id == lot.id)
                                 .order_by(ExpertDraw.id))).scalars().all()
    return [await draw_view(session, await draw_state(session, pid), who) for pid in ids]


async def exclusions(session: AsyncSession, state: DrawState, who: Principal) -> list[ExclusionOut]:
    """Who avoidance left out of this draw and why: the tender's supervisors only."""
    access.check_see_exclusions(state.tender, who)
    rows = await session.execute(select(Expert.public_id, Expert.name, DrawExclusion.reasons)
                                 .join(Expert, Expert.id == DrawExclusion.expert_id)
                                 .where(DrawExclusion.draw_id == state.draw.id).order_by(Expert.public_id))
    return [ExclusionOut(expert_id=pid, name=name, reason=reasons[0], reasons=list(reasons))
            for pid, name, reasons in rows.all()]


async def my_invitations(session: AsyncSession, who: Principal) -> list[MyInvitationOut]:
    """An expert's own invitations: time, venue, specialty and deadline; nothing about the project's parties."""
    taxonomy = load_taxonomy()
    rows = await session.execute(
        select(ExpertInvitation, ExpertDraw).join(Expert, Expert.id == ExpertInvitation.expert_id)
        .join(ExpertDraw, ExpertDraw.id == ExpertInvitation.root_draw_id)
        .where(Expert.user_id == who.user_id).order_by(ExpertInvitation.id.desc()))
    out = []
    for invitation, root in rows.all():
        specialty = next(q["specialty"] for q in root.quotas if q["name"] == invitation.quota)
        out.append(MyInvitationOut(
            invitation_id=invitation.public_id, status=invitation.status, session_at=root.session_at,
            venue=root.venue, specialty=specialty, specialty_zh=taxonomy.name(specialty),
            specialty_en=taxonomy.name(specialty, "en"), sent_at=invitation.sent_at, reply_by=invitation.reply_by,
            replied_at=invitation.replied_at))
    return out


async def my_invitation(session: AsyncSession, who: Principal, invitation_public_id: str) -> MyInvitationOut:
    return next(i for i in await my_invitations(session, who) if i.invitation_id == invitation_public_id)
