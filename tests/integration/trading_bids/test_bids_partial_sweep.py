"""Partial uploads a crash left behind are swept; uploads still streaming and stored bids are never touched."""
import os
import time

import pytest

from core.scheduler import schedule
from core.storage import Storage
from trading.routes.bids import SWEEP_JOB
from trading.bids import sweep_partial_uploads
from web.keys import SCHEDULER


def _files(storage_dir):
    """A stale and a streaming upload in storage's tmp/, a stale one where earlier versions kept them, a bid."""
    tender = storage_dir / "bids" / "ZS-2026-FJSZ-00042"
    tender.mkdir(parents=True)
    (storage_dir / "tmp").mkdir(exist_ok=True)
    stale, streaming = storage_dir / "tmp" / "w-3f9c.part", storage_dir / "tmp" / "w-77aa.part"
    legacy, stored = tender / ".51be.part", tender / "B-7K2M9Q4X.age"
    for path, size in ((stale, 4096), (streaming, 1024), (legacy, 512), (stored, 2048)):
        path.write_bytes(os.urandom(size))
    two_hours_ago = time.time() - 7200
    for path in (stale, legacy, stored):  # an old bid is still a bid
        os.utime(path, (two_hours_ago, two_hours_ago))
    return (stale, legacy), streaming, stored


def test_only_partial_uploads_idle_for_an_hour_are_removed(tmp_path):
    stale, streaming, stored = _files(tmp_path)
    found = sweep_partial_uploads(Storage(tmp_path))
    assert (found.removed, found.bytes) == (2, 4096 + 512)
    assert not any(p.exists() for p in stale) and streaming.exists() and stored.exists()
    assert sweep_partial_uploads(Storage(tmp_path)).removed == 0
    assert sweep_partial_uploads(Storage(tmp_path / "no-storage-yet")).removed == 0


async def test_the_sweep_job_removes_them_writes_a_ledger_entry_and_comes_back(client, sessions, settings, raw_conn):
    stale, streaming, stored = _files(settings.storage_dir)
    async with sessions() as session, session.begin():
        await schedule(session, SWEEP_JOB, dedupe_key=SWEEP_JOB)
    assert await client.app[SCHEDULER].run_due() == 1
    assert not any(p.exists() for p in stale) and streaming.exists() and stored.exists()
    entry = await raw_conn.fetchrow("SELECT actor, payload FROM audit_entry WHERE action = 'bid.partial_uploads_removed'")
    assert entry["actor"] == "system" and '"files": 2' in entry["payload"] and '"bytes": 4608' in entry["payload"]
    assert await raw_conn.fetchval("SELECT count(*) FROM scheduled_job WHERE kind = $1 AND status = 'pending' "
                                   "AND due_at > now() + interval '50 minutes'", SWEEP_JOB) == 1


def test_the_stale_file_sweep_stays_inside_the_storage_root(tmp_path):
    storage = Storage(tmp_path / "storage")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    old = outside / "w-1.part"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    with pytest.raises(ValueError):
        storage.sweep_stale(outside, "*.part", stale_after_s=60)
    assert old.exists()
    assert storage.sweep_stale(storage.root / "bids", "*.part", stale_after_s=60).removed == 0
