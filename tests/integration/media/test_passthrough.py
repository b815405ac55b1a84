"""The passthrough receive is pinned to the aiortc it was written against: these fail loudly when an upgrade
moves the internals it uses."""
import socket
from pathlib import Path

import aiortc
from aiortc import rtcrtpreceiver
from aiortc.codecs import opus, vpx

from evaluation.media import passthrough

from .peers import HEIGHT, WIDTH, clip, h264_clip


def test_aiortc_is_the_pinned_version_with_every_internal_used():
    assert aiortc.__version__ == passthrough.PINNED_AIORTC
    passthrough.check_internals()  # raises AiortcInternalsChanged, naming what moved
    passthrough.install()
    assert rtcrtpreceiver._bidroom_stock_decoder_worker is not rtcrtpreceiver.decoder_worker
    for cls, method in ((vpx.Vp8Decoder, "decode"), (vpx.Vp8Encoder, "encode"), (opus.OpusDecoder, "decode"),
                        (opus.OpusEncoder, "encode"), (vpx.Vp8Encoder, "pack")):
        assert getattr(cls, method)._bidroom_counted
    passthrough.install()  # idempotent: wrapped once
    assert not getattr(vpx.Vp8Decoder.decode.__wrapped__, "_bidroom_counted", False)


def test_encoded_frames_become_packets_with_their_clock_and_key_frame_flag():
    video, audio = clip()
    key = passthrough.to_packet("video/VP8", 90000, video[0][0], 3000)
    delta = passthrough.to_packet("video/VP8", 90000, video[1][0], 9000)
    sound = passthrough.to_packet("audio/opus", 48000, audio[0], 960)
    assert (key.is_keyframe, delta.is_keyframe, sound.is_keyframe) == (True, False, True)
    assert (key.pts, key.time_base.denominator, sound.time_base.denominator) == (3000, 90000, 48000)
    assert bytes(key) == video[0][0]
    assert passthrough.vp8_size(video[0][0]) == (WIDTH, HEIGHT)
    assert passthrough.vp8_size(video[1][0]) is None
    # H.264 Annex B: an IDR slice is a key frame, a non-IDR slice is not
    assert passthrough.is_keyframe("video/H264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88")
    assert not passthrough.is_keyframe("video/H264", b"\x00\x00\x00\x01\x41\x9a")


def test_h264_key_frames_give_their_parameter_sets_and_picture_size():
    video = h264_clip()
    key, delta = video[0][0], video[1][0]
    assert passthrough.is_keyframe("video/H264", key) and not passthrough.is_keyframe("video/H264", delta)
    sets = passthrough.h264_parameter_sets(key)
    assert [n[0] & 0x1F for n in passthrough.annexb_nals(sets)] == [7, 8]
    assert passthrough.h264_parameter_sets(delta) is None
    assert passthrough.h264_size(key) == (WIDTH, HEIGHT) and passthrough.h264_size(delta) is None


async def test_a_publishers_sockets_get_a_receive_buffer_that_holds_a_key_frame_burst():
    """The server widens the UDP receive buffers of every connection it answers, so a key frame's burst of
    packets survives a late event loop instead of being dropped by the kernel."""
    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}.values()
        sockets = [p.transport.get_extra_info("socket") for dtls in transports
                   for p in dtls.transport.iceGatherer._connection._protocols]
        assert passthrough.widen_receive_buffers(pc) == len(sockets) > 0
        cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
        want = min(passthrough.RECEIVE_BUFFER_BYTES, cap)
        # Linux reports twice the size asked for (its bookkeeping overhead)
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= want for s in sockets)
    finally:
        await pc.close()
