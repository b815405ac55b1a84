"""Pool screening: every expert who could fill a draw's quotas, read once with what avoidance needs, then
screened by the pure rules of expert_pool.rules (回避). Never commits, never writes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import SHANGHAI
from core.db import fetch_rows
from core.identity_models import Organisation
from expert_pool.rules import (DrawContext, ExclusionReason, ExpertQuota, ExpertRecord, ExpertStatus, LeavePeriod,
                               ServiceRecord, build_candidates, screen_experts)
from expert_pool.taxonomy import load_taxonomy

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
    local = at.astimezone(SHANGHAI)  # the monthly cap counts Beijing-time months
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


def context_of(draw_context: dict[str, Any], session_at: datetime) -> DrawContext:
    return DrawContext(tenderer_id=draw_context["tenderer"], session_at=session_at,
                       bidder_ids=frozenset(draw_context["bidders"]),
                       authority_ids=frozenset(draw_context["authorities"]),
                       monthly_cap=draw_context["monthly_cap"],
                       familiar_window_days=draw_context["familiar_window_days"])


async def party_pks(session: AsyncSession, public_ids: Iterable[str]) -> list[int]:
    wanted = list(public_ids)
    return list((await session.execute(select(Organisation.id).where(Organisation.public_id.in_(wanted)))).scalars())


# Whose employer now bids, or who declared ties to a bidder: the parties a draw learns only at the bid deadline.
_BIDDER_CONFLICTS_SQL = """
SELECT e.public_id,
       e.employer_id = ANY($2::bigint[]) AS employed,
       EXISTS (SELECT 1 FROM expert_conflict c WHERE c.expert_id = e.id
               AND c.organisation_id = ANY($2::bigint[])) AS declared
FROM expert e WHERE e.public_id = ANY($1::text[])
"""


async def bidder_conflicts(session: AsyncSession, expert_ids: Iterable[str], bidder_pks: Sequence[int],
                           ) -> dict[str, ExclusionReason]:
    """The experts among `expert_ids` who conflict with one of the bidders, with the avoidance reason."""
    wanted = sorted(set(expert_ids))
    if not wanted or not bidder_pks:
        return {}
    out: dict[str, ExclusionReason] = {}
    for row in await fetch_rows(session, _BIDDER_CONFLICTS_SQL, wanted, list(bidder_pks)):
        if row["employed"]:
            out[row["public_id"]] = ExclusionReason.EMPLOYER_IS_BIDDER
        elif row["declared"]:
            out[row["public_id"]] = ExclusionReason.DECLARED_CONFLICT
    return out
