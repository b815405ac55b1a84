"""Tender timeline order and the amendment rule (changes late in the bidding period extend the deadline)."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, strategies as st

from core.errors import Conflict, Unprocessable
from trading.lifecycle import (AMENDMENT_NOTICE_DAYS, ProcurementMethod, Timeline, apply_amendment,
                               validate_timeline)

CST = ZoneInfo("Asia/Shanghai")
PUBLISHED = datetime(2026, 3, 2, 9, 0, tzinfo=CST)


def timeline(deadline_days=25, clarification_days=20, opening_delay=timedelta(0)):
    deadline = PUBLISHED + timedelta(days=deadline_days)
    return Timeline(published_at=PUBLISHED, clarification_end=PUBLISHED + timedelta(days=clarification_days),
                    bid_deadline=deadline, opening_at=deadline + opening_delay)


def test_a_well_ordered_timeline_is_accepted_with_opening_at_the_deadline():
    t = timeline()
    assert validate_timeline(t) is t


def test_clarification_end_may_coincide_with_the_deadline_but_not_with_publication():
    validate_timeline(timeline(clarification_days=25))
    with pytest.raises(Unprocessable) as err:
        validate_timeline(timeline(clarification_days=0))
    assert err.value.code == "invalid_timeline"
    assert err.value.details["field"] == "clarification_end"


def test_an_opening_before_the_deadline_is_refused():
    with pytest.raises(Unprocessable) as err:
        validate_timeline(timeline(opening_delay=-timedelta(minutes=1)))
    assert err.value.details["field"] == "opening_at"


def test_a_deadline_before_the_clarification_end_is_refused():
    with pytest.raises(Unprocessable) as err:
        validate_timeline(timeline(deadline_days=10, clarification_days=12))
    assert err.value.details["field"] == "bid_deadline"


def test_a_naive_datetime_anywhere_in_the_timeline_is_refused():
    t = timeline()
    naive = Timeline(published_at=t.published_at, clarification_end=t.clarification_end,
                     bid_deadline=t.bid_deadline.replace(tzinfo=None), opening_at=t.opening_at)
    with pytest.raises(Unprocessable) as err:
        validate_timeline(naive)
    assert err.value.code == "naive_datetime"
    assert err.value.details["field"] == "bid_deadline"


def test_times_in_different_zones_are_compared_as_instants():
    t = timeline()
    utc = Timeline(published_at=t.published_at.astimezone(timezone.utc), clarification_end=t.clarification_end,
                   bid_deadline=t.bid_deadline.astimezone(timezone.utc), opening_at=t.opening_at)
    assert validate_timeline(utc) is utc


def test_an_open_tender_amended_ten_days_before_the_deadline_moves_deadline_and_opening_to_fifteen_days_out():
    t = timeline(deadline_days=25, opening_delay=timedelta(hours=1))
    amended_at = t.bid_deadline - timedelta(days=10)
    new = apply_amendment(t, amended_at, ProcurementMethod.OPEN)
    assert new.bid_deadline == amended_at + timedelta(days=15)
    assert new.opening_at - new.bid_deadline == timedelta(hours=1)
    assert new.published_at == t.published_at
    assert new.clarification_end == t.clarification_end


def test_an_amendment_with_enough_notice_leaves_the_timeline_alone():
    t = timeline(deadline_days=25)
    assert apply_amendment(t, t.bid_deadline - timedelta(days=15), "open") == t
    assert apply_amendment(t, t.bid_deadline - timedelta(days=16), "invitational") == t


def test_inquiry_and_negotiation_need_five_days_notice_and_single_source_none():
    t = timeline(deadline_days=8, clarification_days=5)
    amended_at = t.bid_deadline - timedelta(days=2)
    assert apply_amendment(t, amended_at, "inquiry").bid_deadline == amended_at + timedelta(days=5)
    assert apply_amendment(t, amended_at, "competitive_negotiation").bid_deadline == amended_at + timedelta(days=5)
    assert apply_amendment(t, amended_at, "single_source") == t


def test_notice_days_can_be_configured_per_method():
    t = timeline(deadline_days=25)
    amended_at = t.bid_deadline - timedelta(days=10)
    table = {**AMENDMENT_NOTICE_DAYS, ProcurementMethod.OPEN: 20}
    assert apply_amendment(t, amended_at, "open", notice_days=table).bid_deadline == amended_at + timedelta(days=20)


def test_an_amendment_after_the_deadline_is_a_conflict():
    t = timeline()
    with pytest.raises(Conflict) as err:
        apply_amendment(t, t.bid_deadline, "open")
    assert err.value.code == "amendment_after_deadline"


def test_an_amendment_before_publication_or_with_a_naive_time_is_refused():
    t = timeline()
    with pytest.raises(Unprocessable):
        apply_amendment(t, PUBLISHED - timedelta(seconds=1), "open")
    with pytest.raises(Unprocessable) as err:
        apply_amendment(t, (PUBLISHED + timedelta(days=1)).replace(tzinfo=None), "open")
    assert err.value.code == "naive_datetime"


@given(deadline_days=st.integers(1, 60), offset_minutes=st.integers(1, 60 * 24 * 60),
       method=st.sampled_from(list(ProcurementMethod)))
def test_after_any_amendment_bidders_always_have_the_full_notice_period(deadline_days, offset_minutes, method):
    t = timeline(deadline_days=deadline_days, clarification_days=deadline_days)
    amended_at = t.bid_deadline - timedelta(minutes=offset_minutes)
    assume(amended_at >= t.published_at)
    new = apply_amendment(t, amended_at, method)
    assert new.bid_deadline - amended_at >= timedelta(days=AMENDMENT_NOTICE_DAYS[method])
    assert new.bid_deadline >= t.bid_deadline
    assert new.opening_at - new.bid_deadline == t.opening_at - t.bid_deadline
    validate_timeline(new)
