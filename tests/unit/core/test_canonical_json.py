"""Canonical JSON is RFC 8785: the RFC's examples byte for byte, and the refusals of what the platform keeps out.

Expected outputs are written out by hand from the RFC (sections 3.2.2 to 3.2.4 and Appendix B), never computed
with the code under test.
"""
import enum
from decimal import Decimal

import pytest

from core.canonical import MAX_SAFE_INTEGER, NotCanonical, cj
from core.errors import Unprocessable

# ---- RFC 8785 §3.2.2: the serialisation example ----------------------------------------------------------

RFC_STRING = "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\u002f"


def test_rfc_example_strings_and_literals_serialise_exactly():
    data = {"string": RFC_STRING, "literals": [None, True, False]}
    assert cj(data) == b'{"literals":[null,true,false],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'


def test_rfc_example_numbers_are_refused_because_the_platform_hashes_no_floats():
    # RFC: [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]
    #   -> [333333333.3333333,1e+30,4.5,0.002,1e-27]
    numbers = [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001]
    with pytest.raises(NotCanonical, match="floats are not allowed"):
        cj({"numbers": numbers, "string": RFC_STRING, "literals": [None, True, False]})


def test_non_integer_amounts_go_in_as_strings_exactly_as_written():
    assert cj({"price": str(Decimal("4.50")), "score": "88.25"}) == b'{"price":"4.50","score":"88.25"}'


# ---- RFC 8785 §3.2.3: sorting by UTF-16 code units -------------------------------------------------------

def test_rfc_sorting_example_orders_members_by_utf16_code_units():
    data = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001F600": "Emoji: Grinning Face",  # "\ud83d\ude00" in the RFC's UTF-16 notation
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = ('{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
                '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
                '"\U0001F600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}')
    assert cj(data) == expected.encode("utf-8")


def test_a_name_beyond_the_bmp_sorts_before_the_last_bmp_characters_as_in_utf16():
    # Code points would put U+FF01 (fullwidth !) first; UTF-16 puts the surrogate pair D83D DE00 first.
    assert cj({"\uff01": 1, "\U0001F600": 2}) == '{"\U0001F600":2,"\uff01":1}'.encode("utf-8")
    # nested objects and objects inside arrays are ordered the same way
    assert cj([{"a": {"\uff01": 1, "\U0001F600": 2}}]) == '[{"a":{"\U0001F600":2,"\uff01":1}}]'.encode("utf-8")


def test_names_sort_by_code_unit_not_by_locale_or_case():
    assert cj({"b": 1, "B": 2, "a": 3, "A": 4, "中": 5, "10": 6, "1": 7, "": 8}) == \
        '{"":8,"1":7,"10":6,"A":4,"B":2,"a":3,"b":1,"中":5}'.encode("utf-8")


# ---- RFC 8785 §3.2.4: UTF-8 generation, no Unicode normalisation ---------------------------------------

def test_rfc_utf8_example_keeps_the_unnormalised_string():
    assert cj({"Unnormalized Unicode": "A\u030a"}).hex() == (
        "7b22556e6e6f726d616c697a656420556e69636f6465223a2241cc8a227d")


# ---- Structures and escapes, as in the RFC's published test data ----------------------------------------

def test_nested_structures_and_empty_members():
    data = {"1": {"f": {"f": "hi", "F": 5}, "\n": 56}, "10": {}, "": "empty", "a": {},
            "111": [{"e": "yes", "E": "no"}], "A": {}}
    assert cj(data) == b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],' \
                       b'"A":{},"a":{}}'
    assert cj([56, {"d": True, "10": None, "1": []}]) == b'[56,{"1":[],"10":null,"d":true}]'


