"""Receiving encoded media from aiortc without decoding it, and counting every real decode and encode.

Stock aiortc hands each reassembled frame of an incoming track to a decoder thread
(`aiortc.rtcrtpreceiver.decoder_worker`, which resolves the codec through the module-level `get_decoder`), so
every frame a place publishes would be decoded on the server. The media plane keeps frames encoded: a receiver
marked with `mark_passthrough` wraps each reassembled frame (its `.data`, and `.timestamp` at the codec's clock
rate: 90 kHz for video, 48 kHz for Opus) in an `av.Packet` and hands it to the track as is, on the event loop,
as the frame comes out of the jitter buffer: its decoder queue (`InlineFrames`) does that in `put`, so no frame
crosses to a thread and back (a lock, a wake-up and a cross-thread callback per frame, which cost a quarter of
the server's time with 48 tracks). The decoder thread aiortc still starts only waits for the end of the track.
Receivers that are not marked (a test's viewer, say) keep aiortc's decoder.

On the sending side aiortc's `RTCRtpSender._next_encoded_frame` packs an `av.Packet` a track yields
(`encoder.pack`) and only encodes `av.Frame`s. A viewer's picture loss indication (PLI/FIR) would set a flag only an
encoder reads, so a viewer that lost a frame the retransmissions could not repair would stay frozen until the
publisher's next key frame, which a browser sends only when asked; `forward_picture_loss` hands the indication to
the relay instead, which asks the publisher.

This reaches into aiortc's internals, so it is pinned: `check_internals()` refuses any other aiortc version and
verifies every attribute used here; `install()` calls it, and tests/integration/media/test_passthrough.py fails
loudly when an upgrade changes them.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import socket
import threading
from collections import Counter
from typing import Any, Callable

import av

from evaluation.media import estimation

log = logging.getLogger(__name__)

PINNED_AIORTC = "1.16.0"
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
_MARK = "bidroom_passthrough"

# the internals this module relies on, checked by check_internals()
_RECEIVER_ATTRS = ("_RTCRtpReceiver__decoder_queue", "_RTCRtpReceiver__remote_streams")
_RECEIVER_METHODS = ("_send_rtcp_pli", "receive", "getStats")
_SENDER_METHODS = ("_next_encoded_frame", "_send_keyframe", "_handle_rtcp_packet")


class AiortcInternalsChanged(RuntimeError):
    """The installed aiortc is not the version whose internals this module was written against."""


def _codec_classes() -> tuple[list[type], list[type]]:
    from aiortc.codecs import g711, g722, h264, opus, vpx
    decoders = [vpx.Vp8Decoder, h264.H264Decoder, opus.OpusDecoder, g711.PcmDecoder, g722.G722Decoder]
    encoders = [vpx.Vp8Encoder, h264.H264Encoder, opus.OpusEncoder, g711.PcmEncoder, g722.G722Encoder]
    return decoders, encoders


def check_internals() -> None:
    """Raise AiortcInternalsChanged unless aiortc is the pinned version with every internal used here."""
    import aiortc
    from aiortc import rtcrtpreceiver, rtcrtpsender
    from aiortc.jitterbuffer import JitterFrame

    problems = []
    if aiortc.__version__ != PINNED_AIORTC:
        problems.append(f"aiortc {aiortc.__version__} is installed; this module is pinned to {PINNED_AIORTC}")
    if not callable(getattr(rtcrtpreceiver, "decoder_worker", None)):
        problems.append("aiortc.rtcrtpreceiver.decoder_worker is gone")
    if not callable(getattr(rtcrtpreceiver, "get_decoder", None)):
        problems.append("aiortc.rtcrtpreceiver.get_decoder is gone")
    import inspect
    worker = getattr(rtcrtpreceiver, "_bidroom_stock_decoder_worker", getattr(rtcrtpreceiver, "decoder_worker", None))
    if worker is not None and list(inspect.signature(worker).parameters) != ["loop", "input_q", "output_q",
                                                                             "decode_error"]:
        problems.append("decoder_worker's parameters changed")
    frame = JitterFrame(b"x", 1)
    if (frame.data, frame.timestamp) != (b"x", 1):
        problems.append("JitterFrame no longer carries .data and .timestamp")
    for name in _RECEIVER_METHODS:
        if not callable(getattr(rtcrtpreceiver.RTCRtpReceiver, name, None)):
            problems.append(f"RTCRtpReceiver.{name} is gone")
    receive_src = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver.__init__)
    for attr in ("__decoder_queue", "__remote_streams", "__remote_bitrate_estimator"):
        if f"self.{attr}" not in receive_src:
            problems.append(f"RTCRtpReceiver no longer sets self.{attr}")
    # InlineFrames: the packet handler puts (codec, frame) on the decoder queue, the worker gets the track's queue
    handler = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    if "self.__decoder_queue.put((codec, encoded_frame))" not in handler:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer puts (codec, frame) on its decoder queue")
    # estimation.ThrottledRemb: each estimate the estimator returns is sent as a REMB
    if "remb = self.__remote_bitrate_estimator.add(" not in handler or "if self.__rtcp_ssrc is not None and remb " \
            "is not None:" not in handler:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer sends a REMB for each estimate its estimator "
                        "returns")
    if "self._track._queue" not in inspect.getsource(rtcrtpreceiver.RTCRtpReceiver.receive):
        problems.append("RTCRtpReceiver.receive no longer hands its track's queue to the decoder worker")
    for name in _SENDER_METHODS:
        if not callable(getattr(rtcrtpsender.RTCRtpSender, name, None)):
            problems.append(f"RTCRtpSender.{name} is gone")
    if "encoder.pack(" not in inspect.getsource(rtcrtpsender.RTCRtpSender._next_encoded_frame):
        problems.append("RTCRtpSender no longer packs pre-encoded packets")
    if "self._send_keyframe()" not in inspect.getsource(rtcrtpsender.RTCRtpSender._handle_rtcp_packet):
        problems.append("RTCRtpSender no longer answers a picture loss indication with _send_keyframe")
    decoders, encoders = _codec_classes()
    for cls in decoders:
        if not callable(getattr(cls, "decode", None)):
            problems.append(f"{cls.__name__}.decode is gone")
    for cls in encoders:
        if not callable(getattr(cls, "encode", None)) or not callable(getattr(cls, "pack", None)):
            problems.append(f"{cls.__name__}.encode/pack is gone")
    from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
    if not isinstance(getattr(RTCIceTransport, "iceGatherer", None), property):
        problems.append("RTCIceTransport.iceGatherer is gone")
    if "self._connection" not in inspect.getsource(RTCIceGatherer.__init__):
        problems.append("RTCIceGatherer no longer keeps its aioice connection in self._connection")
    problems.extend(estimation.check_internals())
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))


# ---------------------------------------------------------------------------------------------------------
# Socket buffers

RECEIVE_BUFFER_BYTES = 4 << 20


def _set_receive_buffer(sock: socket.socket, size: int) -> None:
    """SO_RCVBUFFORCE where the process may (CAP_NET_ADMIN: above net.core.rmem_max), else SO_RCVBUF (capped)."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            return
        except PermissionError:
            pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def widen_receive_buffers(pc, size: int = RECEIVE_BUFFER_BYTES) -> int:
    """Give the connection's UDP sockets a receive buffer of `size` (without CAP_NET_ADMIN the kernel caps it at
    net.core.rmem_max; docs/OPERATIONS.md says how to raise that).

    A key frame arrives as a burst of packets; when the event loop is late to read (a busy machine), the
    default buffer overflows and the kernel drops packets (RcvbufErrors in /proc/net/snmp), losing frames up
    to the next key frame. Call after setLocalDescription, once the sockets exist. Returns how many sockets."""
    done = 0
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is None or id(dtls) in seen:
            continue
        seen.add(id(dtls))
        connection = getattr(dtls.transport.iceGatherer, "_connection", None)
        for protocol in getattr(connection, "_protocols", ()):
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                try:
                    _set_receive_buffer(sock, size)
                    done += 1
                except OSError as err:
                    log.warning("could not widen a media socket's receive buffer: %s", err)
    return done


