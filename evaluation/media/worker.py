"""Media workers: processes that serve only the media plane (`bidroom media-worker`), and which of them owns
which session's media. PostgreSQL is the only shared engine: each worker keeps a row in `media_worker` with its
base URL and a heartbeat, and `media_assignment` names the one worker of each session.

- A session is assigned, on first need, to the live worker with the fewest live sessions (ties: the longest
  running, then by id). The decision runs under one transaction-scoped advisory lock, so two web processes asked
  at the same moment agree; the assignment and every change of it go into the ledger.
- A worker is live while its heartbeat is younger than `media_worker_dead_after_s` by the database clock. The
  sessions of a dead worker move to live ones: lazily, when someone next asks for the session, and eagerly, on
  every heartbeat of any live worker.
- With BIDROOM_MEDIA_WORKERS off (the default, `make run`) there are no workers: the web process serves media
  itself and nothing is assigned.

Never commits; the worker's own loop (WorkerRegistration) owns its short transactions.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import advisory_xact_lock
from core.errors import NotFound, DomainError
from evaluation.media.models import MediaAssignment, MediaWorker
from evaluation.models import EvaluationSession
from evaluation.rules import TERMINAL_SESSION_STATES
from evidence import ledger_service as ledger

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key serialising assignment decisions ("media assign" folded into a bigint)
ASSIGN_LOCK_KEY = 0x6D65_6469_6173_7367
MEDIA_PATH_PREFIX = "/api/v1/media/sessions/"


class NoMediaWorker(DomainError):
    """Workers are configured but none is alive: 503, try again shortly."""

    status = 503
    code = "media_worker_unavailable"


@dataclass(frozen=True)
class Owner:
    """Where a session's media is served."""

    session_public_id: str
    worker_id: str | None  # None: this (web) process serves media itself
    base_url: str


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def _entity(worker_id: str) -> str:
    return ledger.entity_ref("media_worker", worker_id)


# ---- workers ------------------------------------------------------------------------------------------------

async def register(session: AsyncSession, *, worker_id: str, base_url: str) -> None:
    """Add (or revive) this worker's row with a fresh heartbeat."""
    await session.execute(text(
        "INSERT INTO media_worker (id, base_url, started_at, heartbeat_at) VALUES (:id, :url, now(), now()) "
        "ON CONFLICT (id) DO UPDATE SET base_url = EXCLUDED.base_url, started_at = now(), heartbeat_at = now()"),
        {"id": worker_id, "url": base_url})
    await ledger.append(session, actor=ledger.SYSTEM, action="media.worker.register", entity=_entity(worker_id),
                        payload={"worker": worker_id, "base_url": base_url})
    log.info("media worker %s registered at %s", worker_id, base_url)


async def heartbeat(session: AsyncSession, worker_id: str) -> bool:
    """Say this worker is alive; False when its row is gone (then register again)."""
    result = await session.execute(text("UPDATE media_worker SET heartbeat_at = now() WHERE id = :id"),
                                   {"id": worker_id})
    return result.rowcount > 0


async def deregister(session: AsyncSession, worker_id: str) -> list[str]:
    """A worker stopping cleanly: its row goes, and its sessions are free to be assigned elsewhere."""
    await advisory_xact_lock(session, ASSIGN_LOCK_KEY)
    freed = list((await session.execute(text(
        "DELETE FROM media_assignment a USING evaluation_session s WHERE a.worker_id = :id AND s.id = a.session_id "
        "RETURNING s.public_id"), {"id": worker_id})).scalars())
    await session.execute(text("DELETE FROM media_worker WHERE id = :id"), {"id": worker_id})
    await ledger.append(session, actor=ledger.SYSTEM, action="media.worker.deregister", entity=_entity(worker_id),
                        payload={"worker": worker_id, "sessions_freed": sorted(freed)})
    log.info("media worker %s deregistered; %d sessions freed", worker_id, len(freed))
    return freed


_LIVE = "w.heartbeat_at > now() - make_interval(secs => :dead)"
_LOAD = (
    "SELECT w.id, w.base_url FROM media_worker w "
    "LEFT JOIN media_assignment a ON a.worker_id = w.id "
    "LEFT JOIN evaluation_session s ON s.id = a.session_id AND s.status <> ALL(:terminal) "
    f"WHERE {_LIVE} GROUP BY w.id ORDER BY count(s.id), w.started_at, w.id LIMIT 1")


async def _least_loaded(session: AsyncSession, dead_after_s: float) -> tuple[str, str] | None:
    row = (await session.execute(text(_LOAD), {"dead": float(dead_after_s),
                                               "terminal": sorted(str(s) for s in TERMINAL_SESSION_STATES)})
           ).one_or_none()
    return (row.id, row.base_url) if row else None


async def _assign(session: AsyncSession, es: EvaluationSession, *, dead_after_s: float,
                  previous: str | None) -> Owner:
    chosen = await _least_loaded(session, dead_after_s)
    if chosen is None:
        raise NoMediaWorker("no media worker is running; start `bidroom media-worker` or try again shortly",
                            details={"session_id": es.public_id})
    worker_id, base_url = chosen
    await session.execute(text(
        "INSERT INTO media_assignment (session_id, worker_id, assigned_at) VALUES (:s, :w, now()) "
        "ON CONFLICT (session_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, assigned_at = now()"),
        {"s": es.id, "w": worker_id})
    await ledger.append(session, actor=ledger.SYSTEM,
                        action="media.session.assign" if previous is None else "media.session.reassign",
                        entity=ledger.entity_ref("evaluation_session", es.public_id),
                        payload={"session": es.public_id, "worker": worker_id, "previous": previous})
    log.info("media of session %s assigned to worker %s%s", es.public_id, worker_id,
             f" (was {previous}, no longer alive)" if previous else "")
    return Owner(es.public_id, worker_id, base_url)


