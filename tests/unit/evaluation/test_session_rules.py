"""The evaluation session's state machine and fault timers, and the booking time rules: allowed moves go
through, every other move is refused with a stable code naming what is allowed."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import Conflict, Unprocessable
from evaluation.rules import (FAULT_WAIT_BEFORE_START, FAULT_WAIT_DURING, MAX_BOOKING, RUNNING_STATES,
                              SessionStatus, VenueSlot, check_booking_range, check_cancellable,
                              check_session_venues, fault_outcome, session_targets, session_transition)

S = SessionStatus
ORDER = [S.SCHEDULED, S.CHECK_IN, S.IN_PROGRESS, S.SCORING_CLOSED, S.SIGNING, S.CLOSED]


def test_a_session_walks_from_scheduled_to_closed_one_step_at_a_time():
    state = S.SCHEDULED
    for goal in ORDER[1:]:
        state = session_transition(state, goal)
    assert state is S.CLOSED


@pytest.mark.parametrize("current,target", [
    (S.SCHEDULED, S.IN_PROGRESS),         # no evaluation without check-in
    (S.CHECK_IN, S.SCORING_CLOSED),
    (S.IN_PROGRESS, S.SIGNING),           # no signing before scoring closes
    (S.SCORING_CLOSED, S.IN_PROGRESS),    # closed scoring does not reopen
    (S.SIGNING, S.SCORING_CLOSED),
    (S.SCHEDULED, S.CLOSED),
    (S.CHECK_IN, S.SCHEDULED),
    (S.IN_PROGRESS, S.IN_PROGRESS),
])
def test_skipping_or_going_back_is_refused_with_the_allowed_moves(current, target):
    with pytest.raises(Conflict) as refused:
        session_transition(current, target)
    assert refused.value.code == "illegal_transition"
    assert refused.value.details == {"current": current.value, "target": target.value,
                                     "allowed": [ORDER[ORDER.index(current) + 1].value, "suspended", "aborted"]}


@pytest.mark.parametrize("running", sorted(RUNNING_STATES))
def test_a_running_session_may_be_suspended_or_aborted(running):
    assert session_transition(running, S.SUSPENDED) is S.SUSPENDED
    assert session_transition(running, S.ABORTED) is S.ABORTED


@pytest.mark.parametrize("running", sorted(RUNNING_STATES))
def test_a_suspended_session_resumes_exactly_where_it_stopped_or_is_aborted(running):
    assert session_transition(S.SUSPENDED, running, suspended_from=running) is running
    assert session_transition(S.SUSPENDED, S.ABORTED, suspended_from=running) is S.ABORTED
    for elsewhere in (s for s in ORDER if s is not running):
        with pytest.raises(Conflict) as refused:
            session_transition(S.SUSPENDED, elsewhere, suspended_from=running)
        assert refused.value.details["allowed"] == [running.value, "aborted"]


def test_a_suspension_without_a_known_origin_can_only_be_aborted():
    assert session_targets(S.SUSPENDED) == [S.ABORTED]
    assert session_targets(S.SUSPENDED, suspended_from=S.CLOSED) == [S.ABORTED]


@pytest.mark.parametrize("terminal", [S.CLOSED, S.ABORTED])
def test_closed_and_aborted_sessions_go_nowhere(terminal):
    assert session_targets(terminal) == []
    for goal in SessionStatus:
        with pytest.raises(Conflict):
            session_transition(terminal, goal)


def test_unknown_states_are_refused_as_bad_input():
    with pytest.raises(Unprocessable) as refused:
        session_transition("scheduled", "paused")
    assert (refused.value.code, refused.value.details["status"]) == ("unknown_status", "paused")


@given(st.sampled_from(list(SessionStatus)), st.sampled_from(list(SessionStatus)),
       st.sampled_from([None, *SessionStatus]))
def test_every_move_is_either_allowed_by_the_table_or_refused(current, target, origin):
    allowed = session_targets(current, origin)
    if target in allowed:
        assert session_transition(current, target, suspended_from=origin) is target
    else:
        with pytest.raises(Conflict):
            session_transition(current, target, suspended_from=origin)
    # nothing ever leaves a terminal state, and nothing but a resumption goes back in the order
    if current in (S.CLOSED, S.ABORTED):
        assert allowed == []
    for goal in allowed:
        if goal in ORDER and current in ORDER:
            assert ORDER.index(goal) == ORDER.index(current) + 1


@pytest.mark.parametrize("stopped", [S.SCHEDULED, S.CHECK_IN])
def test_a_fault_before_the_start_lets_the_tenderer_decide_after_two_hours(stopped):
    assert FAULT_WAIT_BEFORE_START == timedelta(hours=2)
    assert fault_outcome(stopped, timedelta(hours=1, minutes=59, seconds=59)) is None
    assert fault_outcome(stopped, timedelta(hours=2)) == "tenderer_decides"
    assert fault_outcome(stopped, timedelta(hours=9)) == "tenderer_decides"


@pytest.mark.parametrize("stopped", [S.IN_PROGRESS, S.SCORING_CLOSED, S.SIGNING])
def test_a_fault_during_the_evaluation_aborts_the_session_after_four_hours(stopped):
    assert FAULT_WAIT_DURING == timedelta(hours=4)
    assert fault_outcome(stopped, timedelta(hours=2)) is None
    assert fault_outcome(stopped, timedelta(hours=3, minutes=59)) is None
    assert fault_outcome(stopped, timedelta(hours=4)) == "abort"


def test_a_fault_outcome_needs_a_running_origin():
    with pytest.raises(Unprocessable) as refused:
        fault_outcome(S.CLOSED, timedelta(hours=5))
    assert refused.value.code == "invalid_suspension"


NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def test_a_booking_range_is_non_empty_not_in_the_past_and_at_most_a_month():
    check_booking_range(NOW, NOW + timedelta(hours=3), NOW)
    check_booking_range(NOW + timedelta(days=1), NOW + timedelta(days=1) + MAX_BOOKING, NOW)
    cases = [
        (NOW + timedelta(hours=2), NOW + timedelta(hours=1), "invalid_time_range"),
        (NOW + timedelta(hours=2), NOW + timedelta(hours=2), "invalid_time_range"),
        (NOW - timedelta(seconds=1), NOW + timedelta(hours=1), "booking_in_past"),
        (NOW, NOW + MAX_BOOKING + timedelta(seconds=1), "booking_too_long"),
    ]
    for starts_at, ends_at, code in cases:
        with pytest.raises(Unprocessable) as refused:
            check_booking_range(starts_at, ends_at, NOW)
        assert refused.value.code == code


def test_only_a_confirmed_booking_not_yet_over_can_be_cancelled():
    check_cancellable("confirmed", NOW + timedelta(seconds=1), NOW)
    for status, ends_at, code in (("cancelled", NOW + timedelta(hours=1), "booking_not_active"),
                                  ("confirmed", NOW, "booking_over")):
        with pytest.raises(Conflict) as refused:
            check_cancellable(status, ends_at, NOW)
        assert refused.value.code == code


def slot(booking: str, site: str, start_h: int, end_h: int) -> VenueSlot:
    return VenueSlot(booking, site, NOW + timedelta(hours=start_h), NOW + timedelta(hours=end_h))


def test_sub_venues_are_other_sites_booked_for_the_main_venues_whole_time():
    main = slot("BK-1", "ST-ZS", 1, 9)
    check_session_venues(main, [])
    check_session_venues(main, [slot("BK-2", "ST-GZ", 1, 9), slot("BK-3", "ST-SZ", 0, 10)])
    cases = [
        ([slot("BK-2", "ST-ZS", 1, 9)], "venue_sites_repeated"),
        ([slot("BK-2", "ST-GZ", 1, 9), slot("BK-3", "ST-GZ", 1, 9)], "venue_sites_repeated"),
        ([slot("BK-1", "ST-GZ", 1, 9)], "venue_booking_repeated"),
        ([slot("BK-2", "ST-GZ", 2, 9)], "sub_venue_time_mismatch"),
        ([slot("BK-2", "ST-GZ", 1, 8)], "sub_venue_time_mismatch"),
        ([slot(f"BK-S{i}", f"ST-{i}", 1, 9) for i in range(11)], "too_many_sub_venues"),
    ]
    for subs, code in cases:
        with pytest.raises(Unprocessable) as refused:
            check_session_venues(main, subs)
        assert refused.value.code == code