# ---------------------------------------------------------------------------------------------------------
# Counting aiortc's real codec work, process-wide

class CodecCalls:
    """How many times aiortc's real decoders and encoders ran (`decode`, `encode`), and how often its packers
    ran (`pack`, which only packetizes). Process-wide: a test that wants the server's count keeps its own
    clients off aiortc's codecs too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self, kind: str) -> int:
        """Calls of one kind ("decode", "encode", "pack") over every codec."""
        with self._lock:
            return sum(n for k, n in self._counts.items() if k.endswith("." + kind))


CODEC_CALLS = CodecCalls()


def _counted(cls: type, method: str) -> None:
    original = cls.__dict__.get(method)
    if original is None or getattr(original, "_bidroom_counted", False):
        return
    key = f"{cls.__name__}.{method}"

    def wrapper(self, *args, **kwargs):
        CODEC_CALLS.add(key)
        return original(self, *args, **kwargs)

    wrapper._bidroom_counted = True  # type: ignore[attr-defined]
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(cls, method, wrapper)


# ---------------------------------------------------------------------------------------------------------
# The passthrough worker

def is_keyframe(mime: str, data: bytes) -> bool:
    """Whether an encoded frame starts a picture a decoder can begin with."""
    mime = mime.lower()
    if mime == "video/vp8":
        # RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame
        return len(data) > 0 and data[0] & 0x01 == 0
    if mime == "video/h264":
        # Annex B (as aiortc's depacketizer hands it on): an IDR slice (5) or a sequence parameter set (7)
        return any(nal[0] & 0x1F in (5, 7) for nal in annexb_nals(data))
    return True  # audio frames stand alone


def annexb_nals(data: bytes) -> list[bytes]:
    """The NAL units of an H.264 Annex B byte stream (ITU-T H.264 Annex B: each after a 00 00 01 or 00 00 00 01
    start code), without their start codes."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    nals = []
    for k, start in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[start:end]
        if k + 1 < len(starts):
            nal = nal.rstrip(b"\x00")  # the leading zero of a four-byte start code, and trailing zero bytes
        if nal:
            nals.append(nal)
    return nals


