"""The retention of recordings: a closed segment is kept for the configured period after it closed
(BIDROOM_MEDIA_RETENTION_DAYS, 15 years by default, as for trading archives), then a scheduled sweep removes
its file, stamps `removed_at` and writes one ledger entry per session naming every segment removed with its
SHA-256. The row stays: the timeline still shows that a recording existed and what its hash was.

Judged by the database clock. Runs in the scheduler's transaction; a file is deleted before its row is marked,
so a sweep that fails half-way leaves rows that the next sweep finishes (a missing file counts as removed).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import Storage
from evaluation.media.models import MediaSegment
from evaluation.models import EvaluationSession
from evidence import ledger_service as ledger

log = logging.getLogger(__name__)

SWEEP_JOB = "media.retention_sweep"
BATCH = 500  # segments per transaction; a larger backlog runs again at once


@dataclass
class SweepOutcome:
    removed: list[str] = field(default_factory=list)  # segment public ids
    bytes: int = 0
    more: bool = False


async def sweep(session: AsyncSession, storage: Storage, *, retention_s: float, actor: str = ledger.SYSTEM,
                batch: int = BATCH) -> SweepOutcome:
    """Remove the files of segments closed more than `retention_s` ago (DB clock), in the caller's transaction."""
    if retention_s <= 0:
        raise ValueError("the retention period must be positive")
    rows = (await session.execute(
        select(MediaSegment, EvaluationSession.public_id)
        .join(EvaluationSession, EvaluationSession.id == MediaSegment.session_id)
        .where(MediaSegment.removed_at.is_(None), MediaSegment.ended_at.is_not(None),
               MediaSegment.ended_at <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, retention_s))
        .order_by(MediaSegment.ended_at, MediaSegment.id).limit(batch + 1)
        .with_for_update(of=MediaSegment, skip_locked=True))).all()
    outcome = SweepOutcome(more=len(rows) > batch)
    by_session: dict[str, list[dict]] = {}
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    for seg, session_public_id in rows[:batch]:
        existed = await storage.delete(seg.storage_key)
        seg.removed_at = now
        outcome.removed.append(seg.public_id)
        outcome.bytes += seg.size_bytes or 0
        by_session.setdefault(session_public_id, []).append(
            {"segment": seg.public_id, "sha256": seg.sha256, "ended_at": seg.ended_at.isoformat(),
             "size_bytes": seg.size_bytes, "file_found": existed})
        log.info("retention: removed recording segment %s of session %s (place %s, %s bytes, closed %s, key %s%s)",
                 seg.public_id, session_public_id, seg.place_id, seg.size_bytes, seg.ended_at.isoformat(),
                 seg.storage_key, "" if existed else ", file already missing")
    await session.flush()
    for session_public_id, removed in by_session.items():
        await ledger.append(session, actor=actor, action="media.segments.removed",
                            entity=ledger.entity_ref("evaluation_session", session_public_id),
                            payload={"session": session_public_id, "reason": "retention period ended",
                                     "retention_s": int(retention_s), "segments": removed})
    if outcome.removed:
        log.info("retention sweep removed %d segments (%d bytes)%s", len(outcome.removed), outcome.bytes,
                 "; more are due" if outcome.more else "")
    return outcome
