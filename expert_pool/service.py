"""Expert pool use cases: registering and importing experts, their standing, leave and declared conflicts.

Never commits: every function runs in the caller's transaction and writes its audit entry there.
Draws live in expert_pool.draws, confirmations in expert_pool.confirmations.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import identity_service
from core.db import db_now
from core.errors import Conflict, NotFound, Unprocessable
from core.identity_models import Organisation, User
from core.identity_rules import normalise_uscc
from core.principal import Principal
from core.ids import public_id
from evidence import ledger_service as ledger
from expert_pool.csv_import import read_rows
from expert_pool.models import Expert, ExpertConflict, ExpertLeave, ExpertService
from expert_pool.profile import ExpertProfile, Problem, ProfileRefused, check_profile, require_profile
from expert_pool.rules import ExpertStatus
from expert_pool.taxonomy import load_taxonomy
from trading.access import may_see_identities
from trading.models import Tender

log = logging.getLogger(__name__)

EXPERT_ROLE = "expert"
EMPLOYER_KIND = "employer"


def expert_entity(expert: Expert) -> str:
    """The ledger's name for an expert: only the pseudonym, never the name."""
    return ledger.entity_ref("expert", expert.public_id)


async def new_public_id(session: AsyncSession, model: Any, prefix: str) -> str:
    """A fresh public id for `model`; ids are random, so a (rare) collision is simply drawn again."""
    while True:
        candidate = public_id(prefix)
        taken = (await session.execute(select(model.id).where(model.public_id == candidate))).first()
        if taken is None:
            return candidate


# ---------------------------------------------------------------------------------------------------------
# Reading.

@dataclass
class ExpertDetails:
    """An expert with what a profile page shows beside the row itself."""

    expert: Expert
    employer: Organisation | None
    user_public_id: str | None
    leave: list[ExpertLeave] = field(default_factory=list)
    conflicts: list[tuple[ExpertConflict, Organisation]] = field(default_factory=list)


async def get_expert(session: AsyncSession, expert_public_id: str, *, for_update: bool = False) -> Expert:
    """The expert with this public id, or 404 expert_not_found."""
    q = select(Expert).where(Expert.public_id == expert_public_id)
    if for_update:
        q = q.with_for_update()
    expert = (await session.execute(q)).scalar_one_or_none()
    if expert is None:
        raise NotFound("no such expert", code="expert_not_found", details={"expert_id": expert_public_id})
    return expert


async def expert_of_user(session: AsyncSession, user_id: int, *, for_update: bool = False) -> Expert:
    """The expert profile linked to a signed-in account, or 404 not_an_expert."""
    q = select(Expert).where(Expert.user_id == user_id)
    if for_update:
        q = q.with_for_update()
    expert = (await session.execute(q)).scalar_one_or_none()
    if expert is None:
        raise NotFound("your account is not linked to an expert profile", code="not_an_expert")
    return expert


async def details(session: AsyncSession, expert: Expert) -> ExpertDetails:
    """The expert's employer, account, leave periods and declared conflicts."""
    employer = await session.get(Organisation, expert.employer_id) if expert.employer_id else None
    user_pid = (await session.execute(select(User.public_id).where(User.id == expert.user_id))).scalar_one_or_none() \
        if expert.user_id else None
    leave = list((await session.execute(select(ExpertLeave).where(ExpertLeave.expert_id == expert.id)
                                        .order_by(ExpertLeave.starts_at))).scalars())
    conflicts = [(c, o) for c, o in (await session.execute(
        select(ExpertConflict, Organisation).join(Organisation, Organisation.id == ExpertConflict.organisation_id)
        .where(ExpertConflict.expert_id == expert.id).order_by(ExpertConflict.id))).all()]
    return ExpertDetails(expert, employer, user_pid, leave, conflicts)


