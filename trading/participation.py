"""Taking part in a tender: bidder registrations (投标报名) per lot, and clarification questions (澄清) with the
agent's public answers. Who asked is never shown to other bidders."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now, passed
from core.errors import Conflict, Forbidden, NotFound
from core.identity_models import User
from core.ids import public_id
from core.notifier import Notifier
from core.principal import Principal
from evidence import ledger_service as ledger
from trading.access import may_manage, require_manager
from trading.lifecycle import TenderStatus
from trading.loaders import get_public_lot, visible_tender
from trading.models import BidderRegistration, Clarification, Lot, Tender


async def registered_users(session: AsyncSession, tender_id: int) -> list[int]:
    """Users to notify about a tender: everyone who registered one of the bidder organisations, once each."""
    rows = await session.execute(
        select(User.id).join(BidderRegistration, BidderRegistration.organisation_id == User.organisation_id)
        .where(BidderRegistration.tender_id == tender_id, User.is_active.is_(True)).distinct().order_by(User.id))
    return list(rows.scalars())


async def notify_bidders(session: AsyncSession, notifier: Notifier, tender: Tender, *, kind: str, title: str,
                          body: str, data: dict[str, Any]) -> int:
    users = await registered_users(session, tender.id)
    for user_id in users:
        await notifier.notify(session, user_id=user_id, kind=kind, title=title, body=body,
                              data={"tender": tender.code, **data})
    return len(users)


# ---- registration --------------------------------------------------------------------------------------------

async def register_for_lot(session: AsyncSession, who: Principal, lot_public_id: str) -> tuple[BidderRegistration, Lot,
                                                                                        Tender]:
    """投标报名: a bidder organisation registers for a lot while the tender is published, before the deadline."""
    lot, tender = await get_public_lot(session, lot_public_id)
    if who.organisation_id is None:
        raise Forbidden("register with your organisation first", code="organisation_required")
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"registration is open only while the tender is published; it is {tender.status}",
                       code="registration_closed", details={"current": tender.status})
    now = await db_now(session)
    if passed(tender.bid_deadline_at, now):
        raise Conflict("the bid deadline has passed", code="bid_deadline_passed",
                       details={"bid_deadline": tender.bid_deadline_at.isoformat()})
    exists = (await session.execute(select(BidderRegistration.id).where(
        BidderRegistration.lot_id == lot.id, BidderRegistration.organisation_id == who.organisation_id))).first()
    if exists:
        raise Conflict("your organisation is already registered for this lot", code="already_registered",
                       details={"lot": lot.public_id})
    reg = BidderRegistration(tender_id=tender.id, lot_id=lot.id, organisation_id=who.organisation_id,
                             registered_by_id=who.user_id, registered_at=now)
    session.add(reg)
    await session.flush()
    # the ledger is public to supervisors only, so the bidder list stays secret from other bidders until opening
    await ledger.append(session, actor=who.public_id, action="tender.register", entity=f"tender:{tender.code}",
                        payload={"lot": lot.public_id})
    return reg, lot, tender


async def my_registrations(session: AsyncSession, tender: Tender, organisation_id: int | None) -> list[str]:
    """The lot public ids the organisation registered for in this tender."""
    if organisation_id is None:
        return []
    rows = await session.execute(select(Lot.public_id).join(BidderRegistration, BidderRegistration.lot_id == Lot.id)
                                 .where(BidderRegistration.tender_id == tender.id,
                                        BidderRegistration.organisation_id == organisation_id).order_by(Lot.lot_no))
    return list(rows.scalars())


# ---- clarifications ------------------------------------------------------------------------------------------

async def ask(session: AsyncSession, who: Principal, code: str, question: str) -> Clarification:
    """A registered bidder asks a question before the clarification period ends (DB clock)."""
    tender = await visible_tender(session, code, who)
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"questions are taken while the tender is published; it is {tender.status}",
                       code="clarification_closed", details={"current": tender.status})
    if not await my_registrations(session, tender, who.organisation_id):
        raise Forbidden("register for a lot of this tender before asking", code="not_registered",
                        details={"tender": tender.code})
    now = await db_now(session)
    if passed(tender.clarification_end_at, now):
        raise Conflict("the clarification period has ended", code="clarification_period_over",
                       details={"clarification_end": tender.clarification_end_at.isoformat()})
    item = Clarification(public_id=public_id("Q", 8), tender_id=tender.id, question=question,
                         asked_by_org_id=who.organisation_id, asked_by_id=who.user_id, asked_at=now)
    session.add(item)
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="tender.clarification.ask",
                        entity=f"tender:{tender.code}", payload={"clarification": item.public_id})
    return item


async def answer(session: AsyncSession, who: Principal, clarification_id: str, text_: str,
                 notifier: Notifier) -> tuple[Clarification, Tender]:
    """The agent answers publicly; every registered bidder is told (without who asked)."""
    row = (await session.execute(select(Clarification, Tender).join(Tender, Tender.id == Clarification.tender_id)
                                 .where(Clarification.public_id == clarification_id)
                                 .with_for_update(of=Clarification))).one_or_none()
    if row is None:
        raise NotFound(f"no clarification {clarification_id}", code="clarification_not_found")
    item, tender = row
    require_manager(tender, who)
    if item.answer is not None:
        raise Conflict("this question is already answered", code="already_answered")
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"answers are published while the tender is published; it is {tender.status}",
                       code="clarification_closed", details={"current": tender.status})
    now = await db_now(session)
    item.answer, item.answered_by_id, item.answered_at = text_, who.user_id, now
    await ledger.append(session, actor=who.public_id, action="tender.clarification.answer",
                        entity=f"tender:{tender.code}", payload={"clarification": item.public_id})
    await notify_bidders(session, notifier, tender, kind="tender.clarification",
                          title=f"澄清答复 {tender.code}", body=f"{tender.title}：新的澄清答复",
                          data={"clarification": item.public_id})
    return item, tender


async def clarifications_for(session: AsyncSession, tender: Tender,
                             who: Principal | None) -> list[tuple[Clarification, bool]]:
    """Questions the caller may see, each with `mine`: answered ones for all, own unanswered ones, all for the
    agent. Who asked is for the agent's eyes only."""
    rows = list((await session.execute(select(Clarification).where(Clarification.tender_id == tender.id)
                                       .order_by(Clarification.id))).scalars())
    manager = may_manage(tender, who)
    org = who.organisation_id if who is not None else None
    out = []
    for item in rows:
        mine = org is not None and item.asked_by_org_id == org
        if manager or mine or item.answer is not None:
            out.append((item, mine))
    return out


