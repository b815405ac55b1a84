"""Bad scoring input is refused with a stable code before anything is aggregated (ALGORITHMS.md §2 "Input")."""
from decimal import Decimal as D

import pytest

from evaluation.scoring import (
    Criterion, Method, ScoreOutOfRange, ScoringInput, ScoringInputError, Sheet, SheetForRejectedBidder,
    SheetsIncomplete, evaluate, parse_score, validate_score,
)
from tests.unit.evaluation.tables import bidders, comprehensive, members, scoring_input

TECH = Criterion("技术方案", D("40"))


@pytest.mark.parametrize("score", ["-0.01", "40.01", "100", "-1"])
def test_a_score_outside_zero_to_max_is_refused_as_out_of_range(score):
    with pytest.raises(ScoreOutOfRange) as refused:
        validate_score(TECH, D(score))
    assert refused.value.status == 422 and refused.value.code == "score_out_of_range"
    assert refused.value.details == {"criterion": "技术方案", "score": score, "min": "0", "max": "40"}


@pytest.mark.parametrize("score", ["0", "40", "39.99", "0.01", "40.000"])
def test_the_ends_of_the_range_are_accepted(score):
    assert validate_score(TECH, D(score)) == D(score)


@pytest.mark.parametrize("raw", [12.5, "abc", "NaN", "Infinity", None, ""])
def test_a_typed_score_must_be_a_finite_decimal_string(raw):
    with pytest.raises(ScoringInputError):
        parse_score(TECH, raw)


def test_a_typed_score_is_parsed_exactly():
    assert parse_score(TECH, " 33.35 ") == D("33.35")
    with pytest.raises(ScoreOutOfRange):
        parse_score(TECH, "41")


METHOD = comprehensive([("技术", "70", False)], "30")
BIDS = bidders(("B1", "100", True), ("B2", "120", True), ("BR", "90", False))


def test_aggregation_refuses_a_sheet_with_a_score_out_of_range():
    with pytest.raises(ScoreOutOfRange):
        evaluate(scoring_input(METHOD, members(3), BIDS, {"B1": {"技术": "50 70.5 60"}, "B2": {"技术": "1 2 3"}}))


def test_a_sheet_for_a_rejected_bidder_is_refused():
    data = scoring_input(METHOD, members(2), BIDS, {"B1": {"技术": "50 60"}, "B2": {"技术": "1 2"},
                                                    "BR": {"技术": "1 2"}})
    with pytest.raises(SheetForRejectedBidder) as refused:
        evaluate(data)
    assert refused.value.code == "bidder_not_compliant" and refused.value.details["bidder"] == "BR"


def test_missing_sheets_or_criteria_keep_scoring_from_aggregating():
    data = scoring_input(METHOD, members(2), BIDS, {"B1": {"技术": "50 60"}})
    with pytest.raises(SheetsIncomplete) as refused:
        evaluate(data)
    assert refused.value.status == 409
    assert refused.value.details["missing"] == [{"member": "M1", "bidder": "B2"}, {"member": "M2", "bidder": "B2"}]
    two = comprehensive([("技术", "40", False), ("商务", "30", False)], "30")
    with pytest.raises(SheetsIncomplete):
        evaluate(ScoringInput(two, ("M1",), BIDS, (Sheet("M1", "B1", {"技术": D("1")}),
                                                    Sheet("M1", "B2", {"技术": D("1"), "商务": D("1")}))))


@pytest.mark.parametrize("sheets", [
    (Sheet("M9", "B1", {"技术": D("1")}),),                       # not a member
    (Sheet("M1", "B9", {"技术": D("1")}),),                       # not a bidder
    (Sheet("M1", "B1", {"技术": D("1"), "其他": D("1")}),),        # unknown criterion
    (Sheet("M1", "B1", {"技术": D("1")}), Sheet("M1", "B1", {"技术": D("2")})),   # two sheets
    (Sheet("M1", "B1", {"技术": 1.5}),),                          # a float
    (Sheet("M1", "B1", {"技术": D("NaN")}),),                     # not a number
])
def test_malformed_sheets_are_refused(sheets):
    with pytest.raises(ScoringInputError):
        evaluate(ScoringInput(METHOD, ("M1",), BIDS, sheets))


def test_there_must_be_a_compliant_bid_with_a_positive_price():
    with pytest.raises(ScoringInputError) as refused:
        evaluate(ScoringInput(Method.lowest_price(), ("M1",), bidders(("B1", "100", False))))
    assert refused.value.code == "no_compliant_bids"
    with pytest.raises(ScoringInputError):
        evaluate(ScoringInput(Method.lowest_price(), ("M1",), bidders(("B1", "0", True))))


def test_the_method_read_from_the_tender_matches_the_stored_form():
    stored = {"method": "comprehensive", "criteria": [{"name": "技术方案", "max": "40", "objective": False},
                                                      {"name": "企业信誉", "max": "10", "objective": True}],
              "price_weight": "50", "price_formula": {"rule": "mean_benchmark", "k": "0.95", "e": "1",
                                                      "drop_extremes": True},
              "aggregation": "trimmed_mean", "decimals": 3}
    method = Method.from_json(stored)
    assert method.criteria[1] == Criterion("企业信誉", D("10"), True)
    assert method.to_json() == {**stored, "decimals": "3"}
    assert Method.from_json({"method": "lowest_price"}) == Method.lowest_price()
    for bad in ({**stored, "decimals": 4}, {**stored, "decimals": 2.0}, {**stored, "price_weight": 50.0},
                {**stored, "method": "auction"},
                {**stored, "price_formula": {"rule": "median"}}):
        with pytest.raises(ScoringInputError):
            Method.from_json(bad)


def test_numbers_beyond_exact_scoring_are_bad_input_not_a_crash():
    with pytest.raises(ScoringInputError) as refused:
        evaluate(scoring_input(METHOD, members(1), bidders(("B1", "1E+20", True)), {"B1": {"技术": "1"}}))
    assert refused.value.code == "number_out_of_bounds"
    # a score with a thousand decimals lies within 0..70, but its sum cannot be kept exact
    with pytest.raises(ScoringInputError) as refused:
        evaluate(scoring_input(METHOD, members(2), bidders(("B1", "100", True)), {"B1": {"技术": "1E-1000 1"}}))
    assert refused.value.code == "number_too_precise"