async def list_experts(session: AsyncSession, *, specialty: str | None = None, city_code: str | None = None,
                       status: str | None = None, after: str | None = None, limit: int = 50) -> list[Expert]:
    """Experts in public-id order (keyset pagination), optionally by specialty (any node), city and status."""
    q = select(Expert).order_by(Expert.public_id).limit(limit)
    if specialty is not None:
        taxonomy = load_taxonomy()
        if specialty not in taxonomy:
            raise Unprocessable(f"unknown specialty code {specialty!r}", code="unknown_specialty")
        q = q.where(Expert.specialties.overlap(list(taxonomy.leaves(specialty))))
    if city_code is not None:
        q = q.where(Expert.city_code == city_code)
    if status is not None:
        q = q.where(Expert.status == status)
    if after is not None:
        q = q.where(Expert.public_id > after)
    return list((await session.execute(q)).scalars())


async def employers_of(session: AsyncSession, experts: Sequence[Expert]) -> dict[int, Organisation]:
    """The employers of a page of experts, by organisation id."""
    wanted = {e.employer_id for e in experts if e.employer_id is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Organisation).where(Organisation.id.in_(wanted)))
    return {o.id: o for o in rows.scalars()}


async def service_history(session: AsyncSession, expert: Expert,
                          who: Principal) -> list[tuple[ExpertService, Organisation]]:
    """The evaluations the expert served or confirmed for, newest first, with the tenderer.

    A confirmed seat on a tender not yet awarded would name a committee member before the award: others than
    the expert see such a row only as the tender's supervisors (expert_pool.access, via trading.access)."""
    rows = await session.execute(
        select(ExpertService, Organisation, Tender).join(Organisation, Organisation.id == ExpertService.tenderer_id)
        .outerjoin(Tender, Tender.id == ExpertService.tender_id)
        .where(ExpertService.expert_id == expert.id).order_by(ExpertService.served_at.desc()))
    own = expert.user_id is not None and expert.user_id == who.user_id
    return [(s, o) for s, o, t in rows.all() if own or t is None or may_see_identities(t, who)]


# ---------------------------------------------------------------------------------------------------------
# Registering and importing.

async def _employer(session: AsyncSession, actor: str, profile: ExpertProfile) -> tuple[int | None, list[Problem]]:
    if profile.employer_id is not None:
        org_id = (await session.execute(select(Organisation.id).where(
            Organisation.public_id == profile.employer_id))).scalar_one_or_none()
        if org_id is None:
            return None, [Problem("employer_id", "employer_not_found", f"no organisation {profile.employer_id}")]
        return org_id, []
    if profile.employer_credit_code is None:
        return None, []
    org_id = (await session.execute(select(Organisation.id).where(
        Organisation.social_credit_code == profile.employer_credit_code))).scalar_one_or_none()
    if org_id is not None:
        return org_id, []
    org = await identity_service.create_organisation(
        session, actor=actor, name=profile.employer_name or profile.employer_credit_code,
        social_credit_code=profile.employer_credit_code, kind=EMPLOYER_KIND, region_code=profile.city_code)
    return org.id, []


async def _account(session: AsyncSession, profile: ExpertProfile) -> tuple[User | None, list[Problem]]:
    if profile.username is None:
        return None, []
    user = (await session.execute(select(User).where(User.username == profile.username))).scalar_one_or_none()
    if user is None:
        return None, [Problem("username", "user_not_found", f"no account {profile.username!r}")]
    if EXPERT_ROLE not in user.roles:
        return None, [Problem("username", "user_not_expert", "the account does not have the expert role")]
    linked = (await session.execute(select(Expert.public_id).where(Expert.user_id == user.id))).scalar_one_or_none()
    if linked is not None:
        return None, [Problem("username", "user_already_linked", f"the account already belongs to {linked}")]
    return user, []


async def _store(session: AsyncSession, actor: str, profile: ExpertProfile, *, source: str,
                 ) -> tuple[Expert | None, list[Problem]]:
    """Resolve employer and account, then insert; returns the problems instead when there are any."""
    taken = (await session.execute(select(Expert.public_id).where(
        Expert.id_card_no == profile.id_card_no))).scalar_one_or_none()
    if taken is not None:
        return None, [Problem("id_card_no", "id_card_exists", f"this ID card number is already registered ({taken})")]
    user, problems = await _account(session, profile)
    employer_id, employer_problems = await _employer(session, actor, profile)
    problems += employer_problems
    if problems:
        return None, problems
    expert = Expert(public_id=await new_public_id(session, Expert, "E"), user_id=user.id if user else None,
                    name=profile.name, id_card_no=profile.id_card_no, phone=profile.phone,
                    province_code=profile.province_code, city_code=profile.city_code, employer_id=employer_id,
                    category=profile.category, title=profile.title, specialties=list(profile.specialties))
    session.add(expert)
    await session.flush()
    await ledger.append(session, actor=actor, action="expert.create", entity=expert_entity(expert), payload={
        "source": source, "category": expert.category, "city_code": expert.city_code,
        "specialties": expert.specialties, "account": user.public_id if user else None})
    return expert, []


