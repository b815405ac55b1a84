"""cj agrees byte for byte with an independent RFC 8785 implementation (the `rfc8785` package) on every value
the platform hashes, and refuses what that implementation refuses or what the platform keeps out (floats)."""
import json

import pytest
import rfc8785
from hypothesis import given, settings, strategies as st

from core.canonical import MAX_SAFE_INTEGER, NotCanonical, cj

# Keys and strings from all of Unicode but lone surrogates (refused, below), with names beyond the BMP and just
# below U+FFFF made likely: that is where UTF-16 and code-point order part.
tricky_chars = st.sampled_from(["\U0001F600", "\U00010000", "\U0010FFFF", "\uff01", "\ufb33", "\ue000",
                                "\uffff", "\u0080", "\u007f", "\u2028", "\r", "\n", "\u0000", '"', "\\", "中"])
texts = st.lists(st.one_of(st.characters(codec="utf-8"), tricky_chars), max_size=8).map("".join)
safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, st.integers(-1000, 1000), texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(texts, inner, max_size=6)),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_cj_matches_the_rfc8785_package_on_every_value_the_platform_hashes(value):
    assert cj(value) == rfc8785.dumps(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(texts, st.integers(0, 9), min_size=2, max_size=12))
def test_member_order_matches_the_rfc8785_package_for_any_names(obj):
    assert cj(obj) == rfc8785.dumps(obj)


@settings(max_examples=100, deadline=None)
@given(values)
def test_the_bytes_parse_back_to_the_same_value(value):
    assert json.loads(cj(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(min_value=MAX_SAFE_INTEGER + 1), st.integers(max_value=-MAX_SAFE_INTEGER - 1)))
def test_integers_the_rfc8785_package_refuses_are_refused(n):
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps({"n": n})
    with pytest.raises(NotCanonical):
        cj({"n": n})


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_is_refused_though_the_rfc_could_print_it(x):
    rfc8785.dumps(x)  # the scheme has a form for it, which the platform chooses not to hash
    with pytest.raises(NotCanonical):
        cj([x])


@settings(max_examples=200, deadline=None)
@given(texts, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), texts, st.booleans())
def test_a_lone_surrogate_in_a_name_or_a_string_is_refused_like_the_rfc8785_package_does(before, lone, after, as_key):
    text = before + lone + after
    value = {text: 1} if as_key else [text]
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeError)):
        rfc8785.dumps(value)
    with pytest.raises(NotCanonical):
        cj(value)
