"""Recording a place: the encoded audio and video packets of one publication muxed with PyAV into Matroska/WebM
segments, never decoded nor encoded.

- A segment begins on a video key frame. When a segment has lasted `segment_s`, a key frame is requested of the
  publisher (PLI) and the next key frame starts the next segment, so every segment plays from its first frame.
  Audio goes by its time, not its arrival: audio sent before that key frame but received after it (audio and
  video have receive paths of their own) still goes in the previous segment, which closes once the audio has
  passed the key frame. Audio received before the publication's first key frame waits for it (the video path is
  the slower one), and what was sent from that frame's time on goes in the first segment.
- A segment is written to a temporary file of the media store (core.storage) and renamed into place only once
  the muxer has closed it and it is fsynced: a crash loses at most the open segment, and every segment under a
  final name plays. The next start settles what a crash left open (recovery.py).
- Its row in media_segment is written when it opens (ended_at NULL); when it closes the row gets the SHA-256,
  duration, frame counts and size, and the ledger an `evaluation.media.segment_closed` entry, in one transaction.
- A publisher that reconnects starts a new publication (publication + 1, seq from 1); earlier files are never
  touched again. A publisher that adds a track (renegotiation) closes the open segment; the next one, with
  every track, goes on in the same publication.

Packet times (TrackClock): each track's RTP timestamps (90 kHz video, 48 kHz Opus; 32 bits from a random start,
RFC 3550 §5.1) are unwrapped past 2**32 and mapped onto the server's clock by the least delayed packet so far, so
audio and video share one time line even when one track's first packet was held up; a segment's packet times are
milliseconds from its first frame.
"""
from __future__ import annotations

import asyncio
import fractions
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import av
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ids import public_id
from core.storage import PendingFile, Storage
from evaluation.media.models import MediaSegment
from evaluation.media.passthrough import h264_parameter_sets, h264_size, vp8_size
from evidence import ledger_service as ledger

log = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)
AUDIO_FRAME_MS = 20
# how long into a new segment (video time) the previous one waits for audio sent before the new one's first frame
HANDOVER_S = 1.0
# audio kept while the first key frame is awaited (5 s at 20 ms a frame); only what was sent after it is recorded
EARLY_AUDIO_MAX = 250
# Opus identification header (RFC 7845 §5.1): version 1, 2 channels, 312 samples pre-skip, 48 kHz, gain 0,
# mapping family 0; written as the Matroska CodecPrivate
OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
# AVCodecContext.flags: AV_CODEC_FLAG_GLOBAL_HEADER. PyAV opens an output stream's encoder when the file header is
# written (nothing is encoded); cleared, libx264 leaves the track's parameter sets as set here
GLOBAL_HEADER = 1 << 22


@dataclass(frozen=True)
class PublicationRef:
    """Which publication is being recorded: one publisher connection at one place of one session."""

    session_id: int
    session_public_id: str
    place_id: int
    place_public_id: str
    publisher_user_id: int | None
    publisher_public_id: str
    publication: int


def session_entity(session_public_id: str) -> str:
    return ledger.entity_ref("evaluation_session", session_public_id)


async def next_publication(sessions: async_sessionmaker, session_id: int, place_id: int) -> int:
    """The number of a new publication at a place: one more than any recorded."""
    async with sessions() as session:
        last = (await session.execute(select(func.max(MediaSegment.publication)).where(
            MediaSegment.session_id == session_id, MediaSegment.place_id == place_id))).scalar_one()
    return (last or 0) + 1


RTP_WRAP = 1 << 32


class TrackClock:
    """One track's RTP clock mapped onto the server's (RFC 3550 §5.1: 32-bit timestamps from a random start).

    Timestamps are unwrapped: each is taken as the nearest, forward or back, to the one before, so a stream goes
    on past 2**32 and a reordered packet stays in place. A packet's media time is its unwrapped timestamp since
    the track's first, in seconds; its time on the server's clock is `base + media`, where base is the earliest
    that any packet so far implies for the first. A packet held up (the first, behind a busy loop, say) never
    pushes the track's time line later than its least delayed packet puts it. Times are read as packets are
    muxed, so a segment's origin and its packets follow the latest base."""

    def __init__(self, timestamp: int, rate: int, arrival: float) -> None:
        self.rate = rate
        self._first = self._last = timestamp  # unwrapped
        self._last_raw = timestamp % RTP_WRAP
        self.base = arrival

    def media(self, timestamp: int, arrival: float) -> float:
        """A packet's media time; lowers `base` if the packet came earlier than any before it implied."""
        step = (timestamp - self._last_raw) % RTP_WRAP
        if step >= RTP_WRAP // 2:
            step -= RTP_WRAP  # an earlier timestamp: a reordered or repeated packet
        self._last += step
        self._last_raw = timestamp % RTP_WRAP
        media = (self._last - self._first) / self.rate
        self.base = min(self.base, arrival - media)
        return media

    def time(self, media: float) -> float:
        """A media time on the server's clock, by the least delayed packet so far."""
        return self.base + media