async def create_expert(session: AsyncSession, *, actor: str, data: dict[str, Any]) -> Expert:
    """An admin registers one expert; refuses with the first problem's code and lists every problem."""
    profile = require_profile(data, load_taxonomy())
    expert, problems = await _store(session, actor, profile, source="form")
    if expert is None:
        first = problems[0]
        status_cls = Conflict if first.code in ("id_card_exists", "user_already_linked") else (
            NotFound if first.code.endswith("_not_found") else ProfileRefused)
        raise status_cls(f"{first.field}: {first.message}", code=first.code,
                         details={"problems": [p.to_json() for p in problems]})
    return expert


@dataclass
class ImportRow:
    """One line of the import report."""

    line: int
    imported: bool
    expert_id: str | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ImportReport:
    """Which rows became experts and which were refused, and why."""

    rows: list[ImportRow]

    @property
    def imported(self) -> int:
        return sum(1 for r in self.rows if r.imported)

    @property
    def refused(self) -> int:
        return len(self.rows) - self.imported


async def import_experts(session: AsyncSession, *, actor: str, data: bytes) -> ImportReport:
    """Import a CSV file row by row: a row is stored whole or not at all, and refusals never stop the rest."""
    taxonomy = load_taxonomy()
    report = ImportReport(rows=[])
    seen_cards: dict[str, int] = {}
    for row in read_rows(data):
        profile, problems = check_profile(row.fields, taxonomy)
        if row.extra_cells:
            problems.append(Problem("row", "too_many_cells", f"{row.extra_cells} cells beyond the header's columns"))
        if profile is not None and profile.id_card_no in seen_cards:
            problems.append(Problem("id_card_no", "duplicate_in_file",
                                    f"the same ID card number is on line {seen_cards[profile.id_card_no]}"))
        if problems or profile is None:
            report.rows.append(ImportRow(row.line, False, problems=problems))
            continue
        seen_cards[profile.id_card_no] = row.line
        savepoint = await session.begin_nested()
        try:
            expert, problems = await _store(session, actor, profile, source="csv")
        except IntegrityError as err:
            # e.g. the same ID card imported concurrently by another admin
            await savepoint.rollback()
            log.info("import row %d refused by the database: %s", row.line, err.orig)
            report.rows.append(ImportRow(row.line, False, problems=[
                Problem("row", "conflict", "the row conflicts with data stored meanwhile")]))
            continue
        if expert is None:
            await savepoint.rollback()
            report.rows.append(ImportRow(row.line, False, problems=problems))
            continue
        await savepoint.commit()
        report.rows.append(ImportRow(row.line, True, expert_id=expert.public_id))
    await ledger.append(session, actor=actor, action="expert.import", entity="expert_pool:import", payload={
        "rows": len(report.rows), "imported": report.imported, "refused": report.refused})
    return report


# ---------------------------------------------------------------------------------------------------------
# Standing, leave and conflicts.

async def set_status(session: AsyncSession, *, actor: str, expert_public_id: str, status: str,
                     reason: str | None) -> Expert:
    """An admin suspends (with a reason), reinstates or retires an expert."""
    try:
        new = ExpertStatus(status)
    except ValueError as err:
        raise Unprocessable(f"unknown status {status!r}", code="invalid_status") from err
    reason = (reason or "").strip() or None
    if new is ExpertStatus.SUSPENDED and reason is None:
        raise Unprocessable("a suspension needs a reason", code="reason_required", details={"field": "reason"})
    expert = await get_expert(session, expert_public_id, for_update=True)
    if expert.status == ExpertStatus.RETIRED and new is not ExpertStatus.RETIRED:
        raise Conflict("a retired expert cannot be reinstated; register them again", code="expert_retired")
    previous = expert.status
    expert.status, expert.status_reason = new.value, reason
    expert.updated_at = await db_now(session)
    await session.flush()
    await ledger.append(session, actor=actor, action="expert.status", entity=expert_entity(expert),
                        payload={"from": previous, "to": new.value, "reason": reason})
    return expert


