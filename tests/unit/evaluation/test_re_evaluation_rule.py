"""The one way out of a closed session: re-evaluation after an upheld objection (招标投标法实施条例 第54条)."""
import pytest

from core.errors import Conflict
from evaluation.rules import SessionStatus as SS, re_evaluation_transition, session_targets


def test_only_a_closed_session_reopens_and_it_reopens_in_progress():
    assert re_evaluation_transition("closed") is SS.IN_PROGRESS
    assert session_targets("closed") == []   # the ordinary machine still treats closed as terminal
    for state in SS:
        if state is SS.CLOSED:
            continue
        with pytest.raises(Conflict) as caught:
            re_evaluation_transition(state)
        assert caught.value.code == "illegal_transition"
        assert caught.value.details == {"current": state.value, "target": "in_progress"}
