"""Bid form validation: exact prices, durations and declared values."""
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from core.errors import Unprocessable
from trading.rules import BidForm, parse_bid_form_json, parse_duration_days, parse_price, validate_bid_form


@pytest.mark.parametrize("raw, expected", [
    ("1234.5", Decimal("1234.50")),
    ("  88  ", Decimal("88.00")),
    (1000000, Decimal("1000000.00")),
    (Decimal("0.01"), Decimal("0.01")),
    (Decimal("100.500"), Decimal("100.50")),
    ("9999999999999999.99", Decimal("9999999999999999.99")),
])
def test_decimal_strings_ints_and_decimals_are_accepted_as_prices_in_cents(raw, expected):
    price = parse_price(raw)
    assert price == expected
    assert price.as_tuple().exponent == -2


@pytest.mark.parametrize("raw", [
    1234.5, True, None, "abc", "", "1,234.00", "1e5", "-5", "+5", "NaN", "Infinity", Decimal("NaN"),
    "0", 0, Decimal("-0.01"), "12.345", Decimal("0.001"), "10000000000000000.00", "1" * 40, ["1"],
])
def test_floats_non_numbers_non_positive_and_over_precise_prices_are_refused(raw):
    with pytest.raises(Unprocessable) as err:
        parse_price(raw)
    assert err.value.code == "invalid_price"
    assert err.value.details["field"] == "price"


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999999999.99"), places=2))
def test_every_two_place_price_in_range_survives_a_round_trip_through_its_string(price):
    assert parse_price(format(price, "f")) == price


def test_durations_are_whole_positive_days():
    assert parse_duration_days(180) == 180
    assert parse_duration_days("30") == 30
    for bad in [0, -1, 3651, 1.5, "1.5", "三十", True, None]:
        with pytest.raises(Unprocessable) as err:
            parse_duration_days(bad)
        assert err.value.code == "invalid_duration"


def test_a_complete_bid_form_reads_price_duration_and_declared_values():
    form = validate_bid_form({"price": "5230000.00", "duration_days": 365,
                              "declared": {"质量标准": "合格", "项目经理": "张三"}})
    assert form == BidForm(price=Decimal("5230000.00"), duration_days=365,
                           declared={"质量标准": "合格", "项目经理": "张三"})
    assert form.to_json_dict()["price"] == "5230000.00"


def test_declared_values_must_be_a_small_dict_of_short_strings():
    for declared in [["a"], {"k": 1}, {"": "v"}, {"k" * 65: "v"}, {"k": "v" * 501},
                     {f"k{i}": "v" for i in range(51)}]:
        with pytest.raises(Unprocessable) as err:
            validate_bid_form({"price": "1.00", "duration_days": 1, "declared": declared})
        assert err.value.code == "invalid_declared_values"


def test_a_form_missing_its_price_or_carrying_unknown_fields_is_refused():
    with pytest.raises(Unprocessable) as err:
        validate_bid_form({"duration_days": 1})
    assert err.value.details == {"missing": "price"}
    with pytest.raises(Unprocessable) as err:
        validate_bid_form({"price": "1.00", "duration_days": 1, "discount": "5%"})
    assert err.value.details == {"unknown": ["discount"]}


def test_json_prices_are_read_as_exact_decimals_not_floats():
    form = parse_bid_form_json(b'{"price": 12345678901234.57, "duration_days": 90}')
    assert form.price == Decimal("12345678901234.57")


def test_malformed_json_and_nan_are_refused_as_invalid_forms():
    for data in [b"{not json", b'{"price": NaN, "duration_days": 1}', b"\xff\xfe"]:
        with pytest.raises(Unprocessable) as err:
            parse_bid_form_json(data)
        assert err.value.code == "invalid_bid_form"
