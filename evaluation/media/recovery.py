"""Segments left open by a recorder that stopped without closing them (the process killed, the host lost).

A segment's row is written when it opens and completed when it closes (recorder.py). A process that dies leaves
its open segments' rows without an end, in one of two ways:
- the file was still being written, in the store's temporary directory: the segment is **lost** (the recording
  promise is that a crash loses at most the open segment). Its row gets an end equal to its start, no hash, and
  the ledger an `evaluation.media.segment_lost` entry. The web process serving media itself removes the partial
  files of its media store's temporary directory at its start.
- the file was closed and renamed into place, but the row was not yet completed: the segment is **recovered**.
  Its hash, size, duration and frame counts are read from the file (demuxed with PyAV, nothing decoded) and
  written to the row with an `evaluation.media.segment_recovered` entry, so it plays and is in the ledger.

Who recovers what: each open row names its recorder. "web" is the web process serving media itself. It holds a
PostgreSQL advisory lock (the web lease) on a connection of its own while it runs; the one that takes the lease at
its start is the only web process recording, so every open "web" row is stale then (a second web process on the
same database, which should not record media at all, finds the lease taken and recovers nothing). A media worker's rows are stale once the
worker is no longer alive (its heartbeat older than the dead-after period), and the live workers recover them as
they beat. Rows are taken with FOR UPDATE SKIP LOCKED, so two recovering processes never take the same one.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

import av
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from core.storage import Storage
from evaluation.media.models import MediaSegment
from evaluation.media.recorder import digest_file, session_entity
from evaluation.models import EvaluationSession, Place
from evidence import ledger_service as ledger

log = logging.getLogger(__name__)

WEB_RECORDER = "web"  # media_segment.recorder of the web process serving media itself
WEB_LEASE_KEY = 0x6D65_6469_6177_6562  # pg advisory lock held by the web process recording media
BATCH = 200


@dataclass
class Recovered:
    recovered: list[str] = field(default_factory=list)  # segment public ids closed from their files
    lost: list[str] = field(default_factory=list)       # segment public ids whose files were never stored


def probe(path) -> tuple[int, int, int]:
    """A stored segment's duration in ms and its video and audio frame counts, by demuxing (no decoding)."""
    counts = {"video": 0, "audio": 0}
    end_ms = 0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None or packet.stream.type not in counts:
                continue
            counts[packet.stream.type] += 1
            end = (packet.pts + (packet.duration or 0)) * packet.time_base
            end_ms = max(end_ms, int(round(end * 1000)))
    return end_ms, counts["video"], counts["audio"]


async def _recover_rows(session: AsyncSession, storage: Storage, stale, actor: str) -> Recovered:
    rows = (await session.execute(
        select(MediaSegment, EvaluationSession.public_id, Place.public_id)
        .join(EvaluationSession, EvaluationSession.id == MediaSegment.session_id)
        .join(Place, Place.id == MediaSegment.place_id)
        .where(MediaSegment.ended_at.is_(None), MediaSegment.removed_at.is_(None), stale)
        .order_by(MediaSegment.id).limit(BATCH)
        .with_for_update(of=MediaSegment, skip_locked=True))).all()
    outcome = Recovered()
    for seg, session_public_id, place_public_id in rows:
        base = {"segment": seg.public_id, "place": place_public_id, "publication": seg.publication,
                "seq": seg.seq, "storage_key": seg.storage_key, "started_at": seg.started_at.isoformat(),
                "recorder": seg.recorder}
        probed = None
        if storage.exists(seg.storage_key):
            try:
                probed = await asyncio.to_thread(probe, storage.path(seg.storage_key))
                sha, size = await asyncio.to_thread(digest_file, storage, seg.storage_key)
            except (av.FFmpegError, OSError) as exc:
                log.warning("segment %s: its file %s cannot be read (%s); marked lost", seg.public_id,
                            seg.storage_key, exc)
                probed = None
        if probed is None:
            seg.ended_at, seg.duration_ms, seg.video_frames, seg.audio_frames = seg.started_at, 0, 0, 0
            seg.size_bytes, seg.sha256 = 0, None
            await ledger.append(session, actor=actor, action="evaluation.media.segment_lost",
                                entity=session_entity(session_public_id),
                                payload={**base, "cause": "its recorder stopped before the file was stored"})
            outcome.lost.append(seg.public_id)
            log.warning("segment %s of session %s (place %s) was lost: its recorder %s stopped before storing it",
                        seg.public_id, session_public_id, place_public_id, seg.recorder)
            continue
        duration_ms, video, audio = probed
        seg.ended_at = seg.started_at + timedelta(milliseconds=duration_ms)
        seg.duration_ms, seg.video_frames, seg.audio_frames, seg.size_bytes, seg.sha256 = (
            duration_ms, video, audio, size, sha)
        await ledger.append(session, actor=actor, action="evaluation.media.segment_recovered",
                            entity=session_entity(session_public_id),
                            payload={**base, "sha256": sha, "size_bytes": size, "duration_ms": duration_ms,
                                     "video_frames": video, "audio_frames": audio,
                                     "ended_at": seg.ended_at.isoformat(),
                                     "cause": "its recorder stopped after storing the file, before recording it"})
        outcome.recovered.append(seg.public_id)
        log.info("segment %s of session %s (place %s) recovered from its file: %d ms, %d video and %d audio frames",
                 seg.public_id, session_public_id, place_public_id, duration_ms, video, audio)
    return outcome


async def take_web_lease(sessions: async_sessionmaker) -> AsyncConnection | None:
    """The web lease on a connection kept out of any transaction (so no idle-in-transaction timeout ends it), or
    None when another live process holds it. `release_web_lease` gives it up."""
    conn = await sessions.kw["bind"].connect()
    try:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": WEB_LEASE_KEY})).scalar_one():
            return conn
    except BaseException:
        await conn.close()
        raise
    await conn.close()
    return None


async def release_web_lease(conn: AsyncConnection) -> None:
    """Unlock, then return the connection (a pooled connection would keep a session lock). A connection the
    database already dropped (a restart) holds no lock any more: it is only closed."""
    try:
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WEB_LEASE_KEY})
    except Exception as exc:  # noqa: BLE001 - the connection is gone, and its lock with it
        log.warning("the media recording lease's connection was lost (%s); invalidating it", exc)
        with contextlib.suppress(Exception):
            await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


async def recover(sessions: async_sessionmaker, storage: Storage, *, recorder: str,
                  dead_after_s: float | None = None) -> Recovered:
    """Close or mark lost every stale open segment that `recorder` may take: as the web process, its own
    earlier rows (and rows from before recorders were named); as a media worker, the rows of dead workers."""
    if recorder == WEB_RECORDER:
        stale = or_(MediaSegment.recorder == WEB_RECORDER, MediaSegment.recorder.is_(None))
    else:
        if dead_after_s is None:
            raise ValueError("a media worker recovers the segments of workers dead for dead_after_s")
        stale = (MediaSegment.recorder != WEB_RECORDER) & (MediaSegment.recorder != recorder) & text(
            "NOT EXISTS (SELECT 1 FROM media_worker w WHERE w.id = media_segment.recorder "
            "AND w.heartbeat_at > now() - make_interval(secs => :dead))").bindparams(dead=float(dead_after_s))
    total = Recovered()
    while True:
        async with sessions() as session, session.begin():
            outcome = await _recover_rows(session, storage, stale, ledger.SYSTEM)
        total.recovered += outcome.recovered
        total.lost += outcome.lost
        if len(outcome.recovered) + len(outcome.lost) < BATCH:
            return total
