"""Real aiortc peers for the media tests: publishers that send pre-encoded VP8 + Opus (encoded once with PyAV,
so sending is packetizing only), and viewers that keep what they receive encoded (so the process's count of
aiortc decodes and encodes is the server's) and decode it afterwards with PyAV on their own."""
from __future__ import annotations

import asyncio
import fractions
import functools
import json
import math
import struct
import time
from dataclasses import dataclass, field

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from evaluation.media import passthrough

FPS = 15
WIDTH, HEIGHT = 320, 240
GOP = 15  # a key frame every second
CLIP_FRAMES = 30
AUDIO_MS = 20


def _gradient(enc) -> list[tuple[bytes, bool]]:
    """CLIP_FRAMES frames of a moving gradient through `enc`: (packet bytes, is key frame), first one a key frame."""
    video: list[tuple[bytes, bool]] = []
    for i in range(CLIP_FRAMES):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for j, plane in enumerate(frame.planes):
            plane.update(bytes([(i * 7 + j * 50) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = i, enc.time_base
        video += [(bytes(p), p.is_keyframe) for p in enc.encode(frame)]
    video += [(bytes(p), p.is_keyframe) for p in enc.encode(None)]
    assert video[0][1] and len(video) == CLIP_FRAMES
    return video


@functools.lru_cache(maxsize=1)
def clip() -> tuple[list[tuple[bytes, bool]], list[bytes]]:
    """2 s of VP8 (a moving gradient, a key frame each second) and 1 s of Opus (a 440 Hz tone), encoded once."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.framerate = FPS
    enc.gop_size = GOP
    enc.bit_rate = 300_000
    enc.options = {"deadline": "realtime", "cpu-used": "8"}
    video = _gradient(enc)
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate, aenc.layout, aenc.format = 48000, "stereo", "s16"
    aenc.time_base = fractions.Fraction(1, 48000)
    audio: list[bytes] = []
    samples = 48000 * AUDIO_MS // 1000
    for i in range(50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.sample_rate, frame.pts = 48000, i * samples
        frame.planes[0].update(b"".join(struct.pack("<hh", v, v) for v in (
            int(6000 * math.sin(2 * math.pi * 440 * (n + i * samples) / 48000)) for n in range(samples))))
        audio += [bytes(p) for p in aenc.encode(frame)]
    return video, audio


@functools.lru_cache(maxsize=1)
def h264_clip() -> list[tuple[bytes, bool]]:
    """2 s of H.264 (constrained baseline, as WebRTC sends it; Annex B, the parameter sets with each key frame)."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.framerate = FPS
    enc.gop_size = GOP
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    video = _gradient(enc)
    return video


class PacketTrack(MediaStreamTrack):
    """Yields the pre-encoded clip as av.Packets in real time, looping; aiortc's sender only packetizes them."""

    def __init__(self, kind: str, codec: str = "vp8") -> None:
        super().__init__()
        self.kind = kind
        self.codec = codec
        self.sent = 0
        self.paused = False
        self._start: float | None = None
        self.first_sent_at: float | None = None
        self.last_sent_at: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        video, audio = clip()
        while self.paused:
            await asyncio.sleep(0.05)
            self._start = None
        if self._start is None:
            self._start = time.monotonic() - self.sent * self._step()
        due = self._start + self.sent * self._step()
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        n = self.sent
        if self.kind == "video":
            data, key = (h264_clip() if self.codec == "h264" else video)[n % len(video)]
            packet = av.Packet(data)
            packet.pts, packet.time_base = n * (90000 // FPS), fractions.Fraction(1, 90000)
            packet.is_keyframe = key
        else:
            packet = av.Packet(audio[n % len(audio)])
            packet.pts, packet.time_base = n * 960, fractions.Fraction(1, 48000)
        self.sent += 1
        now = time.monotonic()
        self.first_sent_at = self.first_sent_at or now
        self.last_sent_at = now
        return packet

    def _step(self) -> float:
        return 1 / FPS if self.kind == "video" else AUDIO_MS / 1000


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


def ws_url(session_id: str, tail: str) -> str:
    return f"/api/v1/media/sessions/{session_id}/{tail}"


async def next_json(ws, timeout: float = 15.0) -> dict:
    msg = await ws.receive(timeout=timeout)
    assert msg.type.name == "TEXT", (msg.type, msg.data, msg.extra)
    return json.loads(msg.data)


@dataclass
class Publisher:
    ws: object
    pc: RTCPeerConnection
    video: PacketTrack
    audio: PacketTrack
    publication: int

    async def close(self) -> None:
        self.video.stop()
        self.audio.stop()
        await self.pc.close()
        await self.ws.close()

    async def stop_sending(self, received, quiet_s: float = 2.0, timeout: float = 15.0) -> dict[str, int]:
        """Stop sending, and return once the server has `received` (a callable: kind -> frames so far) every frame
        sent but the last of each track (aiortc's jitter buffer holds a frame until the next one arrives), or
        nothing more has arrived for `quiet_s`. What is still in flight when a publisher hangs up is lost to
        any recorder; this lets a test count only what could have arrived."""
        self.video.paused = self.audio.paused = True
        loop = asyncio.get_running_loop()
        last, changed, deadline = None, loop.time(), loop.time() + timeout
        while loop.time() < deadline:
            got = {kind: received(kind) for kind in ("video", "audio")}
            if got["video"] >= self.video.sent - 1 and got["audio"] >= self.audio.sent - 1:
                break
            if got != last:
                last, changed = got, loop.time()
            elif loop.time() - changed >= quiet_s:
                break
            await asyncio.sleep(0.05)
        return {kind: received(kind) for kind in ("video", "audio")}


async def publish(client, session_id: str, place_id: str, headers: dict, base: str = "",
                  video_codec: str = "vp8") -> Publisher:
    """Publish a place through `client` (the test client, or an aiohttp ClientSession with `base` the server's
    URL); `video_codec="h264"` offers H.264 only."""
    await asyncio.to_thread(clip)  # encoded once, off the loop: the peers' timers must keep running
    if video_codec == "h264":
        await asyncio.to_thread(h264_clip)
    ws = await client.ws_connect(base + ws_url(session_id, f"places/{place_id}/publish"), headers=headers)
    ready = await next_json(ws)
    assert ready["type"] == "ready", ready
    pc = peer()
    video, audio = PacketTrack("video", video_codec), PacketTrack("audio")
    sending = pc.addTransceiver(video, direction="sendonly")
    if video_codec == "h264":
        sending.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                     if c.mimeType.lower() in ("video/h264", "video/rtx")])
    pc.addTransceiver(audio, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
    answer = await next_json(ws)
    assert answer["type"] == "answer", answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return Publisher(ws, pc, video, audio, answer["publication"])


@dataclass
class Received:
    packets: list = field(default_factory=list)  # (monotonic arrival, bytes, keyframe)


@dataclass
class Watcher:
    ws: object
    pc: RTCPeerConnection
    places: dict
    received: dict = field(default_factory=dict)  # (place, kind) -> Received
    events: list = field(default_factory=list)
    _tasks: list = field(default_factory=list)

    def count(self, place: str, kind: str) -> int:
        r = self.received.get((place, kind))
        return len(r.packets) if r else 0

    async def send(self, message: dict) -> None:
        await self.ws.send_json(message)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()
        await self.ws.close()


async def watch(client, session_id: str, headers: dict | None, *, tail: str = "watch",
                token: str | None = None) -> Watcher:
    """Connect a receive-only viewer; its tracks are kept encoded (passthrough), every packet kept."""
    ws = await client.ws_connect(ws_url(session_id, tail), headers=headers or {})
    if token is not None:
        await ws.send_json({"type": "auth", "token": token})
    offer = await next_json(ws)
    assert offer["type"] == "offer", offer
    pc = peer()
    by_mid = {mids[kind]: (place, kind) for place, mids in offer["places"].items() for kind in ("video", "audio")}
    watcher = Watcher(ws, pc, offer["places"])

    async def drain(track, key) -> None:
        store = watcher.received.setdefault(key, Received())
        try:
            while True:
                packet = await track.recv()
                store.packets.append((time.monotonic(), bytes(packet), packet.is_keyframe))
        except MediaStreamError:
            return

    @pc.on("track")
    def on_track(track) -> None:
        receiver = passthrough.receiver_of(pc, track)
        passthrough.mark_passthrough(receiver)
        mid = next(t.mid for t in pc.getTransceivers() if t.receiver is receiver)
        watcher._tasks.append(asyncio.ensure_future(drain(track, by_mid[mid])))

    async def events() -> None:
        while True:
            msg = await ws.receive()
            if msg.type.name != "TEXT":
                return
            watcher.events.append(json.loads(msg.data))

    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    # the viewer shares this process (and its late event loop) with the server, unlike a browser on its own
    # machine: its sockets get the same room for a key frame's burst as the server's publishers
    passthrough.widen_receive_buffers(pc)
    await ws.send_json({"type": "answer", "sdp": pc.localDescription.sdp})
    watcher._tasks.append(asyncio.ensure_future(events()))
    return watcher


def decode_video(packets: list[bytes]) -> int:
    """How many of these VP8 frames PyAV decodes, starting at the first key frame."""
    dec = av.CodecContext.create("vp8", "r")
    n = 0
    for data in packets:
        for _frame in dec.decode(av.Packet(data)):
            n += 1
    return n


def decode_file(path) -> dict:
    """Decode a recording completely with PyAV: frames per stream and its duration in seconds."""
    with av.open(str(path)) as container:
        duration = container.duration / 1_000_000 if container.duration else None
        counts = {"video": 0, "audio": 0}
        for frame in container.decode(*container.streams):
            counts["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    return {**counts, "duration": duration}


async def until(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
