"""Durable jobs due at a time, stored in PostgreSQL and claimed with SKIP LOCKED.

A job's handler runs inside the same transaction that marks the job done, while the claimed row stays
locked: its effects and its completion commit together, so a job takes effect exactly once even with
many workers, and a crash mid-job leaves it pending for the next start.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

JobHandler = Callable[[AsyncSession, dict], Awaitable[None]]


@dataclass
class JobContext:
    """What a handler may need beyond its session: the app's resources, passed in by the runner's owner."""

    resources: dict[str, Any]


class JobRegistry:
    """Maps job kinds to handlers; each domain registers its own at app start."""

    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}

    def register(self, kind: str, handler: JobHandler) -> None:
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} registered twice")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> JobHandler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)


async def schedule(session: AsyncSession, kind: str, *, due_at: datetime | None = None, delay_s: float = 0,
                   payload: dict | None = None, dedupe_key: str | None = None, max_attempts: int = 5) -> int | None:
    """Add a job in the caller's transaction. With a dedupe_key, an existing pending job wins (returns None).

    Without due_at the job is due `delay_s` after the database clock's now().
    """
    if due_at is not None and due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    row = (await session.execute(text(
        "INSERT INTO scheduled_job (kind, due_at, payload, dedupe_key, max_attempts) "
        "VALUES (:kind, COALESCE(:due, now() + make_interval(secs => :delay)), CAST(:payload AS jsonb), :dk, :ma) "
        "ON CONFLICT (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL DO NOTHING RETURNING id"),
        {"kind": kind, "due": due_at, "delay": float(delay_s), "payload": _json(payload or {}),
         "dk": dedupe_key, "ma": max_attempts})).scalar_one_or_none()
    return row


async def reschedule(session: AsyncSession, dedupe_key: str, due_at: datetime) -> bool:
    """Move a pending job to a new due time (e.g. a deadline extended by an amendment)."""
    result = await session.execute(text(
        "UPDATE scheduled_job SET due_at = :due WHERE dedupe_key = :dk AND status = 'pending'"),
        {"due": due_at, "dk": dedupe_key})
    return result.rowcount > 0


async def cancel(session: AsyncSession, dedupe_key: str) -> bool:
    result = await session.execute(text(
        "UPDATE scheduled_job SET status = 'cancelled', finished_at = now() "
        "WHERE dedupe_key = :dk AND status = 'pending'"), {"dk": dedupe_key})
    return result.rowcount > 0


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def backoff_s(attempt: int) -> float:
    """Exponential backoff: 2, 4, 8 ... seconds, capped at 10 minutes."""
    return float(min(600, 2 ** attempt))


class Scheduler:
    """Polls for due jobs and runs them; several instances may run against one database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], registry: JobRegistry, *,
                 poll_s: float = 1.0, worker_id: str | None = None):
        self.sessions = sessions
        self.registry = registry
        self.poll_s = poll_s
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    async def run_due(self, limit: int = 100) -> int:
        """Run due jobs until none is left (or limit); returns how many ran successfully."""
        done = 0
        for _ in range(limit):
            outcome = await self._run_one()
            if outcome is None:
                break
            done += outcome
        return done

    async def _run_one(self) -> int | None:
        failure: tuple[int, int, int, str] | None = None
        async with self.sessions() as session:
            async with session.begin():
                job = (await session.execute(text(
                    "SELECT id, kind, payload, attempts, max_attempts FROM scheduled_job "
                    "WHERE status = 'pending' AND due_at <= now() ORDER BY due_at, id "
                    "FOR UPDATE SKIP LOCKED LIMIT 1"))).one_or_none()
                if job is None:
                    return None
                handler = self.registry.handler(job.kind)
                await session.execute(text(
                    "UPDATE scheduled_job SET status = 'done', attempts = attempts + 1, finished_at = now(), "
                    "finished_by = :w WHERE id = :id"), {"id": job.id, "w": self.worker_id})
                if handler is None:
                    failure = (job.id, job.attempts, job.max_attempts, f"no handler for job kind {job.kind!r}")
                else:
                    try:
                        async with session.begin_nested():
                            await handler(session, dict(job.payload))
                    except Exception as err:  # noqa: BLE001 - a failing job must not stop the scheduler
                        log.exception("job failed", extra={"job_id": job.id, "kind": job.kind})
                        failure = (job.id, job.attempts, job.max_attempts, f"{type(err).__name__}: {err}")
                if failure is not None:
                    await session.execute(text(
                        "UPDATE scheduled_job SET status = CASE WHEN :n >= max_attempts THEN 'failed' "
                        "ELSE 'pending' END, attempts = :n, last_error = :e, finished_at = NULL, "
                        "finished_by = NULL, due_at = now() + make_interval(secs => :b) WHERE id = :id"),
                        {"id": failure[0], "n": failure[1] + 1, "e": failure[3][:2000],
                         "b": backoff_s(failure[1] + 1)})
                    return 0
        return 1

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. the database restarting; try again next tick
                log.exception("scheduler tick failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"scheduler-{self.worker_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
