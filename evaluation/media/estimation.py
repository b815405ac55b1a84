"""REMB feedback of a marked (passthrough) receiver: aiortc's own estimate, sent no more often than a browser's.

A video receiver in aiortc feeds every packet carrying the abs-send-time extension to its
`RemoteBitrateEstimator` (`aiortc.rate`, the delay-based estimate of Google congestion control) and sends each
estimate the estimator returns to the publisher as an RTCP REMB packet; the publisher's browser caps its sending
rate by it. While the estimator detects overuse it returns an estimate for every packet, so the receiver would
send a REMB per video packet (about 70 a second for a 640×480 place), and it detects overuse just when the server
is short of time: a loaded server's late event loop reads packets late, which looks like a filling queue. In a
profile where the estimator saw overuse, sending REMB took 13 % of the server's loop; throttled, 5 %
(docs/BENCHMARKS.md, media plane, 2026-12-03).

`tune(receiver)` wraps the estimator in `ThrottledRemb`: the estimator still sees every packet and estimates
what it did, but an estimate is sent on only when REMB_INTERVAL_MS have passed since the last one sent, or at
once when it is 3 % or more below it, as WebRTC's own receivers do (200 ms). A steady estimate still goes out
about twice a second, within the once a second a sender expects (draft-ietf-rmcat-gcc-02 §3).
"""
from __future__ import annotations

import inspect
from typing import Optional

REMB_INTERVAL_MS = 200
REMB_PROMPT_DROP = 0.97


class ThrottledRemb:
    """aiortc's estimator with what it returns passed on at most every REMB_INTERVAL_MS, unless it fell by 3 % or
    more since the last estimate passed on. The estimator itself still sees every packet."""

    def __init__(self, estimator) -> None:
        self.estimator = estimator
        self.last_ms: int | None = None
        self.last_bitrate = 0

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int,
            ssrc: int) -> Optional[tuple[int, list[int]]]:
        remb = self.estimator.add(arrival_time_ms=arrival_time_ms, abs_send_time=abs_send_time,
                                  payload_size=payload_size, ssrc=ssrc)
        if remb is None:
            return None
        if (self.last_ms is not None and 0 <= arrival_time_ms - self.last_ms < REMB_INTERVAL_MS
                and remb[0] > self.last_bitrate * REMB_PROMPT_DROP):
            return None
        self.last_ms, self.last_bitrate = arrival_time_ms, remb[0]
        return remb


def check_internals() -> list[str]:
    """What changed in the aiortc internals `tune` relies on (empty when nothing did)."""
    from aiortc import rate

    problems = []
    if list(inspect.signature(rate.RemoteBitrateEstimator.add).parameters) != [
            "self", "arrival_time_ms", "abs_send_time", "payload_size", "ssrc"]:
        problems.append("RemoteBitrateEstimator.add's parameters changed")
    return problems


def tune(receiver) -> None:
    """Throttle a video receiver's REMB feedback (see the module's text). Call with the receiver before it
    starts; an audio receiver (no estimator) is left as it is. Idempotent."""
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    if estimator is None or isinstance(estimator, ThrottledRemb):
        return
    receiver._RTCRtpReceiver__remote_bitrate_estimator = ThrottledRemb(estimator)
