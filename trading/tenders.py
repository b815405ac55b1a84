"""Tenders (招标项目): drafts with their codes and lots, publication, the close job, cancellation and amendments.

Services never commit: the caller's transaction holds every change and its ledger entry together. Deadlines are
judged by the database clock (core.db.db_now).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence

from sqlalchemy import any_, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core import scheduler
from core.clock import db_now, format_local, local_year, passed
from core.errors import Conflict, Unprocessable
from core.identity_models import Organisation, User
from core.ids import public_id
from core.notifier import Notifier
from core.principal import Principal
from evidence import ledger_service as ledger
from trading import keyholding, statutory
from trading.access import require_manager
from trading.codes import load_categories, tender_code
from trading.evaluation_methods import stored_evaluation
from trading.lifecycle import TenderStatus, Timeline, apply_amendment, as_method, transition, validate_timeline
from trading.listing.search_terms import tender_terms
from trading.loaders import get_tender
from trading.models import Amendment, Lot, Tender, TenderDocument
from trading.participation import notify_bidders
from trading.status import move_tender

log = logging.getLogger(__name__)

CLOSE_JOB = "trading.close_bidding"
MAX_LOTS = 50
MAX_KEY_HOLDERS = 15


def close_job_key(tender_id: int) -> str:
    """The scheduler's dedupe key of a tender's close job."""
    return f"tender:{tender_id}:close"


def _money(value: Any, field: str) -> Decimal:
    if isinstance(value, float) or isinstance(value, bool):
        raise Unprocessable(f"{field} must be a decimal number", code="invalid_budget", details={"field": field})
    amount = Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise Unprocessable(f"{field} must be zero or more", code="invalid_budget", details={"field": field})
    if amount != amount.quantize(Decimal("0.01"), rounding="ROUND_DOWN"):
        raise Unprocessable(f"{field} has at most 2 decimal places", code="invalid_budget", details={"field": field})
    return amount


# ---- lookups -------------------------------------------------------------------------------------------------

async def _organisation(session: AsyncSession, org_public_id: str, field: str) -> Organisation:
    org = (await session.execute(select(Organisation).where(Organisation.public_id == org_public_id))
           ).scalar_one_or_none()
    if org is None:
        raise Unprocessable(f"no organisation {org_public_id}", code="unknown_organisation",
                            details={"field": field, "organisation": org_public_id})
    return org


async def _supervising_organisation(session: AsyncSession, org_public_id: str | None) -> int | None:
    """The supervising organisation (行政监督部门, 招标投标法实施条例 第4条) named by its public id: an existing
    organisation with at least one active supervisor account, else 422 not_a_supervising_organisation. None
    leaves the tender unsupervised, which publication refuses."""
    if org_public_id is None:
        return None
    org = await _organisation(session, org_public_id, "supervisor_organisation")
    supervisors = (await session.execute(select(func.count()).select_from(User).where(
        User.organisation_id == org.id, User.is_active.is_(True), literal("supervisor") == any_(User.roles)))).scalar_one()
    if not supervisors:
        raise Unprocessable("the supervising organisation has no supervisor accounts",
                            code="not_a_supervising_organisation",
                            details={"field": "supervisor_organisation", "organisation": org_public_id})
    return org.id


# ---- codes ---------------------------------------------------------------------------------------------------

async def allocate_codes(session: AsyncSession, region_code: str, year: int, family: str, count: int = 1) -> list[str]:
    """Reserve `count` consecutive tender codes; the upsert locks the sequence row until the transaction ends."""
    tender_code(region_code, year, family, 1)  # refuse bad parts before touching the row
    last = (await session.execute(text(
        "INSERT INTO tender_sequence (region_code, year, family, last_seq) VALUES (:r, :y, :f, :n) "
        "ON CONFLICT (region_code, year, family) DO UPDATE SET last_seq = tender_sequence.last_seq + :n "
        "RETURNING last_seq"), {"r": region_code, "y": year, "f": family, "n": count})).scalar_one()
    return [tender_code(region_code, year, family, seq) for seq in range(last - count + 1, last + 1)]


# ---- drafts --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LotDraft:
    """A lot as the agent describes it."""

    title: str
    budget: Decimal


def _check_lots(lots: Sequence[LotDraft], budget: Decimal) -> None:
    if len(lots) > MAX_LOTS:
        raise Unprocessable(f"at most {MAX_LOTS} lots", code="too_many_lots", details={"max": MAX_LOTS})
    total = sum((_money(lot.budget, f"lots.{i}.budget") for i, lot in enumerate(lots)), Decimal(0))
    if total > budget:
        raise Unprocessable("the lots' budgets add up to more than the tender's budget",
                            code="lot_budgets_exceed_budget",
                            details={"lots_total": str(total), "budget": str(budget)})


def _check_keys(threshold: int, holders: int) -> None:
    # k and n count people: one holder alone must never be able to open the bids, so k >= 2 people, whether or
    # not the platform holds a share beside them (keyholding.shares_needed: the platform's share adds to k)
    if not 2 <= threshold <= holders <= MAX_KEY_HOLDERS:
        raise Unprocessable("the key threshold k and holder count n count people and need 2 <= k <= n <= 15; the "
                            "platform's share, if any, is held beside them and never counts as a person "
                            f"({keyholding.KEY_SPLIT_STATUTE})", code="invalid_key_split",
                            details={"key_threshold": threshold, "key_holder_count": holders})


def _check_timeline(tender: Tender, now: datetime, periods: statutory.Periods | None = None) -> None:
    validate_timeline(Timeline(now, tender.clarification_end_at, tender.bid_deadline_at, tender.opening_at),
                      tender.method, periods)


async def _replace_lots(session: AsyncSession, tender: Tender, lots: Sequence[LotDraft]) -> None:
    await session.execute(Lot.__table__.delete().where(Lot.tender_id == tender.id))
    if not lots:  # one lot for the whole tender: bids and registrations are always per lot
        lots = [LotDraft(title=tender.title, budget=tender.budget)]
    for n, lot in enumerate(lots, start=1):
        session.add(Lot(public_id=f"{tender.code}-L{n:02d}", tender_id=tender.id, lot_no=n, title=lot.title,
                        budget=_money(lot.budget, f"lots.{n - 1}.budget")))
    await session.flush()


async def create_tender(session: AsyncSession, who: Principal, data: dict[str, Any]) -> Tender:
    """A new draft with its code and lots; `data` is schemas.TenderIn as a dict."""
    catalogue = load_categories()
    catalogue.check_pair(data["family"], data["subtype"])
    method = as_method(data["method"])
    budget = _money(data["budget"], "budget")
    lots = [LotDraft(lot["title"], lot["budget"]) for lot in data.get("lots") or []]
    _check_lots(lots, budget)
    _check_keys(data["key_threshold"], data["key_holder_count"])
    evaluation = stored_evaluation(data["evaluation"])
    tenderer = await _organisation(session, data["tenderer"], "tenderer")
    supervisor_org_id = await _supervising_organisation(session, data.get("supervisor_organisation"))
    now = await db_now(session)
    validate_timeline(Timeline(now, data["clarification_end_at"], data["bid_deadline_at"], data["opening_at"]))
    [code] = await allocate_codes(session, data["region_code"], local_year(now), data["family"])
    tender = Tender(code=code, title=data["title"], title_en=data.get("title_en") or None,
                    description=data.get("description") or "",
                    family=data["family"], subtype=data["subtype"], method=method.value,
                    region_code=data["region_code"], tenderer_id=tenderer.id, agent_id=who.organisation_id,
                    supervisor_organisation_id=supervisor_org_id,
                    created_by_id=who.user_id, budget=budget, currency=data.get("currency") or "CNY",
                    evaluation=evaluation, clarification_end_at=data["clarification_end_at"],
                    bid_deadline_at=data["bid_deadline_at"], opening_at=data["opening_at"],
                    key_threshold=data["key_threshold"], key_holder_count=data["key_holder_count"],
                    platform_holds_share=bool(data.get("platform_holds_share", False)))
    session.add(tender)
    await session.flush()
    await _replace_lots(session, tender, lots)
    await ledger.append(session, actor=who.public_id, action="tender.create", entity=f"tender:{code}",
                        payload={"title": tender.title, "family": tender.family, "subtype": tender.subtype,
                                 "method": tender.method, "budget": str(budget), "tenderer": tenderer.public_id,
                                 "supervisor_organisation": data.get("supervisor_organisation"),
                                 "lots": len(lots) or 1})
    log.info("tender %s drafted", code)
    return tender


EDITABLE = ("title", "title_en", "supervisor_organisation", "description", "subtype", "method", "budget", "currency",
            "evaluation", "clarification_end_at", "bid_deadline_at", "opening_at", "key_threshold", "key_holder_count",
            "platform_holds_share", "tenderer", "lots")


async def update_draft(session: AsyncSession, who: Principal, code: str, changes: dict[str, Any]) -> Tender:
    """Change a draft; refuses 409 tender_not_draft (naming the state) once it is published."""
    tender = await get_tender(session, code, lock="update")
    require_manager(tender, who)
    if tender.status != TenderStatus.DRAFT:
        raise Conflict(f"only a draft can be edited; the tender is {tender.status}", code="tender_not_draft",
                       details={"current": tender.status})
    changed = sorted(k for k in changes if k in EDITABLE)
    if "supervisor_organisation" in changes:
        tender.supervisor_organisation_id = await _supervising_organisation(session, changes["supervisor_organisation"])
    if "tenderer" in changes:
        tender.tenderer_id = (await _organisation(session, changes["tenderer"], "tenderer")).id
    if "subtype" in changes:
        load_categories().check_pair(tender.family, changes["subtype"])
        tender.subtype = changes["subtype"]
    if "method" in changes:
        tender.method = as_method(changes["method"]).value
    if "evaluation" in changes:
        tender.evaluation = stored_evaluation(changes["evaluation"])
    if "title_en" in changes:
        tender.title_en = changes["title_en"] or None
    for name in ("title", "description", "currency", "clarification_end_at", "bid_deadline_at", "opening_at",
                 "key_threshold", "key_holder_count", "platform_holds_share"):
        if name in changes and changes[name] is not None:
            setattr(tender, name, changes[name])
    if "budget" in changes:
        tender.budget = _money(changes["budget"], "budget")
    _check_keys(tender.key_threshold, tender.key_holder_count)
    _check_timeline(tender, await db_now(session))
    if "lots" in changes and changes["lots"] is not None:
        lots = [LotDraft(lot["title"], lot["budget"]) for lot in changes["lots"]]
        _check_lots(lots, tender.budget)
        await _replace_lots(session, tender, lots)
    else:
        lot_total = (await session.execute(select(func.coalesce(func.sum(Lot.budget), 0))
                                           .where(Lot.tender_id == tender.id))).scalar_one()
        if lot_total > tender.budget:
            raise Unprocessable("the lots' budgets add up to more than the tender's budget",
                                code="lot_budgets_exceed_budget",
                                details={"lots_total": str(lot_total), "budget": str(tender.budget)})
    tender.updated_at = await db_now(session)
    await ledger.append(session, actor=who.public_id, action="tender.edit", entity=f"tender:{tender.code}",
                        payload={"fields": changed})
    return tender


async def refresh_search_terms(session: AsyncSession, tender: Tender) -> None:
    """Recompute the tender's listing search terms from its text, tenderer and lot titles."""
    tenderer = (await session.execute(select(Organisation.name).where(Organisation.id == tender.tenderer_id))
                ).scalar_one()
    lot_titles = list((await session.execute(select(Lot.title).where(Lot.tender_id == tender.id)
                                             .order_by(Lot.lot_no))).scalars())
    tender.search_terms = tender_terms(tender.title, tender.code, tender.description, tenderer, lot_titles,
                                       tender.title_en)


