"""The public listing's SQL: drafts never listed, keyword terms on the GIN index, filters as parameters."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from core.errors import BadRequest, NotFound, Unprocessable
from trading.listing.query import PHRASE_HAYSTACK, ListingFilter, listing_sql
from trading.listing.cursors import Cursor, encode_cursor


def test_drafts_are_excluded_and_the_page_asks_for_one_row_more():
    sql, args = listing_sql(ListingFilter(limit=20))
    assert "t.status <> 'draft'" in sql
    assert sql.endswith("ORDER BY t.bid_deadline_at ASC, t.id ASC LIMIT $1")
    assert args == [21]


def test_a_chinese_keyword_becomes_bigram_terms_for_containment():
    sql, args = listing_sql(ListingFilter(q="中山 道路工程", category="FJSZ-SG", limit=10))
    assert "t.search_terms @> $1::text[]" in sql and "t.subtype = $3" in sql
    assert f"strpos({PHRASE_HAYSTACK}, $2) > 0" in sql  # the phrase, rechecked
    assert args == [["中山", "道路", "路工", "工程"], "道路工程", "FJSZ-SG", 11]


def test_every_value_travels_as_a_parameter_never_inside_the_sql():
    at = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    sql, args = listing_sql(ListingFilter(q="'; drop table tender; --", region="ZS'--", budget_min=Decimal("1"),
                                          budget_max=Decimal("2"), deadline_from=at, deadline_to=at,
                                          status="published", sort="published"))
    assert "drop" not in sql and "ZS'" not in sql
    assert args[0] == ["drop", "table", "tender"]
    assert "ORDER BY t.published_at DESC, t.id DESC" in sql


def test_the_cursor_continues_after_the_last_row_in_the_sort_direction():
    cursor = encode_cursor(Cursor("published", "2026-03-02T01:00:00+00:00", 7))
    sql, args = listing_sql(ListingFilter(sort="published", cursor=cursor))
    assert "(t.published_at, t.id) < ($1, $2)" in sql
    assert args[:2] == [datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc), 7]


@pytest.mark.parametrize("f, error", [
    (ListingFilter(status="draft"), Unprocessable), (ListingFilter(category="NOPE"), NotFound),
    (ListingFilter(category="ZFCG-NOPE"), NotFound), (ListingFilter(sort="price"), Unprocessable),
    (ListingFilter(cursor="garbage"), BadRequest),
])
def test_bad_filters_are_refused_before_any_query(f, error):
    with pytest.raises(error):
        listing_sql(f)
