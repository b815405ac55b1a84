"""trading.statutory: the statutory timeline rules as pure functions, each naming its statute."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.errors import Conflict, Unprocessable
from core.settings import Settings
from trading import statutory
from trading.lifecycle import Timeline, validate_timeline

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def test_twenty_days_to_the_deadline_pass_and_a_second_less_is_refused_naming_article_24():
    statutory.check_bidding_period("open", T0, T0 + timedelta(days=20))
    with pytest.raises(Unprocessable) as err:
        statutory.check_bidding_period("invitational", T0, T0 + timedelta(days=20) - timedelta(seconds=1))
    assert err.value.code == "bidding_period_too_short"
    assert err.value.details["statute"] == "招标投标法 第二十四条" and "第二十四条" in err.value.message


@pytest.mark.parametrize("method", ["competitive_negotiation", "inquiry", "single_source"])
def test_procurement_methods_other_than_tendering_have_no_twenty_day_minimum(method):
    statutory.check_bidding_period(method, T0, T0 + timedelta(days=3))


def test_switched_off_the_bidding_period_minimum_is_not_enforced():
    statutory.check_bidding_period("open", T0, T0 + timedelta(days=1), statutory.RELAXED)


def test_the_opening_is_at_the_deadline_even_with_the_periods_off():
    deadline = T0 + timedelta(days=25)
    statutory.check_tender_timeline("open", T0, deadline, deadline, statutory.RELAXED)
    with pytest.raises(Unprocessable) as err:
        statutory.check_tender_timeline("open", T0, deadline, deadline + timedelta(minutes=1), statutory.RELAXED)
    assert err.value.code == "opening_not_at_deadline" and err.value.details["statute"] == "招标投标法 第三十四条"


def test_validate_timeline_applies_the_statutes_only_when_given_the_periods():
    deadline = T0 + timedelta(days=10)
    timeline = Timeline(T0, deadline - timedelta(days=1), deadline, deadline + timedelta(hours=1))
    assert validate_timeline(timeline) == timeline  # ordering only: unit callers and draft edits
    with pytest.raises(Unprocessable) as err:
        validate_timeline(timeline, "open", statutory.ENFORCED)
    assert err.value.code == "opening_not_at_deadline"
    on_time = Timeline(T0, deadline - timedelta(days=1), deadline, deadline)
    with pytest.raises(Unprocessable) as err:
        validate_timeline(on_time, "open", statutory.ENFORCED)
    assert err.value.code == "bidding_period_too_short"
    assert validate_timeline(on_time, "open", statutory.RELAXED) == on_time


def test_the_opening_never_starts_before_opening_at():
    statutory.check_opening_start(T0, T0)
    with pytest.raises(Conflict) as err:
        statutory.check_opening_start(T0, T0 - timedelta(microseconds=1))
    assert err.value.code == "before_opening_time" and "第三十四条" in err.value.details["statute"]


def test_publicity_is_at_least_three_days_unless_switched_off():
    statutory.check_publicity_days(3)
    with pytest.raises(Unprocessable) as err:
        statutory.check_publicity_days(2)
    assert err.value.code == "publicity_period_too_short" and "第五十四条" in err.value.details["statute"]
    statutory.check_publicity_days(1, statutory.RELAXED)
    for bad in (0, 31, True):
        with pytest.raises(Unprocessable) as err:
            statutory.check_publicity_days(bad, statutory.RELAXED)
        assert err.value.code == "invalid_publicity_period"


def test_fewer_than_three_bids_are_not_opened_except_single_source_with_one():
    assert [statutory.may_open(n, "open") for n in range(5)] == [False, False, False, True, True]
    assert [statutory.may_open(n, "single_source") for n in range(3)] == [False, True, True]
    with pytest.raises(ValueError):
        statutory.may_open(-1, "open")


def test_an_objection_is_answered_within_three_days_and_the_reminder_comes_a_day_before():
    assert statutory.objection_answer_due(T0) == T0 + timedelta(days=3)
    assert statutory.objection_reminder_at(T0) == T0 + timedelta(days=2)
    with pytest.raises(ValueError):
        statutory.objection_answer_due(T0.replace(tzinfo=None))


def test_the_setting_is_on_unless_the_environment_says_off():
    assert Settings().statutory_periods is True
    assert Settings.from_env({}).statutory_periods is True
    assert Settings.from_env({"BIDROOM_STATUTORY_PERIODS": ""}).statutory_periods is True
    assert Settings.from_env({"BIDROOM_STATUTORY_PERIODS": "on"}).statutory_periods is True
    assert Settings.from_env({"BIDROOM_STATUTORY_PERIODS": "OFF"}).statutory_periods is False
    with pytest.raises(SystemExit):
        Settings.from_env({"BIDROOM_STATUTORY_PERIODS": "no"})
