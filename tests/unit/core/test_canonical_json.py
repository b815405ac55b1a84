"""Canonical JSON as the ledger and the draw hash it: exact bytes, floats and non-string keys refused anywhere."""
import pytest

from core.canonical import cj


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_chinese_unescaped():
    assert cj({"b": [1, "x", None, True], "a": {"c": "中山"}}) == '{"a":{"c":"中山"},"b":[1,"x",null,true]}'.encode()


@pytest.mark.parametrize("value", [1.5, {"a": [1, {"b": 2.0}]}, [[[0.1]]], ({"quota": "土建", "weight": 0.3},)])
def test_a_float_anywhere_is_refused(value):
    with pytest.raises(TypeError, match="floats are not allowed"):
        cj(value)


@pytest.mark.parametrize("value", [{1: "a"}, [{"ok": {2: "b"}}]])
def test_object_keys_must_be_strings_at_any_depth(value):
    with pytest.raises(TypeError, match="keys must be strings"):
        cj(value)
