"""A marked receiver's bandwidth estimate is aiortc's own, and its REMB feedback is throttled the way WebRTC's
receivers throttle it."""
from aiortc import rate

from evaluation.media import estimation, passthrough


class _Estimates:
    """A script of estimates, to pin the throttle's rule to exact figures (the first test uses aiortc's own
    estimator)."""

    def __init__(self, script: dict[int, int]) -> None:
        self.script = script

    def add(self, arrival_time_ms, abs_send_time, payload_size, ssrc):
        bitrate = self.script.get(arrival_time_ms)
        return None if bitrate is None else (bitrate, [ssrc])


def _passed(script: dict[int, int], until_ms: int) -> list[tuple[int, int]]:
    throttled = estimation.ThrottledRemb(_Estimates(script))
    out = []
    for ms in range(until_ms):
        remb = throttled.add(arrival_time_ms=ms, abs_send_time=0, payload_size=1000, ssrc=7)
        if remb is not None:
            out.append((ms, remb[0]))
    return out


def _feed(estimator, packets: int = 3000) -> list[tuple[int, int]]:
    """Video packets sent every 10 ms, with abs-send-time (6.18 fixed-point seconds, 24 bits); from the 500th
    the path's queue grows and each arrives 2 ms later than the one before it would have. What the estimator
    returns, with the packet's arrival time."""
    out, arrival = [], 1000
    for i in range(packets):
        arrival += 12 if i > 500 else 10
        remb = estimator.add(arrival_time_ms=arrival, abs_send_time=int((i + 1) * 10 / 1000 * (1 << 18)) & 0xFFFFFF,
                             payload_size=1200, ssrc=1)
        if remb is not None:
            out.append((arrival, remb[0]))
    return out


def test_aiortcs_estimator_in_overuse_gives_an_estimate_per_packet_and_the_throttle_passes_a_few_of_them():
    raw = _feed(rate.RemoteBitrateEstimator())
    throttled = _feed(estimation.ThrottledRemb(rate.RemoteBitrateEstimator()))
    assert len(raw) > 1000  # about one per packet once the queue grows: one REMB packet each, unthrottled
    assert 0 < len(throttled) < len(raw) // 5
    assert set(throttled) <= set(raw)  # the estimator sees every packet: what passes is what it estimated
    for (t0, b0), (t1, b1) in zip(throttled, throttled[1:]):
        assert t1 - t0 >= estimation.REMB_INTERVAL_MS or b1 <= b0 * estimation.REMB_PROMPT_DROP


def test_an_estimate_per_packet_goes_out_at_most_every_200_ms():
    # overuse: aiortc's estimator returns one estimate per packet (every 10 ms), the same or slightly lower
    script = {ms: 800_000 - ms for ms in range(0, 1000, 10)}
    assert _passed(script, 1000) == [(0, 800_000), (200, 799_800), (400, 799_600), (600, 799_400),
                                     (800, 799_200)]


def test_an_estimate_3_percent_lower_goes_out_at_once():
    script = {0: 1_000_000, 10: 980_000, 20: 970_000, 30: 960_000, 40: 940_000, 250: 950_000}
    # 980 k: 2 % lower, held; 970 k: 3 % lower, sent; 960 k: 1 % below that, held; 940 k: 3.1 % below 970 k, sent
    assert _passed(script, 300) == [(0, 1_000_000), (20, 970_000), (40, 940_000), (250, 950_000)]


def test_a_steady_estimate_every_half_second_is_never_held():
    script = {ms: 600_000 + ms for ms in range(0, 5000, 533)}
    assert _passed(script, 5000) == sorted(script.items())


def test_a_marked_video_receiver_gets_the_throttle_and_an_audio_receiver_is_left_alone():
    from aiortc import RTCRtpReceiver
    from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport
    from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    dtls = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    video, audio = RTCRtpReceiver("video", dtls), RTCRtpReceiver("audio", dtls)
    for receiver, kind in ((video, "video"), (audio, "audio")):
        receiver._track = RemoteStreamTrack(kind=kind)  # as setRemoteDescription gives a receiver its track
        passthrough.mark_passthrough(receiver)  # what the media hub calls for every place's track
    throttled = video._RTCRtpReceiver__remote_bitrate_estimator
    assert isinstance(throttled, estimation.ThrottledRemb)
    assert isinstance(throttled.estimator, rate.RemoteBitrateEstimator)
    estimation.tune(video)  # idempotent
    assert video._RTCRtpReceiver__remote_bitrate_estimator is throttled
    assert audio._RTCRtpReceiver__remote_bitrate_estimator is None
    assert estimation.check_internals() == []
