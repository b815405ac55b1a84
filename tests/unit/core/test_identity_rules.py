"""Unified social credit code checksum and password policy."""
import pytest
from hypothesis import given, strategies as st

from core.errors import Unprocessable
from core.identity_rules import USCC_ALPHABET, normalise_uscc, password_problem, uscc_check_char, uscc_problem

# published codes of real registrations, used as checksum vectors
VALID = ["91350100M000100Y43", "91110000600037341L"]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_pass_the_checksum(code):
    assert uscc_problem(code) is None


def test_changing_the_check_character_is_refused():
    code = VALID[0]
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    assert uscc_problem(wrong) == "check character does not match"


@pytest.mark.parametrize("code,reason", [
    ("9135010", "must be 18 characters"),
    ("91350100M000100YI3", "contains characters outside the code alphabet: I"),
    ("9135A100M000100Y43", "characters 3-8 must be the administrative division code (digits)"),
])
def test_malformed_codes_name_the_reason(code, reason):
    assert uscc_problem(code) == reason


def test_normalise_upper_cases_and_refuses_with_a_stable_code():
    assert normalise_uscc(" 91350100m000100y43 ") == "91350100M000100Y43"
    with pytest.raises(Unprocessable) as err:
        normalise_uscc("91350100M000100Y44")
    assert err.value.code == "invalid_social_credit_code"


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=2, max_size=2),
       st.text(alphabet="0123456789", min_size=6, max_size=6),
       st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9), st.integers(0, 16),
       st.sampled_from(USCC_ALPHABET))
def test_any_single_character_substitution_is_detected(head, region, org, pos, replacement):
    first17 = head + region + org
    code = first17 + uscc_check_char(first17)
    assert uscc_problem(code) is None
    if code[pos] != replacement and (pos not in range(2, 8) or replacement.isdigit()):
        mutated = code[:pos] + replacement + code[pos + 1:]
        assert uscc_problem(mutated) is not None


def test_weak_passwords_are_refused():
    assert password_problem("short1") == "must be at least 10 characters"
    assert password_problem("onlyletterslong") is not None
    assert password_problem("correct-horse-7") is None
