"""ID card numbers (GB 11643), mobile numbers and the masks every non-admin response uses."""
import pytest
from hypothesis import given, strategies as st

from core.errors import Unprocessable
from expert_pool.personal import (id_card_check_char, id_card_problem, mask_id_card, mask_phone, normalise_id_card,
                                  normalise_phone)

# The worked example of GB 11643-1999 Annex A.
STANDARD_EXAMPLE = "11010519491231002X"


def test_the_standard_example_number_is_valid():
    assert id_card_problem(STANDARD_EXAMPLE) is None
    assert id_card_check_char(STANDARD_EXAMPLE[:17]) == "X"


def test_a_wrong_check_character_is_refused_with_invalid_id_card():
    with pytest.raises(Unprocessable) as err:
        normalise_id_card("110105194912310021")
    assert err.value.code == "invalid_id_card"
    assert "check character" in err.value.message


def test_an_impossible_birth_date_is_refused_even_with_a_matching_check_character():
    first17 = "44010019990231001"  # 31 February
    assert "birth date" in id_card_problem(first17 + id_card_check_char(first17))


@pytest.mark.parametrize("number", ["", "4401001990010100", "44010019900101001Y", "04010019900101001X"])
def test_malformed_numbers_are_refused(number):
    assert id_card_problem(number) is not None


def test_a_lower_case_x_and_blanks_are_normalised():
    assert normalise_id_card(" 110105 19491231002x ") == STANDARD_EXAMPLE


@given(st.from_regex(r"[1-9][0-9]{5}19[5-9][0-9](0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}", fullmatch=True))
def test_changing_any_single_digit_of_a_valid_number_breaks_the_check(first17):
    number = first17 + id_card_check_char(first17)
    assert id_card_problem(number) is None
    for i in range(17):
        digit = str((int(number[i]) + 1) % 10)
        altered = number[:i] + digit + number[i + 1:]
        assert id_card_problem(altered) is not None


def test_mobile_numbers_accept_the_country_prefix_and_refuse_landlines():
    assert normalise_phone("+86 138-0013-8000") == "13800138000"
    with pytest.raises(Unprocessable) as err:
        normalise_phone("0760-88888888")
    assert err.value.code == "invalid_phone"


def test_masks_keep_only_the_first_three_and_last_four_characters():
    assert mask_id_card(STANDARD_EXAMPLE) == "110***********002X"
    assert mask_phone("13800138000") == "138****8000"
