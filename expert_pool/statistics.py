"""Draw statistics for supervisors and admins: how often each expert is drawn and accepts, and which experts
keep serving the same tenderer (熟面孔). Reads only; returns the API's schemas."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from expert_pool.schemas import DrawStatsOut, FamiliarOut


async def draw_statistics(session: AsyncSession, *, expert_public_id: str | None = None,
                          limit: int = 100) -> list[DrawStatsOut]:
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
    return [DrawStatsOut(expert_id=r.public_id, name=r.name, drawn=r.drawn, invited=r.invited, accepted=r.accepted,
                         declined=r.declined, expired=r.expired,
                         acceptance_rate=acceptance_rate(r.accepted, r.declined, r.expired)) for r in rows]


def acceptance_rate(accepted: int, declined: int, expired: int) -> str | None:
    """Accepted over answered-or-lapsed invitations, as a decimal string with 4 places; None before any."""
    answered = accepted + declined + expired
    if answered == 0:
        return None
    return str((Decimal(accepted) / Decimal(answered)).quantize(Decimal("0.0001")))


async def familiar_faces(session: AsyncSession, *, since_days: int = 365, min_count: int = 2,
                         limit: int = 100) -> list[FamiliarOut]:
    """Tenderer × expert pairs by how often the expert served that tenderer (熟面孔), most frequent first;
    only service on tenders already awarded (or recorded without a tender), as committees are secret until then."""
    rows = (await session.execute(text("""
        SELECT o.public_id AS tenderer_id, o.name AS tenderer, e.public_id AS expert_id, e.name AS expert,
               count(*) AS served, max(s.served_at) AS last_served_at
        FROM expert_service s JOIN expert e ON e.id = s.expert_id JOIN organisation o ON o.id = s.tenderer_id
        LEFT JOIN tender t ON t.id = s.tender_id
        WHERE s.served_at >= now() - make_interval(days => :days)
          -- a seat on a tender not yet awarded would name a committee member before the award
          AND (s.tender_id IS NULL OR t.status IN ('awarded', 'complete'))
        GROUP BY o.public_id, o.name, e.public_id, e.name HAVING count(*) >= :min
        ORDER BY served DESC, tenderer_id, expert_id LIMIT :limit"""),
        {"days": since_days, "min": min_count, "limit": limit})).all()
    return [FamiliarOut(**r._mapping) for r in rows]
