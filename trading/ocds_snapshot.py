"""The OCDS loader: a tender as open data sees it (parties, lots, documents, timeline, and bidders, candidates
and awards once public), read from the database into trading.ocds snapshots."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity_models import Organisation
from trading.documents import documents_of
from trading.lifecycle import Timeline
from trading.models import Award, AwardCandidate, Bid, Tender, TenderOpening
from trading.ocds import AwardSnapshot, DocumentSnapshot, LotSnapshot, OrgRef, TenderSnapshot
from trading.tenders import lots_of, organisations


# ---- OCDS ----------------------------------------------------------------------------------------------------

def _org_ref(org: Organisation) -> OrgRef:
    return OrgRef(org.public_id, org.name, org.social_credit_code)


async def ocds_snapshot(session: AsyncSession, tender: Tender, public_url: str) -> TenderSnapshot:
    """The tender as open data sees it: parties, lots, documents, timeline, and bidders/awards once public."""
    orgs = await organisations(session, [tender.tenderer_id, tender.agent_id])
    lots = await lots_of(session, tender.id)
    docs = await documents_of(session, tender.id)
    timeline = None
    if tender.published_at is not None:
        timeline = Timeline(tender.published_at, tender.clarification_end_at, tender.bid_deadline_at,
                            tender.opening_at)
    base = public_url.rstrip("/")
    documents = [DocumentSnapshot(d.public_id, d.title, f"{base}/api/v1/documents/{d.public_id}", d.document_type,
                                  max(d.created_at, tender.published_at or d.created_at), d.media_type)
                 for d in docs]
    extra = await _bid_parts(session, tender)
    return TenderSnapshot(
        id=tender.code, code=tender.code, title=tender.title, title_en=tender.title_en, status=tender.status,
        method=tender.method,
        family=tender.family, subtype=tender.subtype, description=tender.description or None, budget=tender.budget,
        currency=tender.currency, tenderer=_org_ref(orgs[tender.tenderer_id]),
        agent=_org_ref(orgs[tender.agent_id]) if tender.agent_id in orgs else None,
        lots=[LotSnapshot(lot.public_id, lot.title, lot.budget) for lot in lots], timeline=timeline,
        documents=documents, published_at=tender.published_at, updated_at=tender.updated_at, **extra)


async def _bid_parts(session: AsyncSession, tender: Tender) -> dict[str, Any]:
    """Bidders, candidates and awards for OCDS; trading.ocds decides what is disclosed in which state."""
    opening = await session.get(TenderOpening, tender.id)
    opened_at = opening.completed_at if opening is not None else None
    bids = list((await session.execute(select(Bid).where(
        Bid.tender_id == tender.id, Bid.status.in_(("opened", "invalid"))).order_by(Bid.id)
    )).scalars())
    candidates = list((await session.execute(select(AwardCandidate).where(
        AwardCandidate.tender_id == tender.id).order_by(AwardCandidate.lot_id,
                                                               AwardCandidate.rank))).scalars())
    awards = {a.lot_id: a for a in (await session.execute(select(Award).where(
        Award.tender_id == tender.id))).scalars()}
    by_id = {b.id: b for b in bids}
    missing = [c.bid_id for c in candidates if c.bid_id not in by_id]
    if missing:
        by_id.update({b.id: b for b in (await session.execute(select(Bid).where(
            Bid.id.in_(missing)))).scalars()})
    orgs = await organisations(session, [b.organisation_id for b in by_id.values()])
    lots = {lot.id: lot.public_id for lot in await lots_of(session, tender.id)}
    tenderer_count = (await session.execute(select(func.count(func.distinct(Bid.organisation_id))).where(
        Bid.tender_id == tender.id, Bid.status.in_(("submitted", "opened", "invalid"))))).scalar_one()
    bidders, seen = [], set()
    for bid in bids:
        if bid.organisation_id not in seen:
            seen.add(bid.organisation_id)
            bidders.append(_org_ref(orgs[bid.organisation_id]))
    award_snaps = []
    for c in candidates:
        bid = by_id[c.bid_id]
        won = awards.get(c.lot_id)
        status = "candidate" if won is None else ("awarded" if won.bid_id == c.bid_id else "unsuccessful")
        award_snaps.append(AwardSnapshot(
            id=f"{lots[c.lot_id]}-C{c.rank}", supplier=_org_ref(orgs[bid.organisation_id]),
            value=won.price if won is not None and won.bid_id == c.bid_id else (bid.price or Decimal(0)),
            date=won.awarded_at if won is not None and won.bid_id == c.bid_id else c.published_at,
            status=status, lot_id=lots[c.lot_id], rank=c.rank))
    return {"bidders": bidders, "tenderer_count": tenderer_count, "awards": award_snaps, "opened_at": opened_at,
            "candidates_published_at": min((c.published_at for c in candidates), default=None)}


