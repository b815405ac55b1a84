"""Receiving encoded media from aiortc without decoding it, and counting every real decode and encode.

Stock aiortc hands each reassembled frame of an incoming track to a decoder thread
(`aiortc.rtcrtpreceiver.decoder_worker`, which resolves the codec through the module-level `get_decoder`), so
every frame a place publishes would be decoded on the server. The media plane keeps frames encoded: a receiver
marked with `mark_passthrough` gets a worker that wraps each reassembled frame (its `.data`, and `.timestamp` at
the codec's clock rate: 90 kHz for video, 48 kHz for Opus) in an `av.Packet` and hands it to the track as is.
Receivers that are not marked (a test's viewer, say) keep aiortc's decoder.

On the sending side nothing needs patching: aiortc's `RTCRtpSender._next_encoded_frame` packs an `av.Packet` a
track yields (`encoder.pack`) and only encodes `av.Frame`s.

This reaches into aiortc's internals, so it is pinned: `check_internals()` refuses any other aiortc version and
verifies every attribute used here; `install()` calls it, and tests/integration/media/test_passthrough.py fails
loudly when an upgrade changes them.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
from collections import Counter
from typing import Any, Callable

import av

log = logging.getLogger(__name__)

PINNED_AIORTC = "1.16.0"
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
_MARK = "bidroom_passthrough"

# the internals this module relies on, checked by check_internals()
_RECEIVER_ATTRS = ("_RTCRtpReceiver__decoder_queue", "_RTCRtpReceiver__remote_streams")
_RECEIVER_METHODS = ("_send_rtcp_pli", "receive", "getStats")
_SENDER_METHODS = ("_next_encoded_frame",)


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
    for attr in ("__decoder_queue", "__remote_streams"):
        if f"self.{attr}" not in receive_src:
            problems.append(f"RTCRtpReceiver no longer sets self.{attr}")
    for name in _SENDER_METHODS:
        if not callable(getattr(rtcrtpsender.RTCRtpSender, name, None)):
            problems.append(f"RTCRtpSender.{name} is gone")
    if "encoder.pack(" not in inspect.getsource(rtcrtpsender.RTCRtpSender._next_encoded_frame):
        problems.append("RTCRtpSender no longer packs pre-encoded packets")
    decoders, encoders = _codec_classes()
    for cls in decoders:
        if not callable(getattr(cls, "decode", None)):
            problems.append(f"{cls.__name__}.decode is gone")
    for cls in encoders:
        if not callable(getattr(cls, "encode", None)) or not callable(getattr(cls, "pack", None)):
            problems.append(f"{cls.__name__}.encode/pack is gone")
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))


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
        # Annex B: an IDR slice (5) or a sequence parameter set (7)
        i, n = 0, len(data)
        while i + 3 < n:
            if data[i] == 0 and data[i + 1] == 0 and (data[i + 2] == 1 or (data[i + 2] == 0 and data[i + 3] == 1)):
                start = i + 3 if data[i + 2] == 1 else i + 4
                if start < n and data[start] & 0x1F in (5, 7):
                    return True
                i = start
            else:
                i += 1
        return False
    return True  # audio frames stand alone


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


def _passthrough_worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue, output_q: asyncio.Queue) -> None:
    """decoder_worker's loop with the decoder left out."""
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            break
        codec, encoded_frame = task
        packet = to_packet(codec.mimeType, codec.clockRate, encoded_frame.data, encoded_frame.timestamp)
        asyncio.run_coroutine_threadsafe(output_q.put(packet), loop)


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
    """Make this receiver hand encoded packets to its track instead of decoded frames. Call before the
    receiver starts (from the peer connection's "track" event, which fires in setRemoteDescription)."""
    install()
    setattr(receiver._RTCRtpReceiver__decoder_queue, _MARK, True)


def receiver_of(pc, track):
    """The RTCRtpReceiver of a remote track of this peer connection."""
    for transceiver in pc.getTransceivers():
        if transceiver.receiver is not None and transceiver.receiver.track is track:
            return transceiver.receiver
    return None


async def request_keyframe(receiver) -> bool:
    """Send a picture loss indication (RFC 4585 §6.3.1) for every stream the receiver has heard from; False
    when it has heard nothing yet (the publisher's first frame is a key frame anyway)."""
    ssrcs = list(receiver._RTCRtpReceiver__remote_streams)
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)
    return bool(ssrcs)
