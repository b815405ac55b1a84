"""The tender state machine and the minimum-bids rule (流标)."""
import pytest
from hypothesis import given, strategies as st

from core.errors import Conflict, Unprocessable
from trading.lifecycle import (TERMINAL_STATES, TRANSITIONS, ProcurementMethod, TenderStatus, allowed_targets,
                               tender_fails, transition)

S = TenderStatus
HAPPY_PATH = [S.DRAFT, S.PUBLISHED, S.CLOSED, S.OPENING, S.OPENED, S.EVALUATING, S.CANDIDATES_PUBLISHED,
              S.AWARDED, S.COMPLETE]


def test_a_tender_walks_the_whole_happy_path_from_draft_to_complete():
    state = S.DRAFT
    for target in HAPPY_PATH[1:]:
        state = transition(state, target)
    assert state is S.COMPLETE


def test_transition_accepts_plain_strings_and_returns_the_target_state():
    assert transition("published", "closed") is S.CLOSED


def test_skipping_the_opening_is_refused_with_the_allowed_targets():
    with pytest.raises(Conflict) as err:
        transition(S.CLOSED, S.EVALUATING)
    assert err.value.code == "illegal_transition"
    assert err.value.status == 409
    assert err.value.details == {"current": "closed", "target": "evaluating",
                                 "allowed": ["opening", "cancelled", "failed"]}


def test_a_tender_can_be_cancelled_until_the_award_notice_but_not_after():
    for state in HAPPY_PATH[:HAPPY_PATH.index(S.AWARDED)]:
        assert transition(state, S.CANCELLED) is S.CANCELLED
    for state in (S.AWARDED, S.COMPLETE):
        with pytest.raises(Conflict):
            transition(state, S.CANCELLED)


def test_a_tender_fails_from_the_deadline_through_evaluation_but_never_before_the_deadline():
    for state in (S.CLOSED, S.OPENING, S.OPENED, S.EVALUATING):
        assert transition(state, S.FAILED) is S.FAILED
    for state in (S.DRAFT, S.PUBLISHED, S.CANDIDATES_PUBLISHED, S.AWARDED):
        with pytest.raises(Conflict):
            transition(state, S.FAILED)


def test_an_upheld_complaint_sends_published_candidates_back_to_evaluation():
    assert transition(S.CANDIDATES_PUBLISHED, S.EVALUATING) is S.EVALUATING


def test_complete_cancelled_and_failed_are_terminal():
    assert TERMINAL_STATES == {S.COMPLETE, S.CANCELLED, S.FAILED}
    for state in TERMINAL_STATES:
        assert allowed_targets(state) == []


def test_every_state_is_reachable_from_draft():
    seen, frontier = {S.DRAFT}, [S.DRAFT]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(TenderStatus)


@given(st.sampled_from(list(TenderStatus)), st.sampled_from(list(TenderStatus)))
def test_transition_allows_exactly_the_moves_in_the_table(current, target):
    if target in TRANSITIONS[current]:
        assert transition(current, target) is target
    else:
        with pytest.raises(Conflict) as err:
            transition(current, target)
        assert err.value.details["allowed"] == [s.value for s in allowed_targets(current)]


def test_an_unknown_state_name_is_refused_as_unprocessable():
    with pytest.raises(Unprocessable) as err:
        transition("draft", "archived")
    assert err.value.code == "unknown_status"


@pytest.mark.parametrize("method", [m for m in ProcurementMethod if m is not ProcurementMethod.SINGLE_SOURCE])
def test_fewer_than_three_valid_bids_fail_a_competitive_tender(method):
    assert tender_fails(2, method)
    assert tender_fails(0, method)
    assert not tender_fails(3, method)


def test_single_source_procurement_is_exempt_from_the_three_bid_minimum():
    assert not tender_fails(1, "single_source")
    assert tender_fails(0, "single_source")


def test_a_negative_bid_count_or_unknown_method_is_refused():
    with pytest.raises(Unprocessable):
        tender_fails(-1, "open")
    with pytest.raises(Unprocessable) as err:
        tender_fails(3, "auction")
    assert err.value.code == "unknown_method"