@dataclass
class ClosedSegment:
    """What a closed segment recorded, as it went into media_segment and the ledger."""

    public_id: str
    storage_key: str
    publication: int
    seq: int
    sha256: str
    size_bytes: int
    duration_ms: int
    video_frames: int
    audio_frames: int


async def segment_opened(session: AsyncSession, ref: PublicationRef, *, segment_id: str, seq: int, storage_key: str,
                         started_at: datetime, recorder: str) -> None:
    """A segment of the publication opened: its row (ended_at NULL until it closes) and its ledger entry."""
    session.add(MediaSegment(public_id=segment_id, session_id=ref.session_id, place_id=ref.place_id,
                             publisher_user_id=ref.publisher_user_id, publication=ref.publication, seq=seq,
                             storage_key=storage_key, started_at=started_at, recorder=recorder))
    await session.flush()
    await ledger.append(session, actor=ref.publisher_public_id, action="evaluation.media.segment_opened",
                        entity=session_entity(ref.session_public_id),
                        payload={"segment": segment_id, "place": ref.place_public_id, "publication": ref.publication,
                                 "seq": seq, "storage_key": storage_key, "started_at": started_at.isoformat()})


async def segment_closed(session: AsyncSession, ref: PublicationRef, closed: ClosedSegment, *, started_at: datetime,
                         ended_at: datetime) -> None:
    """A segment stored under its final name: its row gets what it recorded, and the ledger its hash."""
    row = (await session.execute(select(MediaSegment).where(MediaSegment.public_id == closed.public_id)
                                 .with_for_update())).scalar_one()
    row.ended_at, row.duration_ms, row.size_bytes = ended_at, closed.duration_ms, closed.size_bytes
    row.sha256, row.video_frames, row.audio_frames = closed.sha256, closed.video_frames, closed.audio_frames
    await ledger.append(session, actor=ledger.SYSTEM, action="evaluation.media.segment_closed",
                        entity=session_entity(ref.session_public_id),
                        payload={"segment": closed.public_id, "place": ref.place_public_id,
                                 "publication": closed.publication, "seq": closed.seq,
                                 "storage_key": closed.storage_key, "sha256": closed.sha256,
                                 "size_bytes": closed.size_bytes, "duration_ms": closed.duration_ms,
                                 "video_frames": closed.video_frames, "audio_frames": closed.audio_frames,
                                 "started_at": started_at.isoformat(), "ended_at": ended_at.isoformat()})


@dataclass
class _Segment:
    seq: int
    key: str
    clock: TrackClock  # the clock of its first frame
    first_media: float  # that frame's media time
    started_at: datetime
    pending: PendingFile
    container: av.container.OutputContainer
    streams: dict[str, av.stream.Stream]
    public_id: str = ""
    last_pts: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    end_ms: int = 0
    video_step_ms: int = 66

    @property
    def origin(self) -> float:
        """Its first frame's time on the server's clock."""
        return self.clock.time(self.first_media)