async def publish(session: AsyncSession, who: Principal, code: str, *,
                  periods: statutory.Periods = statutory.ENFORCED) -> Tender:
    """draft -> published: seals the tender's key, stamps the DB time, indexes the text, schedules the close."""
    tender = await get_tender(session, code, lock="update")
    require_manager(tender, who)
    transition(tender.status, TenderStatus.PUBLISHED)  # refuse early, before sealing, naming the current state
    now = await db_now(session)
    _check_timeline(tender, now, periods)  # the statutory periods count from this publication
    if tender.supervisor_organisation_id is None:
        # 行政监督部门 (招标投标法实施条例 第4条): its supervisors watch the draw and the opening and hold keys
        raise Unprocessable("name the tender's supervising organisation (行政监督部门) before publishing",
                            code="supervisor_organisation_required", details={"field": "supervisor_organisation"})
    await keyholding.seal_at_publish(session, tender, actor=who.public_id)
    tender.published_at = now
    await refresh_search_terms(session, tender)
    await move_tender(session, tender, TenderStatus.PUBLISHED, actor=who.public_id,
                      payload={"published_at": now.isoformat(), "bid_deadline": tender.bid_deadline_at.isoformat()})
    await scheduler.schedule(session, CLOSE_JOB, due_at=tender.bid_deadline_at, payload={"tender_id": tender.id},
                             dedupe_key=close_job_key(tender.id))
    await session.flush()
    await session.refresh(tender)
    return tender


