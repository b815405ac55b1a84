"""Recording and relay with real aiortc peers: 3 places publish 20 s of pre-encoded VP8 + Opus while a supervisor
watches; every recording decodes with PyAV, nearly every frame sent is in it, its duration matches, and each
segment's hash is the one in media_segment and in the ledger. The server decoded and encoded nothing."""
import asyncio
import hashlib
import json

from evaluation.media.passthrough import CODEC_CALLS
from evaluation.media.routes import MEDIA_HUB

from .peers import FPS, GOP, decode_file, decode_video, publish, until, watch

PUBLISH_S = 20


async def closed_segments(raw_conn, session_id: str) -> list:
    return await raw_conn.fetch(
        "SELECT g.*, p.public_id AS place FROM media_segment g JOIN venue_place p ON p.id = g.place_id "
        "JOIN evaluation_session s ON s.id = g.session_id WHERE s.public_id = $1 ORDER BY p.public_id, "
        "g.publication, g.seq", session_id)


async def all_closed(raw_conn, session_id: str, timeout: float = 15.0) -> list:
    rows: list = []

    async def check() -> bool:
        nonlocal rows
        rows = await closed_segments(raw_conn, session_id)
        return bool(rows) and all(r["ended_at"] is not None for r in rows)

    for _ in range(int(timeout * 10)):
        if await check():
            break
        await asyncio.sleep(0.1)
    return rows


async def test_three_places_recorded_in_segments_that_play_and_match_the_ledger(client, live, raw_conn, settings):
    before = CODEC_CALLS.snapshot()
    places = live.members[:3]
    publishers = [await publish(client, live.session_id, m.place_id, m.person.headers) for m in places]
    supervisor = await watch(client, live.session_id, live.supervisor.headers)
    await asyncio.sleep(PUBLISH_S)
    hub = client.server.app[MEDIA_HUB]
    received = {}
    for p in publishers:
        p.video.paused = p.audio.paused = True  # all stop at once; each is then waited for
    for member, p in zip(places, publishers):
        publication = hub.publication(live.session_id, member.place_id)
        received[member.place_id] = await p.stop_sending(lambda kind, pub=publication: pub.packets[kind])
    for p in publishers:
        await p.close()
    await supervisor.close()
    rows = await all_closed(raw_conn, live.session_id)

    ledger = {e["segment"]: e for e in (json.loads(r["payload"]) for r in await raw_conn.fetch(
        "SELECT payload FROM audit_entry WHERE action = 'evaluation.media.segment_closed'"))}
    media = settings.data_dir / "media"
    for member, pub in zip(places, publishers):
        mine = [r for r in rows if r["place"] == member.place_id]
        # 20 s in 5 s segments, each starting at a key frame
        assert len(mine) >= 3 and [r["seq"] for r in mine] == list(range(1, len(mine) + 1))
        assert {r["publication"] for r in mine} == {1}
        video = audio = 0
        duration = 0.0
        for row in mine:
            path = media / row["storage_key"]
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == row["sha256"] == ledger[row["public_id"]]["sha256"]
            assert ledger[row["public_id"]]["duration_ms"] == row["duration_ms"]
            assert ledger[row["public_id"]]["video_frames"] == row["video_frames"]
            decoded = decode_file(path)
            assert decoded["video"] == row["video_frames"] > 0
            assert decoded["audio"] >= row["audio_frames"] * 0.95
            # a place's last segment can be a fragment: the key frame due as the publisher closed, with the
            # audio sent before it in the previous segment and none after it received (the clip's key frames fall
            # on whole seconds, and the publishers close 20 s in). Every segment of a second or more has audio.
            last = row["seq"] == mine[-1]["seq"]
            assert row["audio_frames"] > 0 or (last and row["duration_ms"] < 1000), (
                [(r["seq"], r["duration_ms"], r["video_frames"], r["audio_frames"]) for r in mine])
            assert abs(decoded["duration"] - row["duration_ms"] / 1000) < 0.2
            video += decoded["video"]
            audio += decoded["audio"]
            duration += decoded["duration"]
        sent_video, sent_audio = pub.video.sent, pub.audio.sent
        got = received[member.place_id]
        # everything the server received is in the recording, from the first key frame it received (the first
        # frame sent is one; were it lost on the way, the frames to the next, a second later, have no segment) ...
        assert got["video"] - GOP <= video <= got["video"], (video, got)
        assert audio >= 0.99 * got["audio"], (audio, got)
        # ... and that is nearly everything sent
        assert video >= 0.95 * sent_video, (video, sent_video, got)
        assert audio >= 0.95 * sent_audio, (audio, sent_audio, got)
        assert abs(duration - sent_video / FPS) <= 1.0, (duration, sent_video / FPS)
        assert abs(sent_video / FPS - PUBLISH_S) < 2

    # the supervisor received every place live, as frames that decode
    for member, pub in zip(places, publishers):
        got = supervisor.received[(member.place_id, "video")].packets
        assert got[0][2] is True  # the relay starts a viewer at a key frame
        assert decode_video([data for _, data, _ in got]) >= 0.9 * len(got) > 0.5 * pub.video.sent
        assert supervisor.count(member.place_id, "audio") > 0.5 * pub.audio.sent

    # nothing was decoded or encoded by aiortc in this process: publishers send packets, viewers keep them
    # encoded, and the server only received, muxed and packetized
    after = CODEC_CALLS.snapshot()
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert sum(n for k, n in calls.items() if k.endswith((".decode", ".encode"))) == 0, calls
    assert calls.get("Vp8Encoder.pack", 0) > 0 and calls.get("OpusEncoder.pack", 0) > 0