async def owner_of(session: AsyncSession, session_public_id: str, *, dead_after_s: float) -> Owner:
    """The live worker that serves the session's media, assigning (or reassigning from a dead worker) the session
    to the least-loaded live worker first; 404 session_not_found, 503 media_worker_unavailable."""
    es = (await session.execute(select(EvaluationSession).where(
        EvaluationSession.public_id == session_public_id))).scalar_one_or_none()
    if es is None:
        raise NotFound("no such evaluation session", code="session_not_found",
                       details={"session_id": session_public_id})
    current = await _current(session, es.id, dead_after_s)
    if current is not None and current[2]:
        return Owner(es.public_id, current[0], current[1])
    await advisory_xact_lock(session, ASSIGN_LOCK_KEY)
    current = await _current(session, es.id, dead_after_s)  # decided by another process meanwhile?
    if current is not None and current[2]:
        return Owner(es.public_id, current[0], current[1])
    return await _assign(session, es, dead_after_s=dead_after_s, previous=current[0] if current else None)


async def _current(session: AsyncSession, session_pk: int, dead_after_s: float) -> tuple[str, str, bool] | None:
    row = (await session.execute(text(
        f"SELECT w.id, w.base_url, {_LIVE} AS live FROM media_assignment a JOIN media_worker w ON w.id = a.worker_id "
        "WHERE a.session_id = :s"), {"s": session_pk, "dead": float(dead_after_s)})).one_or_none()
    return (row.id, row.base_url, row.live) if row else None


async def reassign_orphans(session: AsyncSession, *, dead_after_s: float) -> list[Owner]:
    """Move every live session of a dead worker to a live one (none when no worker is alive)."""
    await advisory_xact_lock(session, ASSIGN_LOCK_KEY)
    rows = (await session.execute(text(
        "SELECT s.id, s.public_id, a.worker_id FROM media_assignment a JOIN media_worker w ON w.id = a.worker_id "
        "JOIN evaluation_session s ON s.id = a.session_id "
        f"WHERE NOT ({_LIVE}) AND s.status <> ALL(:terminal) ORDER BY a.assigned_at, s.id"),
        {"dead": float(dead_after_s), "terminal": sorted(str(s) for s in TERMINAL_SESSION_STATES)})).all()
    moved = []
    for row in rows:
        if await _least_loaded(session, dead_after_s) is None:
            break
        es = await session.get(EvaluationSession, row.id)
        moved.append(await _assign(session, es, dead_after_s=dead_after_s, previous=row.worker_id))
    return moved


async def assignments(session: AsyncSession) -> dict[str, str]:
    """session public id -> worker id, for every assignment."""
    rows = (await session.execute(select(EvaluationSession.public_id, MediaAssignment.worker_id)
                                  .join(MediaAssignment, MediaAssignment.session_id == EvaluationSession.id))).all()
    return dict(rows)


async def workers(session: AsyncSession) -> list[MediaWorker]:
    return list((await session.execute(select(MediaWorker).order_by(MediaWorker.started_at))).scalars())


def session_of_media_path(path: str) -> str | None:
    """The session public id in a media plane URL (/api/v1/media/sessions/<id>/...), or None."""
    if not path.startswith(MEDIA_PATH_PREFIX):
        return None
    rest = path[len(MEDIA_PATH_PREFIX):]
    session_id, _, _ = rest.partition("/")
    return session_id or None


# ---- the worker's own loop ----------------------------------------------------------------------------------

class WorkerRegistration:
    """A running worker's presence in the database: registered at start, a heartbeat every few seconds (which
    also moves a dead worker's sessions to the live ones), deregistered at a clean stop."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, worker_id: str, base_url: str,
                 heartbeat_s: float, dead_after_s: float) -> None:
        self.sessions, self.worker_id, self.base_url = sessions, worker_id, base_url
        self.heartbeat_s, self.dead_after_s = heartbeat_s, dead_after_s
        self._task: asyncio.Task | None = None
        self.after_beat: Callable[[], Awaitable[None]] | None = None  # e.g. recovering dead workers' segments

    async def start(self) -> None:
        async with self.sessions() as session, session.begin():
            await register(session, worker_id=self.worker_id, base_url=self.base_url)
        self._task = asyncio.create_task(self._loop(), name=f"media-worker-{self.worker_id}")

    async def beat(self) -> None:
        async with self.sessions() as session, session.begin():
            if not await heartbeat(session, self.worker_id):
                await register(session, worker_id=self.worker_id, base_url=self.base_url)
        async with self.sessions() as session, session.begin():
            await reassign_orphans(session, dead_after_s=self.dead_after_s)
        if self.after_beat is not None:
            await self.after_beat()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database restarting: beat again next time
                log.exception("media worker heartbeat failed")

    async def halt(self) -> None:
        """Stop beating without saying goodbye (as a crash would)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def stop(self) -> None:
        await self.halt()
        async with self.sessions() as session, session.begin():
            await deregister(session, self.worker_id)
