"""Times as people read them: Beijing time with the zone; deadlines pass at the deadline itself."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.clock import format_local, local_year, passed


def test_a_utc_time_is_shown_in_beijing_time_to_the_minute_with_the_zone():
    at = datetime(2026, 12, 31, 16, 5, 59, 123456, tzinfo=timezone.utc)
    assert format_local(at) == "2027-01-01 00:05 UTC+8"
    assert format_local(at, seconds=True) == "2027-01-01 00:05:59 UTC+8"
    assert local_year(at) == 2027


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        format_local(datetime(2026, 12, 1, 8, 0))


def test_a_deadline_has_passed_at_the_deadline_itself_and_not_a_microsecond_before():
    deadline = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    assert passed(deadline, deadline)
    assert not passed(deadline, deadline - timedelta(microseconds=1))
    assert not passed(None, deadline)
