"""A recorder fed a publication's packets as a loaded server receives them: the first key frame held up 0.6 s
behind the audio and released with the frames queued after it, and both tracks' RTP timestamps passing 2**32
mid-recording (RFC 3550 §5.1 starts them at random). Every segment plays, and every audio frame is in one: the
0.6 s of audio that arrived before the first key frame, but was sent after it, goes in the first segment."""
import asyncio
import itertools

from core.storage import Storage
from evaluation.media.recorder import RTP_WRAP, PlaceRecorder, PublicationRef

from .peers import AUDIO_MS, FPS, clip, decode_file

SECONDS = 12
HELD = 0.6  # how long the first key frame waited behind a busy loop


async def started_recorder(live, sessions, raw_conn, settings) -> tuple[PlaceRecorder, Storage]:
    """A real recorder of the first member's place, 5 s segments, storing in the test's media store."""
    session_id = await raw_conn.fetchval("SELECT id FROM evaluation_session WHERE public_id = $1", live.session_id)
    place = live.members[0].place_id
    place_id = await raw_conn.fetchval("SELECT id FROM venue_place WHERE public_id = $1", place)
    ref = PublicationRef(session_id, live.session_id, place_id, place, None, live.members[0].person.public_id, 1)
    storage = Storage(settings.data_dir / "media")

    async def keyframe() -> None:
        return None  # the clip has a key frame every second anyway

    recorder = PlaceRecorder(sessions=sessions, storage=storage, ref=ref, kinds={"video", "audio"},
                             mimes={"video": "video/vp8", "audio": "audio/opus"}, segment_s=5.0,
                             request_keyframe=keyframe)
    recorder.start()
    return recorder, storage


async def test_a_late_first_key_frame_and_a_timestamp_wrap_cost_no_audio_after_the_start(live, sessions, raw_conn,
                                                                                           settings):
    recorder, storage = await started_recorder(live, sessions, raw_conn, settings)
    video, audio = clip()
    t0 = asyncio.get_running_loop().time()
    v0, a0 = RTP_WRAP - 90000 * 3, RTP_WRAP - 48000 * 7  # video wraps 3 s in, audio 7 s in
    packets = []
    for n in range(SECONDS * FPS):
        sent = n / FPS
        data, key = video[n % len(video)]
        packets.append((max(sent, HELD), "video", (v0 + n * 90000 // FPS) % RTP_WRAP, 90000, data, key))
    audio_sent = SECONDS * 1000 // AUDIO_MS
    for n in range(audio_sent):
        packets.append((n * AUDIO_MS / 1000, "audio", (a0 + n * 960) % RTP_WRAP, 48000, audio[n % len(audio)], True))
    order = itertools.count()
    for arrival, kind, ts, rate, data, key in sorted(packets, key=lambda p: (p[0], next(order))):
        recorder.push(kind, ts, rate, data, key, arrival=t0 + arrival)
    await recorder.stop()

    closed = sorted(recorder.closed, key=lambda c: c.seq)
    assert [c.seq for c in closed] == [1, 2, 3]
    decoded = [decode_file(storage.path(c.storage_key)) for c in closed]
    assert [d["video"] for d in decoded] == [c.video_frames for c in closed] == [5 * FPS, 5 * FPS, 2 * FPS]
    assert [d["audio"] for d in decoded] == [c.audio_frames for c in closed]
    # the audio received before the first key frame (0.6 s of it, all sent after that frame) waited for the first
    # segment: none is missing
    assert sum(c.audio_frames for c in closed) == audio_sent
    # and every segment lasts as long as the frames it holds: 5 s, 5 s, 2 s
    for d, c, seconds in zip(decoded, closed, (5, 5, 2)):
        assert abs(c.duration_ms / 1000 - seconds) < 0.1 and abs(d["duration"] - seconds) < 0.1, (c, d)


async def test_audio_received_after_the_next_segments_first_frame_goes_in_the_segment_it_was_sent_in(
        live, sessions, raw_conn, settings):
    """Audio and video reach the recorder by receive paths of their own. At each segment change here, the audio
    of the 0.3 s before the new key frame is held up and arrives after it: it still belongs to, and is recorded
    in, the segment before. Nothing sent is lost, and every segment holds exactly its own 5 s of audio."""
    recorder, storage = await started_recorder(live, sessions, raw_conn, settings)
    video, audio = clip()
    t0 = asyncio.get_running_loop().time()
    packets = []
    for n in range(SECONDS * FPS):
        data, key = video[n % len(video)]
        packets.append((n / FPS, "video", n * 90000 // FPS, 90000, data, key))
    audio_sent = SECONDS * 1000 // AUDIO_MS
    for n in range(audio_sent):
        sent = n * AUDIO_MS / 1000
        # held up past the key frame at `change`, with the audio queued behind it (a track arrives in order)
        change = next((k * 5 for k in (1, 2) if k * 5 - 0.3 <= sent < k * 5 + 0.05), None)
        arrival = change + 0.05 if change is not None else sent
        packets.append((arrival, "audio", n * 960, 48000, audio[n % len(audio)], True))
    order = itertools.count()
    for arrival, kind, ts, rate, data, key in sorted(packets, key=lambda p: (p[0], next(order))):
        recorder.push(kind, ts, rate, data, key, arrival=t0 + arrival)
    await recorder.stop()

    closed = sorted(recorder.closed, key=lambda c: c.seq)
    decoded = [decode_file(storage.path(c.storage_key)) for c in closed]
    assert [c.audio_frames for c in closed] == [d["audio"] for d in decoded] == [250, 250, 100]
    assert [c.video_frames for c in closed] == [5 * FPS, 5 * FPS, 2 * FPS]
    for d, c, seconds in zip(decoded, closed, (5, 5, 2)):
        assert abs(c.duration_ms / 1000 - seconds) < 0.1 and abs(d["duration"] - seconds) < 0.1, (c, d)