async def add_leave(session: AsyncSession, *, actor: str, expert: Expert, starts_at: datetime, ends_at: datetime,
                    reason: str = "") -> ExpertLeave:
    """An expert declares a period of unavailability (请假)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Unprocessable("leave times need a timezone", code="naive_datetime")
    if ends_at <= starts_at:
        raise Unprocessable("a leave period must end after it starts", code="invalid_leave_period")
    leave = ExpertLeave(expert_id=expert.id, starts_at=starts_at, ends_at=ends_at, reason=reason)
    session.add(leave)
    await session.flush()
    await ledger.append(session, actor=actor, action="expert.leave.add", entity=expert_entity(expert), payload={
        "leave_id": leave.id, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    return leave


async def remove_leave(session: AsyncSession, *, actor: str, expert: Expert, leave_id: int) -> None:
    """An expert withdraws one of their own leave periods."""
    result = await session.execute(delete(ExpertLeave).where(ExpertLeave.id == leave_id,
                                                             ExpertLeave.expert_id == expert.id))
    if result.rowcount == 0:
        raise NotFound("no such leave period of yours", code="leave_not_found", details={"leave_id": leave_id})
    await ledger.append(session, actor=actor, action="expert.leave.remove", entity=expert_entity(expert),
                        payload={"leave_id": leave_id})


async def _organisation(session: AsyncSession, organisation_public_id: str | None,
                        social_credit_code: str | None) -> Organisation:
    if organisation_public_id:
        q = select(Organisation).where(Organisation.public_id == organisation_public_id)
    elif social_credit_code:
        q = select(Organisation).where(Organisation.social_credit_code == normalise_uscc(social_credit_code))
    else:
        raise Unprocessable("name the organisation by id or social credit code", code="organisation_required")
    org = (await session.execute(q)).scalar_one_or_none()
    if org is None:
        raise NotFound("no such organisation", code="organisation_not_found")
    return org


async def declare_conflict(session: AsyncSession, *, actor: str, expert: Expert, organisation_public_id: str | None,
                           social_credit_code: str | None, note: str = "") -> tuple[ExpertConflict, Organisation]:
    """An expert declares ties to an organisation; they are never drawn when it tenders or bids."""
    org = await _organisation(session, organisation_public_id, social_credit_code)
    exists = (await session.execute(select(ExpertConflict.id).where(
        ExpertConflict.expert_id == expert.id, ExpertConflict.organisation_id == org.id))).first()
    if exists:
        raise Conflict("this conflict is already declared", code="conflict_already_declared",
                       details={"organisation_id": org.public_id})
    conflict = ExpertConflict(expert_id=expert.id, organisation_id=org.id, note=note)
    session.add(conflict)
    await session.flush()
    await ledger.append(session, actor=actor, action="expert.conflict.declare", entity=expert_entity(expert),
                        payload={"organisation": org.public_id})
    return conflict, org


async def withdraw_conflict(session: AsyncSession, *, actor: str, expert: Expert, organisation_public_id: str) -> None:
    """An expert withdraws a declared conflict."""
    org = await _organisation(session, organisation_public_id, None)
    result = await session.execute(delete(ExpertConflict).where(ExpertConflict.expert_id == expert.id,
                                                                ExpertConflict.organisation_id == org.id))
    if result.rowcount == 0:
        raise NotFound("no such declared conflict", code="conflict_not_found",
                       details={"organisation_id": organisation_public_id})
    await ledger.append(session, actor=actor, action="expert.conflict.withdraw", entity=expert_entity(expert),
                        payload={"organisation": org.public_id})


def problem_list(problems: Sequence[Problem]) -> list[dict[str, str]]:
    """Problems as JSON objects for a report."""
    return [p.to_json() for p in problems]