def test_control_characters_use_short_escapes_or_lower_case_hex_and_nothing_else_is_escaped():
    data = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\u000a": "Newline", "1": "One",
            "\u0080": "Control\u007f", "\U0001F602": "Smiley", "\u00f6": "Latin Small Letter O With Diaeresis",
            "\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}
    expected = ('{"\\n":"Newline","\\r":"Carriage Return","1":"One","</script>":"Browser Challenge",'
                '"\u0080":"Control\u007f","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
                '"\U0001F602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}')
    assert cj(data) == expected.encode("utf-8")
    assert cj("\b\t\n\f\r\u0000\u001f\u2028\u2029/") == '"\\b\\t\\n\\f\\r\\u0000\\u001f\u2028\u2029/"'.encode("utf-8")


def test_chinese_stays_unescaped():
    assert cj({"b": [1, "x", None, True], "a": {"c": "中山"}}) == '{"a":{"c":"中山"},"b":[1,"x",null,true]}'.encode()


# ---- Numbers: RFC 8785 Appendix B, as far as integers go ------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (0, b"0"), (-0, b"0"), (1, b"1"), (-1, b"-1"), (56, b"56"), (1000000, b"1000000"),
    (MAX_SAFE_INTEGER, b"9007199254740991"), (-MAX_SAFE_INTEGER, b"-9007199254740991"),
])
def test_integers_an_ieee_double_holds_exactly_serialise_as_plain_digits(value, expected):
    assert cj(value) == expected
    assert cj([value]) == b"[" + expected + b"]"


@pytest.mark.parametrize("value", [
    2**53, -(2**53),  # Appendix B: 0x4340000000000000 -> 9007199254740992, beyond I-JSON's exact range
    295147905179352825856,  # Appendix B: 0x4430000000000000 prints as 295147905179352830000
    10**21, -(10**23), 2**64,
])
def test_integers_beyond_2_53_minus_1_are_refused_anywhere(value):
    for wrapped in (value, [value], {"seq": value}, {"a": [{"b": value}]}):
        with pytest.raises(NotCanonical, match="beyond") as err:
            cj(wrapped)
    assert err.value.details == {"limit": 2**53 - 1}


@pytest.mark.parametrize("value", [1.5, 0.0, 5e-324, 1.7976931348623157e308, float("nan"), float("inf"),
                                   {"a": [1, {"b": 2.0}]}, [[[0.1]]], ({"quota": "土建", "weight": 0.3},)])
def test_a_float_anywhere_is_refused(value):
    with pytest.raises(NotCanonical, match="floats are not allowed"):
        cj(value)


def test_a_decimal_is_refused_with_the_advice_to_write_it_as_a_string():
    with pytest.raises(NotCanonical, match="write them as strings"):
        cj({"price": Decimal("9.99")})


# ---- Other refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [{1: "a"}, [{"ok": {2: "b"}}], {None: 1}, {("a",): 1}])
def test_object_keys_must_be_strings_at_any_depth(value):
    with pytest.raises(NotCanonical, match="keys must be strings"):
        cj(value)


@pytest.mark.parametrize("value", ["\ud800", ["ok", "x\udfff"], {"\udc00": 1}, {"\U0001F600": "\ud83d"}])
def test_a_lone_surrogate_is_refused_because_it_is_not_unicode(value):
    with pytest.raises(NotCanonical, match="lone surrogate"):
        cj(value)


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object(), {"a": frozenset()}])
def test_other_python_types_are_refused(value):
    with pytest.raises(NotCanonical, match="not allowed"):
        cj(value)


def test_a_refusal_is_a_422_with_a_stable_code_and_still_a_type_error():
    with pytest.raises(Unprocessable) as err:
        cj({"n": 2**60})
    assert (err.value.status, err.value.code) == (422, "not_canonical_json")
    assert isinstance(err.value, TypeError)


def test_enum_members_serialise_as_their_values():
    class Kind(enum.StrEnum):
        OPEN = "open"

    class Rank(enum.IntEnum):
        FIRST = 1

    assert cj({Kind.OPEN: Rank.FIRST, "k": Kind.OPEN}) == b'{"k":"open","open":1}'


def test_tuples_are_arrays():
    assert cj(("a", (1, 2))) == b'["a",[1,2]]'
