"""Expert draws (专家抽取) and confirmations: request, commitment, supervisor entropy, invitations, replacement,
supplementary draws, what each role may see, and the verification record. Never commits.

The flow, ALGORITHMS.md §1 applied to experts:
1. An agent requests a draw for a lot. Committee rules and avoidance run first; the exclusions are stored with
   their reasons; step 7 refuses a quota that cannot be filled. The server's secret is stored, and its
   commitment is written to the audit ledger together with the request and the digest of the candidate list,
   which fixes the candidates before anyone knows the entropy.
2. A supervisor supplies the entropy; the draw runs and the primaries are invited to their seats.
3. A decline or a timeout offers the seat to the quota's next backup. When no backup is left, the system
   creates a supplementary draw (补抽) over the short quotas, again committed at creation and executed with a
   supervisor's entropy, with everyone already picked excluded. Supplementary draws need a person's entropy
   like any other: deriving it from the server's own randomness would let the server choose the outcome.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Protocol, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import db_now, execute_sql, fetch_rows
from core.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from core.identity_models import Organisation, User
from core.notifications import InAppNotifier
from core.notifier import Notifier
from core.scheduler import cancel, schedule
from evidence import ledger_service as ledger
from evidence import randomness as rnd
from evidence.records_models import Record
from expert_pool.models import DrawExclusion, Expert, ExpertDraw, ExpertInvitation, ExpertService
from expert_pool.records import PUBLIC, RECORD_KIND, SUPERVISOR, DrawRecord, build_draw_record
from expert_pool.rules import (DrawContext, ExpertQuota, ExpertRecord, ExpertStatus, LeavePeriod, PanelKind,
                               ServiceRecord, build_candidates, check_committee, draw_request, screen_experts,
                               validate_quotas)
from expert_pool.seating import (InvitationStatus, SeatInvitation, SeatOffer, confirmation_counts,
                                 employers_to_exclude, filled, initial_offers, plan_seats, replacement_queues,
                                 supplementary_quotas)
from expert_pool.service import new_public_id
from expert_pool.taxonomy import load_taxonomy
from trading.models import BidderRegistration, Lot, Tender

log = logging.getLogger(__name__)

TIMEOUT_JOB = "expert_pool.invitation_timeout"
RECORDS_JOB = "expert_pool.issue_draw_records"
# the archive's audience for each edition of the draw record (evidence.records_service.AUDIENCES)
RECORD_AUDIENCES = {PUBLIC: "public", SUPERVISOR: "supervisors"}
CHINA = ZoneInfo("Asia/Shanghai")  # the calendar month of the monthly cap is a Beijing-time month
# Tender states (trading.lifecycle.TenderStatus values) in which a committee may be drawn, and after which
# the committee is no longer secret (中标通知书 issued).
DRAWABLE_TENDER_STATES = frozenset({"published", "closed", "opening", "opened", "evaluating"})
AWARDED_TENDER_STATES = frozenset({"awarded", "complete"})
PANELS_BY_METHOD = {"competitive_negotiation": PanelKind.NEGOTIATION_PANEL, "inquiry": PanelKind.INQUIRY_PANEL}


class Caller(Protocol):
    """Who is asking: web.keys.Principal satisfies this."""

    user_id: int
    public_id: str
    organisation_id: int | None

    def has(self, *roles: str) -> bool: ...


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


# ---------------------------------------------------------------------------------------------------------
# Loading and access.

async def _lot(session: AsyncSession, lot_public_id: str) -> tuple[Lot, Tender]:
    row = (await session.execute(select(Lot, Tender).join(Tender, Tender.id == Lot.tender_id)
                                 .where(Lot.public_id == lot_public_id))).one_or_none()
    if row is None:
        raise NotFound("no such lot", code="lot_not_found", details={"lot_id": lot_public_id})
    return row[0], row[1]


def manages(tender: Tender, who: Caller) -> bool:
    """Whether an agent runs this tender: their agency is its agent, or they created it."""
    return who.has("agent") and (tender.created_by_id == who.user_id or (
        who.organisation_id is not None and who.organisation_id in (tender.agent_id, tender.tenderer_id)))


def _check_agent(tender: Tender, who: Caller) -> None:
    if not manages(tender, who):
        raise Forbidden("only the tender's agent may request its expert draws", code="not_your_tender",
                        details={"tender": tender.code})


async def get_draw(session: AsyncSession, draw_public_id: str) -> tuple[ExpertDraw, Tender, Lot]:
    """A draw with its tender and lot, or 404 draw_not_found."""
    row = (await session.execute(
        select(ExpertDraw, Tender, Lot).join(Tender, Tender.id == ExpertDraw.tender_id)
        .join(Lot, Lot.id == ExpertDraw.lot_id).where(ExpertDraw.public_id == draw_public_id))).one_or_none()
    if row is None:
        raise NotFound("no such draw", code="draw_not_found", details={"draw_id": draw_public_id})
    return row[0], row[1], row[2]


def identities_visible(tender: Tender, who: Caller | None) -> bool:
    """Whether `who` may see who was drawn: supervisors always, anyone with access once the tender is awarded."""
    if who is not None and who.has("supervisor"):
        return True
    return tender.status in AWARDED_TENDER_STATES


def check_draw_access(tender: Tender, who: Caller) -> bool:
    """Refuse anyone but supervisors, the tender's agent and admins; returns whether identities are visible."""
    if who.has("supervisor"):
        return True
    if manages(tender, who) or who.has("admin"):
        return identities_visible(tender, who)
    raise Forbidden("this draw is confidential", code="draw_forbidden")


