"""Segments a stopped recorder left open: the next start of the web process closes the one whose file was stored
(renamed into place, its row not yet completed) from that file, and marks lost the one still being written; each
with its ledger entry, and what a supervisor lists says so. A second web process while the first runs recovers
nothing, and a live media worker takes only a dead worker's segments (recovery.py)."""
import asyncio
import hashlib
import json

from core.storage import Storage
from evaluation.media import recorder as recorder_mod
from evaluation.media import recovery
from evaluation.media import worker as worker_mod
from evaluation.media.config import MediaConfig
from evaluation.media.hub import MediaHub
from evaluation.media.recorder import PlaceRecorder, PublicationRef
from evaluation.media.routes import MEDIA_HUB

from .peers import AUDIO_MS, FPS, clip, decode_file


async def test_a_restart_recovers_a_stored_segment_and_marks_the_unstored_one_lost(live, sessions, raw_conn, settings,
                                                                                   client, monkeypatch):
    session_id = await raw_conn.fetchval("SELECT id FROM evaluation_session WHERE public_id = $1", live.session_id)
    place = live.members[0].place_id
    place_id = await raw_conn.fetchval("SELECT id FROM venue_place WHERE public_id = $1", place)
    ref = PublicationRef(session_id, live.session_id, place_id, place, None, live.members[0].person.public_id, 1)
    storage = Storage(settings.data_dir / "media")

    # the process dies between storing segment 1's file and recording it: its ledger entry never commits
    real_append = recorder_mod.ledger.append

    async def append(session, **entry):
        if entry["action"] == "evaluation.media.segment_closed":
            raise ConnectionResetError("the server died here")
        return await real_append(session, **entry)
    monkeypatch.setattr(recorder_mod.ledger, "append", append)

    async def keyframe() -> None:
        return None

    rec = PlaceRecorder(sessions=sessions, storage=storage, ref=ref, kinds={"video", "audio"},
                        mimes={"video": "video/vp8", "audio": "audio/opus"}, segment_s=5.0, request_keyframe=keyframe)
    rec.start()
    video, audio = clip()
    t0 = asyncio.get_running_loop().time()
    packets = [(n / FPS, "video", n * 6000, 90000, *video[n % len(video)]) for n in range(7 * FPS)]
    packets += [(n * AUDIO_MS / 1000, "audio", n * 960, 48000, audio[n % len(audio)], True)
                for n in range(7 * 1000 // AUDIO_MS)]
    for at, kind, ts, rate, data, key in sorted(packets, key=lambda p: (p[0], p[1] == "audio")):
        rec.push(kind, ts, rate, data, key, arrival=t0 + at)
    for _ in range(100):  # segment 1 closed (its file stored, its row not), segment 2 open
        await asyncio.sleep(0.05)
        if rec._closing == set() and rec.segments_opened == 2 and rec._queue.empty():
            break
    rec.abandon()  # and then the process is gone: segment 2 is still a temporary file
    await asyncio.sleep(0.1)
    monkeypatch.setattr(recorder_mod.ledger, "append", real_append)

    rows = await raw_conn.fetch("SELECT public_id, seq, storage_key, ended_at, recorder FROM media_segment ORDER BY seq")
    assert [(r["seq"], r["ended_at"], r["recorder"]) for r in rows] == [(1, None, "web"), (2, None, "web")]
    stored, unstored = rows
    assert storage.exists(stored["storage_key"]) and not storage.exists(unstored["storage_key"])
    assert list((storage.root / "tmp").glob("*.part"))

    # a second web process while the first still runs holds no lease and touches nothing
    second = MediaHub(sessions=sessions, config=MediaConfig(root=storage.root))
    await second.start()
    await second.close()
    assert await raw_conn.fetchval("SELECT count(*) FROM media_segment WHERE ended_at IS NULL") == 2

    # the web process stops, and starts again
    await client.server.app[MEDIA_HUB].close()
    hub = MediaHub(sessions=sessions, config=MediaConfig(root=storage.root))
    await hub.start()
    await hub.close()

    data = storage.path(stored["storage_key"]).read_bytes()
    decoded = decode_file(storage.path(stored["storage_key"]))
    seg1 = await raw_conn.fetchrow("SELECT * FROM media_segment WHERE seq = 1")
    assert seg1["sha256"] == hashlib.sha256(data).hexdigest() and seg1["size_bytes"] == len(data)
    assert seg1["video_frames"] == decoded["video"] == 5 * FPS
    assert seg1["audio_frames"] == decoded["audio"] > 0.95 * 5000 / AUDIO_MS
    assert abs(seg1["duration_ms"] / 1000 - decoded["duration"]) < 0.1
    assert seg1["ended_at"] > seg1["started_at"]
    seg2 = await raw_conn.fetchrow("SELECT * FROM media_segment WHERE seq = 2")
    assert (seg2["ended_at"], seg2["sha256"], seg2["duration_ms"]) == (seg2["started_at"], None, 0)
    assert not list((storage.root / "tmp").glob("*.part"))  # the partial file is removed

    entries = {r["action"]: json.loads(r["payload"]) for r in await raw_conn.fetch(
        "SELECT action, payload FROM audit_entry WHERE action LIKE 'evaluation.media.segment_%'")}
    assert entries["evaluation.media.segment_recovered"]["segment"] == stored["public_id"]
    assert entries["evaluation.media.segment_recovered"]["sha256"] == seg1["sha256"]
    assert entries["evaluation.media.segment_lost"]["segment"] == unstored["public_id"]
    assert "evaluation.media.segment_closed" not in entries

    # a supervisor sees one segment that plays and one lost
    listing = await (await client.get(f"/api/v1/evaluation-sessions/{live.session_id}/recordings",
                                      headers=live.supervisor.headers)).json()
    mine = next(p for p in listing["places"] if p["place_id"] == place)["segments"]
    assert [(s["seq"], s["status"], s["url"] is not None) for s in mine] == [(1, "closed", True), (2, "lost", False)]
    got = await client.get(mine[0]["url"])
    assert got.status == 200 and hashlib.sha256(await got.read()).hexdigest() == seg1["sha256"]

    # and a second start finds nothing left to recover
    count = "SELECT count(*) FROM audit_entry WHERE action LIKE 'evaluation.media.segment_%'"
    before = await raw_conn.fetchval(count)
    again = MediaHub(sessions=sessions, config=MediaConfig(root=storage.root))
    await again.start()
    await again.close()
    assert await raw_conn.fetchval(count) == before


async def test_a_live_media_worker_recovers_a_dead_workers_segment_and_leaves_a_live_ones_open(live, sessions,
                                                                                              raw_conn, settings):
    session_id = await raw_conn.fetchval("SELECT id FROM evaluation_session WHERE public_id = $1", live.session_id)
    storage = Storage(settings.data_dir / "media")
    video, _ = clip()

    async def keyframe() -> None:
        return None

    async def record(worker_id: str, member) -> PlaceRecorder:
        place_id = await raw_conn.fetchval("SELECT id FROM venue_place WHERE public_id = $1", member.place_id)
        ref = PublicationRef(session_id, live.session_id, place_id, member.place_id, None, member.person.public_id, 1)
        rec = PlaceRecorder(sessions=sessions, storage=storage, ref=ref, kinds={"video"}, mimes={"video": "video/vp8"},
                            segment_s=60.0, request_keyframe=keyframe, recorder_id=worker_id)
        rec.start()
        t0 = asyncio.get_running_loop().time()
        for n in range(2 * FPS):
            rec.push("video", n * 6000, 90000, *video[n % len(video)], arrival=t0 + n / FPS)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if rec.segments_opened == 1 and rec._queue.empty():
                return rec
        raise AssertionError("the segment did not open")

    async with sessions() as session, session.begin():
        await worker_mod.register(session, worker_id="dead:1", base_url="http://127.0.0.1:1")
    dead = await record("dead:1", live.members[0])
    dead.abandon()
    await asyncio.sleep(3.0)  # dead:1 beats no more
    async with sessions() as session, session.begin():
        await worker_mod.register(session, worker_id="live:2", base_url="http://127.0.0.1:2")
    alive = await record("live:2", live.members[1])

    found = await recovery.recover(sessions, storage, recorder="live:3", dead_after_s=2.0)
    assert len(found.lost) == 1 and found.recovered == []
    rows = {r["recorder"]: r for r in await raw_conn.fetch("SELECT recorder, ended_at, sha256 FROM media_segment")}
    assert rows["dead:1"]["ended_at"] is not None and rows["dead:1"]["sha256"] is None
    assert rows["live:2"]["ended_at"] is None  # still being recorded by a live worker
    # a worker never takes the web process's segments, nor its own
    assert (await recovery.recover(sessions, storage, recorder="live:2", dead_after_s=2.0)).lost == []
    await alive.stop()
    assert await raw_conn.fetchval("SELECT sha256 FROM media_segment WHERE recorder = 'live:2'") is not None