class PlaceRecorder:
    """Records one publication. `push` is called for every packet as it arrives; a task of its own muxes."""

    def __init__(self, *, sessions: async_sessionmaker, storage: Storage, ref: PublicationRef, kinds: set[str],
                 mimes: dict[str, str], segment_s: float,
                 request_keyframe: Callable[[], Awaitable[object]], seq_from: int = 0,
                 recorder_id: str = "web") -> None:
        self._sessions, self._storage, self.ref = sessions, storage, ref
        self._kinds, self._mimes, self._segment_s = set(kinds), dict(mimes), segment_s
        self._request_keyframe = request_keyframe
        self._recorder_id = recorder_id  # media_segment.recorder: who closes the segment (recovery.py)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._clocks: dict[str, TrackClock] = {}
        self._segment: _Segment | None = None
        self._previous: _Segment | None = None  # the segment before the open one, until its late audio is in
        self._early: list[tuple[TrackClock, float, bytes]] = []  # audio received before the first key frame
        self._seq = seq_from  # the publication's segments recorded before this recorder (a renegotiation)
        self._rotation_asked = False
        self._closing: set[asyncio.Task] = set()
        self.closed: list[ClosedSegment] = []
        self._task: asyncio.Task | None = None
        self._abandoned = False
        self._h264 = self._mimes.get("video", "").lower() == "video/h264"
        self._parameter_sets: bytes | None = None  # H.264: the latest SPS and PPS seen, Annex B
        self._loop = asyncio.get_running_loop()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"recorder {self.ref.place_public_id}")

    @property
    def segments_opened(self) -> int:
        """The seq of the publication's last segment so far."""
        return self._seq

    def push(self, kind: str, timestamp: int, clock_rate: int, data: bytes, keyframe: bool,
             arrival: float | None = None) -> None:
        """Queue one packet for muxing; `arrival` is the loop's time it arrived (now unless given)."""
        arrival = self._loop.time() if arrival is None else arrival
        clock = self._clocks.get(kind)
        if clock is None or clock.rate != clock_rate:
            clock = self._clocks[kind] = TrackClock(timestamp, clock_rate, arrival)
        self._queue.put_nowait((kind, clock, clock.media(timestamp, arrival), data, keyframe))

    async def stop(self) -> None:
        """Close the open segment (it plays) and wait for every segment to be stored and recorded."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def abandon(self) -> None:
        """Stop without closing the open segment, as a crash would (its temporary file is left behind)."""
        self._abandoned = True
        if self._task is not None:
            self._task.cancel()

    # -- the muxing task ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    break
                try:
                    await self._write(*item)
                except Exception:  # noqa: BLE001 - one bad packet must not end the recording
                    log.exception("recording %s: a packet could not be written", self.ref.place_public_id)
        finally:
            if not self._abandoned:
                for seg in (self._previous, self._segment):
                    if seg is not None:
                        self._close(seg)
                self._previous = self._segment = None

    async def _write(self, kind: str, clock: TrackClock, media: float, data: bytes, keyframe: bool) -> None:
        t = clock.time(media)
        if self._h264 and kind == "video" and keyframe:
            self._parameter_sets = h264_parameter_sets(data) or self._parameter_sets
        seg = self._segment
        has_video = "video" in self._kinds
        if seg is None:
            if has_video and not (kind == "video" and keyframe):
                if kind == "video" and not self._rotation_asked:
                    self._rotation_asked = True  # the first key frame was lost or is not yet due: ask for one
                    asyncio.create_task(self._request_keyframe())
                elif kind == "audio":
                    # the key frame may still be on its way (video has its own, slower receive path): the audio
                    # sent from its time on goes in the first segment once it opens
                    self._early.append((clock, media, data))
                    del self._early[:-EARLY_AUDIO_MAX]
                return  # a segment begins on a video key frame
            seg = self._segment = await self._open(clock, media, data if kind == "video" else None)
        elif kind == "video" and t - seg.origin >= self._segment_s:
            if keyframe:
                self._hand_over(seg)
                seg = self._segment = await self._open(clock, media, data)
            elif not self._rotation_asked:
                self._rotation_asked = True
                asyncio.create_task(self._request_keyframe())
        elif not has_video and t - seg.origin >= self._segment_s:
            self._close(seg)
            seg = self._segment = await self._open(clock, media, None)
        previous = self._previous
        if previous is not None:
            if kind == "audio" and t < seg.origin:
                seg = previous  # sent before the new segment's first frame, received after it: the previous one's
            elif kind == "audio" or t - seg.origin >= HANDOVER_S:
                self._previous = None
                self._close(previous)
        self._mux(seg, kind, t, data, keyframe)
        if self._early:  # the first segment has just opened on its key frame: the audio that waited for it
            early, self._early = self._early, []
            for a_clock, a_media, a_data in early:
                self._mux(seg, "audio", a_clock.time(a_media), a_data, True)

    def _hand_over(self, seg: _Segment) -> None:
        """A new segment is opening after `seg`: `seg` stays open for the audio sent before the new one's first
        frame that is still on its way (each track has its own receive path), and closes when the audio passes
        that frame, or HANDOVER_S into the new segment."""
        if self._previous is not None:
            self._close(self._previous)
        self._previous = seg

    def _mux(self, seg: _Segment, kind: str, t: float, data: bytes, keyframe: bool) -> None:
        pts = round((t - seg.origin) * 1000)
        last = seg.last_pts.get(kind)
        if pts < 0 and kind == "audio":
            return  # audio from before the publication's first key frame: no segment to go in
        if last is not None and pts <= last:
            pts = last + 1
        pts = max(pts, 0)  # video: the first frame's clock was corrected earlier since the segment opened
        if kind == "video" and last is not None:
            seg.video_step_ms = max(1, pts - last)
        seg.last_pts[kind] = pts
        packet = av.Packet(data)
        packet.stream = seg.streams[kind]
        packet.pts = packet.dts = pts
        packet.time_base = MS
        packet.is_keyframe = keyframe
        seg.container.mux(packet)
        seg.frames[kind] += 1
        seg.end_ms = max(seg.end_ms, pts + (seg.video_step_ms if kind == "video" else AUDIO_FRAME_MS))

    async def _open(self, clock: TrackClock, media: float, keyframe_data: bytes | None) -> _Segment:
        t = clock.time(media)
        self._seq += 1
        self._rotation_asked = False
        video_mime = self._mimes.get("video", "").lower()
        webm = video_mime in ("", "video/vp8") and self._mimes.get("audio", "audio/opus").lower() == "audio/opus"
        suffix = ".webm" if webm else ".mkv"
        ref = self.ref
        key = f"{ref.session_public_id}/{ref.place_public_id}/{ref.publication:04d}-{self._seq:05d}{suffix}"
        pending = await self._storage.open_pending()
        container = av.open(pending.file, "w", format="webm" if webm else "matroska")
        streams: dict[str, av.stream.Stream] = {}
        if "video" in self._kinds:
            if video_mime in ("", "video/vp8"):
                stream = container.add_stream("vp8", rate=30)
                size = vp8_size(keyframe_data) if keyframe_data else None
            else:
                # H.264 arrives as Annex B; given the SPS and PPS as Annex B extradata, the Matroska muxer writes
                # them as the avcC CodecPrivate and each frame length-prefixed, as players expect
                stream = container.add_stream("h264", rate=30, options={"preset": "ultrafast", "tune": "zerolatency"})
                stream.codec_context.flags = stream.codec_context.flags & ~GLOBAL_HEADER
                if self._parameter_sets:
                    stream.codec_context.extradata = self._parameter_sets
                size = (h264_size(keyframe_data) if keyframe_data else None) or (
                    h264_size(self._parameter_sets) if self._parameter_sets else None)
            stream.width, stream.height = size or (640, 480)
            streams["video"] = stream
        if "audio" in self._kinds:
            stream = container.add_stream("opus", rate=48000)
            stream.codec_context.extradata = OPUS_HEAD
            streams["audio"] = stream
        wall = datetime.now(timezone.utc) - _ago(self._loop.time() - t)
        seg = _Segment(self._seq, key, clock, media, wall, pending, container, streams)
        seg.public_id = public_id("SG", 6)
        async with self._sessions() as session, session.begin():
            await segment_opened(session, ref, segment_id=seg.public_id, seq=seg.seq, storage_key=key,
                                 started_at=wall, recorder=self._recorder_id)
        return seg

    def _close(self, seg: _Segment) -> None:
        task = asyncio.create_task(self._finish(seg), name=f"close {seg.key}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _finish(self, seg: _Segment) -> None:
        try:
            await asyncio.to_thread(seg.container.close)
            await seg.pending.commit(seg.key)
            sha, size = await asyncio.to_thread(digest_file, self._storage, seg.key)
        except Exception:
            log.exception("recording %s: segment %s could not be closed", self.ref.place_public_id, seg.key)
            await seg.pending.discard()
            return
        ended = seg.started_at + _ago(seg.end_ms / 1000)
        closed = ClosedSegment(seg.public_id, seg.key, self.ref.publication, seg.seq, sha, size, seg.end_ms,
                               seg.frames["video"], seg.frames["audio"])
        async with self._sessions() as session, session.begin():
            await segment_closed(session, self.ref, closed, started_at=seg.started_at, ended_at=ended)
        self.closed.append(closed)
        log.info("recorded %s: %d ms, %d video and %d audio frames", seg.key, seg.end_ms, seg.frames["video"],
                 seg.frames["audio"])


def _ago(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def digest_file(storage: Storage, key: str) -> tuple[str, int]:
    """A stored file's SHA-256 (hex) and size, read in 1 MiB chunks (blocking: run it in a thread)."""
    digest = hashlib.sha256()
    size = 0
    with storage.path(key).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