def h264_parameter_sets(data: bytes) -> bytes | None:
    """The sequence and picture parameter sets (NAL types 7 and 8) of an H.264 access unit, as Annex B: what a
    Matroska muxer turns into the track's avcC CodecPrivate; None when the frame carries none."""
    nals = annexb_nals(data)
    sps = [n for n in nals if n[0] & 0x1F == 7]
    pps = [n for n in nals if n[0] & 0x1F == 8]
    if not sps or not pps:
        return None
    return b"".join(b"\x00\x00\x00\x01" + n for n in sps[:1] + pps)


class _Bits:
    """An H.264 RBSP read bit by bit, with Exp-Golomb codes (H.264 §9.1)."""

    def __init__(self, nal: bytes) -> None:
        self.data = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes (§7.4.1)
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]  # IndexError past the end: a truncated SPS
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


_HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


def h264_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the sequence parameter set of an H.264 access unit (H.264 §7.3.2.1.1, with the
    frame cropping of §7.4.2.1.1), or None when it has none or it cannot be read."""
    sps = next((n for n in annexb_nals(data) if n[0] & 0x1F == 7), None)
    if sps is None:
        return None
    try:
        b = _Bits(sps)
        profile = b.u(8)
        b.u(16)  # constraint flags, level
        b.ue()  # seq_parameter_set_id
        chroma = 1
        if profile in _HIGH_PROFILES:
            chroma = b.ue()
            if chroma == 3:
                b.u(1)  # separate_colour_plane_flag
            b.ue(), b.ue(), b.u(1)  # bit depths, qpprime_y_zero_transform_bypass_flag
            if b.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma != 3 else 12):
                    if b.u(1):
                        last = nxt = 8
                        for _ in range(16 if i < 6 else 64):
                            if nxt:
                                nxt = (last + b.se() + 256) % 256
                            last = nxt or last
        b.ue()  # log2_max_frame_num_minus4
        poc_type = b.ue()
        if poc_type == 0:
            b.ue()
        elif poc_type == 1:
            b.u(1), b.se(), b.se()
            for _ in range(b.ue()):
                b.se()
        b.ue(), b.u(1)  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
        width_mbs, height_units = b.ue() + 1, b.ue() + 1
        frame_mbs_only = b.u(1)
        if not frame_mbs_only:
            b.u(1)  # mb_adaptive_frame_field_flag
        b.u(1)  # direct_8x8_inference_flag
        left = right = top = bottom = 0
        if b.u(1):  # frame_cropping_flag
            left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
    except (IndexError, ValueError):
        return None
    crop_x = 2 if chroma in (1, 2) else 1
    crop_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (left + right)
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (top + bottom)
    return (width, height) if width > 0 and height > 0 else None


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame header (RFC 6386 §9.1), or None."""
    if len(data) >= 10 and data[0] & 0x01 == 0 and data[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF
    return None


def to_packet(mime: str, clock_rate: int, data: bytes, timestamp: int) -> av.Packet:
    """An encoded frame as an av.Packet: pts in the codec's clock, the key frame flag set."""
    packet = av.Packet(data)
    packet.pts = packet.dts = timestamp
    packet.time_base = fractions.Fraction(1, clock_rate)
    packet.is_keyframe = is_keyframe(mime, data)
    return packet


class InlineFrames(queue.Queue):
    """A marked receiver's decoder queue. The receiver puts each reassembled frame here from its packet handler,
    on the event loop: the frame goes straight on the track's queue as an av.Packet. Only the end of the track
    (None) is queued, for the idle worker thread to pass on as aiortc's own worker does."""

    def __init__(self, output: asyncio.Queue) -> None:
        super().__init__()
        self.output = output

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
            return
        codec, encoded_frame = item
        self.output.put_nowait(to_packet(codec.mimeType, codec.clockRate, encoded_frame.data,
                                         encoded_frame.timestamp))


def _passthrough_worker(loop: asyncio.AbstractEventLoop, input_q: InlineFrames, output_q: asyncio.Queue) -> None:
    """decoder_worker for a marked receiver: its frames went to the track in InlineFrames.put, so this only waits
    for the end of the track (None, the one item ever queued) and passes it on."""
    input_q.get()
    asyncio.run_coroutine_threadsafe(output_q.put(None), loop)


_install_lock = threading.Lock()


def install() -> None:
    """Check aiortc's internals, then (once per process) route marked receivers around the decoder and count
    every real decode and encode. Idempotent."""
    from aiortc import rtcrtpreceiver

    with _install_lock:
        if getattr(rtcrtpreceiver, "_bidroom_stock_decoder_worker", None) is not None:
            return
        check_internals()
        stock: Callable[..., Any] = rtcrtpreceiver.decoder_worker

        def decoder_worker(loop, input_q, output_q, decode_error):
            if getattr(input_q, _MARK, False):
                return _passthrough_worker(loop, input_q, output_q)
            return stock(loop, input_q, output_q, decode_error)

        rtcrtpreceiver._bidroom_stock_decoder_worker = stock
        rtcrtpreceiver.decoder_worker = decoder_worker
        decoders, encoders = _codec_classes()
        for cls in decoders:
            _counted(cls, "decode")
        for cls in encoders:
            _counted(cls, "encode")
            _counted(cls, "pack")
        log.info("aiortc %s: passthrough receive installed", PINNED_AIORTC)


def mark_passthrough(receiver) -> None:
    """Make this receiver hand encoded packets to its track instead of decoded frames, and throttle its REMB
    feedback (`estimation.tune`). Call before the receiver starts (from the peer connection's "track" event, which
    fires in setRemoteDescription, once the receiver has its track)."""
    install()
    frames = InlineFrames(receiver.track._queue)
    setattr(frames, _MARK, True)
    receiver._RTCRtpReceiver__decoder_queue = frames
    estimation.tune(receiver)


def receiver_of(pc, track):
    """The RTCRtpReceiver of a remote track of this peer connection."""
    for transceiver in pc.getTransceivers():
        if transceiver.receiver is not None and transceiver.receiver.track is track:
            return transceiver.receiver
    return None


def forward_picture_loss(sender, on_picture_loss: Callable[[], None]) -> None:
    """Call `on_picture_loss` whenever the viewer at the other end of `sender` reports a lost picture (RFC 4585
    §6.3.1 PLI, RFC 5104 §3.5.1 FIR), instead of flagging a key frame for an encoder the relay does not have."""
    sender._send_keyframe = on_picture_loss


async def request_keyframe(receiver) -> bool:
    """Send a picture loss indication (RFC 4585 §6.3.1) for every stream the receiver has heard from; False
    when it has heard nothing yet (the publisher's first frame is a key frame anyway)."""
    ssrcs = list(receiver._RTCRtpReceiver__remote_streams)
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)
    return bool(ssrcs)
