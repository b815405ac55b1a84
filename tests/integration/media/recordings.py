"""Building blocks for the playback, timeline and retention tests: a scheduled session at the two Guangdong
centres (made over HTTP), its supervisor and strangers, and real WebM segments (VP8 + Opus, encoded here with
PyAV) stored through core.storage and recorded by the recorder's own steps (open, close)."""
from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

import array
import math

import av
from sqlalchemy import select

from core.ids import public_id
from core.settings import Settings
from evaluation.media import recorder
from evaluation.media.playback import media_storage
from evaluation.media.recorder import PublicationRef
from evaluation.models import EvaluationSession, Place
from evidence import ledger_service as ledger
from tests.helpers import Actor, staff
from tests.integration.evaluation.conftest import (Venue, at, guangdong_centres, organisation, post,
                                                   tender_with_lot)

_n = itertools.count(1)


@dataclass
class Clip:
    data: bytes
    video_frames: int
    audio_frames: int
    duration_ms: int


def _video_frame(i: int, width: int, height: int) -> av.VideoFrame:
    """A grey frame with a bright bar that moves with i (yuv420p planes filled directly)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    bar = (i * 7) % width
    luma = bytearray(b"\x40" * (width * height))
    for y in range(height):
        luma[y * width + bar:y * width + min(width, bar + 10)] = b"\xe0" * (min(width, bar + 10) - bar)
    for plane, data in zip(frame.planes, (bytes(luma), b"\x80" * (width * height // 4),
                                          b"\x80" * (width * height // 4))):
        if plane.line_size == plane.width:
            plane.update(data)
        else:  # padded lines
            stride, w = plane.line_size, plane.width
            padded = bytearray(stride * plane.height)
            for y in range(plane.height):
                padded[y * stride:y * stride + w] = data[y * w:(y + 1) * w]
            plane.update(bytes(padded))
    return frame


def webm_clip(seconds: float = 2.0, fps: int = 15, width: int = 160, height: int = 120) -> Clip:
    """A small WebM file: VP8 video (a moving bar) and Opus audio (a tone), as a browser would send them."""
    out = io.BytesIO()
    container = av.open(out, mode="w", format="webm")
    video = container.add_stream("libvpx", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = container.add_stream("libopus", rate=48000)
    audio.layout = "mono"
    frames = int(seconds * fps)
    vcount = acount = 0
    for i in range(frames):
        frame = _video_frame(i, width, height)
        frame.pts, frame.time_base = i, Fraction(1, fps)
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    samples = 960
    for i in range(int(seconds * 48000 / samples)):
        pcm = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * (n + i * samples) / 48000))
                                for n in range(samples)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * samples, Fraction(1, 48000)
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)
    container.close()
    data = out.getvalue()
    with av.open(io.BytesIO(data)) as check:
        vcount = sum(1 for p in check.demux(check.streams.video[0]) if p.size)
    with av.open(io.BytesIO(data)) as check:
        acount = sum(1 for p in check.demux(check.streams.audio[0]) if p.size)
    return Clip(data, vcount, acount, int(seconds * 1000))


def decoded_frames(data: bytes) -> int:
    """How many video frames a player decodes from these bytes."""
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


async def store_segment(sessions, settings: Settings, *, session_id: str, place_id: str, started_at: datetime,
                        clip: Clip, publication: int = 1, seq: int = 1, closed: bool = True) -> str:
    """Store the clip as a segment of the place through the recorder's own steps: the file through the media
    store, the segment opened (its row and ledger entry) and, if `closed`, closed with the clip's hash, duration
    and frame counts. Only the muxing is skipped: the clip was encoded here. An open segment's file is stored
    too, so a sweep can be seen to leave it alone."""
    seg_id = public_id("SG", 6)
    key = f"{session_id}/{place_id}/{publication:04d}-{seq:05d}.webm"
    stored = await media_storage(settings).put_bytes(clip.data, key=key)
    async with sessions() as session, session.begin():
        es = (await session.execute(select(EvaluationSession).where(
            EvaluationSession.public_id == session_id))).scalar_one()
        place = (await session.execute(select(Place).where(Place.public_id == place_id))).scalar_one()
        ref = PublicationRef(es.id, session_id, place.id, place_id, None, ledger.SYSTEM, publication)
        await recorder.segment_opened(session, ref, segment_id=seg_id, seq=seq, storage_key=key,
                                      started_at=started_at, recorder="web")
    if not closed:
        return seg_id
    async with sessions() as session, session.begin():
        await recorder.segment_closed(
            session, ref, recorder.ClosedSegment(seg_id, key, publication, seq, stored.sha256, stored.size,
                                                 clip.duration_ms, clip.video_frames, clip.audio_frames),
            started_at=started_at, ended_at=started_at + timedelta(milliseconds=clip.duration_ms))
    return seg_id


@dataclass
class Scheduled:
    session_id: str
    agent: Actor
    supervisor: Actor
    other_supervisor: Actor
    tender: str
    guangzhou: Venue
    zhongshan: Venue

    @property
    def url(self) -> str:
        return f"/api/v1/evaluation-sessions/{self.session_id}"


async def scheduled_session(sessions, client, admin: Actor) -> Scheduled:
    """A lot's session scheduled at the Zhongshan centre (main) and the Guangzhou one (sub), over HTTP."""
    agent = await staff(sessions, client, "agent", organisation_public_id=await organisation(
        sessions, f"广东中诚招标代理{next(_n)}有限公司"))
    ref = await tender_with_lot(sessions, agent)
    supervisor = await staff(sessions, client, "supervisor", organisation_public_id=ref.supervisor_org)
    other_supervisor = await staff(sessions, client, "supervisor", organisation_public_id=await organisation(
        sessions, f"广州市住房和城乡建设局{next(_n)}科"))
    guangzhou, zhongshan = await guangdong_centres(client, admin)
    body = {"tender": ref.code, "label": "第一标段评标"}
    main = await post(client, f"/api/v1/rooms/{zhongshan.room}/bookings", agent,
                      {**body, "starts_at": at(5, 9), "ends_at": at(5, 17), "lot": ref.lot_id}, 201)
    sub = await post(client, f"/api/v1/rooms/{guangzhou.room}/bookings", agent,
                     {**body, "starts_at": at(5, 8), "ends_at": at(5, 18)}, 201)
    created = await post(client, f"/api/v1/lots/{ref.lot_id}/evaluation-sessions", agent,
                         {"main_booking": main["booking_id"], "sub_bookings": [sub["booking_id"]]}, 201)
    return Scheduled(created["session_id"], agent, supervisor, other_supervisor, ref.code, guangzhou, zhongshan)
