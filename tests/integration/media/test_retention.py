"""The retention sweep on the scheduler: with a short retention period, segments closed longer ago than the
period lose their files, get `removed_at` and one ledger entry per session with their hashes, and the sweep logs
each; segments still within the period, and open ones, stay playable and untouched."""
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.scheduler import Scheduler, schedule
from core.settings import MEDIA_RETENTION_DEFAULT_S, Settings
from evaluation.media import retention
from evaluation.media.playback import media_storage
from tests.helpers import Actor, staff
from web.app import create_app
from web.keys import JOBS, SESSIONS

from .recordings import scheduled_session, store_segment, webm_clip


@pytest.fixture
async def admin(sessions, client) -> Actor:
    return await staff(sessions, client, "admin")


def test_default_retention_is_fifteen_years():
    assert Settings().media_retention_s >= 15 * 365.25 * 86400
    assert Settings.from_env({}).media_retention_s == MEDIA_RETENTION_DEFAULT_S
    assert Settings.from_env({"BIDROOM_MEDIA_RETENTION_DAYS": "30"}).media_retention_s == 30 * 86400


async def test_sweep_removes_expired_segments_with_a_ledger_entry(client, sessions, settings, raw_conn, admin,
                                                                  tmp_path, caplog):
    s = await scheduled_session(sessions, client, admin)
    clip = webm_clip(seconds=1.0)
    now = datetime.now(timezone.utc)
    old = [await store_segment(sessions, settings, session_id=s.session_id, place_id=place, clip=clip,
                               started_at=now - timedelta(hours=3)) for place in s.zhongshan.places[:2]]
    recent = await store_segment(sessions, settings, session_id=s.session_id, place_id=s.guangzhou.places[0],
                                 clip=clip, started_at=now - timedelta(seconds=5))
    still_open = await store_segment(sessions, settings, session_id=s.session_id, place_id=s.guangzhou.places[1],
                                     clip=clip, started_at=now - timedelta(hours=3), closed=False)
    keys = {r["public_id"]: r["storage_key"] for r in await raw_conn.fetch(
        "SELECT public_id, storage_key FROM media_segment")}
    store = media_storage(settings)
    assert all(store.exists(k) for k in keys.values())

    # an app whose recordings are kept one hour, its sweep run by the scheduler as in production
    short = settings.with_(media_retention_s=3600)
    app = create_app(short)
    swept = TestClient(TestServer(app))
    await swept.start_server()
    try:
        async with app[SESSIONS]() as session, session.begin():
            await schedule(session, retention.SWEEP_JOB, dedupe_key=retention.SWEEP_JOB)
        with caplog.at_level(logging.INFO, logger="evaluation.media.retention"):
            assert await Scheduler(app[SESSIONS], app[JOBS]).run_due() == 1
    finally:
        await swept.close()

    rows = {r["public_id"]: r for r in await raw_conn.fetch("SELECT public_id, removed_at, sha256 FROM media_segment")}
    assert {k for k, r in rows.items() if r["removed_at"] is not None} == set(old)
    assert not any(store.exists(keys[k]) for k in old)
    assert store.exists(keys[recent]) and store.exists(keys[still_open])
    entries = await raw_conn.fetch("SELECT entity, payload FROM audit_entry WHERE action = 'media.segments.removed'")
    assert len(entries) == 1 and entries[0]["entity"] == f"evaluation_session:{s.session_id}"
    payload = json.loads(entries[0]["payload"])
    assert {(x["segment"], x["sha256"]) for x in payload["segments"]} == {(k, rows[k]["sha256"]) for k in old}
    assert payload["retention_s"] == 3600
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert all(k in logged for k in old) and recent not in logged
    # the next sweep is due a day later
    assert await raw_conn.fetchval("SELECT due_at - now() > interval '23 hours' FROM scheduled_job "
                                   "WHERE kind = $1 AND status = 'pending'", retention.SWEEP_JOB)

    # what was removed answers 410 and says so in the listing; the rest still plays
    listing = await (await client.get(s.url + "/recordings", headers=s.supervisor.headers)).json()
    status = {seg["segment_id"]: seg["status"] for p in listing["places"] for seg in p["segments"]}
    assert status == {old[0]: "removed", old[1]: "removed", recent: "closed", still_open: "open"}
    resp = await client.get(f"/api/v1/media/segments/{old[0]}", headers=s.supervisor.headers)
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "segment_removed"
    resp = await client.get(f"/api/v1/media/segments/{recent}", headers=s.supervisor.headers)
    assert resp.status == 200 and await resp.read() == clip.data

    # with the default period nothing of this is due
    async with sessions() as session, session.begin():
        outcome = await retention.sweep(session, store, retention_s=settings.media_retention_s)
    assert outcome.removed == []