async def _lock_family(session: AsyncSession, draw: ExpertDraw) -> tuple[ExpertDraw, ExpertDraw]:
    """Lock the original draw, then `draw` (always in that order, so two replies cannot deadlock)."""
    root_id = draw.parent_id or draw.id
    root = (await session.execute(select(ExpertDraw).where(ExpertDraw.id == root_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()
    if draw.id == root.id:
        return root, root
    draw = (await session.execute(select(ExpertDraw).where(ExpertDraw.id == draw.id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()
    return root, draw


# ---------------------------------------------------------------------------------------------------------
# Avoidance screening against the database.

def _quota_keys(quotas: Sequence[ExpertQuota]) -> tuple[list[str], list[str]]:
    """What the expert indexes are asked for: "specialty@region" pairs for quotas with a region (the expression
    index of migration 0008), and plain leaf specialties for quotas without one."""
    taxonomy = load_taxonomy()
    pairs: set[str] = set()
    anywhere: set[str] = set()
    for quota in quotas:
        leaves = taxonomy.leaves(quota.specialty)
        if quota.region is None:
            anywhere.update(leaves)
        else:
            pairs.update(f"{leaf}@{quota.region}" for leaf in leaves)
    return sorted(pairs), sorted(anywhere)


# The experts matching a quota with, per expert, only what avoidance needs: leave covering the session,
# declared conflicts with the parties, this month's evaluations, recent service for the tenderer. Each is a
# small filtered aggregate joined by expert id, so the pool is read once, through the GIN indexes.
_SCREENING_SQL = """
SELECT e.id, e.public_id, e.status, e.specialties, e.city_code, o.public_id AS employer,
       lv.starts AS leave_starts, lv.ends AS leave_ends, cf.orgs AS conflicts, mo.n AS this_month,
       fam.at AS familiar
FROM expert e
LEFT JOIN organisation o ON o.id = e.employer_id
LEFT JOIN (SELECT expert_id, array_agg(starts_at) AS starts, array_agg(ends_at) AS ends FROM expert_leave
           WHERE starts_at <= $1 AND ends_at > $1 GROUP BY expert_id) lv ON lv.expert_id = e.id
LEFT JOIN (SELECT c.expert_id, array_agg(p.public_id) AS orgs FROM expert_conflict c
           JOIN organisation p ON p.id = c.organisation_id
           WHERE c.organisation_id = ANY($2::bigint[]) GROUP BY c.expert_id) cf ON cf.expert_id = e.id
LEFT JOIN (SELECT expert_id, count(*) AS n FROM expert_service
           WHERE served_at >= $3 AND served_at < $4 GROUP BY expert_id) mo ON mo.expert_id = e.id
LEFT JOIN (SELECT expert_id, array_agg(served_at) AS at FROM expert_service
           WHERE tenderer_id = $5 AND served_at >= $6 GROUP BY expert_id) fam ON fam.expert_id = e.id
WHERE expert_specialty_regions(e.specialties, e.city_code, e.province_code) && $7::text[]
   OR e.specialties && $8::varchar[]
"""


_STATUSES = {status.value: status for status in ExpertStatus}


def _month(at: datetime) -> tuple[datetime, datetime]:
    local = at.astimezone(CHINA)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass
class Pool:
    """The experts a draw considered (those matching some quota), screened."""

    ids: dict[str, int]                 # public id -> expert.id
    records: list[ExpertRecord]
    candidates: list[dict[str, Any]]
    reasons: dict[str, tuple[str, ...]]
    counts: dict[str, int]


async def screen_pool(session: AsyncSession, *, quotas: Sequence[ExpertQuota], context: DrawContext,
                      tenderer_pk: int, party_pks: Sequence[int], already_picked: Iterable[str] = (),
                      employers_serving: Iterable[str] = ()) -> Pool:
    """Load every expert who could fill a quota, with what avoidance needs, and screen them."""
    taxonomy = load_taxonomy()
    at = context.session_at
    month_start, month_end = _month(at)
    pairs, anywhere = _quota_keys(quotas)
    rows = await fetch_rows(session, _SCREENING_SQL, at, list(party_pks), month_start, month_end, tenderer_pk,
                            context.familiar_since, pairs, anywhere)
    records: list[ExpertRecord] = []
    ids: dict[str, int] = {}
    tenderer = context.tenderer_id
    for row in rows:
        # positional and skipping empty parts: a draw reads thousands of these
        starts, conflicts, familiar = row["leave_starts"], row["conflicts"], row["familiar"]
        ids[row["public_id"]] = row["id"]
        records.append(ExpertRecord(
            row["public_id"], row["employer"], _STATUSES[row["status"]], frozenset(row["specialties"]),
            row["city_code"], tuple(map(LeavePeriod, starts, row["leave_ends"])) if starts else (),
            frozenset(conflicts) if conflicts else frozenset(), row["this_month"] or 0,
            tuple(ServiceRecord(tenderer, t) for t in familiar) if familiar else ()))
    screening = screen_experts(records, context, already_picked=frozenset(already_picked),
                               employers_serving=frozenset(employers_serving))
    candidates = build_candidates(screening.eligible, quotas, taxonomy)
    reasons = {pid: tuple(r.value for r in found) for pid, found in screening.reasons.items()}
    return Pool(ids=ids, records=records, candidates=candidates, reasons=reasons, counts=screening.counts())


def _context(draw_context: dict[str, Any], session_at: datetime) -> DrawContext:
    return DrawContext(tenderer_id=draw_context["tenderer"], session_at=session_at,
                       bidder_ids=frozenset(draw_context["bidders"]),
                       authority_ids=frozenset(draw_context["authorities"]),
                       monthly_cap=draw_context["monthly_cap"],
                       familiar_window_days=draw_context["familiar_window_days"])


async def _party_pks(session: AsyncSession, public_ids: Iterable[str]) -> list[int]:
    wanted = list(public_ids)
    return list((await session.execute(select(Organisation.id).where(Organisation.public_id.in_(wanted)))).scalars())


async def _store_draw(session: AsyncSession, draw: ExpertDraw, pool: Pool, *, actor: str) -> None:
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


# ---------------------------------------------------------------------------------------------------------
# 1. Request.

async def create_draw(session: AsyncSession, *, who: Caller, lot_public_id: str, session_at: datetime, venue: str,
                      quotas: Sequence[dict[str, Any]], representatives: int = 0,
                      reply_window_s: int | None = None, authority_organisations: Sequence[str] = (),
                      policy: DrawPolicy = DEFAULT_POLICY) -> ExpertDraw:
    """An agent requests a draw for a lot; refused before anything is stored when a rule or a quota fails."""
    lot, tender = await _lot(session, lot_public_id)
    _check_agent(tender, who)
    if tender.status not in DRAWABLE_TENDER_STATES:
        raise Conflict(f"no expert draw for a tender in state {tender.status}", code="tender_not_drawable",
                       details={"status": tender.status})
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
    tenderer = (await session.get(Organisation, tender.tenderer_id))
    bidders = sorted((await session.execute(
        select(Organisation.public_id).join(BidderRegistration, BidderRegistration.organisation_id == Organisation.id)
        .where(BidderRegistration.tender_id == tender.id).distinct())).scalars())
    authority_pks = await _party_pks(session, authority_organisations)
    if len(authority_pks) != len(set(authority_organisations)):
        raise NotFound("an authority organisation is unknown", code="organisation_not_found",
                       details={"authority_organisations": list(authority_organisations)})
    context_json = {"tenderer": tenderer.public_id, "bidders": bidders,
                    "authorities": sorted(set(authority_organisations)), "monthly_cap": policy.monthly_cap,
                    "familiar_window_days": policy.familiar_window_days}
    context = _context(context_json, session_at)
    party_pks = [tender.tenderer_id, *await _party_pks(session, bidders)]
    pool = await screen_pool(session, quotas=checked, context=context, tenderer_pk=tender.tenderer_id,
                             party_pks=party_pks)
    draw_id = await new_public_id(session, ExpertDraw, "D")
    request = draw_request(draw_id, checked, lot=lot.public_id, session_at=_iso(session_at))
    rnd.check_sufficient(request, pool.candidates)  # step 7: insufficient_candidates, nothing stored
    secret = rnd.new_secret()
    draw = ExpertDraw(
        public_id=draw_id, tender_id=tender.id, lot_id=lot.id, parent_id=None, round=0,
        requested_by_id=who.user_id, session_at=session_at, venue=venue, members=experts + representatives,
        representatives=representatives, reply_window_s=reply_window_s or policy.reply_window_s,
        quotas=[q.to_request() for q in checked], context=context_json, request=request,
        candidates=pool.candidates, candidates_digest=rnd.candidates_digest(pool.candidates),
        considered_count=len(pool.records), eligible_count=len(pool.candidates), exclusion_counts=pool.counts,
        secret=secret, commitment=rnd.commitment(secret), status="awaiting_entropy")
    await _store_draw(session, draw, pool, actor=who.public_id)
    log.info("draw %s committed for lot %s over %d candidates", draw_id, lot.public_id, len(pool.candidates))
    return draw


def _iso(at: datetime) -> str:
    return at.astimezone(CHINA).isoformat()


# ---------------------------------------------------------------------------------------------------------
# 2. Execution.

async def supply_entropy(session: AsyncSession, *, who: Caller, draw_public_id: str, entropy: str,
                         policy: DrawPolicy = DEFAULT_POLICY) -> ExpertDraw:
    """A supervisor's entropy executes the draw (steps 3–6); the primaries are invited at once."""
    if not who.has("supervisor"):
        raise Forbidden("only a supervisor supplies a draw's entropy", code="role_forbidden")
    draw, tender, lot = await get_draw(session, draw_public_id)
    root, draw = await _lock_family(session, draw)
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
# 3. Invitations, replacement and supplementary draws.

async def _family(session: AsyncSession, root: ExpertDraw) -> list[ExpertDraw]:
    rows = await session.execute(select(ExpertDraw).where(or_(ExpertDraw.id == root.id,
                                                              ExpertDraw.parent_id == root.id))
                                 .order_by(ExpertDraw.round))
    return list(rows.scalars())


async def _invitations(session: AsyncSession, root: ExpertDraw) -> list[tuple[ExpertInvitation, str]]:
    rows = await session.execute(select(ExpertInvitation, Expert.public_id)
                                 .join(Expert, Expert.id == ExpertInvitation.expert_id)
                                 .where(ExpertInvitation.root_draw_id == root.id).order_by(ExpertInvitation.id))
    return [(i, pid) for i, pid in rows.all()]


def _seat_rows(invitations: Sequence[tuple[ExpertInvitation, str]]) -> list[SeatInvitation]:
    return [SeatInvitation(pid, i.quota, i.seat, InvitationStatus(i.status)) for i, pid in invitations]


def seats_of(root: ExpertDraw) -> dict[str, int]:
    """The committee's seats per quota, in request order."""
    return {q["name"]: q["count"] for q in root.quotas}


async def seat_committee(session: AsyncSession, root: ExpertDraw, *, tender: Tender, policy: DrawPolicy,
                         actor: str) -> None:
    """Bring the committee forward: invite to every open seat, ask for a supplementary draw, or close it."""
    family = await _family(session, root)
    executed = [d for d in family if d.result is not None]
    if not executed or executed[0].id != root.id:
        return
    invitations = await _invitations(session, root)
    seats = seats_of(root)
    rows = _seat_rows(invitations)
    offers: list[SeatOffer] = [] if invitations else initial_offers(root.result)
    if offers:
        rows += [SeatInvitation(o.expert_id, o.quota, o.seat, InvitationStatus.PENDING) for o in offers]
    plan = plan_seats(seats, replacement_queues(list(seats), [d.result for d in executed]), rows)
    offers += plan.offers
    if offers:
        picked_by = {pid: d for d in executed for r in d.result for pid in (*r["primaries"], *r["backups"])}
        await _invite(session, root, offers, picked_by=picked_by, policy=policy, actor=actor)
        rows += [SeatInvitation(o.expert_id, o.quota, o.seat, InvitationStatus.PENDING) for o in plan.offers]
    if plan.needs_supplementary_draw:
        if any(d.result is None for d in family) or root.status == "short":
            return  # a supplementary draw is already waiting for its entropy, or none can be formed
        await _supplementary_draw(session, root, family, invitations, plan.shortfall, tender=tender, policy=policy)
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
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


async def _supplementary_draw(session: AsyncSession, root: ExpertDraw, family: list[ExpertDraw],
                              invitations: Sequence[tuple[ExpertInvitation, str]], shortfall: dict[str, int], *,
                              tender: Tender, policy: DrawPolicy) -> ExpertDraw | None:
    """Commit a supplementary draw (补抽) over the short quotas; a supervisor's entropy executes it."""
    taxonomy = load_taxonomy()
    quotas = validate_quotas(supplementary_quotas(root.quotas, shortfall), taxonomy)
    picked_ids = {pid for d in family for r in d.result or () for pid in (*r["primaries"], *r["backups"])}
    picked = {c["id"]: c["employer"] for d in family for c in d.candidates if c["id"] in picked_ids}
    gone = {pid for i, pid in invitations if i.status in ("declined", "expired")}
    context = _context(root.context, root.session_at)
    party_pks = await _party_pks(session, [root.context["tenderer"], *root.context["bidders"]])
    pool = await screen_pool(session, quotas=quotas, context=context, tenderer_pk=tender.tenderer_id,
                             party_pks=party_pks, already_picked=picked,
                             employers_serving=employers_to_exclude(picked, gone))
    draw_id = await new_public_id(session, ExpertDraw, "D")
    n = max(d.round for d in family) + 1
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
    await _store_draw(session, supplementary, pool, actor=ledger.SYSTEM)
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


async def reply(session: AsyncSession, *, who: Caller, invitation_public_id: str, accept: bool,
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
    root, _ = await _lock_family(session, root_draw)
    invitation = await _invitation_for_update(session, invitation.id)
    now = await db_now(session)
    if invitation.status == "expired" or (invitation.status == "pending" and now >= invitation.reply_by):
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
    root, _ = await _lock_family(session, root_draw)
    invitation = await _invitation_for_update(session, invitation.id)
    if invitation.status != "pending":
        return False
    now = await db_now(session)
    if now < invitation.reply_by:
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
# What each role sees.

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
    return DrawState(draw, root, tender, lot, await _family(session, root), await _invitations(session, root))


async def created_draw_state(session: AsyncSession, draw: ExpertDraw) -> DrawState:
    """The state of a draw this session has just created: its own family, no invitations yet, and the tender
    and lot from the session's identity map, so the response needs no second read of the candidate list."""
    tender = await session.get(Tender, draw.tender_id)
    lot = await session.get(Lot, draw.lot_id)
    return DrawState(draw, draw, tender, lot, [draw], [])


def _summary(draw: ExpertDraw) -> dict[str, Any]:
    return {"draw_id": draw.public_id, "round": draw.round, "status": draw.status, "commitment": draw.commitment,
            "eligible": draw.eligible_count, "considered": draw.considered_count,
            "exclusions": dict(draw.exclusion_counts), "entropy_supplied": draw.entropy is not None,
            "created_at": draw.created_at, "executed_at": draw.executed_at}


async def names_of(session: AsyncSession, public_ids: Iterable[str]) -> dict[str, str]:
    """Experts' names by public id, for the views that may show identities."""
    wanted = sorted(set(public_ids))
    if not wanted:
        return {}
    rows = await session.execute(select(Expert.public_id, Expert.name).where(Expert.public_id.in_(wanted)))
    return {pid: name for pid, name in rows.all()}


async def draw_view(session: AsyncSession, state: DrawState, *, identities: bool,
                    who: Caller | None = None) -> dict[str, Any]:
    """The draw notice: counts and confirmation status for everyone allowed; who was drawn only if `identities`.

    The record PDFs name the drawn experts, so their numbers are shown only with the identities (the edition
    with names to supervisors and admins only).
    """
    root, draw = state.root, state.draw
    rows = _seat_rows(state.invitations)
    out: dict[str, Any] = {
        **_summary(draw), "tender": state.tender.code, "lot": state.lot.public_id,
        "supplements": root.public_id if draw.id != root.id else None,
        "session_at": root.session_at, "venue": root.venue, "members": root.members,
        "representatives": root.representatives, "reply_window_s": root.reply_window_s, "quotas": draw.quotas,
        "confirmation": confirmation_counts(seats_of(root), rows), "committee_formed": root.status == "formed",
        "supplementary_draws": [_summary(d) for d in state.family if d.id != root.id],
        "identities_disclosed": identities,
        "records": visible_records(await draw_records(session, draw), who, identities=identities),
    }
    if identities:
        picks = [pid for d in state.family for r in d.result or () for pid in (*r["primaries"], *r["backups"])]
        names = await names_of(session, [*picks, *(pid for _, pid in state.invitations)])
        out["entropy"], out["seed"] = draw.entropy, draw.seed
        out["result"] = [{"quota": r["quota"],
                          "primaries": [{"expert_id": p, "name": names.get(p)} for p in r["primaries"]],
                          "backups": [{"expert_id": b, "name": names.get(b)} for b in r["backups"]]}
                         for r in draw.result or ()]
        out["invitations"] = [{
            "invitation_id": i.public_id, "expert_id": pid, "name": names.get(pid), "quota": i.quota,
            "seat": i.seat, "source": i.source, "status": i.status, "sent_at": i.sent_at, "reply_by": i.reply_by,
            "replied_at": i.replied_at, "decline_reason": i.decline_reason} for i, pid in state.invitations]
    return out


async def lot_draws(session: AsyncSession, lot_public_id: str, who: Caller) -> list[dict[str, Any]]:
    """Every draw of a lot, original and supplementary, as each caller may see them."""
    lot, tender = await _lot(session, lot_public_id)
    identities = check_draw_access(tender, who)
    ids = (await session.execute(select(ExpertDraw.public_id).where(ExpertDraw.lot_id == lot.id)
                                 .order_by(ExpertDraw.id))).scalars().all()
    return [await draw_view(session, await draw_state(session, pid), identities=identities, who=who) for pid in ids]


async def exclusions(session: AsyncSession, state: DrawState) -> list[dict[str, Any]]:
    """Who avoidance left out of this draw and why (supervisors only)."""
    rows = await session.execute(select(Expert.public_id, Expert.name, DrawExclusion.reasons)
                                 .join(Expert, Expert.id == DrawExclusion.expert_id)
                                 .where(DrawExclusion.draw_id == state.draw.id).order_by(Expert.public_id))
    return [{"expert_id": pid, "name": name, "reason": reasons[0], "reasons": list(reasons)}
            for pid, name, reasons in rows.all()]


def check_verification_access(tender: Tender, who: Caller | None) -> None:
    """Supervisors until the award; anyone afterwards."""
    if identities_visible(tender, who):
        return
    if who is None:
        raise Unauthorized("sign in as a supervisor to see this draw before the award", code="authentication_required")
    raise Forbidden("until the award only supervisors may see a draw's verification record",
                    code="verification_restricted")


def verification(draw: ExpertDraw) -> dict[str, Any]:
    """The published record of an executed draw (ALGORITHMS.md §1), recomputed from the stored inputs."""
    if draw.entropy is None:
        raise Conflict("the draw has not been executed yet", code="draw_not_executed",
                       details={"draw_id": draw.public_id})
    record = rnd.verification_record(request=draw.request, candidates=draw.candidates, secret=bytes(draw.secret),
                                     entropy=draw.entropy)
    if record["result"] != draw.result or record["seed"] != draw.seed:
        # never publish a record that disagrees with what was acted upon
        raise RuntimeError(f"draw {draw.public_id} does not recompute to its stored result")
    return record


async def record_content(session: AsyncSession, state: DrawState, *, edition: str = PUBLIC,
                         issued_no: str | None = None) -> DrawRecord:
    """The draw record of an executed draw: the public edition, or the supervisor edition with names."""
    draw = state.draw
    if issued_no is None:
        issued_no = next((r["record_no"] for r in await draw_records(session, draw) if r["edition"] == edition), None)
    record = verification(draw)
    confirmations = {pid: i.status for i, pid in state.invitations}
    picks = [pid for r in draw.result for pid in (*r["primaries"], *r["backups"])]
    names = await names_of(session, picks) if edition == SUPERVISOR else None
    signers = []
    for user_id, role_zh, role_en in ((state.root.requested_by_id, "招标代理", "Tender agent"),
                                      (draw.entropy_by_id, "监督人员", "Supervisor")):
        if user_id is not None:
            name = (await session.execute(select(User.display_name).where(User.id == user_id))).scalar_one()
            signers.append((name, role_zh, role_en))
    return build_draw_record(draw=draw, tender=state.tender, lot=state.lot, confirmations=confirmations,
                             verification=record, edition=edition, names=names,
                             supplements=state.root.public_id if draw.id != state.root.id else None,
                             signers=signers, issued_no=issued_no)


async def draw_records(session: AsyncSession, draw: ExpertDraw) -> list[dict[str, Any]]:
    """The issued record PDFs of one draw: edition, number and where to download it."""
    rows = (await session.execute(select(Record.record_no, Record.audience, Record.status, Record.sha256).where(
        Record.entity == draw_entity(draw), Record.kind == RECORD_KIND).order_by(Record.id))).all()
    editions = {audience: edition for edition, audience in RECORD_AUDIENCES.items()}
    return [{"edition": editions.get(r.audience, r.audience), "record_no": r.record_no, "status": r.status,
             "sha256": r.sha256, "download": f"/api/v1/records/{r.record_no}"} for r in rows]


def visible_records(records: Sequence[dict[str, Any]], who: Caller | None, *, identities: bool) -> list[dict[str, Any]]:
    """The record numbers a caller may learn: none before identities are visible; names for supervisors only."""
    if not identities:
        return []
    may_see_names = who is not None and who.has("supervisor", "admin")
    return [r for r in records if r["edition"] == PUBLIC or may_see_names]


async def issue_draw_records(session: AsyncSession, ctx: Any, draw_public_id: str) -> list[Record]:
    """Issue the signed draw record PDFs of an executed draw (public and supervisor editions); idempotent."""
    from evidence.records_service import fresh_checkpoint, issue_record  # rendering loads only where needed

    state = await draw_state(session, draw_public_id)
    draw = state.draw
    if draw.result is None:
        raise Conflict("the draw has not been executed yet", code="draw_not_executed",
                       details={"draw_id": draw.public_id})
    have = {r["edition"] for r in await draw_records(session, draw)}
    if have >= set(RECORD_AUDIENCES):
        return []
    # One checkpoint for both editions, signed before this transaction writes to the ledger: a second
    # checkpoint would wait for the ledger lock this transaction then holds.
    checkpoint = await fresh_checkpoint(ctx)
    issued: list[Record] = []
    for edition in (PUBLIC, SUPERVISOR):
        if edition in have:
            continue
        content = await record_content(session, state, edition=edition, issued_no="")
        record = await issue_record(session, ctx, actor=ledger.SYSTEM, entity=draw_entity(draw),
                                    content=content.to_content(), audience=RECORD_AUDIENCES[edition],
                                    checkpoint=checkpoint)
        issued.append(record)
        log.info("draw %s: %s record %s issued", draw.public_id, edition, record.record_no)
    return issued


async def my_invitations(session: AsyncSession, who: Caller) -> list[dict[str, Any]]:
    """An expert's own invitations: time, venue, specialty and deadline; nothing about the project's parties."""
    taxonomy = load_taxonomy()
    rows = await session.execute(
        select(ExpertInvitation, ExpertDraw).join(Expert, Expert.id == ExpertInvitation.expert_id)
        .join(ExpertDraw, ExpertDraw.id == ExpertInvitation.root_draw_id)
        .where(Expert.user_id == who.user_id).order_by(ExpertInvitation.id.desc()))
    out = []
    for invitation, root in rows.all():
        specialty = next(q["specialty"] for q in root.quotas if q["name"] == invitation.quota)
        out.append({"invitation_id": invitation.public_id, "status": invitation.status,
                    "session_at": root.session_at, "venue": root.venue, "specialty": specialty,
                    "specialty_zh": taxonomy.name(specialty), "specialty_en": taxonomy.name(specialty, "en"),
                    "sent_at": invitation.sent_at, "reply_by": invitation.reply_by,
                    "replied_at": invitation.replied_at})
    return out


# ---------------------------------------------------------------------------------------------------------
# Statistics.

async def draw_statistics(session: AsyncSession, *, expert_public_id: str | None = None,
                          limit: int = 100) -> list[dict[str, Any]]:
    """Per expert: how often drawn (primary or backup), invited, and the acceptance rate of answered invitations."""
    rows = (await session.execute(text("""
        WITH drawn AS (
            SELECT p.value #>> '{}' AS public_id, count(*) AS n
            FROM expert_draw d, jsonb_array_elements(d.result) r,
                 jsonb_array_elements((r -> 'primaries') || (r -> 'backups')) p
            WHERE d.result IS NOT NULL GROUP BY 1),
        invited AS (
            SELECT expert_id, count(*) AS n,
                   count(*) FILTER (WHERE status = 'accepted') AS accepted,
                   count(*) FILTER (WHERE status = 'declined') AS declined,
                   count(*) FILTER (WHERE status = 'expired') AS expired
            FROM expert_invitation GROUP BY expert_id)
        SELECT e.public_id, e.name, drawn.n AS drawn, COALESCE(i.n, 0) AS invited,
               COALESCE(i.accepted, 0) AS accepted, COALESCE(i.declined, 0) AS declined,
               COALESCE(i.expired, 0) AS expired
        FROM drawn JOIN expert e ON e.public_id = drawn.public_id
        LEFT JOIN invited i ON i.expert_id = e.id
        WHERE CAST(:pid AS text) IS NULL OR e.public_id = :pid
        ORDER BY drawn.n DESC, e.public_id LIMIT :limit"""), {"pid": expert_public_id, "limit": limit})).all()
    return [{"expert_id": r.public_id, "name": r.name, "drawn": r.drawn, "invited": r.invited,
             "accepted": r.accepted, "declined": r.declined, "expired": r.expired,
             "acceptance_rate": acceptance_rate(r.accepted, r.declined, r.expired)} for r in rows]


def acceptance_rate(accepted: int, declined: int, expired: int) -> str | None:
    """Accepted over answered-or-lapsed invitations, as a decimal string with 4 places; None before any."""
    answered = accepted + declined + expired
    if answered == 0:
        return None
    return str((Decimal(accepted) / Decimal(answered)).quantize(Decimal("0.0001")))


async def familiar_faces(session: AsyncSession, *, since_days: int = 365, min_count: int = 2,
                         limit: int = 100) -> list[dict[str, Any]]:
    """Tenderer × expert pairs by how often the expert served that tenderer (熟面孔), most frequent first."""
    rows = (await session.execute(text("""
        SELECT o.public_id AS tenderer_id, o.name AS tenderer, e.public_id AS expert_id, e.name AS expert,
               count(*) AS served, max(s.served_at) AS last_served_at
        FROM expert_service s JOIN expert e ON e.id = s.expert_id JOIN organisation o ON o.id = s.tenderer_id
        WHERE s.served_at >= now() - make_interval(days => :days)
        GROUP BY o.public_id, o.name, e.public_id, e.name HAVING count(*) >= :min
        ORDER BY served DESC, tenderer_id, expert_id LIMIT :limit"""),
        {"days": since_days, "min": min_count, "limit": limit})).all()
    return [dict(r._mapping) for r in rows]


async def expert_user_ids(session: AsyncSession, public_ids: Iterable[str]) -> dict[str, int | None]:
    """Accounts of experts by public id (tests and the demo use it to act as the expert)."""
    rows = await session.execute(select(Expert.public_id, Expert.user_id).where(Expert.public_id.in_(list(public_ids))))
    return {pid: uid for pid, uid in rows.all()}

