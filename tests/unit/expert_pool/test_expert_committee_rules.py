"""Committee size and composition rules (评标委员会组成)."""
from decimal import Decimal

import pytest

from core.errors import Unprocessable
from expert_pool.rules import FAMILY_CONSTRUCTION, FAMILY_GOVERNMENT_PROCUREMENT, PanelKind, check_committee


def refusal(**kwargs) -> Unprocessable:
    with pytest.raises(Unprocessable) as err:
        check_committee(**kwargs)
    return err.value


def test_five_experts_make_a_lawful_evaluation_committee():
    check_committee(members=5)


def test_a_committee_of_three_is_too_small():
    err = refusal(members=3)
    assert err.code == "committee_too_small"
    assert err.details == {"members": 3, "minimum": 5}


def test_an_even_committee_is_refused():
    assert refusal(members=6).code == "committee_even"


def test_government_procurement_of_ten_million_needs_seven_members():
    err = refusal(members=5, family=FAMILY_GOVERNMENT_PROCUREMENT, budget=Decimal("10000000.00"))
    assert err.code == "committee_too_small"
    assert err.details["minimum"] == 7
    check_committee(members=7, family=FAMILY_GOVERNMENT_PROCUREMENT, budget=Decimal("10000000.00"))


def test_a_tender_stored_with_the_trading_family_code_zfcg_counts_as_government_procurement():
    # Tender.family holds the trading codes (FJSZ, TDKY, ZFCG, GYCQ); the rule must read them as stored.
    assert refusal(members=5, family="ZFCG", budget=Decimal("12000000")).details["minimum"] == 7
    check_committee(members=5, family="FJSZ", budget=Decimal("12000000"))


def test_government_procurement_just_below_ten_million_needs_only_five():
    check_committee(members=5, family=FAMILY_GOVERNMENT_PROCUREMENT, budget=Decimal("9999999.99"))


def test_a_large_construction_project_still_needs_only_five():
    check_committee(members=5, family=FAMILY_CONSTRUCTION, budget=Decimal("50000000"))


def test_negotiation_and_inquiry_panels_may_have_three_but_not_four():
    check_committee(members=3, panel=PanelKind.NEGOTIATION_PANEL)
    check_committee(members=3, panel=PanelKind.INQUIRY_PANEL)
    assert refusal(members=4, panel=PanelKind.INQUIRY_PANEL).code == "committee_even"
    assert refusal(members=1, panel=PanelKind.NEGOTIATION_PANEL).code == "committee_too_small"


def test_experts_must_be_at_least_two_thirds_when_tenderer_representatives_sit():
    check_committee(members=5, representatives=1)
    err = refusal(members=5, representatives=2)
    assert err.code == "experts_below_two_thirds"
    assert err.details == {"members": 5, "experts": 3, "required_experts": 4}


def test_two_of_seven_representatives_is_allowed_and_three_is_not():
    check_committee(members=7, representatives=2)
    assert refusal(members=7, representatives=3).code == "experts_below_two_thirds"


def test_more_representatives_than_members_is_refused():
    assert refusal(members=5, representatives=6).code == "invalid_committee"


def test_a_float_budget_is_refused():
    with pytest.raises(TypeError):
        check_committee(members=7, family=FAMILY_GOVERNMENT_PROCUREMENT, budget=10_000_000.0)
