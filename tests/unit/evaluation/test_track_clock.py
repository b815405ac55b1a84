"""A track's RTP clock on the server's time line (evaluation.media.recorder.TrackClock): timestamps unwrap past
2**32 (RFC 3550 §5.1 starts them at random), and a late first packet does not make the track's packets late."""
from hypothesis import given, settings, strategies as st

from evaluation.media.recorder import RTP_WRAP, TrackClock

RATE = 48000
STEP = 960  # 20 ms of Opus


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, RTP_WRAP - 1), delays=st.lists(st.floats(0, 0.8), min_size=20, max_size=120),
       on_time=st.integers(0, 19))
def test_times_are_the_sending_times_once_one_packet_came_without_delay(start, delays, on_time):
    delays[on_time] = 0.0  # one packet among the first twenty was not held up
    sent = [n * STEP / RATE for n in range(len(delays))]
    clock = TrackClock(start, RATE, 100.0 + sent[0] + delays[0])
    medias = [clock.media((start + n * STEP) % RTP_WRAP, 100.0 + sent[n] + delays[n]) for n in range(len(delays))]
    # media times count on through the 32-bit wrap wherever it fell
    assert medias == [n * STEP / RATE for n in range(len(delays))]
    # after the packet that came on time, every packet's time is when it was sent, however late it arrived
    assert all(abs(clock.time(m) - (100.0 + s)) < 1e-6 for m, s in zip(medias, sent))


def test_a_reordered_packet_across_the_wrap_keeps_its_place():
    clock = TrackClock(RTP_WRAP - STEP, RATE, 10.0)
    assert clock.media(STEP, 10.04) == 2 * STEP / RATE  # two steps on, past the wrap
    assert clock.media(0, 10.045) == STEP / RATE  # the one between, arriving after it
    assert clock.media(2 * STEP, 10.06) == 3 * STEP / RATE
    assert clock.time(0.0) == 10.0