async def cancel(session: AsyncSession, who: Principal, code: str, reason: str, notifier: Notifier) -> Tender:
    """Cancel (终止) with a reason; the close job goes, registered bidders hear of it."""
    tender = await get_tender(session, code, lock="update")
    require_manager(tender, who)
    await move_tender(session, tender, TenderStatus.CANCELLED, actor=who.public_id, payload={"reason": reason})
    await scheduler.cancel(session, close_job_key(tender.id))
    await notify_bidders(session, notifier, tender, kind="tender.cancelled", title=f"招标项目终止 {tender.code}",
                          body=f"{tender.title} 已终止：{reason}", data={"reason": reason})
    await session.flush()
    await session.refresh(tender)
    return tender


async def close_bidding(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The close job: published -> closed once the database clock has reached the (possibly moved) deadline."""
    tender = (await session.execute(select(Tender).where(Tender.id == payload["tender_id"]).with_for_update())
              ).scalar_one_or_none()
    if tender is None or tender.status != TenderStatus.PUBLISHED:
        return  # cancelled or moved on by hand: nothing to close
    now = await db_now(session)
    if not passed(tender.bid_deadline_at, now):
        # the job ran early (its due time lagged a deadline change): come back at the real deadline
        await scheduler.schedule(session, CLOSE_JOB, due_at=tender.bid_deadline_at, payload=payload,
                                 dedupe_key=close_job_key(tender.id))
        return
    await move_tender(session, tender, TenderStatus.CLOSED, actor="system",
                      payload={"bid_deadline": tender.bid_deadline_at.isoformat(), "closed_at": now.isoformat()})


# ---- amendments ----------------------------------------------------------------------------------------------

async def amend(session: AsyncSession, who: Principal, code: str, *, summary: str, body: str, document_ids: list[str],
                notifier: Notifier, periods: statutory.Periods = statutory.ENFORCED) -> tuple[Amendment, Tender]:
    """澄清或修改: publish a change; too close to the deadline, the deadline (and opening) move out."""
    tender = await get_tender(session, code, lock="update")
    require_manager(tender, who)
    if tender.status != TenderStatus.PUBLISHED:
        raise Conflict(f"amendments are published while the tender is published; it is {tender.status}",
                       code="tender_not_published", details={"current": tender.status})
    if document_ids:
        found = set((await session.execute(select(TenderDocument.public_id).where(
            TenderDocument.tender_id == tender.id, TenderDocument.public_id.in_(document_ids)))).scalars())
        missing = [d for d in document_ids if d not in found]
        if missing:
            raise Unprocessable("documents not attached to this tender", code="unknown_document",
                                details={"documents": missing})
    now = await db_now(session)
    before = Timeline(tender.published_at, tender.clarification_end_at, tender.bid_deadline_at, tender.opening_at)
    after = validate_timeline(apply_amendment(before, now, tender.method), tender.method, periods)
    extended = after.bid_deadline != before.bid_deadline
    item = Amendment(public_id=public_id("M", 8), tender_id=tender.id, summary=summary, body=body,
                     document_ids=list(document_ids), published_at=now, deadline_before=before.bid_deadline,
                     deadline_after=after.bid_deadline, opening_after=after.opening_at, published_by_id=who.user_id)
    session.add(item)
    if extended:
        tender.bid_deadline_at, tender.opening_at = after.bid_deadline, after.opening_at
        await scheduler.reschedule(session, close_job_key(tender.id), after.bid_deadline)
    tender.updated_at = now
    await session.flush()
    await ledger.append(session, actor=who.public_id, action="tender.amend", entity=f"tender:{tender.code}",
                        payload={"amendment": item.public_id, "summary": summary, "extended": extended,
                                 "bid_deadline_before": before.bid_deadline.isoformat(),
                                 "bid_deadline_after": after.bid_deadline.isoformat()})
    note = f"，投标截止时间顺延至 {format_local(after.bid_deadline)}" if extended else ""
    await notify_bidders(session, notifier, tender, kind="tender.amendment", title=f"澄清或修改 {tender.code}",
                          body=f"{tender.title}：{summary}{note}",
                          data={"amendment": item.public_id, "extended": extended,
                                "bid_deadline": after.bid_deadline.isoformat()})
    return item, tender


# ---- detail --------------------------------------------------------------------------------------------------

async def lots_of(session: AsyncSession, tender_id: int) -> list[Lot]:
    return list((await session.execute(select(Lot).where(Lot.tender_id == tender_id).order_by(Lot.lot_no))
                 ).scalars())


async def amendments_of(session: AsyncSession, tender_id: int) -> list[Amendment]:
    return list((await session.execute(select(Amendment).where(Amendment.tender_id == tender_id)
                                       .order_by(Amendment.id))).scalars())


async def organisations(session: AsyncSession, ids: Sequence[int | None]) -> dict[int, Organisation]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Organisation).where(Organisation.id.in_(wanted)))
    return {org.id: org for org in rows.scalars()}
