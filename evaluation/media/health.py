"""Per-place media health for supervisors: frames per second, bitrate, packets lost and the time of the last
frame; and the watch on each place's video.

A place whose video stops for more than `video_lost_s` (10 s) raises "place video lost": a ledger entry
(`evaluation.media.place_video_lost`) and an event to every supervisor watching the session. The first frame
after it raises "place video restored". A loss that lasts `fault_after_s` is reported as a venue fault of the
session: it is suspended with fault=true and evaluation's fault timer starts (2 h before the start, 4 h during
the evaluation: evaluation.sessions.fault_timer), exactly as when the tender's agent reports a venue fault.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import db_now
from core.errors import DomainError
from core.scheduler import schedule
from evaluation import members, sessions as evaluation_sessions
from evaluation.rules import (BEFORE_START, FAULT_WAIT_BEFORE_START, FAULT_WAIT_DURING, TERMINAL_SESSION_STATES,
                              SessionStatus, session_transition)
from evidence import ledger_service as ledger

log = logging.getLogger(__name__)

WINDOW_S = 5.0  # fps and bitrate are measured over the last 5 s


@dataclass
class PlaceHealth:
    """What is known of one place's media, updated with every packet."""

    session_public_id: str
    place_public_id: str
    label: str = ""
    publishing: bool = False
    publication: int | None = None
    last_video: float | None = None          # monotonic time of the last video frame
    last_video_at: datetime | None = None    # wall time of it
    video_frames: int = 0
    audio_frames: int = 0
    packets_lost: int = 0
    lost: bool = False                       # "place video lost" raised and not yet restored
    lost_since: float | None = None
    fault_reported: bool = False
    expected: bool = False                   # the place has published: its video is watched from then on
    _recent: deque = field(default_factory=deque)  # (monotonic time, bytes) of recent video frames

    def on_packet(self, kind: str, size: int) -> bool:
        """Count a packet; True when it is the video frame that ends a loss."""
        if kind != "video":
            self.audio_frames += 1
            return False
        now = time.monotonic()
        self.video_frames += 1
        self.last_video, self.last_video_at = now, datetime.now(timezone.utc)
        self._recent.append((now, size))
        while self._recent and self._recent[0][0] < now - WINDOW_S:
            self._recent.popleft()
        return self.lost

    def stats(self) -> dict:
        now = time.monotonic()
        recent = [(t, n) for t, n in self._recent if t >= now - WINDOW_S]
        span = min(WINDOW_S, now - recent[0][0]) if recent else WINDOW_S
        span = max(span, 1.0)
        return {"place": self.place_public_id, "label": self.label, "publishing": self.publishing,
                "publication": self.publication, "fps": round(len(recent) / span, 1),
                "bitrate_kbps": round(sum(n for _, n in recent) * 8 / span / 1000, 1),
                "packets_lost": self.packets_lost, "video_frames": self.video_frames,
                "audio_frames": self.audio_frames,
                "last_frame_at": self.last_video_at.isoformat() if self.last_video_at else None,
                "video_lost": self.lost}


def entity(session_public_id: str) -> str:
    return ledger.entity_ref("evaluation_session", session_public_id)


async def record_lost(session: AsyncSession, health: PlaceHealth, *, silent_s: float) -> dict | None:
    """The place's video loss in the ledger; None when the session is over by now (closed or aborted after the
    watch round asked): a session that has ended loses no video. The row is read FOR SHARE, so a close waits for
    this transaction or is seen by it."""
    status = (await session.execute(text("SELECT status FROM evaluation_session WHERE public_id = :id FOR SHARE"),
                                    {"id": health.session_public_id})).scalar_one_or_none()
    if status is None or status in TERMINAL_SESSION_STATES:
        return None
    payload = {"place": health.place_public_id, "publication": health.publication,
               "last_frame_at": health.last_video_at.isoformat() if health.last_video_at else None,
               "silent_ms": round(silent_s * 1000)}
    await ledger.append(session, actor=ledger.SYSTEM, action="evaluation.media.place_video_lost",
                        entity=entity(health.session_public_id), payload=payload)
    return payload


async def record_restored(session: AsyncSession, health: PlaceHealth, *, lost_for_s: float) -> dict:
    payload = {"place": health.place_public_id, "publication": health.publication,
               "lost_for_ms": round(lost_for_s * 1000)}
    await ledger.append(session, actor=ledger.SYSTEM, action="evaluation.media.place_video_restored",
                        entity=entity(health.session_public_id), payload=payload)
    return payload


async def report_fault(session: AsyncSession, health: PlaceHealth, *, lost_for_s: float) -> str | None:
    """Suspend the session for a venue fault because a place's video stayed lost, starting evaluation's fault
    timer; None when the session is not in a state a fault suspends (not started, already suspended, over)."""
    es, _tender, _lot = await members.load_session(session, health.session_public_id, lock=True)
    try:
        session_transition(es.status, SessionStatus.SUSPENDED, suspended_from=es.suspended_from)
    except DomainError:
        return None
    if es.status == SessionStatus.SCHEDULED:
        return None  # nobody is expected on camera before check-in
    now = await db_now(session)
    reason = (f"席位 {health.label or health.place_public_id} 视频中断 {round(lost_for_s)} 秒 "
              f"(place {health.place_public_id} video lost for {round(lost_for_s)} s)")
    es.suspend_reason, es.fault_at = reason, now
    wait = FAULT_WAIT_BEFORE_START if SessionStatus(es.status) in BEFORE_START else FAULT_WAIT_DURING
    await schedule(session, evaluation_sessions.FAULT_JOB, due_at=now + wait, payload={"session": es.public_id},
                   dedupe_key=evaluation_sessions.fault_job_key(es))
    await evaluation_sessions.move_session(session, es, SessionStatus.SUSPENDED, actor=ledger.SYSTEM,
                                           payload={"reason": reason, "fault": True, "media": True,
                                                    "place": health.place_public_id,
                                                    "fault_timer_due_at": (now + wait).isoformat()})
    return es.status
