"""The durable scheduler: exactly once with competing workers, survives restarts, retries with backoff."""
import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from core.db import create_engine, session_factory
from core.scheduler import JobRegistry, Scheduler, backoff_s, cancel, reschedule, schedule


async def _effects_table(sessions):
    async with sessions() as session, session.begin():
        await session.execute(text("CREATE TABLE job_effect (job_n int NOT NULL, worker text NOT NULL)"))


def _registry(worker: str, delay: float = 0.0) -> JobRegistry:
    registry = JobRegistry()

    async def effect(session, payload):
        if delay:
            await asyncio.sleep(delay)
        await session.execute(text("INSERT INTO job_effect VALUES (:n, :w)"), {"n": payload["n"], "w": worker})
    registry.register("test.effect", effect)
    return registry


async def test_two_competing_workers_run_each_job_exactly_once(sessions, db_url, raw_conn):
    await _effects_table(sessions)
    async with sessions() as session, session.begin():
        for n in range(60):
            await schedule(session, "test.effect", payload={"n": n})
    engines = [create_engine(db_url, pool_size=2) for _ in range(2)]
    workers = [Scheduler(session_factory(e), _registry(f"w{i}", delay=0.002), worker_id=f"w{i}")
               for i, e in enumerate(engines)]
    try:
        results = await asyncio.gather(*[w.run_due(limit=1000) for w in workers])
    finally:
        for e in engines:
            await e.dispose()
    assert sum(results) == 60
    rows = await raw_conn.fetch("SELECT job_n, count(*) AS c FROM job_effect GROUP BY job_n")
    assert len(rows) == 60 and all(r["c"] == 1 for r in rows)
    by_worker = await raw_conn.fetch("SELECT worker, count(*) AS c FROM job_effect GROUP BY worker")
    assert len(by_worker) == 2, "both workers should have taken part"
    assert await raw_conn.fetchval("SELECT count(*) FROM scheduled_job WHERE status <> 'done'") == 0


async def test_a_job_due_during_downtime_runs_after_restart(db_url, raw_conn):
    first = create_engine(db_url, pool_size=2)
    s1 = session_factory(first)
    await _effects_table(s1)
    async with s1() as session, session.begin():
        await schedule(session, "test.effect", payload={"n": 7},
                       due_at=datetime.now(timezone.utc) + timedelta(milliseconds=300))
    await first.dispose()  # the process "stops" before the job is due
    await asyncio.sleep(0.4)
    second = create_engine(db_url, pool_size=2)
    try:
        ran = await Scheduler(session_factory(second), _registry("after-restart")).run_due()
    finally:
        await second.dispose()
    assert ran == 1
    assert await raw_conn.fetchval("SELECT worker FROM job_effect WHERE job_n = 7") == "after-restart"


async def test_a_job_interrupted_mid_run_stays_pending_and_runs_once_later(db_url, raw_conn):
    engine = create_engine(db_url, pool_size=2)
    sessions = session_factory(engine)
    await _effects_table(sessions)
    async with sessions() as session, session.begin():
        await schedule(session, "test.effect", payload={"n": 1})
    slow = Scheduler(sessions, _registry("crashing", delay=5.0))
    task = asyncio.create_task(slow.run_due())
    await asyncio.sleep(0.3)
    task.cancel()  # the worker dies while the job is running
    try:
        await task
    except asyncio.CancelledError:
        pass
    await engine.dispose()
    assert await raw_conn.fetchval("SELECT status FROM scheduled_job") == "pending"
    engine = create_engine(db_url, pool_size=2)
    try:
        assert await Scheduler(session_factory(engine), _registry("survivor")).run_due() == 1
    finally:
        await engine.dispose()
    rows = await raw_conn.fetch("SELECT worker FROM job_effect")
    assert [r["worker"] for r in rows] == ["survivor"]


async def test_a_failing_job_is_retried_with_backoff_and_its_effects_rolled_back(sessions, raw_conn):
    await _effects_table(sessions)
    registry = JobRegistry()

    async def flaky(session, payload):
        await session.execute(text("INSERT INTO job_effect VALUES (99, 'flaky')"))
        raise RuntimeError("gateway down")
    registry.register("test.flaky", flaky)
    async with sessions() as session, session.begin():
        await schedule(session, "test.flaky", max_attempts=2)
    scheduler = Scheduler(sessions, registry)
    assert await scheduler.run_due() == 0
    job = await raw_conn.fetchrow("SELECT status, attempts, last_error, due_at > now() AS later FROM scheduled_job")
    assert (job["status"], job["attempts"], job["later"]) == ("pending", 1, True)
    assert "gateway down" in job["last_error"]
    assert await raw_conn.fetchval("SELECT count(*) FROM job_effect") == 0
    await raw_conn.execute("UPDATE scheduled_job SET due_at = now() - interval '1 second'")
    await scheduler.run_due()
    assert await raw_conn.fetchval("SELECT status FROM scheduled_job") == "failed"
    assert backoff_s(1) < backoff_s(2) < backoff_s(3)


async def test_dedupe_keys_reschedule_and_cancel(sessions, raw_conn):
    async with sessions() as session, session.begin():
        first = await schedule(session, "test.effect", payload={"n": 1}, dedupe_key="tender:1:close", delay_s=60)
        again = await schedule(session, "test.effect", payload={"n": 1}, dedupe_key="tender:1:close", delay_s=60)
        assert first is not None and again is None
        later = datetime.now(timezone.utc) + timedelta(days=15)
        assert await reschedule(session, "tender:1:close", later)
    due = await raw_conn.fetchval("SELECT due_at FROM scheduled_job WHERE id = $1", first)
    assert abs((due - later).total_seconds()) < 1
    async with sessions() as session, session.begin():
        assert await cancel(session, "tender:1:close")
    assert await raw_conn.fetchval("SELECT status FROM scheduled_job") == "cancelled"
